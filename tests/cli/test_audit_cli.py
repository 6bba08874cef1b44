"""`hub audit show | verify`, and the commands that change the hub's state recorded in the audit log as
`cli:<os user>`, on both engines."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from hub.cli import app
from hub.cli.common import os_user
from hub.signing import init_dev_pki
from hub.store import audit
from hub.store.db import Database


@pytest.fixture
def run(database_url, monkeypatch):
    """``run(*args)``: the hub command on the test database (as HUB_DATABASE_URL says)."""
    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


def _fill(database: Database, count: int) -> None:
    for n in range(count):
        audit.record(database, actor="api:fr-system", action="POST /v1/documents", outcome="202", target=f"id=doc-{n}")


def _entries(database: Database) -> list:
    with database.sessions() as session:
        return list(audit.entries(session))


def test_verify_says_intact_with_the_head_then_names_the_first_broken_entry(run, database):
    _fill(database, 4)
    intact = run("audit", "verify")
    assert intact.exit_code == 0, intact.output
    assert "intact: 4 entries" in intact.stdout
    head = intact.stdout.split("head ")[1].strip()
    assert head == f"4:{_entries(database)[3].entry_hash}"
    # verify itself is recorded (entry 5), after it walked the chain
    assert _entries(database)[-1].action == "audit.verify"
    with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        connection.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    broken = run("audit", "verify")
    assert broken.exit_code == 1
    assert "BROKEN at entry 3" in broken.stderr and "missing" in broken.stderr


def test_verify_against_an_anchor_finds_a_cut_tail(run, database):
    _fill(database, 3)
    anchor = run("audit", "verify").stdout.split("head ")[1].strip()
    assert run("audit", "verify", "--anchor", anchor).exit_code == 0
    with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        connection.execute(text("DELETE FROM audit_log WHERE seq >= 3"))
    assert run("audit", "verify").exit_code == 0  # the chain alone cannot tell its tail was cut…
    cut = run("audit", "verify", "--anchor", anchor)
    assert cut.exit_code == 1 and "BROKEN at entry 3" in cut.stderr  # …the anchor can
    malformed = run("audit", "verify", "--anchor", "3:xyz")
    assert malformed.exit_code == 2 and "anchor" in malformed.stderr and "Traceback" not in malformed.output


def test_show_lists_the_entries_after_since(run, database):
    _fill(database, 3)
    listed = run("audit", "show", "--since", "1")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["2", "3"]
    assert "api:fr-system" in lines[0] and "POST /v1/documents" in lines[0] and "id=doc-1" in lines[0]
    as_json = [json.loads(line) for line in run("audit", "show", "--json", "--limit", "2").stdout.splitlines()]
    assert [(e["seq"], e["outcome"]) for e in as_json] == [(1, "202"), (2, "202")]
    assert as_json[1]["prev_hash"] == as_json[0]["entry_hash"]


def test_state_changing_commands_are_recorded_with_the_os_user_and_their_outcome(run, database, tmp_path):
    pki = init_dev_pki(tmp_path / "certs", authorities=("FR",), rsa_key_bits=2048)
    assert run("db", "upgrade").exit_code == 0
    rotated = run("certs", "rotate", "--country", "FR", "--dir", str(pki.directory))
    assert rotated.exit_code == 0, rotated.output
    refused = run("certs", "rotate", "--country", "XX", "--dir", str(pki.directory))
    assert refused.exit_code == 2
    entries = _entries(database)
    assert [(e.actor, e.action, e.outcome) for e in entries] == [
        (f"cli:{os_user()}", "db.upgrade", "ok"), (f"cli:{os_user()}", "certs.rotate", "ok"), (f"cli:{os_user()}", "certs.rotate", "exit 2")]
    assert entries[0].target == "revision=head"
    assert entries[1].target == f"country=FR directory={pki.directory}"
    with database.sessions() as session:
        assert audit.verify(session).intact


def test_a_database_without_an_audit_log_records_nothing_and_the_command_stands(run, database):
    downgraded = run("db", "downgrade", "0005")
    assert (downgraded.exit_code, downgraded.output) == (0, "0005\n")
    assert run("db", "upgrade").exit_code == 0
    assert [e.action for e in _entries(database)] == ["db.upgrade"]


@pytest.mark.parametrize("url", ["postgresql+psycopg://hub:very-secret-pw@127.0.0.1:9/hub", "mysql://hub:very-secret-pw@db/hub"])
@pytest.mark.parametrize("command", [["audit", "verify"], ["db", "upgrade"], ["trace", "x"]])
def test_secrets_in_a_database_url_are_never_echoed(monkeypatch, url, command):
    monkeypatch.setenv("HUB_DATABASE_URL", url)
    result = CliRunner().invoke(app, command, catch_exceptions=False)
    assert result.exit_code == 2
    assert "error:" in result.stderr and "hub:***@" in result.stderr
    assert "very-secret-pw" not in result.output
