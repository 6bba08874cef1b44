"""The health of each destination, read from the outbox: last success, backlog, dead letters, answers overdue, answers
matched to no message, and recent error rate. Overdue and unmatched answers are alerts: each needs an operator's look."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from hub.store.states import MessageState
from hub.store.models import Acknowledgement, DeliveryAttempt, Message, utcnow

S = MessageState
BACKLOG_STATES = (S.QUEUED.value, S.RETRY_WAIT.value, S.SENDING.value)
SUCCESSFUL_OUTCOMES = ("accepted", "acknowledged", "acknowledged_with_warnings", "rejected")


@dataclass(frozen=True)
class DestinationHealth:
    """One destination: ``error_rate`` is failed attempts ÷ attempts over ``window`` (None without attempts);
    ``overdue`` counts messages still awaiting an answer past the counterpart's deadline, ``unmatched`` the answers
    from it that named no message of it (or came from another authority) over ``window``."""

    destination: str
    connector_type: str
    last_success: datetime | None
    backlog: int
    dead_letters: int
    attempts: int
    error_rate: float | None
    overdue: int = 0
    unmatched: int = 0

    def as_json(self) -> dict:
        data = asdict(self)
        data["last_success"] = self.last_success.isoformat() if self.last_success else None
        return data


def destination_health(session: Session, connectors: dict[str, str], *, window: timedelta = timedelta(hours=1), now: datetime | None = None) -> list[DestinationHealth]:
    """Health of every configured destination (``connectors`` maps name → connector type), in name order."""
    since = (now or utcnow()) - window
    states = dict(
        (row.destination, row)
        for row in session.execute(
            select(
                Message.destination,
                func.max(Message.delivered_at).label("last_success"),
                func.sum(case((Message.state.in_(BACKLOG_STATES), 1), else_=0)).label("backlog"),
                func.sum(case((Message.state == S.DEAD_LETTER.value, 1), else_=0)).label("dead_letters"),
                func.sum(case(((Message.state == S.AWAITING_ACK.value) & Message.overdue_at.is_not(None), 1), else_=0)).label("overdue"),
            ).group_by(Message.destination)
        )
    )
    attempts = dict(
        (row.destination, row)
        for row in session.execute(
            select(
                Message.destination,
                func.count(DeliveryAttempt.id).label("attempts"),
                func.sum(case((DeliveryAttempt.outcome.in_(SUCCESSFUL_OUTCOMES), 0), else_=1)).label("failures"),
            )
            .join(Message, DeliveryAttempt.message_id == Message.id)
            .where(DeliveryAttempt.started_at >= since)
            .group_by(Message.destination)
        )
    )
    unmatched = dict(session.execute(
        select(Acknowledgement.counterpart, func.count(Acknowledgement.id))
        .where(Acknowledgement.unmatched.is_not(None), Acknowledgement.received_at >= since)
        .group_by(Acknowledgement.counterpart)
    ).all())
    return [_health(name, kind, states.get(name), attempts.get(name), unmatched.get(name, 0)) for name, kind in sorted(connectors.items())]


def _health(name: str, kind: str, states, attempts, unmatched: int) -> DestinationHealth:
    tried = int(attempts.attempts) if attempts else 0
    return DestinationHealth(
        destination=name,
        connector_type=kind,
        last_success=states.last_success if states else None,
        backlog=int(states.backlog or 0) if states else 0,
        dead_letters=int(states.dead_letters or 0) if states else 0,
        attempts=tried,
        error_rate=(int(attempts.failures or 0) / tried) if tried else None,
        overdue=int(states.overdue or 0) if states else 0,
        unmatched=int(unmatched),
    )


def format_table(rows: Iterable[DestinationHealth]) -> str:
    """The health as ``hub connectors`` prints it."""
    rows = list(rows)
    name = max([len("destination"), *(len(r.destination) for r in rows)]) + 2
    kind = max([len("type"), *(len(r.connector_type) for r in rows)]) + 2
    lines = [f"{'destination':<{name}}{'type':<{kind}}{'last success':<28}{'backlog':>8}{'dead':>6}{'overdue':>8}{'unmatched/1h':>13}{'errors/1h':>11}"]
    for row in rows:
        rate = f"{row.error_rate:.0%} of {row.attempts}" if row.error_rate is not None else "-"
        last = row.last_success.isoformat(timespec="seconds") if row.last_success else "never"
        lines.append(f"{row.destination:<{name}}{row.connector_type:<{kind}}{last:<28}{row.backlog:>8}{row.dead_letters:>6}{row.overdue:>8}{row.unmatched:>13}{rate:>11}")
    return "\n".join(lines)
