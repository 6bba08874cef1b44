"""What the console's pages read, each through the caller's :class:`hub.scope.Scope`: the trace search, one
document's and one message's timeline, the counterparts' board, the messages stuck, the non-conformities by country
× product × cause over time."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from sqlalchemy import case, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from hub.acks.nonconformities import NonConformityFilter
from hub.scope import Scope
from hub.store.models import Acknowledgement, DeliveryAttempt, Document, DocumentProduct, Message, NonConformity, TraceEvent, utcnow
from hub.store.states import MessageState
from hub.store.trace import message_timeline

S = MessageState
BACKLOG_STATES = (S.QUEUED.value, S.RETRY_WAIT.value, S.SENDING.value)
SUCCESSFUL_OUTCOMES = ("accepted", "acknowledged", "acknowledged_with_warnings", "rejected")
#: How far back the board's success rate and latency look.
BOARD_WINDOW = timedelta(hours=24)
_MAX_LATENCIES = 20_000


# --- traces -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceSearch:
    """The trace search's filters (all optional, all must hold): certificate or permit ``number`` (exact, or a prefix
    ending in ``*``), ``counterpart`` (a destination it was sent to), ``state`` (a message state, else a lifecycle),
    ``country`` (issuing, exporting or importing), ``product`` (HS code prefix or scientific name prefix), period."""

    number: str | None = None
    counterpart: str | None = None
    state: str | None = None
    country: str | None = None
    product: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def search_documents(session: Session, scope: Scope, search: TraceSearch, *, limit: int = 50, offset: int = 0) -> tuple[int, Sequence[Document]]:
    """The total and one page of documents matching ``search``, newest first, with their messages."""
    query = scope.restrict(select(Document), Document.tenant)
    if search.number:
        number = search.number.strip()
        query = query.where(Document.certificate_number.startswith(number[:-1], autoescape=True) if number.endswith("*") else Document.certificate_number == number)
    if search.counterpart:
        query = query.where(exists().where(Message.document_id == Document.id, Message.destination == search.counterpart))
    if search.state:
        if search.state in {s.value for s in MessageState}:
            query = query.where(exists().where(Message.document_id == Document.id, Message.state == search.state))
        else:
            query = query.where(Document.lifecycle == search.state)
    if search.country:
        code = search.country.strip().upper()
        query = query.where(or_(Document.issuing_country == code, Document.exporting_country == code, Document.importing_country == code))
    if search.product:
        product = search.product.strip()
        match = DocumentProduct.hs_code.startswith(product, autoescape=True) if product[:1].isdigit() else func.lower(DocumentProduct.scientific_name).startswith(product.lower(), autoescape=True)
        query = query.where(exists().where(DocumentProduct.document_id == Document.id, match))
    if search.since:
        query = query.where(Document.created_at >= search.since)
    if search.until:
        query = query.where(Document.created_at < search.until)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.options(selectinload(Document.messages)).order_by(Document.created_at.desc(), Document.id).limit(limit).offset(offset)).all()
    return total, rows


def visible_document(session: Session, scope: Scope, document_id: str) -> Document | None:
    document = session.get(Document, document_id)
    return document if document is not None and scope.sees(document.tenant) else None


def visible_message(session: Session, scope: Scope, message_id: str) -> Message | None:
    message = session.get(Message, message_id)
    return message if message is not None and scope.sees(message.document.tenant) else None


@dataclass(frozen=True)
class Hop:
    """One line of a timeline: when, what (an event, a delivery attempt, an answer), its state, who, details and
    links to the raw payloads (request, response, answer, evidence)."""

    at: datetime | None
    kind: str
    what: str
    state: str | None = None
    actor: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    payloads: tuple[tuple[str, str], ...] = ()
    bad: bool = False


_BAD_WORDS = ("dead_letter", "rejected", "error", "refus", "failed", "abandoned", "overdue", "unmatched")


def message_hops(session: Session, message: Message) -> list[Hop]:
    """Every hop of ``message`` in time order: its document's events and its own, each delivery attempt with its
    request and response, each answer (receipts, tracking steps, acknowledgements, refusals)."""
    hops = [
        Hop(at=e.at, kind="event", what=e.event, state=e.state, actor=e.actor, details=dict(e.detail or {}), payloads=(("payload", e.payload_digest),) if e.payload_digest else (),
            bad=any(word in e.event for word in _BAD_WORDS))
        for e in message_timeline(session, message)
    ]
    for attempt in session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.message_id == message.id).order_by(DeliveryAttempt.id)):
        took = (attempt.finished_at - attempt.started_at).total_seconds() * 1000 if attempt.finished_at else None
        hops.append(Hop(
            at=attempt.started_at, kind="attempt", what=f"attempt {attempt.number}", state=attempt.outcome, actor=attempt.worker,
            details={k: v for k, v in (("error", attempt.error), ("took", f"{took:.0f} ms" if took is not None else None)) if v},
            payloads=tuple((label, digest) for label, digest in (("request", attempt.request_digest), ("response", attempt.response_digest)) if digest),
            bad=attempt.outcome not in SUCCESSFUL_OUTCOMES,
        ))
    for ack in session.scalars(select(Acknowledgement).where(Acknowledgement.message_id == message.id).order_by(Acknowledgement.received_at, Acknowledgement.id)):  # as they arrived
        hops.append(Hop(
            at=ack.received_at, kind="answer", what=f"{ack.kind} from {ack.counterpart}", state=ack.outcome, actor=ack.answered_by,
            details={k: v for k, v in (("reason", " ".join(filter(None, (ack.reason_code, ack.reason_text)))), ("reference", ack.counterpart_reference), ("unmatched", ack.unmatched)) if v},
            payloads=(("answer", ack.payload_digest),) if ack.payload_digest else (), bad=ack.outcome == "rejected",
        ))
    return sorted(hops, key=lambda h: (h.at is None, h.at or datetime.min, {"event": 1, "attempt": 0, "answer": 2}[h.kind]))


def document_events(session: Session, document: Document) -> Sequence[TraceEvent]:
    """The events of ``document`` that belong to no one message (received, validated, signed, routed, lifecycle)."""
    return session.scalars(select(TraceEvent).where(TraceEvent.document_id == document.id, TraceEvent.message_id.is_(None)).order_by(TraceEvent.id)).all()


# --- the counterparts' board -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardRow:
    """One counterpart as the board shows it (the caller's messages only)."""

    destination: str
    connector_type: str
    backlog: int = 0
    awaiting: int = 0
    oldest_awaiting_seconds: float | None = None
    overdue: int = 0
    unmatched: int | None = None
    dead_letters: int = 0
    retry_wait: int = 0
    next_attempt_at: datetime | None = None
    attempts: int = 0
    success_rate: float | None = None
    mean_ms: float | None = None
    p95_ms: float | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


def board(session: Session, scope: Scope, connectors: dict[str, str], *, now: datetime | None = None, window: timedelta = BOARD_WINDOW) -> list[BoardRow]:
    """Every counterpart (configured, or met in the caller's messages), in name order: backlog, answers awaited and
    since when, overdue, unmatched answers (only for a caller who sees every tenant: they belong to no tenant), dead
    letters, retry state, and over ``window`` the success rate and latency of delivery attempts, and the last error."""
    now = now or utcnow()
    mine = scope.restrict(select(Document.id), Document.tenant)
    states = {
        row.destination: row
        for row in session.execute(
            select(
                Message.destination,
                func.sum(case((Message.state.in_(BACKLOG_STATES), 1), else_=0)).label("backlog"),
                func.sum(case((Message.state == S.AWAITING_ACK.value, 1), else_=0)).label("awaiting"),
                func.min(case((Message.state == S.AWAITING_ACK.value, Message.delivered_at), else_=None)).label("oldest_awaiting"),
                func.sum(case(((Message.state == S.AWAITING_ACK.value) & Message.overdue_at.is_not(None), 1), else_=0)).label("overdue"),
                func.sum(case((Message.state == S.DEAD_LETTER.value, 1), else_=0)).label("dead_letters"),
                func.sum(case((Message.state == S.RETRY_WAIT.value, 1), else_=0)).label("retry_wait"),
                func.min(case((Message.state == S.RETRY_WAIT.value, Message.next_attempt_at), else_=None)).label("next_attempt_at"),
            ).where(Message.document_id.in_(mine)).group_by(Message.destination)
        )
    }
    since = now - window
    latencies: dict[str, list[float]] = {}
    outcomes: dict[str, Counter] = {}
    attempts = session.execute(
        select(Message.destination, DeliveryAttempt.outcome, DeliveryAttempt.started_at, DeliveryAttempt.finished_at)
        .join(Message, DeliveryAttempt.message_id == Message.id)
        .where(DeliveryAttempt.started_at >= since, Message.document_id.in_(mine))
        .order_by(DeliveryAttempt.id.desc()).limit(_MAX_LATENCIES)
    )
    for destination, outcome, started, finished in attempts:
        outcomes.setdefault(destination, Counter())["ok" if outcome in SUCCESSFUL_OUTCOMES else "failed"] += 1
        if finished is not None and outcome in SUCCESSFUL_OUTCOMES:
            latencies.setdefault(destination, []).append((finished - started).total_seconds() * 1000)
    errors = {}
    for destination, error, at in session.execute(
        select(Message.destination, DeliveryAttempt.error, DeliveryAttempt.started_at)
        .join(Message, DeliveryAttempt.message_id == Message.id)
        .where(DeliveryAttempt.error.is_not(None), Message.document_id.in_(mine))
        .order_by(DeliveryAttempt.id.desc()).limit(500)
    ):
        errors.setdefault(destination, (error, at))
    unmatched = None
    if scope.everything:
        unmatched = dict(session.execute(
            select(Acknowledgement.counterpart, func.count(Acknowledgement.id)).where(Acknowledgement.unmatched.is_not(None), Acknowledgement.received_at >= since).group_by(Acknowledgement.counterpart)
        ).all())
    names = sorted(set(connectors) | set(states))
    rows = []
    for name in names:
        state, counts, times = states.get(name), outcomes.get(name, Counter()), sorted(latencies.get(name, []))
        tried = counts["ok"] + counts["failed"]
        oldest = state.oldest_awaiting if state is not None else None
        error, error_at = errors.get(name, (None, None))
        rows.append(BoardRow(
            destination=name, connector_type=connectors.get(name, "?"),
            backlog=int(state.backlog or 0) if state else 0, awaiting=int(state.awaiting or 0) if state else 0,
            oldest_awaiting_seconds=(now - _aware(oldest)).total_seconds() if oldest else None,
            overdue=int(state.overdue or 0) if state else 0, unmatched=(unmatched or {}).get(name, 0) if unmatched is not None else None,
            dead_letters=int(state.dead_letters or 0) if state else 0, retry_wait=int(state.retry_wait or 0) if state else 0,
            next_attempt_at=_aware(state.next_attempt_at) if state is not None and state.next_attempt_at else None,
            attempts=tried, success_rate=counts["ok"] / tried if tried else None,
            mean_ms=sum(times) / len(times) if times else None, p95_ms=percentile(times, 95) if times else None,
            last_error=error, last_error_at=error_at,
        ))
    return rows


def percentile(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of an ordered, non-empty sequence."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _aware(value):
    """SQLite gives MIN() of a moment back as text or a naive datetime: make it an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


# --- messages stuck ---------------------------------------------------------------------------------------------------


def stuck_messages(session: Session, scope: Scope, *, destination: str | None = None, limit: int = 200) -> Sequence[Message]:
    """Dead letters and messages whose answer is overdue (awaiting past the counterpart's deadline), newest first."""
    query = (
        select(Message).join(Document, Message.document_id == Document.id)
        .where(or_(Message.state == S.DEAD_LETTER.value, (Message.state == S.AWAITING_ACK.value) & Message.overdue_at.is_not(None)))
    )
    query = scope.restrict(query, Document.tenant)
    if destination:
        query = query.where(Message.destination == destination)
    return session.scalars(query.options(selectinload(Message.document)).order_by(Message.updated_at.desc(), Message.id).limit(limit)).all()


# --- non-conformities over time --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One country × product × cause, with its count in each period (oldest first) and its total."""

    country: str
    product: str
    cause: str
    total: int
    by_period: tuple[int, ...]


def problems_over_time(session: Session, f: NonConformityFilter, *, months: int = 12, top: int = 10, now: datetime | None = None) -> tuple[list[str], list[Problem]]:
    """The ``top`` most frequent country × product × cause of the non-conformities matching ``f`` over the last
    ``months`` months (a non-conformity counts once per product it names), most frequent first; with the months
    (``YYYY-MM``, oldest first)."""
    now = now or utcnow()
    periods = _months(now, months)
    start = datetime(int(periods[0][:4]), int(periods[0][5:]), 1, tzinfo=now.tzinfo)
    query = Scope.of(f.tenant).restrict(select(NonConformity).options(selectinload(NonConformity.products)), NonConformity.tenant)
    query = query.where(NonConformity.opened_at >= max(start, f.since) if f.since else NonConformity.opened_at >= start)
    for column, value in ((NonConformity.country, f.country), (NonConformity.counterpart, f.counterpart), (NonConformity.cause_code, f.cause), (NonConformity.state, f.state)):
        if value:
            query = query.where(column == value)
    if f.until:
        query = query.where(NonConformity.opened_at < f.until)
    counts: dict[tuple[str, str, str], Counter] = {}
    for nc in session.scalars(query.limit(50_000)):
        products = [p.hs_code or p.scientific_name or "?" for p in nc.products] or ["?"]
        if f.product:
            products = [p for p in products if p.startswith(f.product)]
        period = f"{_aware(nc.opened_at):%Y-%m}"
        for product in set(products):
            counts.setdefault((nc.country or "?", product, nc.cause_code), Counter())[period] += 1
    ranked = sorted(counts.items(), key=lambda item: (-sum(item[1].values()), item[0]))[:top]
    return periods, [Problem(country=k[0], product=k[1], cause=k[2], total=sum(c.values()), by_period=tuple(c.get(p, 0) for p in periods)) for k, c in ranked]


def _months(now: datetime, count: int) -> list[str]:
    year, month = now.year, now.month
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]
