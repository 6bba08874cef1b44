"""The trace: one append-only event per hop, sharing the document's correlation id from submission to the last
acknowledgement. Events carry the document's tenant, importing country and products so that subscribers can filter.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hub.store.models import Document, Message, TraceEvent, utcnow

#: One line per hop (``hub serve -v`` shows them): what happened, to which document and message, by whom.
log = logging.getLogger("hub.trace")


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
    if log.isEnabledFor(logging.INFO):
        message = f" message {message_id[:8]} → {destination}" if message_id else ""
        log.info("%-28s %s%s%s  %s", event, document.certificate_number, message, f" [{state}]" if state else "", actor)
    return row


def message_timeline(session: Session, message: Message) -> Sequence[TraceEvent]:
    """Every hop of ``message``, with its document's own events (received, validated, signed, routed…)."""
    return session.scalars(
        select(TraceEvent)
        .where(TraceEvent.correlation_id == message.document.correlation_id, or_(TraceEvent.message_id == message.id, TraceEvent.message_id.is_(None)))
        .order_by(TraceEvent.id)
    ).all()
