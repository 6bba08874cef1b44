"""The trace: one append-only event per hop, sharing the document's correlation id from submission to the last
acknowledgement. Events carry the document's tenant, importing country and products so that subscribers can filter.
"""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.store.models import Document, TraceEvent, utcnow


def add_event(
    session: Session,
    *,
    document: Document,
    event: str,
    actor: str,
    message_id: str | None = None,
    destination: str | None = None,
    state: str | None = None,
    detail: dict[str, Any] | None = None,
    payload_digest: str | None = None,
) -> TraceEvent:
    """Append one event to ``document``'s trace (in the caller's transaction)."""
    row = TraceEvent(
        at=utcnow(),
        correlation_id=document.correlation_id,
        tenant=document.tenant,
        document_id=document.id,
        message_id=message_id,
        event=event,
        actor=actor,
        state=state,
        destination=destination,
        country=document.importing_country,
        products=list(document.product_codes or []),
        detail=detail or {},
        payload_digest=payload_digest,
    )
    session.add(row)
    return row


def events_of(session: Session, *, correlation_id: str | None = None, message_id: str | None = None, document_id: str | None = None) -> Sequence[TraceEvent]:
    """The events of one correlation, message or document, oldest first."""
    query = select(TraceEvent).order_by(TraceEvent.id)
    if correlation_id:
        query = query.where(TraceEvent.correlation_id == correlation_id)
    if message_id:
        query = query.where(TraceEvent.message_id == message_id)
    if document_id:
        query = query.where(TraceEvent.document_id == document_id)
    return session.scalars(query).all()
