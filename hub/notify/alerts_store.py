"""Alerts kept in the store (``alerts``): raised when a cause appears, cleared when it goes, listed by scope.

:func:`sync_alerts` compares what :func:`hub.notify.alerts.current_alerts` sees now with the open alerts: a new key is
raised (a row inserted, or a cleared row of the same key raised again), a key gone is cleared. Each change is one
compare-and-set update, so that two workers syncing at once raise or clear an alert once; each appends a trace event,
``alert.raised`` or ``alert.cleared``, in the same transaction: the event stream and the webhook subscriptions carry
them like any other event (a subscription filtered on ``event=alert.`` gets only them). An alert about a document or
message joins that document's trace (its correlation id, tenant, country, products); one about a counterpart is no
tenant's (tenant ``*``): only a reader who sees every tenant gets it.

``notified`` says how far the e-mail subscribers have been told (:mod:`hub.notify.alerts_service` sends):
``none`` (the raise is to tell), ``raised`` (told; the clear is to tell once cleared), ``cleared`` (told everything,
or nothing left to tell: an alert cleared before its raise could be sent is not sent at all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.notify.alerts import AlertFact, AlertKind
from hub.scope import Scope
from hub.store.models import Alert, Document, TraceEvent, utcnow
from hub.store.trace import add_event

RAISED_EVENT = "alert.raised"
CLEARED_EVENT = "alert.cleared"
ACTOR = "hub:alerts"
#: ``notified`` values, in the order they are reached.
TO_RAISE, TOLD_RAISED, TOLD_ALL = "none", "raised", "cleared"
STATES = ("open", "cleared", "all")


@dataclass
class Synced:
    """The alerts one sync raised and cleared (their ids)."""

    raised: list[int] = field(default_factory=list)
    cleared: list[int] = field(default_factory=list)


def sync_alerts(session: Session, facts: Iterable[AlertFact], *, now: datetime | None = None) -> Synced:
    """Raise the alerts of ``facts`` not open yet and clear the open ones ``facts`` no longer hold (in the caller's
    transaction). Two syncs at once may both try to insert a new key: one of them fails on the unique key and is
    rolled back whole; its next run finds the row."""
    now = now or utcnow()
    facts = {fact.key: fact for fact in facts}
    done = Synced()
    open_rows = {row.key: row for row in session.scalars(select(Alert).where(Alert.cleared_at.is_(None)))}
    gone = [row for key, row in open_rows.items() if key not in facts]
    new_keys = sorted(set(facts) - set(open_rows))
    documents = _documents(session, [row.document_id for row in gone] + [facts[key].document_id for key in new_keys])
    for row in gone:
        if _clear(session, row, now, documents):
            done.cleared.append(row.id)
    known = {row.key: row for chunk in _chunks(new_keys) for row in session.scalars(select(Alert).where(Alert.key.in_(chunk)))}
    for key in new_keys:
        row = known.get(key)
        raised = _raise_again(session, row, facts[key], now, documents) if row is not None else _insert(session, facts[key], now, documents)
        if raised is not None:
            done.raised.append(raised.id)
    return done


def _documents(session: Session, ids: list[str | None]) -> dict[str, Document]:
    """The documents the alerts to raise or clear are about, read at once (their events join those traces)."""
    wanted = sorted({i for i in ids if i})
    return {d.id: d for chunk in _chunks(wanted) for d in session.scalars(select(Document).where(Document.id.in_(chunk)))}


def _insert(session: Session, fact: AlertFact, now: datetime, documents: dict[str, Document]) -> Alert:
    row = Alert(key=fact.key, raised_at=now, occurrences=1, notified=TO_RAISE, email_attempts=0, email_next_at=now, **_columns(fact))
    session.add(row)
    session.flush()
    _event(session, row, RAISED_EVENT, documents)
    return row


def _raise_again(session: Session, row: Alert, fact: AlertFact, now: datetime, documents: dict[str, Document]) -> Alert | None:
    if row.cleared_at is None:
        return None  # raised meanwhile by another sync
    won = session.execute(
        update(Alert).where(Alert.id == row.id, Alert.cleared_at == row.cleared_at)
        .values(raised_at=now, cleared_at=None, occurrences=Alert.occurrences + 1, notified=TO_RAISE, email_attempts=0, email_next_at=now, email_error=None, **_columns(fact))
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if not won:
        return None
    session.refresh(row)
    _event(session, row, RAISED_EVENT, documents)
    return row


def _clear(session: Session, row: Alert, now: datetime, documents: dict[str, Document]) -> bool:
    # Told nothing yet: nothing to tell any more either.
    notified = TOLD_ALL if row.notified == TO_RAISE else row.notified
    won = session.execute(
        update(Alert).where(Alert.id == row.id, Alert.cleared_at.is_(None), Alert.raised_at == row.raised_at)
        .values(cleared_at=now, notified=notified, email_attempts=0, email_next_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if won:
        session.refresh(row)
        _event(session, row, CLEARED_EVENT, documents)
    return won


def _columns(fact: AlertFact) -> dict:
    return {
        "kind": fact.kind.value, "severity": fact.severity.value, "tenant": fact.tenant, "subject": fact.subject[:200], "since": fact.since,
        "document_id": fact.document_id, "message_id": fact.message_id, "destination": fact.destination, "detail": dict(fact.detail),
    }


def _event(session: Session, row: Alert, name: str, documents: dict[str, Document]) -> None:
    detail = alert_view(row)
    document = documents.get(row.document_id) if row.document_id else None
    if document is not None:
        add_event(session, document=document, event=name, actor=ACTOR, message_id=row.message_id, destination=row.destination, detail=detail)
        return
    session.add(TraceEvent(at=utcnow(), correlation_id=f"alert:{row.id}", tenant=row.tenant, event=name, actor=ACTOR, destination=row.destination, products=[], detail=detail))


def _chunks(keys: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(keys), size):
        yield keys[start:start + size]


# --- reading ---------------------------------------------------------------------------------------------------------


def list_alerts(session: Session, scope: Scope | str, *, state: str = "open", kind: str | None = None, limit: int = 100, offset: int = 0) -> tuple[int, Sequence[Alert]]:
    """The alerts ``scope`` sees (hub-wide ones only for a scope of every tenant), newest raised first: ``state``
    ``open``, ``cleared`` or ``all``; ``kind`` one of :class:`AlertKind`. Returns (how many match, the page)."""
    query = Scope.of(scope).restrict(select(Alert), Alert.tenant)
    if state == "open":
        query = query.where(Alert.cleared_at.is_(None))
    elif state == "cleared":
        query = query.where(Alert.cleared_at.is_not(None))
    if kind is not None:
        query = query.where(Alert.kind == AlertKind(kind).value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(limit).offset(offset)).all()
    return total, rows


def alert_view(row: Alert) -> dict:
    """An alert as the API, the webhooks and the e-mails show it."""
    return {
        "id": row.id,
        "key": row.key,
        "kind": row.kind,
        "severity": row.severity,
        "tenant": row.tenant,
        "subject": row.subject,
        "document_id": row.document_id,
        "message_id": row.message_id,
        "destination": row.destination,
        "since": _iso(row.since),
        "raised_at": _iso(row.raised_at),
        "cleared_at": _iso(row.cleared_at),
        "occurrences": row.occurrences,
        "detail": row.detail or {},
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
