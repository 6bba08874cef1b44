"""The outbox: workers claim due messages under a lease, and settle them with what the counterpart answered.

Claiming is a compare-and-set on the message row (state and attempt count as read), so two workers never both win
a message, on SQLite as on PostgreSQL; on PostgreSQL the candidates are also read ``FOR UPDATE SKIP LOCKED`` so that
workers on several machines do not even contend. A message whose lease has expired (its worker died mid-delivery)
is claimable again: it is delivered once more with the same identity, and the counterpart de-duplicates.

A message waits while its predecessor (the earlier message to the same destination for the certificate it
replaces or withdraws) has not reached the counterpart: a replacement never overtakes what it replaces.

With ``max_in_flight`` (destination → limit), a destination that already has that many messages being sent under a
live lease, by any worker, is passed over: a slow counterpart holds at most its limit of delivery threads, and the
others serve the other destinations. On PostgreSQL a claim counts a destination's messages under a transaction-scoped
advisory lock (tried, never waited for: a destination another worker is claiming for is left to it this time), so two
workers cannot both take its last free place; on SQLite the process's single writer does the same.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping, Sequence

from sqlalchemy import and_, bindparam, exists, func, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from hub.store.states import RELEASING_STATES, MessageState
from hub.store.models import Message, utcnow
from hub.store.trace import add_event

S = MessageState


@dataclass(frozen=True)
class Claim:
    """A message this worker holds until ``lease_expires_at``; ``redelivery`` when a previous lease expired."""

    message_id: str
    attempt: int
    lease_expires_at: datetime
    redelivery: bool


@functools.lru_cache(maxsize=64)
def due_messages_query(*, destinations: tuple[str, ...] | None = None, limit: int = 10, skip_locked: bool = False, passing_over: bool = False):
    """Messages a worker may take at ``:now``: queued or waiting to retry and due, or sending with an expired lease;
    and whose predecessor, if any, has been delivered; with ``passing_over``, none to the destinations bound to
    ``:full`` (a list). Built once per shape (it is on every claim's path)."""
    predecessor = aliased(Message)
    now = bindparam("now")
    query = (
        select(Message.id, Message.state, Message.attempts, Message.lease_expires_at, Message.destination)
        .where(
            or_(
                and_(Message.state.in_([S.QUEUED.value, S.RETRY_WAIT.value]), Message.next_attempt_at <= now),
                and_(Message.state == S.SENDING.value, Message.lease_expires_at < now),
            ),
            or_(
                Message.predecessor_id.is_(None),
                exists(select(predecessor.id).where(predecessor.id == Message.predecessor_id, predecessor.state.in_([s.value for s in RELEASING_STATES]))),
            ),
        )
        .order_by(Message.next_attempt_at, Message.created_at)
        .limit(limit)
    )
    if destinations:
        query = query.where(Message.destination.in_(list(destinations)))
    if passing_over:
        query = query.where(Message.destination.not_in(bindparam("full", expanding=True)))
    if skip_locked:
        query = query.with_for_update(skip_locked=True, of=Message)
    return query


# The compare-and-set that takes a message: it wins only if nobody moved the row since it was read.
_TAKE = (
    update(Message)
    .where(Message.id == bindparam("message"), Message.state == bindparam("seen_state"), Message.attempts == bindparam("seen_attempts"))
    .values(state=S.SENDING.value, lease_owner=bindparam("worker"), lease_expires_at=bindparam("lease"), attempts=bindparam("taken"), updated_at=bindparam("now"))
)


def claim(
    session: Session,
    *,
    worker: str,
    lease_seconds: float,
    limit: int = 1,
    destinations: Sequence[str] | None = None,
    now: datetime | None = None,
    max_in_flight: Mapping[str, int] | None = None,
) -> list[Claim]:
    """Claim up to ``limit`` due messages for ``worker``; each claim is traced. Commit is the caller's.

    ``max_in_flight`` bounds, per destination named in it, the messages being sent at once (see the module
    docstring); destinations it does not name are not bounded."""
    now = now or utcnow()
    postgresql = session.get_bind().dialect.name == "postgresql"
    in_flight = _in_flight(session, now) if max_in_flight else {}
    full = [d for d, limit_of in (max_in_flight or {}).items() if in_flight.get(d, 0) >= limit_of]
    query = due_messages_query(destinations=tuple(destinations) if destinations else None, limit=limit * 4, skip_locked=postgresql, passing_over=bool(max_in_flight))
    parameters = {"now": now, "full": full} if max_in_flight else {"now": now}
    claims: list[Claim] = []
    counted: set[str] = set()
    for row in session.execute(query, parameters).all():
        if len(claims) >= limit:
            break
        bound = (max_in_flight or {}).get(row.destination)
        if bound is not None:
            if row.destination not in counted:
                if postgresql and not session.execute(_TRY_LOCK, {"key": f"hub.claim:{row.destination}"}).scalar():
                    continue  # another worker is claiming for this destination right now: its places are its to count
                in_flight[row.destination] = _in_flight(session, now, row.destination).get(row.destination, 0)
                counted.add(row.destination)
            if in_flight[row.destination] >= bound:
                continue
        lease = now + timedelta(seconds=lease_seconds)
        won = session.connection().execute(
            _TAKE, {"message": row.id, "seen_state": row.state, "seen_attempts": row.attempts, "worker": worker, "lease": lease, "taken": row.attempts + 1, "now": now}
        ).rowcount
        if won != 1:
            continue
        redelivery = row.state == S.SENDING.value
        message = session.get(Message, row.id, populate_existing=True)
        document = message.document
        if redelivery:
            add_event(session, document=document, message_id=message.id, destination=message.destination, event="message.lease_expired", actor=worker, state=S.SENDING.value, detail={"expired_at": row.lease_expires_at.isoformat() if row.lease_expires_at else None})
        add_event(session, document=document, message_id=message.id, destination=message.destination, event="message.sending", actor=worker, state=S.SENDING.value, detail={"attempt": row.attempts + 1})
        claims.append(Claim(message_id=row.id, attempt=row.attempts + 1, lease_expires_at=lease, redelivery=redelivery))
        if bound is not None:
            in_flight[row.destination] += 1
    return claims


# Held until the claim's transaction ends; tried, never waited for (a worker never queues behind another's claim).
_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext(:key))")


def _in_flight(session: Session, now: datetime, destination: str | None = None) -> dict[str, int]:
    """Messages being sent under a live lease, per destination (only ``destination``'s when given)."""
    query = select(Message.destination, func.count()).where(Message.state == S.SENDING.value, Message.lease_expires_at >= now).group_by(Message.destination)
    if destination is not None:
        query = query.where(Message.destination == destination)
    return {name: count for name, count in session.execute(query).all()}


def held_by(session: Session, message_id: str, worker: str) -> Message | None:
    """The message if ``worker`` still holds its lease (read for update), else None."""
    query = select(Message).where(Message.id == message_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    message = session.scalars(query).first()
    if message is None or message.state != S.SENDING.value or message.lease_owner != worker:
        return None
    return message
