"""`hub db prune` and `hub db restore-archive` on both engines: a JSON summary, a dry run that changes nothing, an
archive that restores what went, clear refusals, every run in the audit log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.store import audit
from tests.store.test_retention import age, delivered, snapshot

FIGURES = {"documents", "events", "attempts", "acknowledgements", "payloads", "bytes_freed", "skipped", "archive_files", "dry_run", "cutoff"}


@pytest.fixture
def run(database_url, monkeypatch):
    """``run(*args)``: the hub command on the test database (as HUB_DATABASE_URL says)."""
    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    for variable in ("HUB_RETENTION_DAYS", "HUB_ARCHIVE_DIR"):
        monkeypatch.delenv(variable, raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def old(broker) -> list[str]:
    """Two certificates delivered and answered 400 days ago."""
    ids = delivered(broker, "FR-CLI-1", "FR-CLI-2")
    for document_id in ids:
        age(broker.database, document_id, 400)
    return ids


def _actions(database) -> list[tuple[str, str | None, str]]:
    with database.sessions() as session:
        return [(e.action, e.target, e.outcome) for e in audit.entries(session)]


def test_a_dry_run_prints_what_would_go_and_changes_nothing(run, broker, old, tmp_path):
    before = snapshot(broker.database)
    result = run("db", "prune", "--older-than", "365d", "--archive", str(tmp_path / "archive"), "--dry-run")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) == FIGURES
    assert summary["dry_run"] is True and summary["documents"] == 2 and summary["events"] > 0 and summary["attempts"] == 4
    assert summary["archive_files"] == [] and not (tmp_path / "archive").exists()
    after = snapshot(broker.database)
    assert {k: v for k, v in after.items() if k != "audit"} == {k: v for k, v in before.items() if k != "audit"}
    assert _actions(broker.database)[-1] == ("db.prune", f"older_than=365d archive={tmp_path / 'archive'} dry_run=True", "ok")


def test_prune_into_an_archive_then_restore_it(run, broker, old, tmp_path):
    before = snapshot(broker.database)
    pruned = run("db", "prune", "--older-than", "365d", "--archive", str(tmp_path / "archive"))
    assert pruned.exit_code == 0, pruned.output
    summary = json.loads(pruned.stdout)
    assert summary["documents"] == 2 and summary["dry_run"] is False and len(summary["archive_files"]) == 1
    archive = Path(summary["archive_files"][0])
    assert archive.parent == tmp_path / "archive" and archive.name.startswith("hub-archive-")
    again = json.loads(run("db", "prune", "--older-than", "365d", "--archive", str(tmp_path / "archive")).stdout)
    assert (again["documents"], again["archive_files"]) == (0, [])

    restored = run("db", "restore-archive", str(archive))
    assert restored.exit_code == 0, restored.output
    figures = json.loads(restored.stdout)
    assert (figures["documents"], figures["events"], figures["attempts"]) == (2, summary["events"], summary["attempts"])
    after = snapshot(broker.database)
    assert {k: v for k, v in after.items() if k != "audit"} == {k: v for k, v in before.items() if k != "audit"}
    twice = json.loads(run("db", "restore-archive", str(archive)).stdout)
    assert (twice["events"], twice["attempts"], twice["payloads"]) == (0, 0, 0)
    actions = [a for a, _, _ in _actions(broker.database)]
    assert actions[-4:] == ["db.prune", "db.prune", "db.restore-archive", "db.restore-archive"]


def test_the_settings_give_the_age_and_the_archive(run, broker, old, tmp_path, monkeypatch):
    refused = run("db", "prune")
    assert refused.exit_code == 2 and "--older-than" in refused.stderr and "HUB_RETENTION_DAYS" in refused.stderr
    monkeypatch.setenv("HUB_RETENTION_DAYS", "365")
    monkeypatch.setenv("HUB_ARCHIVE_DIR", str(tmp_path / "kept"))
    result = run("db", "prune")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["documents"] == 2 and Path(summary["archive_files"][0]).parent == tmp_path / "kept"


@pytest.mark.parametrize("age, message", [("1y", "'1y' is not a positive age"), ("0d", "'0d' is not a positive age"), ("100000000000d", "too long")])
def test_a_bad_age_is_refused(run, broker, age, message):
    result = run("db", "prune", "--older-than", age)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


def test_a_damaged_or_missing_archive_is_refused_naming_it(run, broker, tmp_path):
    damaged = tmp_path / "hub-archive-damaged.jsonl.gz"
    damaged.write_bytes(b"\x1f\x8b not really gzip")
    result = run("db", "restore-archive", str(damaged))
    assert result.exit_code == 2 and str(damaged) in result.stderr and "gzip" in result.stderr
    missing = run("db", "restore-archive", str(tmp_path / "nowhere.jsonl.gz"))
    assert missing.exit_code == 2 and "no such archive file" in missing.stderr
    assert _actions(broker.database)[-1][::2] == ("db.restore-archive", "exit 2")
