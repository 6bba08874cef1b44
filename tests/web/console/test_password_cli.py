"""``hub clients add NAME --password | --password-file``: a person who logs into the console; the password kept as
scrypt only, refused when too short, never both options."""

from __future__ import annotations

from typer.testing import CliRunner

from hub.cli import app
from hub.store.db import Database
from hub.store.models import ApiClient


def hub(url: str, *args: str, input: str | None = None):
    result = CliRunner().invoke(app, [*args, "--database-url", url], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def stored(url: str, name: str) -> ApiClient | None:
    database = Database(url)
    try:
        with database.sessions() as session:
            return session.query(ApiClient).filter_by(name=name).first()
    finally:
        database.dispose()


def test_a_person_is_added_with_a_password_asked_for_or_read_from_a_file(sqlite_database_url, tmp_path):
    url = sqlite_database_url
    asked = hub(url, "clients", "add", "alice", "--role", "operator", "--acts-for", "FR", "--password", input="a fine password\na fine password\n")
    assert asked.exit_code == 0, asked.output
    assert "hub_" not in asked.stdout and "password (console)" in asked.output  # no API key: a person logs in
    alice = stored(url, "alice")
    assert alice.password_hash.startswith("scrypt$") and "a fine password" not in alice.password_hash and alice.key_hash is None
    secret = tmp_path / "bob.txt"
    secret.write_text("another fine one\n", encoding="utf-8")
    assert hub(url, "clients", "add", "bob", "--tenant", "FR", "--password-file", str(secret)).exit_code == 0
    from hub.api.auth import password_matches

    assert password_matches(stored(url, "bob").password_hash, "another fine one") and not password_matches(stored(url, "bob").password_hash, "another fine one\n")


def test_a_bad_password_is_refused_and_nothing_is_stored(sqlite_database_url, tmp_path):
    url = sqlite_database_url
    short = hub(url, "clients", "add", "carol", "--tenant", "FR", "--password", input="short\nshort\n")
    assert short.exit_code != 0 and "10 to 200 characters" in short.output and stored(url, "carol") is None
    missing = hub(url, "clients", "add", "carol", "--tenant", "FR", "--password-file", str(tmp_path / "none.txt"))
    assert missing.exit_code != 0 and "--password-file" in missing.output and "Traceback" not in missing.output
    (tmp_path / "p.txt").write_text("long enough pass", encoding="utf-8")
    both = hub(url, "clients", "add", "carol", "--tenant", "FR", "--password", "--password-file", str(tmp_path / "p.txt"))
    assert both.exit_code != 0 and "not both" in both.output and stored(url, "carol") is None
