"""Concurrency bounded per counterpart (hub/delivery/outbox.py ``claim(max_in_flight=…)``): a destination holding its
limit of messages under live leases is passed over, so a slow counterpart cannot take every delivery thread; on SQLite
and PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

from hub.delivery.outbox import claim
from hub.store.models import Message, utcnow
from tests.support.api import add_document

SLOW, FAST = "slow_counterpart", "fast_counterpart"


def _queue(database, destination: str, count: int, *, due_seconds_ago: float) -> list[str]:
    ids = []
    with database.transaction() as session:
        document = add_document(session)
        for index in range(count):
            ids.append(str(uuid.uuid4()))
            session.add(Message(id=ids[-1], document_id=document.id, destination=destination, state="queued",
                                payload_digest=document.payload_digest,
                                next_attempt_at=utcnow() - timedelta(seconds=due_seconds_ago - index)))
    return ids


def _claim(database, *, worker: str, limits=None, now=None):
    with database.transaction() as session:
        return claim(session, worker=worker, lease_seconds=60, destinations=[SLOW, FAST], max_in_flight=limits, now=now)


def test_a_slow_destination_holding_its_limit_leaves_the_threads_to_the_others(database):
    # The slow counterpart's backlog is due first: without a bound it would take every thread.
    _queue(database, SLOW, 10, due_seconds_ago=100)
    fast = _queue(database, FAST, 3, due_seconds_ago=50)
    limits = {SLOW: 2, FAST: 2}
    taken = [_claim(database, worker=f"thread-{n}", limits=limits) for n in range(4)]
    destinations = [_destination(database, claims[0].message_id) for claims in taken]
    assert destinations == [SLOW, SLOW, FAST, FAST]
    assert _claim(database, worker="thread-5", limits=limits) == []  # both at their limit: nothing more
    # Without the bound (the call as before) the slow backlog comes first, whatever is in flight.
    assert _destination(database, _claim(database, worker="unbounded")[0].message_id) == SLOW
    assert {c[0].message_id for c in taken[2:]} <= set(fast)


def test_a_place_frees_when_a_delivery_ends_or_its_lease_expires(database):
    _queue(database, SLOW, 5, due_seconds_ago=100)
    limits = {SLOW: 2}
    first, second = (_claim(database, worker=f"w{n}", limits=limits)[0] for n in range(2))
    assert _claim(database, worker="w3", limits=limits) == []
    with database.transaction() as session:
        session.get(Message, first.message_id).state = "awaiting_ack"  # its delivery ended
    assert len(_claim(database, worker="w3", limits=limits)) == 1
    later = utcnow() + timedelta(seconds=120)  # every lease has expired by then: nobody holds a place
    assert len(_claim(database, worker="w4", limits=limits, now=later)) == 1


def test_workers_claiming_at_once_never_exceed_the_limit(database):
    _queue(database, SLOW, 20, due_seconds_ago=100)
    limits = {SLOW: 3}
    won, start = [], threading.Barrier(6)

    def worker(n: int) -> None:
        start.wait()
        for _ in range(30):  # a worker holding a lane takes no more; the others keep trying for the free ones
            won.extend(_claim(database, worker=f"w{n}", limits=limits))
            time.sleep(0.01)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 3
    with database.sessions() as session:
        assert session.query(Message).filter(Message.state == "sending").count() == 3


def test_a_lane_is_one_worker_sending_a_batch(database):
    _queue(database, SLOW, 10, due_seconds_ago=100)
    limits = {SLOW: 2}

    def batch(worker: str, limit: int):
        with database.transaction() as session:
            return claim(session, worker=worker, lease_seconds=60, destinations=[SLOW], max_in_flight=limits, limit=limit)

    first = batch("w1", 4)
    assert len(first) == 4 and all(c.outbound.destination == SLOW and c.outbound.payload == b"<doc/>" for c in first)
    assert batch("w1", 4) == []  # its lane is busy until its batch is settled
    assert len(batch("w2", 4)) == 4
    assert batch("w3", 4) == []  # two lanes: the bound


def _destination(database, message_id: str) -> str:
    with database.sessions() as session:
        return session.get(Message, message_id).destination
