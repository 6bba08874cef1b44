"""Retention on both engines: old, settled documents lose their trace, attempts and the payloads only those held,
archived first; the certificate, the document, its messages, answers and non-conformities stay; the archive puts
back exactly what went; a crash between archive and delete leaves the store whole; a second run does nothing."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from hub.config import Settings
from hub.connector import Outcome
from hub.errors import ConfigurationError, InputError
from hub.store import retention
from hub.store.models import Acknowledgement, AuditEntry, DeliveryAttempt, Document, Message, NonConformity, Payload, TraceEvent, utcnow
from hub.store.retention import Pruner, prune, restore
from tests.support.broker import example_record, transient

YEAR = timedelta(days=365)


@pytest.fixture
def archive(tmp_path) -> Path:
    """Where the archive goes (made by the first prune that writes one)."""
    return tmp_path / "archive"


def submit(broker, number: str):
    body = json.dumps(example_record(certificate_number=number)).encode()
    return broker.submit(body, "application/json", tenant="FR", actor="api:test").document.id


def delivered(broker, *numbers: str) -> list[str]:
    """Submit a certificate per number and deliver it everywhere, each destination answering ``acknowledged``
    (after whatever a test scripted first): their messages end in a final state."""
    for connector in broker.connectors.values():
        connector.fail_next(*[Outcome.ACKNOWLEDGED] * len(numbers))
    ids = [submit(broker, number) for number in numbers]
    broker.make_worker(webhooks=False).drain()
    return ids


def age(database, document_id: str, days: int) -> None:
    """Move everything of a document ``days`` into the past, as if it had been settled then."""
    back = timedelta(days=days)
    shifted = [(Document, Document.id, ("created_at", "updated_at")), (Message, Message.document_id, ("created_at", "updated_at")),
               (TraceEvent, TraceEvent.document_id, ("at",)), (Acknowledgement, Acknowledgement.document_id, ("received_at",))]
    with database.transaction() as session:
        for model, owner, columns in shifted:
            key = model.__table__.c.id
            for row in session.execute(select(key, *(model.__table__.c[c] for c in columns)).where(owner == document_id)).all():
                session.execute(update(model.__table__).where(key == row.id).values({c: getattr(row, c) - back for c in columns}))


def snapshot(database) -> dict[str, list[tuple]]:
    """Every row of the tables retention touches (or must not), in a comparable form."""
    tables = {"documents": Document, "messages": Message, "events": TraceEvent, "attempts": DeliveryAttempt,
              "acknowledgements": Acknowledgement, "payloads": Payload, "non_conformities": NonConformity, "audit": AuditEntry}
    with database.sessions() as session:
        return {name: sorted(tuple(row) for row in session.execute(select(*model.__table__.columns)))
                for name, model in tables.items()}


def history(database, document_id: str) -> tuple[int, int]:
    with database.sessions() as session:
        events = session.scalar(select(func.count()).select_from(TraceEvent).where(TraceEvent.document_id == document_id))
        attempts = session.scalar(select(func.count()).select_from(DeliveryAttempt).join(Message).where(Message.document_id == document_id))
    return events, attempts


def test_an_old_settled_document_loses_its_history_and_keeps_its_certificate(broker, archive):
    old, recent = delivered(broker, "FR-OLD-1", "FR-NEW-1")
    age(broker.database, old, 400)
    before = snapshot(broker.database)
    assert all(n > 0 for n in history(broker.database, old))
    recent_history = history(broker.database, recent)

    report = prune(broker.database, older_than=YEAR, archive_dir=archive)

    assert (report.documents, report.skipped) == (1, 0)
    assert history(broker.database, old) == (0, 0)
    assert history(broker.database, recent) == recent_history
    after = snapshot(broker.database)
    for kept in ("documents", "messages", "non_conformities", "audit"):
        assert after[kept] == before[kept], kept
    assert len(after["acknowledgements"]) == len(before["acknowledgements"])  # the rows stay; the old ones lose their raw payload
    assert report.events == len(before["events"]) - len(after["events"])
    assert report.attempts == len(before["attempts"]) - len(after["attempts"])
    assert report.payloads == len(before["payloads"]) - len(after["payloads"])
    with broker.database.sessions() as session:
        document = session.get(Document, old)
        certificate = session.get(Payload, document.payload_digest)
        assert certificate is not None
        assert all(session.get(Payload, m.payload_digest) is not None for m in document.messages)
        assert {m.state for m in document.messages} == {"acknowledged"}
    assert broker.verifier.verify(certificate.content)  # still verifiable: the signed certificate is kept
    assert [Path(p).name.startswith("hub-archive-") and p.endswith(".jsonl.gz") for p in report.archive_files] == [True]


def test_documents_in_flight_or_changed_lately_are_untouched(broker, archive):
    settled_late, = delivered(broker, "FR-LATE-1")
    broker.connectors["authority"].fail_next(transient(), transient(), transient(), transient())
    in_flight = submit(broker, "FR-FLIGHT-1")
    broker.make_worker(webhooks=False).run_once(limit=16)
    with broker.database.sessions() as session:
        assert "retry_wait" in {m.state for m in session.scalars(select(Message).where(Message.document_id == in_flight))}
    age(broker.database, in_flight, 400)
    age(broker.database, settled_late, 400)
    with broker.database.transaction() as session:  # one of its messages changed yesterday
        session.execute(update(Message).where(Message.document_id == settled_late, Message.destination == "customs").values(updated_at=utcnow() - timedelta(days=1)))
    before = snapshot(broker.database)

    report = prune(broker.database, older_than=YEAR, archive_dir=archive)

    assert report.documents == 0 and report.archive_files == []
    assert snapshot(broker.database) == before


def test_a_shared_payload_stays_while_any_row_refers_to_it(broker):
    first, second = delivered(broker, "FR-SHARE-1", "FR-SHARE-2")
    with broker.database.sessions() as session:
        responses = set(session.scalars(select(DeliveryAttempt.response_digest).join(Message).where(Message.document_id.in_([first, second]))))
    assert len(responses) == 1  # the scripted counterpart answers both with the same bytes
    shared = responses.pop()
    age(broker.database, first, 400)

    prune(broker.database, older_than=YEAR, archive_dir=None)
    with broker.database.sessions() as session:
        assert session.get(Payload, shared) is not None  # the second document's attempts still refer to it
    age(broker.database, second, 400)
    report = prune(broker.database, older_than=YEAR, archive_dir=None)
    with broker.database.sessions() as session:
        assert session.get(Payload, shared) is None
    assert report.documents == 1 and report.payloads >= 1 and report.bytes_freed > 0


def test_the_archive_restores_exactly_what_was_pruned_and_restoring_twice_is_restoring_once(broker, archive):
    ids = delivered(broker, "FR-ARC-1", "FR-ARC-2", "FR-ARC-3")
    for document_id in ids:
        age(broker.database, document_id, 400)
    before = snapshot(broker.database)

    report = prune(broker.database, older_than=YEAR, archive_dir=archive, batch=2)
    assert report.documents == 3 and len(report.archive_files) == 2  # two batches, two files
    assert report.acknowledgements == 6  # each destination's answer: its row stays, its raw payload is archived
    assert snapshot(broker.database) != before
    with gzip.open(report.archive_files[0], "rt") as archive:
        lines = [json.loads(line) for line in archive]
    assert [line["format"] for line in lines] == ["hub-archive/1"] * 2
    assert {line["document"]["id"] for line in lines} <= set(ids)
    assert all(line["trace_events"] and line["delivery_attempts"] for line in lines)
    with broker.database.sessions() as session:
        certificates = set(session.scalars(select(Message.payload_digest))) | set(session.scalars(select(Document.payload_digest)))
    assert not {p["digest"] for line in lines for p in line["payloads"]} & certificates  # kept in the store, not archived

    restored = [restore(broker.database, Path(path)) for path in report.archive_files]
    assert sum(r.documents for r in restored) == 3
    assert sum(r.events for r in restored) == report.events and sum(r.attempts for r in restored) == report.attempts
    assert sum(r.acknowledgements for r in restored) == report.acknowledgements
    assert snapshot(broker.database) == before
    again = restore(broker.database, Path(report.archive_files[0]))
    assert (again.events, again.attempts, again.payloads, again.acknowledgements) == (0, 0, 0, 0) and again.already_present > 0
    assert snapshot(broker.database) == before


def test_a_crash_between_archive_and_delete_leaves_the_store_whole_and_the_archive_harmless(broker, archive, monkeypatch):
    old, = delivered(broker, "FR-CRASH-1")
    age(broker.database, old, 400)
    before = snapshot(broker.database)
    real = retention._delete_batch

    def deleted_then_crashed(*args, **kwargs):
        real(*args, **kwargs)
        raise OSError("power lost before the commit")

    monkeypatch.setattr(retention, "_delete_batch", deleted_then_crashed)
    with pytest.raises(OSError, match="power lost"):
        prune(broker.database, older_than=YEAR, archive_dir=archive)
    assert snapshot(broker.database) == before
    archives = sorted(archive.glob("hub-archive-*.jsonl.gz"))
    assert len(archives) == 1 and not list(archive.glob("*.tmp"))
    harmless = restore(broker.database, archives[0])
    assert (harmless.events, harmless.attempts, harmless.payloads, harmless.acknowledgements) == (0, 0, 0, 0)
    assert snapshot(broker.database) == before

    monkeypatch.setattr(retention, "_delete_batch", real)  # the next run does the work
    assert prune(broker.database, older_than=YEAR, archive_dir=archive).documents == 1


def test_prune_is_idempotent_and_a_dry_run_changes_nothing(broker, archive):
    for document_id in delivered(broker, "FR-IDEM-1", "FR-IDEM-2"):
        age(broker.database, document_id, 400)
    before = snapshot(broker.database)
    dry = prune(broker.database, older_than=YEAR, archive_dir=archive, dry_run=True)
    assert snapshot(broker.database) == before and dry.archive_files == [] and not archive.exists()

    done = prune(broker.database, older_than=YEAR, archive_dir=archive)
    assert (dry.documents, dry.events, dry.attempts, dry.payloads, dry.bytes_freed) == (done.documents, done.events, done.attempts, done.payloads, done.bytes_freed)
    assert done.documents == 2 and done.events > 0
    after = snapshot(broker.database)
    again = prune(broker.database, older_than=YEAR, archive_dir=archive)
    assert (again.documents, again.events, again.attempts, again.payloads, again.archive_files) == (0, 0, 0, 0, [])
    assert snapshot(broker.database) == after


def test_a_document_that_changes_while_its_batch_is_archived_keeps_everything(broker, archive, monkeypatch):
    old, = delivered(broker, "FR-MOVE-1")
    age(broker.database, old, 400)
    real = retention._write_archive

    def archived_then_resent(*args, **kwargs):
        path = real(*args, **kwargs)
        with broker.database.transaction() as session:  # an operator resends it meanwhile
            session.execute(update(Message).where(Message.document_id == old).values(state="queued", updated_at=utcnow()))
        return path

    monkeypatch.setattr(retention, "_write_archive", archived_then_resent)
    before = snapshot(broker.database)
    report = prune(broker.database, older_than=YEAR, archive_dir=archive)
    assert (report.documents, report.skipped, report.events) == (0, 1, 0) and len(report.archive_files) == 1
    after = snapshot(broker.database)
    assert (after["events"], after["attempts"], after["payloads"]) == (before["events"], before["attempts"], before["payloads"])


def test_a_refused_answer_and_its_non_conformity_evidence_stay(broker, archive):
    broker.connectors["authority"].fail_next(Outcome.REJECTED)
    rejected, = delivered(broker, "FR-REJ-1")
    with broker.database.sessions() as session:
        kept = set(session.scalars(select(NonConformity.evidence_digest).where(NonConformity.document_id == rejected)))
    age(broker.database, rejected, 400)
    report = prune(broker.database, older_than=YEAR, archive_dir=archive)
    assert report.documents == 1
    with broker.database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(NonConformity).where(NonConformity.document_id == rejected)) == len(kept)
        assert all(session.get(Payload, digest) is not None for digest in kept - {None})


def test_the_pruner_starts_at_most_once_per_interval(broker, archive):
    old, = delivered(broker, "FR-TICK-1")
    age(broker.database, old, 400)
    pruner = Pruner(broker.database, older_than=YEAR, archive_dir=archive, every=3600)
    try:
        assert pruner.tick() is True
        pruner._thread.join(30)
        assert pruner.last is not None and pruner.last.documents == 1
        assert pruner.tick() is False  # within the hour: nothing
    finally:
        pruner.close()


def test_a_worker_prunes_only_when_retention_is_set(broker, archive):
    assert not any(getattr(task, "__self__", None).__class__ is Pruner for task in broker.make_worker(webhooks=False).periodic)
    broker.settings = broker.settings.model_copy(update={"retention_days": 30, "archive_dir": archive})
    worker = broker.make_worker(webhooks=False)
    pruners = [task.__self__ for task in worker.periodic if isinstance(getattr(task, "__self__", None), Pruner)]
    assert len(pruners) == 1 and pruners[0].older_than == timedelta(days=30) and pruners[0].archive_dir == archive


def test_bad_ages_and_damaged_archives_are_refused(database, tmp_path):
    with pytest.raises(InputError, match="positive"):
        prune(database, older_than=timedelta(0), archive_dir=None)
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="not a readable gzip archive"):
        restore(database, damaged)
    altered = tmp_path / "altered.jsonl.gz"
    line = {"format": "hub-archive/1", "document": {"id": "d"}, "trace_events": [], "delivery_attempts": [], "acknowledgements": [],
            "payloads": [{"digest": "0" * 64, "media_type": "application/xml", "size": 3, "content": "YWJj", "created_at": None}]}
    with gzip.open(altered, "wt") as file:
        file.write(json.dumps(line) + "\n")
    with pytest.raises(InputError, match="does not match its content") as refused:
        restore(database, altered)
    assert refused.value.where == f"{altered}:1"


@pytest.mark.parametrize("variable, value, message", [
    ("HUB_RETENTION_DAYS", "-1", "out of range"),
    ("HUB_RETENTION_DAYS", "a year", "not a whole number"),
    ("HUB_RETENTION_DAYS", "100000", "out of range"),
])
def test_retention_settings_are_checked_at_start_up(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=f"{variable}: .*{message}"):
        Settings.from_env()


def test_the_archive_directory_must_be_a_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HUB_ARCHIVE_DIR", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigurationError, match="HUB_ARCHIVE_DIR: .* not a directory"):
        Settings.from_env()
    monkeypatch.setenv("HUB_ARCHIVE_DIR", str(tmp_path / "archives"))
    monkeypatch.setenv("HUB_RETENTION_DAYS", "365")
    chosen = Settings.from_env()
    assert (chosen.retention_days, chosen.archive_dir) == (365, tmp_path / "archives")
