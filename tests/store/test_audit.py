"""The audit log on both engines: entries chained by hash, any change found by `verify` at the first broken entry,
rows refused to UPDATE and DELETE, the head anchored elsewhere, concurrent writers lined up."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from hub.store import audit
from hub.store.db import Database
from hub.store.models import AuditEntry


def _fill(database: Database, count: int = 5) -> list[AuditEntry]:
    written = []
    for n in range(1, count + 1):
        written.append(audit.record(database, actor=f"api:fr-system-{n}", action="POST /v1/documents", target=f"document_id=doc-{n}",
                                    outcome="202", request_id=f"req-{n}", body_digest=f"{n:064x}"))
    return written


def _verify(database: Database, **options) -> audit.Verdict:
    with database.sessions() as session:
        return audit.verify(session, **options)


def _tamper(database: Database, *statements: str, params: dict | None = None) -> None:
    """What someone with the database's owner rights could do: lift the append-only triggers, then change rows."""
    with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            connection.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        for statement in statements:
            connection.execute(text(statement), params or {})


def test_entries_are_chained_and_the_chain_verifies(database: Database):
    assert _verify(database) == audit.Verdict(0, 0, audit.GENESIS)
    written = _fill(database)
    with database.sessions() as session:
        stored = audit.entries(session)
        since_three = audit.entries(session, since=3)
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5]
    assert stored[0].prev_hash == audit.GENESIS
    assert all(later.prev_hash == earlier.entry_hash for earlier, later in zip(stored, stored[1:]))
    assert all(audit.entry_hash(e) == e.entry_hash for e in stored)
    assert [e.seq for e in since_three] == [4, 5]
    verdict = _verify(database)
    assert verdict.intact and verdict.count == 5
    assert (verdict.head_seq, verdict.head_hash) == (5, written[-1].entry_hash)
    assert verdict.anchor == f"5:{written[-1].entry_hash}"


def test_the_hash_covers_every_field(database: Database):
    entry = _fill(database, 1)[0]
    base = audit.entry_hash(entry)
    changes = {"seq": 2, "at": entry.at + timedelta(microseconds=1), "actor": "cli:root", "action": "DELETE /v1/webhooks/{webhook_id}",
               "target": "document_id=other", "outcome": "500", "request_id": "req-x", "body_digest": "f" * 64, "prev_hash": "1" * 64}
    for field, value in changes.items():
        changed = AuditEntry(**{c: getattr(entry, c) for c in ("seq", "at", "actor", "action", "target", "outcome", "request_id", "body_digest", "prev_hash")})
        setattr(changed, field, value)
        assert audit.entry_hash(changed) != base, field


def test_the_log_refuses_updates_and_deletes(database: Database):
    _fill(database, 2)
    for statement in ("UPDATE audit_log SET actor = 'cli:mallory' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 2"):
        with pytest.raises(DBAPIError, match="append-only"):
            with database.transaction() as session:
                session.execute(text(statement))
    assert _verify(database).count == 2


@pytest.mark.parametrize("change, broken_at", [
    pytest.param(["UPDATE audit_log SET actor = 'api:someone-else' WHERE seq = 3"], 3, id="edited-field"),
    pytest.param(["UPDATE audit_log SET outcome = '403' WHERE seq = 5"], 5, id="edited-last"),
    pytest.param(["DELETE FROM audit_log WHERE seq = 2"], 2, id="deleted-entry"),
    pytest.param(["DELETE FROM audit_log WHERE seq = 1"], 1, id="deleted-first"),
    pytest.param(["UPDATE audit_log SET seq = -seq WHERE seq IN (2, 3)",
                  "UPDATE audit_log SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END WHERE seq < 0"], 2, id="reordered"),
])
def test_any_change_is_found_at_the_first_broken_entry(database: Database, change, broken_at):
    _fill(database)
    _tamper(database, *change)
    verdict = _verify(database)
    assert not verdict.intact
    assert verdict.broken_at == broken_at, verdict.reason
    assert verdict.count == broken_at - 1


def test_an_inserted_entry_is_found(database: Database):
    written = _fill(database)
    _tamper(database, "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3", "UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000")
    forged = AuditEntry(seq=3, at=written[2].at, actor="api:fr-system-3", action="POST /v1/documents", target="document_id=forged",
                        outcome="202", request_id=None, body_digest=None, prev_hash=written[1].entry_hash)
    forged.entry_hash = audit.entry_hash(forged)  # well formed and linked to entry 2: only entry 4 shows the insertion
    with database.transaction() as session:
        session.add(forged)
    verdict = _verify(database)
    assert (verdict.broken_at, verdict.count) == (4, 3), verdict.reason


def test_a_rewritten_chain_or_a_cut_tail_fails_against_the_anchor(database: Database):
    _fill(database)
    anchor = _verify(database).anchor
    assert _verify(database, anchor=anchor).intact
    assert _verify(database, anchor=anchor.split(":")[1]).intact
    # Someone edits entry 4 and recomputes every hash from there: the chain alone is intact again…
    _tamper(database, "UPDATE audit_log SET target = 'document_id=hidden' WHERE seq = 4")
    with database.sessions() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        previous = rows[2].entry_hash
        rewritten = []
        for row in rows[3:]:
            row.prev_hash = previous
            previous = audit.entry_hash(row)
            rewritten.append((row.seq, row.prev_hash, previous))
    with database.engine.begin() as connection:
        for seq, prev, digest in rewritten:
            connection.execute(text("UPDATE audit_log SET prev_hash = :prev, entry_hash = :digest WHERE seq = :seq"), {"prev": prev, "digest": digest, "seq": seq})
    assert _verify(database).intact
    # …but not against the head kept elsewhere.
    verdict = _verify(database, anchor=anchor)
    assert (verdict.intact, verdict.broken_at) == (False, 5)
    # Cutting the tail leaves an intact chain that no longer reaches the anchor.
    _tamper(database, "DELETE FROM audit_log WHERE seq >= 4")
    assert _verify(database).intact
    verdict = _verify(database, anchor=anchor)
    assert (verdict.intact, verdict.broken_at, verdict.head_seq) == (False, 5, 3)
    assert "no longer in the chain" in verdict.reason


def test_a_malformed_anchor_is_refused(database: Database):
    for anchor in ("nonsense", "5:abc", "x:" + "0" * 64):
        with pytest.raises(ValueError, match="anchor"):
            _verify(database, anchor=anchor)


def test_values_longer_than_their_columns_are_cut_before_hashing(database: Database):
    entry = audit.record(database, actor="api:" + "a" * 300, action="POST /v1/x", outcome="201", target="t" * 900)
    assert (len(entry.actor), len(entry.target)) == (200, 500)
    assert _verify(database).intact


def _write_at_once(databases: list[Database], each: int) -> None:
    """One thread per database, all starting together, each recording ``each`` entries; the chain must verify whole."""
    start, failures = threading.Barrier(len(databases)), []

    def write(db: Database, number: int) -> None:
        start.wait()
        try:
            for n in range(each):
                audit.record(db, actor=f"api:writer-{number}", action="POST /v1/documents", outcome="202", target=f"n={n}")
        except Exception as exc:  # reported below, with the writer
            failures.append((number, exc))

    threads = [threading.Thread(target=write, args=(db, i)) for i, db in enumerate(databases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    verdict = _verify(databases[0])
    assert verdict.intact, verdict.reason
    assert verdict.count == len(databases) * each


def test_concurrent_writers_line_up(database_url: str):
    """Four writers, each with its own engine (as separate processes would be), append at once: one chain, no gap,
    no duplicate."""
    databases = [Database(database_url) for _ in range(4)]
    try:
        _write_at_once(databases, 15)
    finally:
        for db in databases:
            db.dispose()


def test_threads_sharing_one_database_group_their_entries_into_one_chain(database: Database):
    """Eight threads on one engine: their entries share group commits, several to a transaction."""
    _write_at_once([database] * 8, 10)


def test_entries_appended_in_one_transaction_follow_each_other_and_read_back_in_it(database: Database):
    _fill(database, 2)
    with database.transaction() as session:
        third = audit.append(session, actor="api:a", action="POST /v1/documents", outcome="202")
        fourth = audit.append(session, actor="api:b", action="POST /v1/documents", outcome="202")
        assert [e.seq for e in audit.entries(session)] == [1, 2, 3, 4]  # the transaction reads what it appended
        fifth = audit.append(session, actor="api:c", action="POST /v1/documents", outcome="202")
    assert (third.seq, fourth.seq, fifth.seq) == (3, 4, 5)
    assert fourth.prev_hash == third.entry_hash and fifth.prev_hash == fourth.entry_hash
    verdict = _verify(database)
    assert verdict.intact and (verdict.count, verdict.head_hash) == (5, fifth.entry_hash)


def test_a_transaction_rolled_back_leaves_no_entry_and_the_next_follows_the_head(database: Database):
    _fill(database, 1)
    with pytest.raises(RuntimeError), database.transaction() as session:
        audit.append(session, actor="api:a", action="POST /v1/documents", outcome="202")
        raise RuntimeError("the action failed")
    entry = audit.record(database, actor="api:b", action="POST /v1/documents", outcome="202")
    assert entry.seq == 2
    assert _verify(database).intact


def test_control_characters_are_stored_escaped_on_both_engines(database: Database):
    entry = audit.record(database, actor="anonymous", action="POST /v1/messages/{message_id}/resend", outcome="404",
                         target="message_id=a\x00b\nc\ud800")
    assert entry.target == "message_id=a\\x00b\\x0ac\\ud800"
    with database.sessions() as session:
        assert audit.entries(session)[0].target == entry.target
    assert _verify(database).intact
