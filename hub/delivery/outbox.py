"""The outbox: workers claim due messages under a lease, and settle them with what the counterpart answered.

Claiming is a compare-and-set on the message row (state and attempt count as read), so two workers never both win
a message, on SQLite as on PostgreSQL; on PostgreSQL the candidates are also read ``FOR UPDATE SKIP LOCKED`` so that
workers on several machines do not even contend. A message whose lease has expired (its worker died mid-delivery)
is claimable again: it is delivered once more with the same identity, and the counterpart de-duplicates.

A message waits while its predecessor (the earlier message to the same destination for the certificate it
replaces or withdraws) has not reached the counterpart: a replacement never overtakes what it replaces.

A worker claims a batch of messages (one statement takes them all) and sends them one after the other: one delivery
lane. With ``max_in_flight`` (destination → limit), a destination that already has that many lanes (workers holding
messages of it under a live lease) is passed over, and so is one the claiming worker holds already: a slow
counterpart holds at most its limit of delivery threads, and the others serve the other destinations. On PostgreSQL
a claim counts a destination's lanes under a transaction-scoped advisory lock (tried, never waited for: a destination
another worker is claiming for is left to it this time), so two workers cannot both take its last free lane; on
SQLite the single writer does the same.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping, Sequence

from sqlalchemy import Connection, and_, bindparam, exists, or_, select, text, update
from sqlalchemy.orm import Session, aliased, joinedload

from hub.connector import OutboundMessage
from hub.store.states import RELEASING_STATES, MessageState
from hub.store.models import Document, Message, Payload, utcnow
from hub.store.trace import DocumentFacts, add_event

S = MessageState


@dataclass(frozen=True)
class Claim:
    """A message this worker holds until ``lease_expires_at``; ``redelivery`` when a previous lease expired."""

    message_id: str
    attempt: int
    lease_expires_at: datetime
    redelivery: bool
    outbound: OutboundMessage | None = None
    facts: DocumentFacts | None = None
    worker: str = ""  # the lane holding the lease


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
            # Redundant with the OR below, but an index can search it: the claimable few, not a destination's all.
            Message.state.in_([S.QUEUED.value, S.RETRY_WAIT.value, S.SENDING.value]),
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


# Takes the chosen messages in one statement; the condition is the due condition again, so that of two workers that
# read the same candidates only one takes each (SQLite: one writer; PostgreSQL: the row lock, then the condition is
# evaluated again on the row as committed).
_TAKE = (
    update(Message)
    .where(
        Message.id.in_(bindparam("ids", expanding=True)),
        or_(
            and_(Message.state.in_([S.QUEUED.value, S.RETRY_WAIT.value]), Message.next_attempt_at <= bindparam("now")),
            and_(Message.state == S.SENDING.value, Message.lease_expires_at < bindparam("now")),
        ),
    )
    .values(state=S.SENDING.value, lease_owner=bindparam("worker"), lease_expires_at=bindparam("lease"), attempts=Message.attempts + 1, updated_at=bindparam("now"))
    .returning(Message.id, Message.attempts)
)

# What a connector needs of each message taken, and what its trace events copy from the document: one query.
_OUTBOUND = (
    select(
        Message.id, Message.destination, Message.created_at, Document.id.label("document_id"), Document.correlation_id, Document.tenant, Document.kind,
        Document.certificate_number, Document.status, Document.issuing_country, Document.exporting_country, Document.importing_country,
        Document.product_codes, Document.refers_to_number, Payload.content, Payload.media_type,
    )
    .join(Document, Message.document_id == Document.id)
    .join(Payload, Message.payload_digest == Payload.digest)
    .where(Message.id.in_(bindparam("ids", expanding=True)))
)

#: The message that last took a certificate (by its issuing country and number) to a destination: the one a
#: replacement of that certificate refers to. A replacement waits for the message of the certificate it replaces
#: (``due_messages_query``), so by its claim that one was delivered or given up.
_REPLACED = (
    select(Message.id)
    .join(Document, Message.document_id == Document.id)
    .where(Message.destination == bindparam("destination"), Document.issuing_country == bindparam("country"),
           Document.certificate_number == bindparam("number"), Message.delivered_at.is_not(None))
    .order_by(Message.delivered_at.desc(), Message.id.desc())
    .limit(1)
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
    """Claim up to ``limit`` due messages, all for one destination, for ``worker`` (one delivery lane: the worker
    sends them one after the other), each with what its connector needs (:attr:`Claim.outbound`); each claim is traced. Commit is the
    caller's, and the transaction must be fresh: its statements go to the session's connection, past the ORM's
    execution layer (which costs more than the statements, an UPDATE … RETURNING most: it would synchronise a
    session that holds nothing yet).

    ``max_in_flight`` bounds, per destination named in it, the lanes delivering to it at once: the workers holding
    messages of it under a live lease (see the module docstring). A worker already holding messages of a bounded
    destination takes no more of it; destinations it does not name are not bounded."""
    now = now or utcnow()
    connection = session.connection()
    postgresql = connection.dialect.name == "postgresql"
    lanes = _lanes(connection, now) if max_in_flight else {}
    full = [d for d, bound in (max_in_flight or {}).items() if len(lanes.get(d, ())) >= bound or worker in lanes.get(d, ())]
    query = due_messages_query(destinations=tuple(destinations) if destinations else None, limit=limit * 4, skip_locked=postgresql, passing_over=bool(max_in_flight))
    parameters = {"now": now, "full": full} if max_in_flight else {"now": now}
    chosen: dict[str, object] = {}
    checked: set[str] = set()
    for row in connection.execute(query, parameters).all():
        if len(chosen) >= limit:
            break
        bound = (max_in_flight or {}).get(row.destination)
        if bound is not None and row.destination not in checked:
            checked.add(row.destination)
            if postgresql and not connection.execute(_TRY_LOCK, {"key": f"hub.claim:{row.destination}"}).scalar():
                full.append(row.destination)  # another worker is claiming for this destination right now: its lanes are its to count
                continue
            if postgresql:
                holders = _lanes(connection, now, row.destination).get(row.destination, set())  # counted again under the lock
                if len(holders) >= bound or worker in holders:
                    full.append(row.destination)
                    continue
        if row.destination in full:
            continue
        if chosen and row.destination != next(iter(chosen.values())).destination:
            continue  # a batch goes to one counterpart: one that fails holds up no other
        chosen[row.id] = row
    if not chosen:
        return []
    lease = now + timedelta(seconds=lease_seconds)
    taken = {row.id: row.attempts for row in connection.execute(_TAKE, {"ids": list(chosen), "now": now, "worker": worker, "lease": lease}).all()}
    if not taken:
        return []
    claims: list[Claim] = []
    details = {row.id: row for row in connection.execute(_OUTBOUND, {"ids": list(taken)}).all()}
    for message_id, seen in chosen.items():  # in the order they were due
        if message_id not in taken:
            continue
        detail, attempt = details[message_id], taken[message_id]
        redelivery = seen.state == S.SENDING.value
        facts = DocumentFacts(id=detail.document_id, correlation_id=detail.correlation_id, tenant=detail.tenant, certificate_number=detail.certificate_number,
                              importing_country=detail.importing_country, product_codes=detail.product_codes)
        if redelivery:
            add_event(session, document=facts, message_id=message_id, destination=detail.destination, event="message.lease_expired", actor=worker, state=S.SENDING.value, detail={"expired_at": seen.lease_expires_at.isoformat() if seen.lease_expires_at else None})
        add_event(session, document=facts, message_id=message_id, destination=detail.destination, event="message.sending", actor=worker, state=S.SENDING.value, detail={"attempt": attempt})
        outbound = OutboundMessage(
            id=message_id, correlation_id=detail.correlation_id, destination=detail.destination, document_id=detail.document_id, document_kind=detail.kind,
            certificate_number=detail.certificate_number, status=detail.status, issuing_country=detail.issuing_country, exporting_country=detail.exporting_country,
            importing_country=detail.importing_country, payload=detail.content, media_type=detail.media_type, attempt=attempt,
            created_at=detail.created_at, replaces=_replaced(connection, detail),
        )
        claims.append(Claim(message_id=message_id, attempt=attempt, lease_expires_at=lease, redelivery=redelivery, outbound=outbound, facts=facts, worker=worker))
    return claims


def _replaced(connection: Connection, detail) -> str | None:
    """The message of the certificate ``detail``'s document replaces, to the same destination (see _REPLACED)."""
    if not detail.refers_to_number:
        return None
    return connection.execute(_REPLACED, {"destination": detail.destination, "country": detail.issuing_country, "number": detail.refers_to_number}).scalar()


# Held until the claim's transaction ends; tried, never waited for (a worker never queues behind another's claim).
_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext(:key))")


_LANES = (
    select(Message.destination, Message.lease_owner)
    .where(Message.state == S.SENDING.value, Message.lease_expires_at >= bindparam("now"))
    .group_by(Message.destination, Message.lease_owner)
)
_LANES_OF = _LANES.where(Message.destination == bindparam("destination"))


def _lanes(connection: Connection, now: datetime, destination: str | None = None) -> dict[str, set[str]]:
    """The workers delivering under a live lease, per destination (only ``destination``'s when given)."""
    query, parameters = (_LANES, {"now": now}) if destination is None else (_LANES_OF, {"now": now, "destination": destination})
    lanes: dict[str, set[str]] = {}
    for name, owner in connection.execute(query, parameters).all():
        lanes.setdefault(name, set()).add(owner)
    return lanes


def lock_taken(session: Session, message_ids: Sequence[str]) -> dict[str, Message]:
    """The messages of a delivery batch with their documents, read for update (one statement), to settle them."""
    query = select(Message).options(joinedload(Message.document)).where(Message.id.in_(list(message_ids)))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Message)
    return {message.id: message for message in session.scalars(query).unique()}


def still_held(message: Message | None, worker: str) -> bool:
    """Whether ``worker`` still holds ``message``'s lease (nobody took it over after it expired)."""
    return message is not None and message.state == S.SENDING.value and message.lease_owner == worker
