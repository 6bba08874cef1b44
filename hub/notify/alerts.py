"""Alerts an operator must act on, computed from the store: what is wrong *now*, each with a stable identity.

::

    kind                  one per                       raised while                           severity
    dead_letter           message                       it is in the dead letters              error
    answer_overdue        message                       it awaits an answer past its deadline  warning
    counterpart_failing   destination                   its error rate over the last hour is   error
                                                        high, or it has had no success for a
                                                        while and holds a backlog that old
    permit_expiring       permit (business key)         its validity ends within N days        warning
    permit_expired        permit (business key)         it expired and nobody used, cancelled  warning
                                                        or replaced it (``expired`` lifecycle)
    pssm_completion_late  completed certificate         its boxes were reported more than 24 h  warning
                                                        after the sale (for ``late_window``)

:func:`current_alerts` is a function of the store and the moment: it reads, never writes. Each :class:`AlertFact`
has a ``key`` (``kind:subject``) that stays the same while its cause lasts, so that :mod:`hub.notify.alert_store`
raises an alert once, when its key first appears, and clears it when the key is gone. Permits are judged on their
latest version only (a completed simplified-procedure certificate is two versions of one permit). Only permits issued
here (outbound) are the operator's to manage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, Iterator, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session, undefer

from hub import families
from hub.notify.health import BACKLOG_STATES, destination_health
from hub.records.lifecycle import Lifecycle
from hub.store.models import Document, Message, TraceEvent, utcnow
from hub.store.states import MessageState

#: Trace event of a simplified-procedure completion reported late (hub.broker.permits).
COMPLETION_LATE_EVENT = "permit.completion_late"
#: A tenant for alerts that are no one tenant's (a counterpart serves every tenant): only who sees every tenant sees them.
HUB_WIDE = "*"


class AlertKind(StrEnum):
    DEAD_LETTER = "dead_letter"
    ANSWER_OVERDUE = "answer_overdue"
    COUNTERPART_FAILING = "counterpart_failing"
    PERMIT_EXPIRING = "permit_expiring"
    PERMIT_EXPIRED = "permit_expired"
    PSSM_COMPLETION_LATE = "pssm_completion_late"


class Severity(StrEnum):
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


SEVERITY: dict[AlertKind, Severity] = {
    AlertKind.DEAD_LETTER: Severity.ERROR,
    AlertKind.ANSWER_OVERDUE: Severity.WARNING,
    AlertKind.COUNTERPART_FAILING: Severity.ERROR,
    AlertKind.PERMIT_EXPIRING: Severity.WARNING,
    AlertKind.PERMIT_EXPIRED: Severity.WARNING,
    AlertKind.PSSM_COMPLETION_LATE: Severity.WARNING,
}


@dataclass(frozen=True)
class Thresholds:
    """When a cause becomes an alert (``config/alerts.yaml`` ``thresholds``; defaults here)."""

    #: A counterpart fails when, over ``error_window``, at least ``min_attempts`` were made and this share failed.
    error_rate: float = 0.5
    min_attempts: int = 5
    error_window: timedelta = timedelta(hours=1)
    #: … or when its oldest backlog is this old and it has had no success for as long.
    stalled_after: timedelta = timedelta(minutes=30)
    #: A permit is about to expire this long before the end of its validity.
    expiring_within: timedelta = timedelta(days=7)
    #: A late completion stays an alert this long after it was reported.
    late_window: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class AlertFact:
    """One alert as the store shows it now: ``key`` is its identity (``kind:subject``), ``since`` when its cause began,
    ``subject`` what it is about in words an operator searches for (a certificate number, a destination)."""

    kind: AlertKind
    key: str
    tenant: str
    subject: str
    since: datetime | None
    detail: dict[str, Any] = field(default_factory=dict)
    document_id: str | None = None
    message_id: str | None = None
    destination: str | None = None

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.kind]


def current_alerts(session: Session, *, destinations: Mapping[str, str], thresholds: Thresholds = Thresholds(), now: datetime | None = None) -> list[AlertFact]:
    """Every alert the store shows at ``now``; ``destinations`` maps each configured destination to its connector
    type (as for :func:`hub.notify.health.destination_health`). Reads only."""
    now = now or utcnow()
    found = [
        *_dead_letters(session),
        *_answers_overdue(session),
        *_counterparts_failing(session, destinations, thresholds, now),
        *_permits(session, thresholds, now),
        *_late_completions(session, thresholds, now),
    ]
    return sorted(found, key=lambda fact: fact.key)


# --- messages -------------------------------------------------------------------------------------------------------

_MESSAGE_COLUMNS = (Message.id, Message.destination, Message.attempts, Message.last_error, Message.updated_at, Message.delivered_at, Message.overdue_at,
                    Document.id.label("document_id"), Document.tenant, Document.certificate_number, Document.kind)


def _dead_letters(session: Session) -> Iterator[AlertFact]:
    rows = session.execute(select(*_MESSAGE_COLUMNS).join(Document, Message.document_id == Document.id).where(Message.state == MessageState.DEAD_LETTER.value))
    for row in rows:
        yield AlertFact(
            kind=AlertKind.DEAD_LETTER, key=f"{AlertKind.DEAD_LETTER}:{row.id}", tenant=row.tenant, subject=row.certificate_number,
            since=row.updated_at, document_id=row.document_id, message_id=row.id, destination=row.destination,
            detail={"attempts": row.attempts, "last_error": row.last_error, "document_kind": row.kind},
        )


def _answers_overdue(session: Session) -> Iterator[AlertFact]:
    rows = session.execute(
        select(*_MESSAGE_COLUMNS).join(Document, Message.document_id == Document.id)
        .where(Message.state == MessageState.AWAITING_ACK.value, Message.overdue_at.is_not(None))
    )
    for row in rows:
        yield AlertFact(
            kind=AlertKind.ANSWER_OVERDUE, key=f"{AlertKind.ANSWER_OVERDUE}:{row.id}", tenant=row.tenant, subject=row.certificate_number,
            since=row.overdue_at, document_id=row.document_id, message_id=row.id, destination=row.destination,
            detail={"delivered_at": _iso(row.delivered_at), "document_kind": row.kind},
        )


def _counterparts_failing(session: Session, destinations: Mapping[str, str], thresholds: Thresholds, now: datetime) -> Iterator[AlertFact]:
    oldest = dict(session.execute(
        select(Message.destination, func.min(Message.created_at)).where(Message.state.in_(BACKLOG_STATES)).group_by(Message.destination)
    ).all())
    stalled_before = now - thresholds.stalled_after
    for health in destination_health(session, dict(destinations), window=thresholds.error_window, now=now):
        erring = health.attempts >= thresholds.min_attempts and (health.error_rate or 0.0) >= thresholds.error_rate
        backlog_since = _aware(oldest.get(health.destination))
        stalled = (health.backlog > 0 and backlog_since is not None and backlog_since <= stalled_before
                   and (health.last_success is None or _aware(health.last_success) <= stalled_before))
        if not (erring or stalled):
            continue
        reasons = ([f"{health.error_rate:.0%} of {health.attempts} attempts failed over {_span(thresholds.error_window)}"] if erring else []) + \
                  ([f"no success for {_span(thresholds.stalled_after)} or more with {health.backlog} messages waiting"] if stalled else [])
        yield AlertFact(
            kind=AlertKind.COUNTERPART_FAILING, key=f"{AlertKind.COUNTERPART_FAILING}:{health.destination}", tenant=HUB_WIDE, subject=health.destination,
            since=backlog_since if stalled and not erring else now - thresholds.error_window, destination=health.destination,
            detail={"reasons": reasons, "error_rate": health.error_rate, "attempts": health.attempts, "backlog": health.backlog,
                    "dead_letters": health.dead_letters, "last_success": _iso(health.last_success), "connector_type": health.connector_type},
        )


# --- permits --------------------------------------------------------------------------------------------------------

def _permits(session: Session, thresholds: Thresholds, now: datetime) -> Iterator[AlertFact]:
    expiring = {kind: family for family in families.FAMILIES if family.expires for kind in family.kinds}
    if not expiring:
        return
    versions = session.execute(
        select(Document.id, Document.issuing_country, Document.kind, Document.certificate_number, Document.status, Document.version, Document.lifecycle)
        .where(Document.kind.in_(sorted(expiring)), Document.direction == "outbound")
    ).all()
    latest = {}
    for row in versions:
        business_key = (row.issuing_country, row.kind, row.certificate_number, row.status)
        if business_key not in latest or row.version > latest[business_key].version:
            latest[business_key] = row
    watched = sorted(row.id for row in latest.values() if row.lifecycle in _WATCHED)
    for chunk in range(0, len(watched), _CHUNK):
        documents = session.scalars(select(Document).options(undefer(Document.record)).where(Document.id.in_(watched[chunk:chunk + _CHUNK]))).all()
        for document in documents:
            yield from _permit_alerts(document, expiring[document.kind].valid_until(document.record), thresholds, now)


_OPEN = (Lifecycle.ISSUED.value, Lifecycle.COMPLETED.value)
#: The lifecycles of a permit's latest version that may need an operator (used, cancelled, replaced… need none).
_WATCHED = frozenset({*_OPEN, Lifecycle.EXPIRED.value})
_CHUNK = 500


def _permit_alerts(document: Document, ends: datetime | None, thresholds: Thresholds, now: datetime) -> Iterator[AlertFact]:
    subject_key = f"{document.issuing_country}:{document.kind}:{document.certificate_number}"
    detail = {"valid_until": _iso(ends), "lifecycle": document.lifecycle, "version": document.version, "document_kind": document.kind}
    if document.lifecycle == Lifecycle.EXPIRED.value or (ends is not None and ends < now):
        yield AlertFact(kind=AlertKind.PERMIT_EXPIRED, key=f"{AlertKind.PERMIT_EXPIRED}:{subject_key}", tenant=document.tenant,
                        subject=document.certificate_number, since=ends, document_id=document.id, detail=detail)
    elif ends is not None and ends - now <= thresholds.expiring_within:
        yield AlertFact(kind=AlertKind.PERMIT_EXPIRING, key=f"{AlertKind.PERMIT_EXPIRING}:{subject_key}", tenant=document.tenant,
                        subject=document.certificate_number, since=ends - thresholds.expiring_within, document_id=document.id,
                        detail={**detail, "days_left": max(0, (ends - now).days)})


def _late_completions(session: Session, thresholds: Thresholds, now: datetime) -> Iterator[AlertFact]:
    # A completion is stored as a new version of the permit, made when it was reported: the versions made within the
    # window (documents.created_at is indexed) lead to their events, never a scan of the whole trace.
    since = now - thresholds.late_window
    completed = select(Document.id).where(Document.created_at >= since - timedelta(hours=1), Document.version > 1, Document.direction == "outbound")
    rows = session.execute(
        select(TraceEvent.document_id, TraceEvent.tenant, TraceEvent.at, TraceEvent.detail, Document.certificate_number)
        .join(Document, TraceEvent.document_id == Document.id)
        .where(TraceEvent.document_id.in_(completed), TraceEvent.event == COMPLETION_LATE_EVENT, TraceEvent.at >= since)
        .order_by(TraceEvent.id)
    )
    for row in rows:
        detail = row.detail or {}
        yield AlertFact(
            kind=AlertKind.PSSM_COMPLETION_LATE, key=f"{AlertKind.PSSM_COMPLETION_LATE}:{row.document_id}", tenant=row.tenant, subject=row.certificate_number,
            since=row.at, document_id=row.document_id,
            detail={"sale_date": detail.get("sale_date"), "reported_at": detail.get("reported_at"), "message": detail.get("message")},
        )


# --- helpers --------------------------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"
