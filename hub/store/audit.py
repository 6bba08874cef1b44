"""The audit log: every action by a person or client, append-only and hash-chained, so that it proves itself.

Each entry's canonical form is the JSON of its fields (keys sorted, no spaces, UTF-8)::

    {"action": …, "actor": …, "at": "2026-12-04T18:45:00.123456+00:00", "body_digest": …, "outcome": …,
     "prev_hash": …, "request_id": …, "seq": 7, "target": …}

``entry_hash`` is the SHA-256 of that form, and ``prev_hash`` the ``entry_hash`` of the entry before it (64 zeros for
the first). Changing a field breaks the entry's own hash; deleting, inserting or reordering entries breaks the
sequence or the link to the previous entry; :func:`verify` names the first entry where the chain breaks. Only
removing entries from the end leaves a shorter chain that is intact: keep the head :func:`verify` reports somewhere
else (an anchor), and give it back to :func:`verify` to show that the chain still reaches it.

Appending takes a lock on the chain's head for the rest of the transaction (a transaction-scoped advisory lock on
PostgreSQL; SQLite's write lock, taken by the first statement), so concurrent writers, in any process, line up.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from hub.stages import stage
from hub.store.appends import append_new
from hub.store.db import Database
from hub.store.group import GroupCommit, group_for
from hub.store.models import AuditEntry, utcnow

GENESIS = "0" * 64
# session.info: (the transaction, seq and hash of the head it appended last).
_HEAD = "hub.audit_head"
#: The key of PostgreSQL's advisory lock on the chain ("hubaudit" as a 64-bit integer).
_ADVISORY_KEY = int.from_bytes(b"hubaudit", "big") - 2**63
#: The chain's head: the last entry's sequence number and hash (built once; building it costs more than running it).
_HEAD_ENTRY = select(AuditEntry.seq, AuditEntry.entry_hash).order_by(AuditEntry.seq.desc()).limit(1)
_LIMITS = {"actor": 200, "action": 200, "target": 500, "outcome": 30, "request_id": 64, "body_digest": 64}


def canonical(entry: AuditEntry) -> bytes:
    """The bytes an entry's hash is computed over."""
    fields = {
        "seq": entry.seq,
        "at": entry.at.astimezone(timezone.utc).isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "outcome": entry.outcome,
        "request_id": entry.request_id,
        "body_digest": entry.body_digest,
        "prev_hash": entry.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: AuditEntry) -> str:
    """The SHA-256 (hex) of the entry's canonical form."""
    return hashlib.sha256(canonical(entry)).hexdigest()


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    outcome: str,
    target: str | None = None,
    request_id: str | None = None,
    body_digest: str | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry at the head of the chain, in the caller's transaction (which holds the chain until it ends:
    keep it short). Control characters are escaped and values longer than their columns cut before hashing, so the
    hash covers what is stored.

    The entry is written with the transaction's other appended rows (:mod:`hub.store.appends`), as one statement
    for the entries of a group commit; the head is read once per transaction, which holds the chain's lock from that
    read to its end, and then followed from the entries this transaction appended."""
    transaction = session.get_transaction()
    held = session.info.get(_HEAD)
    if held is not None and held[0] is transaction:
        seq, previous = held[1], held[2]
    else:
        _lock_head(session)
        # On the session's connection: the ORM's execution path costs more than this one-row read.
        head = session.connection().execute(_HEAD_ENTRY).first()
        seq, previous = (head.seq, head.entry_hash) if head else (0, GENESIS)
    values = {"actor": actor, "action": action, "target": target, "outcome": outcome, "request_id": request_id, "body_digest": body_digest}
    values = {name: _printable(value)[: _LIMITS[name]] if value is not None else None for name, value in values.items()}
    # Microseconds are what both engines keep; a moment with more would not hash the same once read back.
    moment = (at or utcnow()).astimezone(timezone.utc)
    entry = AuditEntry(seq=seq + 1, at=moment, prev_hash=previous, **values)
    entry.entry_hash = entry_hash(entry)
    append_new(session, entry)
    session.info[_HEAD] = (transaction, entry.seq, entry.entry_hash)
    return entry


def record(database: Database, **entry: str | None) -> AuditEntry:
    """Append one entry and commit it (see :func:`append` for the fields); entries recorded at the same moment by
    other threads share the transaction (:mod:`hub.store.group`)."""
    return group_for(database, "audit", lambda: GroupCommit(database, _append_entry, wrap=lambda: stage("audit"))).run(entry)


def _append_entry(session: Session, entry: dict) -> AuditEntry:
    return append(session, **entry)


def _printable(value: str) -> str:
    """Control characters and lone surrogates written as escapes: a hostile path (``%00``, a line break) is recorded
    as sent, on one line, and PostgreSQL (which refuses NUL) stores it like SQLite."""
    if value.isascii() and value.isprintable():
        return value  # the usual case, answered in C: nothing to escape
    return "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else f"\\u{ord(c):04x}" if unicodedata.category(c) == "Cs" else c for c in value)


def _lock_head(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY})
    elif not session.connection().get_execution_options().get("hub_writes"):
        # Outside Database.transaction (which begins IMMEDIATE, holding the write lock already): a write that changes
        # nothing takes SQLite's write lock (waiting for another writer) before anything is read.
        session.execute(text("UPDATE audit_log SET seq = seq WHERE 0"))


def as_dict(entry: AuditEntry) -> dict[str, Any]:
    """An entry as plain JSON-able values, hashes included (the API and ``hub audit show --json``)."""
    return {
        "seq": entry.seq, "at": entry.at.isoformat(), "actor": entry.actor, "action": entry.action, "target": entry.target,
        "outcome": entry.outcome, "request_id": entry.request_id, "body_digest": entry.body_digest,
        "prev_hash": entry.prev_hash, "entry_hash": entry.entry_hash,
    }


def entries(session: Session, *, since: int = 0, limit: int | None = None) -> Sequence[AuditEntry]:
    """The entries after sequence number ``since``, oldest first, at most ``limit``."""
    query = select(AuditEntry).where(AuditEntry.seq > since).order_by(AuditEntry.seq)
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()


@dataclass(frozen=True)
class Verdict:
    """What :func:`verify` found: ``count`` entries read, the head (last entry) reached, and where the chain
    breaks (``broken_at``, the first sequence number that does not hold, with the ``reason``), if it does."""

    count: int
    head_seq: int
    head_hash: str
    broken_at: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.reason is None

    @property
    def anchor(self) -> str:
        """The head as an anchor to keep elsewhere and give back to :func:`verify`: ``<seq>:<hash>``."""
        return f"{self.head_seq}:{self.head_hash}"


def verify(session: Session, *, anchor: str | None = None, batch: int = 1000) -> Verdict:
    """Walk the whole chain from its first entry; with ``anchor`` (``<seq>:<hash>`` as :attr:`Verdict.anchor`
    gives it, or a bare hash), also check that the chain still reaches that entry unchanged.

    Raises ``ValueError`` when ``anchor`` is not of that form."""
    anchored_seq, anchored_hash = _parse_anchor(anchor) if anchor else (None, None)
    count, previous, expected, anchor_found = 0, GENESIS, 1, False
    for entry in _walk(session, batch):
        if entry.seq != expected:
            return Verdict(count, expected - 1, previous, expected, f"entry {expected} is missing (the next entry is {entry.seq})")
        if entry.prev_hash != previous:
            return Verdict(count, entry.seq - 1, previous, entry.seq, f"entry {entry.seq} does not follow entry {entry.seq - 1} (its prev_hash differs: an entry was removed, inserted or changed)")
        if entry_hash(entry) != entry.entry_hash:
            return Verdict(count, entry.seq - 1, previous, entry.seq, f"entry {entry.seq} was changed after it was written (its content does not match its hash)")
        if anchored_hash is not None and entry.entry_hash == anchored_hash:
            if anchored_seq not in (None, entry.seq):
                return Verdict(count, entry.seq, entry.entry_hash, anchored_seq, f"the anchored hash is entry {entry.seq}'s, not entry {anchored_seq}'s")
            anchor_found = True
        elif anchored_seq == entry.seq:
            return Verdict(count, entry.seq - 1, previous, entry.seq, f"entry {entry.seq} is not the one anchored (its hash differs from the anchor's): the chain was rewritten")
        previous, expected, count = entry.entry_hash, entry.seq + 1, count + 1
    head_seq = expected - 1
    if anchored_hash is not None and not anchor_found:
        where = anchored_seq if anchored_seq is not None and anchored_seq > head_seq else head_seq + 1
        return Verdict(count, head_seq, previous, where, f"the anchored entry ({anchor}) is no longer in the chain: entries from {head_seq + 1} on were removed or rewritten")
    return Verdict(count, head_seq, previous)


def _walk(session: Session, batch: int) -> Iterator[AuditEntry]:
    """Every entry in sequence order, read in batches (a long chain is never held whole)."""
    after = 0
    while True:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def _parse_anchor(anchor: str) -> tuple[int | None, str]:
    seq, _, digest = anchor.strip().rpartition(":")
    digest = digest.lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or (seq and not seq.isdigit()):
        raise ValueError(f"anchor {anchor!r}: expected <seq>:<64 hex digits> (as `hub audit verify` prints the head), or the hash alone")
    return (int(seq) if seq else None), digest
