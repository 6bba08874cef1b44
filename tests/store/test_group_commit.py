"""Group commit (hub/store/group.py): concurrent writes share transactions, each answered once committed; an item
that fails rolls its batch back and fails alone, the others committed; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, select

from hub.errors import ConflictError
from hub.store.group import GroupCommit
from hub.store.models import Payload
from hub.store.payloads import put_payload


def _put(session, content: bytes) -> str:
    if content.startswith(b"bad"):
        raise ConflictError(f"refused {content!r}")
    digest = put_payload(session, content)
    session.flush()
    return digest


def _stored(database) -> set[bytes]:
    with database.sessions() as session:
        return set(session.scalars(select(Payload.content)))


def test_concurrent_items_share_commits_and_each_gets_its_own_result(database):
    commits = []
    event.listen(database.engine, "commit", lambda _conn: commits.append(1))
    slow = threading.Event()

    def apply(session, content: bytes) -> str:
        if content == b"first":
            slow.wait(2)  # the others queue behind the first batch meanwhile
        return _put(session, content)

    group = GroupCommit(database, apply)
    items = [b"first"] + [f"item-{n}".encode() for n in range(30)]
    with ThreadPoolExecutor(16) as pool:
        first = pool.submit(group.run, items[0])
        rest = [pool.submit(group.run, item) for item in items[1:]]
        slow.set()
        results = [first.result(10)] + [f.result(10) for f in rest]
    assert len(set(results)) == len(items)  # each its own digest
    assert _stored(database) == set(items)
    assert len(commits) < len(items) / 2  # batched


def test_an_item_that_fails_fails_alone_and_the_others_are_committed(database):
    group = GroupCommit(database, _put)
    start = threading.Barrier(12)

    def run(item: bytes):
        start.wait()
        try:
            return group.run(item)
        except ConflictError as exc:
            return exc

    items = [f"ok-{n}".encode() for n in range(11)] + [b"bad-one"]
    with ThreadPoolExecutor(12) as pool:
        outcomes = dict(zip(items, pool.map(run, items)))
    assert isinstance(outcomes[b"bad-one"], ConflictError) and "bad-one" in str(outcomes[b"bad-one"])
    assert all(isinstance(outcomes[item], str) for item in items[:-1])
    assert _stored(database) == set(items[:-1])


def test_alone_recovers_an_item_its_own_way(database):
    recovered = []

    def alone(item: bytes) -> str:
        recovered.append(item)
        return "recovered"

    group = GroupCommit(database, _put, alone=alone)
    assert group.run(b"bad") == "recovered" and recovered == [b"bad"]
    with pytest.raises(ConflictError):
        GroupCommit(database, _put).run(b"bad")


def test_prepare_sees_each_batch_whole_in_its_transaction_before_its_items(database):
    batches = []
    slow = threading.Event()

    def prepare(session, items: list[bytes]) -> None:
        batches.append(list(items))
        session.info["prepared"] = set(items)

    def apply(session, content: bytes) -> str:
        assert content in session.info["prepared"]  # prepared in this very transaction, before the items
        if content == b"first":
            slow.wait(2)  # the others queue behind the first batch meanwhile
        return _put(session, content)

    group = GroupCommit(database, apply, prepare=prepare)
    items = [b"first"] + [f"item-{n}".encode() for n in range(20)]
    with ThreadPoolExecutor(16) as pool:
        first = pool.submit(group.run, items[0])
        rest = [pool.submit(group.run, item) for item in items[1:]]
        slow.set()
        [future.result(10) for future in [first, *rest]]
    assert sorted(item for batch in batches for item in batch) == sorted(items)  # each item in one batch, once
    assert len(batches) < len(items) / 2
    assert _stored(database) == set(items)
