"""The trace: one append-only event per hop, sharing the document's correlation id from submission to the last
acknowledgement. Events carry the document's tenant, importing country and products so that subscribers can filter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from hub.store.appends import append
from hub.store.models import Document, Message, TraceEvent, utcnow

#: One line per hop (``hub serve -v`` shows them): what happened, to which document and message, by whom.
log = logging.getLogger("hub.trace")


#: Events are written in one multi-row statement per transaction (:mod:`hub.store.appends`).
_INSERT = insert(TraceEvent)


def add_event(
    session: Session,
    *,
    document: "Document | DocumentFacts",
    event: str,
    actor: str,
    message_id: str | None = None,
    destination: str | None = None,
    state: str | None = None,
    detail: dict[str, Any] | None = None,
    payload_digest: str | None = None,
) -> None:
    """Append one event to ``document``'s trace (in the caller's transaction; written with the transaction's other
    events just before it commits, or before the transaction reads the trace)."""
    append(session, _INSERT, {
        "at": utcnow(),
        "correlation_id": document.correlation_id,
        "tenant": document.tenant,
        "document_id": document.id,
        "message_id": message_id,
        "event": event,
        "actor": actor,
        "state": state,
        "destination": destination,
        "country": document.importing_country,
        "products": list(document.product_codes or []),
        "detail": detail or {},
        "payload_digest": payload_digest,
    })
    if log.isEnabledFor(logging.INFO):
        message = f" message {message_id[:8]} → {destination}" if message_id else ""
        log.info("%-28s %s%s%s  %s", event, document.certificate_number, message, f" [{state}]" if state else "", actor)


@dataclass(frozen=True)
class DocumentFacts:
    """What a trace event copies from its document, read with a message by a Core query (no ORM object loaded)."""

    id: str
    correlation_id: str
    tenant: str
    certificate_number: str
    importing_country: str | None
    product_codes: list[Any] | None


def message_timeline(session: Session, message: Message) -> Sequence[TraceEvent]:
    """Every hop of ``message``, with its document's own events (received, validated, signed, routed…)."""
    return session.scalars(
        select(TraceEvent)
        .where(TraceEvent.correlation_id == message.document.correlation_id, or_(TraceEvent.message_id == message.id, TraceEvent.message_id.is_(None)))
        .order_by(TraceEvent.id)
    ).all()
