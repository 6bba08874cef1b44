"""The outbox: workers claim due messages under a lease, and settle them with what the counterpart answered.

Claiming is a compare-and-set on the message row (state and attempt count as read), so two workers never both win
a message, on SQLite as on PostgreSQL; on PostgreSQL the candidates are also read ``FOR UPDATE SKIP LOCKED`` so that
workers on several machines do not even contend. A message whose lease has expired (its worker died mid-delivery)
is claimable again: it is delivered once more with the same identity, and the counterpart de-duplicates.

A message waits while its predecessor (the earlier message to the same destination for the certificate it
replaces or withdraws) has not reached the counterpart: a replacement never overtakes what it replaces.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy import and_, bindparam, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from hub.store.states import DELIVERED_STATES, MessageState
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
def due_messages_query(*, destinations: tuple[str, ...] | None = None, limit: int = 10, skip_locked: bool = False):
    """Messages a worker may take at ``:now``: queued or waiting to retry and due, or sending with an expired lease;
    and whose predecessor, if any, has been delivered. Built once per shape (it is on every claim's path)."""
    predecessor = aliased(Message)
    now = bindparam("now")
    query = (
        select(Message.id, Message.state, Message.attempts, Message.lease_expires_at)
        .where(
            or_(
                and_(Message.state.in_([S.QUEUED.value, S.RETRY_WAIT.value]), Message.next_attempt_at <= now),
                and_(Message.state == S.SENDING.value, Message.lease_expires_at < now),
            ),
            or_(
                Message.predecessor_id.is_(None),
                exists(select(predecessor.id).where(predecessor.id == Message.predecessor_id, predecessor.state.in_([s.value for s in DELIVERED_STATES]))),
            ),
        )
        .order_by(Message.next_attempt_at, Message.created_at)
        .limit(limit)
    )
    if destinations:
        query = query.where(Message.destination.in_(list(destinations)))
    if skip_locked:
        query = query.with_for_update(skip_locked=True, of=Message)
    return query


# The compare-and-set that takes a message: it wins only if nobody moved the row since it was read.
_TAKE = (
    update(Message)
    .where(Message.id == bindparam("message"), Message.state == bindparam("seen_state"), Message.attempts == bindparam("seen_attempts"))
    .values(state=S.SENDING.value, lease_owner=bindparam("worker"), lease_expires_at=bindparam("lease"), attempts=bindparam("taken"), updated_at=bindparam("now"))
)


def claim(session: Session, *, worker: str, lease_seconds: float, limit: int = 1, destinations: Sequence[str] | None = None, now: datetime | None = None) -> list[Claim]:
    """Claim up to ``limit`` due messages for ``worker``; each claim is traced. Commit is the caller's."""
    now = now or utcnow()
    query = due_messages_query(destinations=tuple(destinations) if destinations else None, limit=limit * 4, skip_locked=session.get_bind().dialect.name == "postgresql")
    claims: list[Claim] = []
    for row in session.execute(query, {"now": now}).all():
        if len(claims) >= limit:
            break
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
    return claims


def held_by(session: Session, message_id: str, worker: str) -> Message | None:
    """The message if ``worker`` still holds its lease (read for update), else None."""
    query = select(Message).where(Message.id == message_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    message = session.scalars(query).first()
    if message is None or message.state != S.SENDING.value or message.lease_owner != worker:
        return None
    return message
