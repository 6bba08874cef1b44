"""Correlation: receipts, acknowledgements and business responses matched to their message and document, moving
the message's state; a rejection opens a non-conformity.

An answer moves only the message it names, on the counterpart that message went to: by the message identity it
carries, else by the counterpart's receipt id (one message only), else by the certificate number and version (one
message only). An identifier that names nothing of that counterpart is never passed over for a weaker one; an answer
signed by another authority than the one the message went to is not that counterpart's. Such an answer is kept as
*unmatched* (with the reason) and alerted, never applied. An answer that arrives twice is kept once; one that arrives
after the message has moved on is recorded but changes nothing; one that arrives while the message waits to be
resent (its own receipt lost) is applied.
"""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, joinedload

import logging
from datetime import datetime
from functools import partial
from typing import Sequence

from hub.connector import AckReport, Outcome
from hub.acks.nonconformities import open_non_conformity
from hub.store.states import transition
from hub.store.states import ALLOWED_TRANSITIONS, MessageState
from hub.errors import ForeignAnswerer, UnmatchedAnswer
from hub.stages import stage
from hub.store.db import Database
from hub.store.group import GroupCommit, group_for
from hub.store.models import Acknowledgement, Document, Message, utcnow
from hub.store.appends import append, flush_appends
from hub.store.payloads import put_payload
from hub.store.text import storable
from hub.store.trace import add_event

log = logging.getLogger("hub.acks")

S = MessageState
#: The kind of an :class:`AckReport` that only reports a step (a border single window's tracking events).
TRACKING = "tracking"
STATE_OF: dict[Outcome, MessageState] = {
    Outcome.ACCEPTED: S.AWAITING_ACK,
    Outcome.ACKNOWLEDGED: S.ACKNOWLEDGED,
    Outcome.ACKNOWLEDGED_WITH_WARNINGS: S.ACKNOWLEDGED_WITH_WARNINGS,
    Outcome.REJECTED: S.REJECTED,
}


def find_message(session: Session, counterpart: str, report: AckReport, *, answerer=None) -> Message:
    """The one message ``report`` answers, on ``counterpart``; :class:`UnmatchedAnswer` saying why when there is none.

    ``answerer(importing_country, kind)``, when given, is the authority that must have answered a message sent for that
    country (see :class:`hub.connector.BindsAnswerers`); the report's ``answered_by`` must be it."""
    message = _named_message(session, counterpart, report)
    if answerer is not None:
        expected = answerer(message.document.importing_country, report.kind)
        if expected is not None and report.answered_by != expected:
            raise ForeignAnswerer(
                f"an answer about message {message.id} comes from {report.answered_by or 'an unknown authority'}, "
                f"but that message went to {expected}: only {expected} may answer it", where="acknowledgement")
    return message


def _named_message(session: Session, counterpart: str, report: AckReport) -> Message:
    if report.message_id:
        message = session.get(Message, report.message_id, options=[joinedload(Message.document)])  # its document is asked for next
        if message is None or message.destination != counterpart:
            raise UnmatchedAnswer(f"no message {report.message_id!r} was sent to {counterpart}", where="acknowledgement")
        return message
    if report.receipt_id:
        held = session.scalars(select(Message).where(Message.destination == counterpart, Message.receipt_id == report.receipt_id).limit(2)).all()
        if len(held) == 1:
            return held[0]
        if held:
            raise UnmatchedAnswer(f"{counterpart}'s reference {report.receipt_id!r} names several messages", where="acknowledgement")
        if not report.certificate_number:
            raise UnmatchedAnswer(f"no message sent to {counterpart} has its reference {report.receipt_id!r}", where="acknowledgement")
    if report.certificate_number:
        query = (
            select(Message)
            .join(Document, Message.document_id == Document.id)
            .where(Message.destination == counterpart, Document.certificate_number == report.certificate_number)
        )
        if report.certificate_version is not None:
            query = query.where(Document.version == report.certificate_version)
        held = session.scalars(query.limit(2)).all()
        if len(held) == 1:
            return held[0]
        version = f" version {report.certificate_version}" if report.certificate_version is not None else ""
        if held:
            raise UnmatchedAnswer(
                f"certificate {report.certificate_number!r}{version} was sent to {counterpart} more than once: an "
                "answer naming only the certificate cannot tell which message it answers", where="acknowledgement")
        raise UnmatchedAnswer(f"no certificate {report.certificate_number!r}{version} was sent to {counterpart}", where="acknowledgement")
    raise UnmatchedAnswer(f"the answer from {counterpart} names no message, reference or certificate", where="acknowledgement")


def keep_unmatched(session: Session, counterpart: str, report: AckReport, reason: str) -> Acknowledgement:
    """Keep an answer that moves no message, with why, for the operators (counted in the destination's health)."""
    log.warning("answer from %s kept unmatched: %s", counterpart, reason)
    ack = Acknowledgement(
        message_id=None,
        document_id=None,
        counterpart=counterpart,
        kind=storable(report.kind, 30),
        outcome=report.outcome.value,
        reason_code=storable(report.reason_code, 60),
        reason_text=storable(report.reason_text),
        counterpart_reference=storable(report.receipt_id or report.message_id or report.certificate_number, 200),
        payload_digest=put_payload(session, report.payload, report.media_type) if report.payload else None,
        received_at=utcnow(),
        answered_by=storable(report.answered_by, 100),
        unmatched=storable(reason, 2000),
    )
    session.add(ack)
    session.flush()
    return ack


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
    answered_by: str | None = None,
    batched: bool = False,
    received_at: datetime | None = None,
    kept: set[tuple] | None = None,
) -> Acknowledgement | None:
    """Store one answer of ``counterpart`` about ``message``, move the message if the answer allows it, and open a
    non-conformity on a rejection. Returns the stored acknowledgement (the one kept already, for an answer read
    again); with ``batched``, an answer that opens nothing is written with the transaction's other appended rows
    (:mod:`hub.store.appends`) and None is returned. ``received_at``: when it arrived, if before now (a receipt
    recorded with its delivery batch). ``kept``: the answers kept already, as :func:`answers_kept` reads them for a
    whole batch, where an answer that moves nothing would otherwise read them itself (and make the session write
    what the batch holds so far); an answer found there is not kept again, and None is returned."""
    reason_code, reason_text, receipt_id = storable(reason_code, 60), storable(reason_text), storable(receipt_id, 200)
    digest = put_payload(session, payload, media_type) if payload else None
    target, current = STATE_OF[outcome], MessageState(message.state)
    moves = kind != TRACKING and target is not current and target in ALLOWED_TRANSITIONS[current]
    if not moves and kept is not None:
        key = _answer_key(message.id, counterpart, kind, outcome.value, reason_code, reason_text, digest)
        if key in kept:
            return None  # read again: already on the trace
        kept.add(key)
    elif not moves:
        repeat = _same_answer(session, message.id, counterpart, kind, outcome, reason_code, reason_text, digest)
        if repeat is not None:
            return repeat  # read again (a poll cursor restarted, an answer pushed twice): already on the trace
    row = {
        "message_id": message.id, "document_id": message.document_id, "counterpart": counterpart, "kind": storable(kind, 30), "outcome": outcome.value,
        "reason_code": reason_code, "reason_text": reason_text, "counterpart_reference": receipt_id, "payload_digest": digest, "received_at": received_at or utcnow(),
        "answered_by": storable(answered_by, 100), "unmatched": None,
    }
    opens = outcome is Outcome.REJECTED and moves
    if batched and not opens:
        append(session, _INSERT_ACK, row)
        ack = None
    else:
        if batched:
            flush_appends(session)  # the answers appended before this one keep their order (ids are arrival order)
        ack = Acknowledgement(**row)
        session.add(ack)
        if opens:
            session.flush()  # the non-conformity names it; else it is written with the transaction's next flush
    if receipt_id and not message.receipt_id:
        message.receipt_id = receipt_id
    if moves and target is not MessageState.AWAITING_ACK:
        message.answer_due_at = None
    detail = {"kind": kind, "outcome": outcome.value, "reason_code": reason_code, "reason_text": reason_text, "receipt_id": receipt_id}
    if kind == TRACKING:
        # A step the counterpart reports (received, documentary check…): on the trace, the message stays where it is.
        add_event(session, document=message.document, message_id=message.id, destination=counterpart, event=f"tracking.{reason_code or 'event'}", actor=actor, state=current.value, detail=detail, payload_digest=digest)
    elif not moves:
        add_event(session, document=message.document, message_id=message.id, destination=counterpart, event=f"{kind}.recorded", actor=actor, state=current.value, detail={**detail, "note": f"message already {current.value}"}, payload_digest=digest)
    else:
        transition(session, message, target, actor=actor, event=f"{kind}.{outcome.value}", detail=detail, payload_digest=digest)
    if opens:
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


_INSERT_ACK = insert(Acknowledgement)


def answers_kept(session: Session, message_ids: Sequence[str], *, kind: str) -> set[tuple]:
    """The answers of ``kind`` kept already for ``message_ids``, as :func:`record_answer`'s ``kept`` takes them: one
    read for a batch."""
    a = Acknowledgement
    rows = session.execute(select(a.message_id, a.counterpart, a.kind, a.outcome, a.reason_code, a.reason_text, a.payload_digest)
                           .where(a.message_id.in_(list(message_ids)), a.kind == kind))
    return {key for row in rows for key in _keys_of(row)}


def _keys_of(kept) -> list[tuple]:
    """The keys under which an answer kept already (a row or an :class:`Acknowledgement`) is the same as another."""
    keys = [_answer_key(kept.message_id, kept.counterpart, kept.kind, kept.outcome, kept.reason_code, kept.reason_text, None)]
    if kept.payload_digest is not None:
        keys.append(_answer_key(kept.message_id, kept.counterpart, kept.kind, kept.outcome, kept.reason_code, kept.reason_text, kept.payload_digest))
    return keys


def _answer_key(message_id: str, counterpart: str, kind: str, outcome: str, reason_code: str | None, reason_text: str | None,
                digest: str | None) -> tuple:
    """What makes two answers the same, as :func:`_same_answer` compares them: a tracking step, or an answer without
    bytes, by its text; any other by its bytes."""
    if kind == TRACKING or digest is None:
        return (message_id, counterpart, kind, outcome, reason_code, "text", reason_text)
    return (message_id, counterpart, kind, outcome, reason_code, "bytes", digest)


def _same_answer(session: Session, message_id: str, counterpart: str, kind: str, outcome: Outcome, reason_code: str | None,
                 reason_text: str | None, digest: str | None) -> Acknowledgement | None:
    """The answer kept already that says the same thing (a tracking step by its code and text; another answer by its
    bytes when it has them: :func:`_answer_key`, as :func:`answers_kept` compares them for a batch)."""
    wanted = _answer_key(message_id, counterpart, kind, outcome.value, reason_code, reason_text, digest)
    kept = session.scalars(select(Acknowledgement).where(
        Acknowledgement.message_id == message_id, Acknowledgement.counterpart == counterpart, Acknowledgement.kind == kind,
        Acknowledgement.outcome == outcome.value).order_by(Acknowledgement.id))
    return next((ack for ack in kept if wanted in _keys_of(ack)), None)


def apply_ack(session: Session, counterpart: str, report: AckReport, *, actor: str, answerer=None, batched: bool = False) -> Acknowledgement | None:
    """Correlate an asynchronous :class:`AckReport` from ``counterpart`` and record it; :class:`UnmatchedAnswer`
    (a :class:`NotFound`) when it answers no message the hub sent there, or comes from another authority than the
    one ``answerer`` names for it. The caller keeps such an answer with :func:`keep_unmatched`."""
    message = find_message(session, counterpart, report, answerer=answerer)
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
        answered_by=report.answered_by,
        batched=batched,
    )


def take_answers(database: Database, counterpart: str, reports: list[AckReport], *, actor: str, answerer=None, keep_unmatched_one: bool = True,
                 batched: bool = False) -> list[Acknowledgement | None]:
    """Record ``reports`` from ``counterpart`` in one transaction. When one of them answers no message of that
    counterpart (or comes from the wrong authority), nothing of them is applied: that one is kept as unmatched (in a
    transaction of its own; not with ``keep_unmatched_one=False``, for a caller that tries them again one by one) and
    its :class:`UnmatchedAnswer` raised. With ``batched``, answers are written as one batch and not returned (see
    :func:`record_answer`)."""
    current = None
    try:
        with database.transaction() as session:
            _load_named(session, reports)
            taken = []
            for current in reports:
                taken.append(apply_ack(session, counterpart, current, actor=actor, answerer=answerer, batched=batched))
            return taken
    except UnmatchedAnswer as exc:
        if keep_unmatched_one:
            with database.transaction() as session:
                keep_unmatched(session, counterpart, current, exc.message)
        raise


def take_answers_together(database: Database, counterpart: str, reports: list[AckReport], *, actor: str, answerer=None) -> list[Acknowledgement | None]:
    """:func:`take_answers` for answers pushed by counterparts: those pushed at the same moment are recorded in one
    transaction (:mod:`hub.store.group`); one that cannot be applied is then recorded on its own, as
    :func:`take_answers` does, and fails alone."""
    group = group_for(database, "answers", lambda: GroupCommit(database, _apply_pushed, alone=partial(_take_pushed, database), wrap=lambda: stage("ack"),
                                                               prepare=_load_pushed))
    return group.run((counterpart, reports, actor, answerer))


def _load_pushed(session: Session, batch: list[tuple]) -> None:
    """The messages every answer of a group commit names, read at once: then no answer reads, and so none makes the
    session flush what the answers before it changed; all is written at the commit, a statement per table."""
    _load_named(session, [report for _counterpart, reports, _actor, _answerer in batch for report in reports])


def _apply_pushed(session: Session, pushed: tuple) -> list[Acknowledgement | None]:
    counterpart, reports, actor, answerer = pushed
    return [apply_ack(session, counterpart, report, actor=actor, answerer=answerer) for report in reports]


def _take_pushed(database: Database, pushed: tuple) -> list[Acknowledgement | None]:
    counterpart, reports, actor, answerer = pushed
    return take_answers(database, counterpart, reports, actor=actor, answerer=answerer)


def _load_named(session: Session, reports: list[AckReport]) -> None:
    """The messages the reports name by id, with their documents, read at once (matching then reads no more); held
    by the session's ``info`` for its life, since its identity map keeps only weak references."""
    named = {report.message_id for report in reports if report.message_id}
    if len(named) < 2:
        return  # one: read with its document by find_message
    session.info.setdefault("hub.acks.named", []).extend(session.scalars(select(Message).options(joinedload(Message.document)).where(Message.id.in_(named))).unique())
