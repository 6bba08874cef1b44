"""How stored objects are shown by the API (plain JSON-able dicts; one function per object)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.store.events import event_data
from hub.customs.ledger import format_quantity
from hub.store.models import Acknowledgement, DeliveryAttempt, Document, Message, NonConformity, TraceEvent


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def message_summary(message: Message) -> dict[str, Any]:
    return {"id": message.id, "destination": message.destination, "state": message.state}


def message_view(message: Message) -> dict[str, Any]:
    return {
        **message_summary(message),
        "document_id": message.document_id,
        "certificate_number": message.document.certificate_number,
        "correlation_id": message.document.correlation_id,
        "attempts": message.attempts,
        "next_attempt_at": _iso(message.next_attempt_at) if message.state in ("queued", "retry_wait") else None,
        "after": message.predecessor_id,
        "receipt_id": message.receipt_id,
        "last_error": message.last_error,
        "created_at": _iso(message.created_at),
        "delivered_at": _iso(message.delivered_at),
        "acknowledged_at": _iso(message.acknowledged_at),
        "payload_digest": message.payload_digest,
    }


def document_view(document: Document, *, full: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": document.id,
        "correlation_id": document.correlation_id,
        "kind": document.kind,
        "direction": document.direction,
        "certificate_number": document.certificate_number,
        "status": document.status,
        "version": document.version,
        "lifecycle": document.lifecycle,
        "issuing_country": document.issuing_country,
        "exporting_country": document.exporting_country,
        "importing_country": document.importing_country,
        "products": [
            {"line": p.line, "hs_code": p.hs_code, "scientific_name": p.scientific_name, "common_name": p.common_name, "quantity": format_quantity(p.quantity) if p.quantity is not None else None, "unit": p.unit}
            for p in document.products
        ],
        "replaces": document.refers_to_number,
        "created_at": _iso(document.created_at),
        "messages": [message_summary(m) for m in document.messages],
    }
    if full:
        view["report"] = document.report
        view["record"] = document.record
        view["payload_digest"] = document.payload_digest
    return view


def submission_view(document: Document) -> dict[str, Any]:
    """The answer to ``POST /v1/documents``."""
    return {
        "id": document.id,
        "correlation_id": document.correlation_id,
        "status": document.lifecycle,
        "report": document.report,
        "messages": [message_summary(m) for m in document.messages],
    }


def attempt_view(attempt: DeliveryAttempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "worker": attempt.worker,
        "started_at": _iso(attempt.started_at),
        "finished_at": _iso(attempt.finished_at),
        "outcome": attempt.outcome,
        "error": attempt.error,
        "request_digest": attempt.request_digest,
        "response_digest": attempt.response_digest,
    }


def acknowledgement_view(ack: Acknowledgement) -> dict[str, Any]:
    return {
        "id": ack.id,
        "message_id": ack.message_id,
        "counterpart": ack.counterpart,
        "kind": ack.kind,
        "outcome": ack.outcome,
        "reason_code": ack.reason_code,
        "reason_text": ack.reason_text,
        "counterpart_reference": ack.counterpart_reference,
        "payload_digest": ack.payload_digest,
        "received_at": _iso(ack.received_at),
    }


def event_view(event: TraceEvent) -> dict[str, Any]:
    """An event as the trace endpoints show it: what subscribers receive, plus the payload's digest."""
    return {**event_data(event), "payload_digest": event.payload_digest}


def non_conformity_view(nc: NonConformity) -> dict[str, Any]:
    return {
        "id": nc.id,
        "document_id": nc.document_id,
        "message_id": nc.message_id,
        "source": nc.source,
        "counterpart": nc.counterpart,
        "country": nc.country,
        "products": [{"hs_code": p.hs_code, "scientific_name": p.scientific_name} for p in nc.products],
        "cause_code": nc.cause_code,
        "cause_text": nc.cause_text,
        "evidence_digest": nc.evidence_digest,
        "replacement_document_id": nc.replacement_document_id,
        "state": nc.state,
        "opened_at": _iso(nc.opened_at),
    }
