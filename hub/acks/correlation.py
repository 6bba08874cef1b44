"""Correlation: receipts, acknowledgements and business responses matched to their message and document, moving
the message's state; a rejection opens a non-conformity.

An acknowledgement is matched by the message identity it carries, else by the counterpart's receipt id, else by the
certificate number on that counterpart (the latest message). An answer that arrives twice, or after the message
has moved on, is recorded but changes nothing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.connector import AckReport, Outcome
from hub.acks.nonconformities import open_non_conformity
from hub.store.states import transition
from hub.store.states import ALLOWED_TRANSITIONS, MessageState
from hub.errors import NotFound
from hub.store.models import Acknowledgement, Document, Message, utcnow
from hub.store.payloads import put_payload
from hub.store.trace import add_event

S = MessageState
#: The kind of an :class:`AckReport` that only reports a step (a border single window's tracking events).
TRACKING = "tracking"
STATE_OF: dict[Outcome, MessageState] = {
    Outcome.ACCEPTED: S.AWAITING_ACK,
    Outcome.ACKNOWLEDGED: S.ACKNOWLEDGED,
    Outcome.ACKNOWLEDGED_WITH_WARNINGS: S.ACKNOWLEDGED_WITH_WARNINGS,
    Outcome.REJECTED: S.REJECTED,
}


def find_message(session: Session, counterpart: str, report: AckReport) -> Message | None:
    """The message ``report`` answers, on ``counterpart``."""
    if report.message_id:
        message = session.get(Message, report.message_id)
        if message is not None and message.destination == counterpart:
            return message
    if report.receipt_id:
        message = session.scalars(select(Message).where(Message.destination == counterpart, Message.receipt_id == report.receipt_id)).first()
        if message is not None:
            return message
    if report.certificate_number:
        return session.scalars(
            select(Message)
            .join(Document, Message.document_id == Document.id)
            .where(Message.destination == counterpart, Document.certificate_number == report.certificate_number)
            .order_by(Message.created_at.desc())
            .limit(1)
        ).first()
    return None


def record_answer(
    session: Session,
    message: Message,
    *,
    counterpart: str,
    outcome: Outcome,
    kind: str,
    actor: str,
    reason_code: str | None = None,
    reason_text: str | None = None,
    receipt_id: str | None = None,
    payload: bytes | None = None,
    media_type: str = "application/xml",
    country: str | None = None,
    products: tuple[str, ...] = (),
) -> Acknowledgement:
    """Store one answer of ``counterpart`` about ``message``, move the message if the answer allows it, and open a
    non-conformity on a rejection. Returns the stored acknowledgement."""
    if kind == TRACKING:
        repeat = _same_step(session, message.id, counterpart, reason_code, reason_text)
        if repeat is not None:
            return repeat  # a step read again (a poll cursor restarted): already on the trace
    digest = put_payload(session, payload, media_type) if payload else None
    ack = Acknowledgement(
        message_id=message.id,
        document_id=message.document_id,
        counterpart=counterpart,
        kind=kind,
        outcome=outcome.value,
        reason_code=reason_code,
        reason_text=reason_text,
        counterpart_reference=receipt_id,
        payload_digest=digest,
        received_at=utcnow(),
    )
    session.add(ack)
    session.flush()
    if receipt_id and not message.receipt_id:
        message.receipt_id = receipt_id
    target = STATE_OF[outcome]
    current = MessageState(message.state)
    detail = {"kind": kind, "outcome": outcome.value, "reason_code": reason_code, "reason_text": reason_text, "receipt_id": receipt_id}
    if kind == TRACKING:
        # A step the counterpart reports (received, documentary check…): on the trace, the message stays where it is.
        add_event(session, document=message.document, message_id=message.id, destination=counterpart, event=f"tracking.{reason_code or 'event'}", actor=actor, state=current.value, detail=detail, payload_digest=digest)
    elif target is current or target not in ALLOWED_TRANSITIONS[current]:
        add_event(session, document=message.document, message_id=message.id, destination=counterpart, event=f"{kind}.recorded", actor=actor, state=current.value, detail={**detail, "note": f"message already {current.value}"}, payload_digest=digest)
    else:
        transition(session, message, target, actor=actor, event=f"{kind}.{outcome.value}", detail=detail, payload_digest=digest)
    if outcome is Outcome.REJECTED and kind != TRACKING and target is not current:
        open_non_conformity(
            session,
            document=message.document,
            source="business_response" if kind == "business_response" else ("border_refusal" if kind == "border_refusal" else "acknowledgement"),
            counterpart=counterpart,
            cause_code=reason_code or "REJECTED",
            cause_text=reason_text,
            # Statistics count by the market concerned; the answering authority's own country is in the evidence.
            country=message.document.importing_country or country,
            products=products or None,
            message_id=message.id,
            acknowledgement_id=ack.id,
            evidence_digest=digest,
            actor=actor,
        )
    return ack


def _same_step(session: Session, message_id: str, counterpart: str, reason_code: str | None, reason_text: str | None) -> Acknowledgement | None:
    return session.scalars(
        select(Acknowledgement).where(
            Acknowledgement.message_id == message_id, Acknowledgement.counterpart == counterpart, Acknowledgement.kind == TRACKING,
            Acknowledgement.reason_code == reason_code, Acknowledgement.reason_text == reason_text,
        ).limit(1)
    ).first()


def apply_ack(session: Session, counterpart: str, report: AckReport, *, actor: str) -> Acknowledgement:
    """Correlate an asynchronous :class:`AckReport` from ``counterpart`` and record it; :class:`NotFound` when it
    answers no message the hub sent there."""
    message = find_message(session, counterpart, report)
    if message is None:
        ref = report.message_id or report.receipt_id or report.certificate_number or "nothing"
        raise NotFound(f"no message to {counterpart} matches this acknowledgement (it refers to {ref})", where="acknowledgement")
    return record_answer(
        session,
        message,
        counterpart=counterpart,
        outcome=report.outcome,
        kind=report.kind,
        actor=actor,
        reason_code=report.reason_code,
        reason_text=report.reason_text,
        receipt_id=report.receipt_id,
        payload=report.payload,
        media_type=report.media_type,
        country=report.country,
        products=report.products,
    )
