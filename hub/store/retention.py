"""Retention: the history of old documents archived, then taken out of the store, so that a store of years stays fast.

A document is **old** when nothing more happens to it: every message in a final state (answered, dead letter,
abandoned; :data:`~hub.store.states.FINAL_STATES`) or no message at all, and no change since the cut-off (its own
``updated_at``, its messages', its trace events' and its answers'). Of an old document, :func:`prune` takes out

- its trace events and delivery attempts,
- the payloads only those rows and its answers referred to (requests and responses, raw answers): an answer's row
  stays, its ``payload_digest`` is emptied and kept in the archive;

and keeps the document, its messages, answers, non-conformities and the signed certificate itself (the payload of
the document and of its messages: verification and a foreign authority fetching it need it). A payload any
remaining row refers to is never deleted. The audit log is never touched.

Work goes in batches of documents: each batch is read, written to ``archive_dir`` (one gzip JSON-lines file, one
line per document, written to a temporary name, synced, then given its name), then deleted in one short transaction
that checks again that each document is still old (a document that changed meanwhile keeps everything; its line in
the archive restores nothing). :func:`restore` puts an archive back, as many times as asked.

::

    prune(database, older_than=, archive_dir=)   → PruneReport
    restore(database, path)                       → RestoreReport
    Pruner                                         the worker's run, once an hour in a thread of its own
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import gzip
import hashlib
import json
import logging
import os
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import Column, LargeBinary, Table, and_, bindparam, delete, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.errors import ConflictError, InputError
from hub.store.db import Database
from hub.store.models import (
    Acknowledgement,
    Base,
    DeliveryAttempt,
    Document,
    Message,
    Payload,
    TraceEvent,
    UTCDateTime,
    utcnow,
)
from hub.store.states import FINAL_STATES

log = logging.getLogger("hub.retention")

#: The first field of every archive line: what wrote it, and how to read it.
FORMAT = "hub-archive/1"
#: How often the worker prunes.
PRUNE_INTERVAL = 3600.0
#: Values in one ``IN (…)``: well under SQLite's limit of bound parameters.
_CHUNK = 900
_FINAL = tuple(sorted(state.value for state in FINAL_STATES))
_EVENTS: Table = TraceEvent.__table__
_ATTEMPTS: Table = DeliveryAttempt.__table__
_PAYLOADS: Table = Payload.__table__
_ACKS: Table = Acknowledgement.__table__


@dataclass
class PruneReport:
    """What a run of :func:`prune` took out (or, with ``dry_run``, would take out)."""

    cutoff: str
    documents: int = 0
    events: int = 0
    attempts: int = 0
    acknowledgements: int = 0  # answers whose raw payload went to the archive (their rows stay)
    payloads: int = 0
    bytes_freed: int = 0
    skipped: int = 0  # documents that changed while their batch was archived: left whole
    archive_files: list[str] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, batch: "PruneReport") -> None:
        for name in ("documents", "events", "attempts", "acknowledgements", "payloads", "bytes_freed", "skipped"):
            setattr(self, name, getattr(self, name) + getattr(batch, name))


@dataclass
class RestoreReport:
    """What :func:`restore` put back; ``already_present`` rows were there (a second restore puts back nothing)."""

    documents: int = 0
    events: int = 0
    attempts: int = 0
    acknowledgements: int = 0
    payloads: int = 0
    already_present: int = 0
    missing_documents: list[str] = field(default_factory=list)  # lines whose document is not in this store

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- what is old ------------------------------------------------------------------------------------------------------


def _old(cutoff: datetime):
    """The condition on ``documents`` that says a document is old at ``cutoff``."""
    busy = exists().where(Message.document_id == Document.id, or_(Message.state.not_in(_FINAL), Message.updated_at >= cutoff))
    recent_event = exists().where(TraceEvent.document_id == Document.id, TraceEvent.at >= cutoff)
    recent_answer = exists().where(Acknowledgement.document_id == Document.id, Acknowledgement.received_at >= cutoff)
    # created_at is indexed and never later than updated_at: it bounds the scan.
    return and_(Document.created_at < cutoff, Document.updated_at < cutoff, ~busy, ~recent_event, ~recent_answer)


def _prunable():
    """The condition on ``documents`` that says something of the document is left to prune."""
    events = exists().where(TraceEvent.document_id == Document.id)
    attempts = exists().where(DeliveryAttempt.message_id == Message.id, Message.document_id == Document.id)
    answers = exists().where(Acknowledgement.document_id == Document.id, Acknowledgement.payload_digest.is_not(None))
    return or_(events, attempts, answers)


def _candidates(session: Session, cutoff: datetime, after: tuple[datetime, str] | None, limit: int) -> list[tuple[datetime, str]]:
    query = select(Document.created_at, Document.id).where(_old(cutoff), _prunable())
    if after is not None:
        query = query.where(or_(Document.created_at > after[0], and_(Document.created_at == after[0], Document.id > after[1])))
    return [(row.created_at, row.id) for row in session.execute(query.order_by(Document.created_at, Document.id).limit(limit))]


def _payload_references() -> list[Column]:
    """Every column that refers to a payload (read from the models, so a table added later counts too)."""
    digest = _PAYLOADS.c.digest
    return [column for table in Base.metadata.sorted_tables for column in table.columns if any(fk.column is digest for fk in column.foreign_keys)]


# --- one batch, read ----------------------------------------------------------------------------------------------


@dataclass
class _Line:
    """One document's history as the archive keeps it (JSON-ready rows)."""

    document: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)  # {"id", "payload_digest"}
    digests: set[str] = field(default_factory=set)

    def as_json(self, payloads: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {"format": FORMAT, "document": self.document, "trace_events": self.events, "delivery_attempts": self.attempts,
                "acknowledgements": self.answers, "payloads": [payloads[d] for d in sorted(self.digests) if d in payloads]}


def _read_batch(session: Session, ids: Sequence[str]) -> dict[str, _Line]:
    lines: dict[str, _Line] = {}
    held: set[str] = set()  # the certificate in its signed forms: kept with the document and its messages
    for row in _in(session, select(Document.id, Document.kind, Document.issuing_country, Document.certificate_number, Document.version, Document.payload_digest), Document.id, ids):
        lines[row.id] = _Line({"id": row.id, "kind": row.kind, "issuing_country": row.issuing_country, "certificate_number": row.certificate_number, "version": row.version})
        held.add(row.payload_digest)
    held.update(_in(session, select(Message.payload_digest), Message.document_id, ids, scalars=True))
    for row in _in(session, select(_EVENTS), _EVENTS.c.document_id, ids):
        line = lines[row.document_id]
        line.events.append(_encode(_EVENTS, row._mapping))
        line.digests.add(row.payload_digest)
    attempts = select(_ATTEMPTS, Message.document_id.label("of_document")).join(Message, Message.id == _ATTEMPTS.c.message_id)
    for row in _in(session, attempts, Message.document_id, ids):
        line = lines[row.of_document]
        line.attempts.append(_encode(_ATTEMPTS, {c.name: row._mapping[c] for c in _ATTEMPTS.columns}))
        line.digests.update((row.request_digest, row.response_digest))
    answers = select(Acknowledgement.id, Acknowledgement.document_id, Acknowledgement.payload_digest).where(Acknowledgement.payload_digest.is_not(None))
    for row in _in(session, answers, Acknowledgement.document_id, ids):
        lines[row.document_id].answers.append({"id": row.id, "payload_digest": row.payload_digest})
        lines[row.document_id].digests.add(row.payload_digest)
    for line in lines.values():
        line.digests -= held | {None}
        line.events.sort(key=lambda e: e["id"])
        line.attempts.sort(key=lambda a: a["id"])
    return lines


def _read_payloads(session: Session, digests: set[str]) -> dict[str, dict[str, Any]]:
    return {row.digest: _encode(_PAYLOADS, row._mapping) for row in _in(session, select(_PAYLOADS), _PAYLOADS.c.digest, sorted(digests))}


# --- one batch, deleted ---------------------------------------------------------------------------------------------


def _delete_batch(session: Session, lines: dict[str, _Line], cutoff: datetime) -> PruneReport:
    """In the caller's transaction: lock the batch's documents and messages, keep those still old, take out what
    the archive holds of them; what went."""
    report = PruneReport(cutoff=cutoff.isoformat(timespec="seconds"))
    ids = sorted(lines)
    _in(session, select(Document.id).with_for_update(), Document.id, ids, order=Document.id)
    _in(session, select(Message.id).with_for_update(), Message.document_id, ids, order=Message.id)
    still_old = set(_in(session, select(Document.id).where(_old(cutoff)), Document.id, ids, scalars=True))
    report.skipped += len(ids) - len(still_old)
    kept = [lines[i] for i in ids if i in still_old]
    connection = session.connection()
    events = [e["id"] for line in kept for e in line.events]
    attempts = [a["id"] for line in kept for a in line.attempts]
    answers = [a["id"] for line in kept for a in line.answers]
    answered = sorted({a["payload_digest"] for line in kept for a in line.answers})
    for chunk in _chunks(events):
        report.events += connection.execute(delete(_EVENTS).where(_EVENTS.c.id.in_(chunk))).rowcount
    for chunk in _chunks(attempts):
        report.attempts += connection.execute(delete(_ATTEMPTS).where(_ATTEMPTS.c.id.in_(chunk))).rowcount
    for chunk in _chunks(answers):  # an answer's payload is written once, never changed: the digests guard enough
        report.acknowledgements += connection.execute(
            update(_ACKS).where(_ACKS.c.id.in_(chunk), _ACKS.c.payload_digest.in_(answered)).values(payload_digest=None)
        ).rowcount
    candidates = sorted({d for line in kept for d in line.digests})
    referenced: set[str] = set()
    for column in _payload_references():
        referenced.update(_in(session, select(column).distinct(), column, candidates, scalars=True))
    doomed = [d for d in candidates if d not in referenced]
    for chunk in _chunks(doomed):
        report.bytes_freed += sum(session.scalars(select(_PAYLOADS.c.size).where(_PAYLOADS.c.digest.in_(chunk))))
        report.payloads += connection.execute(delete(_PAYLOADS).where(_PAYLOADS.c.digest.in_(chunk))).rowcount
    report.documents = len(kept)
    return report


class _DryRun(Exception):
    """Raised to roll a dry run's batch back."""


def prune(
    database: Database,
    *,
    older_than: timedelta,
    archive_dir: Path | None,
    now: datetime | None = None,
    batch: int = 1000,
    dry_run: bool = False,
    stop: threading.Event | None = None,
) -> PruneReport:
    """Archive (into ``archive_dir``, unless None) then delete the trace events, delivery attempts and payloads of
    documents with no change for ``older_than`` and nothing in flight; ``batch`` documents per transaction. With
    ``dry_run``, each batch is deleted then rolled back, and nothing is archived: the figures are what a run would
    take out (a payload shared by documents of two batches counted by neither). ``stop`` ends the run between two
    batches. Running it again takes out nothing more."""
    if older_than <= timedelta(0):
        raise InputError(f"the age to prune from must be positive, not {older_than}", where="older_than")
    if batch < 1:
        raise InputError(f"a batch holds at least one document, not {batch}", where="batch")
    cutoff = (now or utcnow()) - older_than
    report = PruneReport(cutoff=cutoff.isoformat(timespec="seconds"), dry_run=dry_run)
    archive = None if dry_run else archive_dir
    with _exclusive(archive):
        after = None
        stamp = (now or utcnow()).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        while not (stop and stop.is_set()):
            with database.sessions() as session:
                found = _candidates(session, cutoff, after, batch)
                if not found:
                    break
                after = found[-1]
                lines = _read_batch(session, [i for _, i in found])
                payloads = _read_payloads(session, {d for line in lines.values() for d in line.digests})
            if archive is not None:
                path = _write_archive(archive, (line.as_json(payloads) for line in lines.values()), stamp, len(report.archive_files) + 1)
                report.archive_files.append(str(path))
            for line in lines.values():
                line.digests &= set(payloads)  # a payload gone meanwhile is no candidate
            try:
                with database.transaction() as session:
                    done = _delete_batch(session, lines, cutoff)
                    if dry_run:
                        raise _DryRun
            except _DryRun:
                pass
            report.add(done)  # committed (or, in a dry run, what would have been)
            if len(found) < batch:
                break
    if report.documents or report.skipped:
        log.info("pruned %d documents older than %s: %d events, %d attempts, %d payloads (%d bytes)%s", report.documents,
                 report.cutoff, report.events, report.attempts, report.payloads, report.bytes_freed, " (dry run)" if dry_run else "")
    return report


# --- the archive file -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _exclusive(archive_dir: Path | None) -> Iterator[None]:
    """One prune at a time writing into ``archive_dir`` (the worker's hourly run and an operator's command)."""
    if archive_dir is None:
        yield
        return
    try:
        archive_dir.mkdir(parents=True, exist_ok=True)
        handle = open(archive_dir / ".hub-prune.lock", "a")
    except OSError as exc:
        raise InputError(f"cannot write into the archive directory {archive_dir}: {exc.strerror}", where="archive_dir") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConflictError(f"another prune is writing into {archive_dir}; try again when it has finished", where="archive_dir") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_archive(directory: Path, lines: Iterable[dict[str, Any]], stamp: str, number: int) -> Path:
    """Write ``lines`` to a new file of ``directory``: a temporary name, synced, then linked to its own name (never
    over another file), the directory synced. Returns its path."""
    temporary = directory / f".hub-archive-{stamp}-{os.getpid()}-{number}.tmp"
    with open(temporary, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
            for line in lines:
                packed.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n")
        raw.flush()
        os.fsync(raw.fileno())
    try:
        while True:
            path = directory / f"hub-archive-{stamp}-{number}.jsonl.gz"
            try:
                os.link(temporary, path)
                break
            except FileExistsError:
                number += 1
    finally:
        temporary.unlink(missing_ok=True)
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return path


def read_archive(path: Path) -> list[dict[str, Any]]:
    """The lines of an archive file, each checked (shape, payload digests); :class:`InputError` naming the file and
    line otherwise."""
    lines = []
    try:
        with gzip.open(path, "rb") as packed:
            for number, raw in enumerate(packed, start=1):
                where = f"{path}:{number}"
                try:
                    line = json.loads(raw)
                except ValueError as exc:
                    raise InputError(f"not a line of JSON ({exc})", where=where) from None
                _check_line(line, where)
                lines.append(line)
    except FileNotFoundError:
        raise InputError("no such archive file", where=str(path)) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"not a readable gzip archive ({exc})", where=str(path)) from None
    return lines


def _check_line(line: Any, where: str) -> None:
    if not isinstance(line, dict) or line.get("format") != FORMAT:
        raise InputError(f"not a line of a hub archive (expected \"format\": \"{FORMAT}\")", where=where)
    if not isinstance(line.get("document"), dict) or not isinstance(line["document"].get("id"), str):
        raise InputError("the line names no document id", where=where)
    for key in ("trace_events", "delivery_attempts", "acknowledgements", "payloads"):
        if not isinstance(line.get(key), list) or not all(isinstance(item, dict) for item in line[key]):
            raise InputError(f"{key} must be a list of objects", where=where)
    for payload in line["payloads"]:
        try:
            content = base64.b64decode(payload["content"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise InputError("a payload without base64 content", where=where) from None
        if hashlib.sha256(content).hexdigest() != payload.get("digest"):
            raise InputError(f"payload {payload.get('digest')!r} does not match its content: the archive was altered or damaged", where=where)


def _encode(table: Table, row: Any) -> dict[str, Any]:
    encoded = {}
    for column in table.columns:
        value = row[column.name]
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        encoded[column.name] = value
    return encoded


def _decode(table: Table, data: dict[str, Any], where: str) -> dict[str, Any]:
    decoded = {}
    for name, value in data.items():
        if name not in table.c:
            raise InputError(f"{table.name} has no column {name!r}: an archive of another version of the hub?", where=where)
        column_type = table.c[name].type
        try:
            if value is not None and isinstance(column_type, UTCDateTime):
                value = datetime.fromisoformat(value)
            elif value is not None and isinstance(column_type, LargeBinary):
                value = base64.b64decode(value, validate=True)
        except (TypeError, ValueError):
            raise InputError(f"{table.name}.{name}: {value!r} cannot be read back", where=where) from None
        decoded[name] = value
    return decoded


# --- restore --------------------------------------------------------------------------------------------------------


def restore(database: Database, path: Path) -> RestoreReport:
    """Put back what the archive file ``path`` holds, in one transaction: payloads, trace events and delivery
    attempts with their own ids, answers' payload references. What is there already stays as it is, so restoring
    twice is restoring once. A line whose document this store does not hold is left out and named."""
    lines = read_archive(path)
    report = RestoreReport()
    rows: dict[str, dict[Any, dict[str, Any]]] = {"payloads": {}, "events": {}, "attempts": {}}
    answers: dict[int, str] = {}
    with database.transaction() as session:
        known = set(_in(session, select(Document.id), Document.id, [line["document"]["id"] for line in lines], scalars=True))
        for number, line in enumerate(lines, start=1):
            where = f"{path}:{number}"
            if line["document"]["id"] not in known:
                report.missing_documents.append(line["document"]["id"])
                continue
            report.documents += 1
            for counter, table, key, given in _restored_parts(line):
                for row in given:
                    row = _decode(table, row, where)
                    if row.get(key.name) is None:
                        raise InputError(f"a row of {table.name} without its {key.name}", where=where)
                    rows[counter][row[key.name]] = row
            for answer in line["acknowledgements"]:
                if not isinstance(answer.get("id"), int) or not isinstance(answer.get("payload_digest"), str):
                    raise InputError("an answer without its id and payload digest", where=where)
                answers[answer["id"]] = answer["payload_digest"]
        connection = session.connection()
        insert = pg_insert if database.dialect == "postgresql" else sqlite_insert
        for counter, table, key, _ in _restored_parts(None):  # payloads first: the others refer to them
            wanted = rows[counter]
            present = set(_in(session, select(key), key, list(wanted), scalars=True))
            missing = [row for name, row in wanted.items() if name not in present]
            if missing:
                connection.execute(insert(table).on_conflict_do_nothing(index_elements=[key.name]), missing)
            setattr(report, counter, len(missing))
            report.already_present += len(present)
        empty = set(_in(session, select(_ACKS.c.id).where(_ACKS.c.payload_digest.is_(None)), _ACKS.c.id, list(answers), scalars=True))
        if empty:
            statement = update(_ACKS).where(_ACKS.c.id == bindparam("answer_id"), _ACKS.c.payload_digest.is_(None)).values(payload_digest=bindparam("digest"))
            connection.execute(statement, [{"answer_id": i, "digest": answers[i]} for i in sorted(empty)])
        report.acknowledgements = len(empty)
        report.already_present += len(answers) - len(empty)
    return report


def _restored_parts(line: dict[str, Any] | None):
    """What a line restores, in the order it goes back: (counter, table, key, rows)."""
    return (
        ("payloads", _PAYLOADS, _PAYLOADS.c.digest, line["payloads"] if line else ()),
        ("events", _EVENTS, _EVENTS.c.id, line["trace_events"] if line else ()),
        ("attempts", _ATTEMPTS, _ATTEMPTS.c.id, line["delivery_attempts"] if line else ()),
    )


# --- the worker's hourly run ----------------------------------------------------------------------------------------


class Pruner:
    """Retention in the worker: :meth:`tick` (a periodic task, called often) starts a prune once per ``every``
    seconds, in a thread of its own so that the worker's other periodic tasks never wait on it; :meth:`close`
    ends it between two batches."""

    def __init__(self, database: Database, *, older_than: timedelta, archive_dir: Path | None, every: float = PRUNE_INTERVAL, batch: int = 1000) -> None:
        self.database = database
        self.older_than = older_than
        self.archive_dir = archive_dir
        self.every = every
        self.batch = batch
        self.last: PruneReport | None = None
        self._started = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> bool:
        """Start a prune if the last began ``every`` seconds ago or more and none runs; whether one started."""
        if self._stop.is_set() or (self._thread is not None and self._thread.is_alive()):
            return False
        if time.monotonic() - self._started < self.every:
            return False
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="hub-retention", daemon=True)
        self._thread.start()
        return True

    def _run(self) -> None:
        try:
            self.last = prune(self.database, older_than=self.older_than, archive_dir=self.archive_dir, batch=self.batch, stop=self._stop)
        except Exception:
            log.exception("retention: the prune failed; tried again in %.0f s", self.every)

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


# --- helpers --------------------------------------------------------------------------------------------------------


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def _in(session: Session, query, column, values: Sequence[Any], *, scalars: bool = False, order=None) -> list[Any]:
    """``query`` run once per chunk of ``values`` (``column IN chunk``), results together."""
    found: list[Any] = []
    for chunk in _chunks(list(values)):
        statement = query.where(column.in_(chunk))
        if order is not None:
            statement = statement.order_by(order)
        found.extend(session.scalars(statement) if scalars else session.execute(statement))
    return found
