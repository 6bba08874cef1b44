"""The long-running processes migrate and check the revision in a child process (hub.store.migrate.upgrade_apart,
revisions_apart), so that Alembic never sits in their memory; the child's failure is theirs, told in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hub.errors import ConfigurationError
from hub.standards import PROJECT_ROOT
from hub.store import migrate


def test_a_fresh_database_is_migrated_apart_and_its_revisions_read_apart(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    assert migrate.revisions_apart(url) == (None, migrate.head())
    migrate.upgrade_apart(url)
    assert migrate.revisions_apart(url) == (migrate.head(), migrate.head())
    assert migrate.current(url) == migrate.head()


def test_a_failed_migration_is_one_line_without_the_password():
    with pytest.raises(ConfigurationError) as raised:
        migrate.upgrade_apart("postgresql://hub:s3cret-pw@127.0.0.1:1/hub")
    message = str(raised.value)
    assert message.startswith("the database could not be migrated: ") and "\n" not in message
    assert "127.0.0.1" in message and "s3cret-pw" not in message


def test_the_url_goes_to_the_child_through_its_environment_not_its_arguments(monkeypatch):
    seen = {}

    def run(arguments, **options):
        seen.update(arguments=arguments, env=options["env"])
        return subprocess.CompletedProcess(arguments, 0, stdout='{"current": "0001", "head": "0002"}', stderr="")

    monkeypatch.setattr(migrate.subprocess, "run", run)
    url = "postgresql://hub:s3cret-pw@db.example/hub"
    assert migrate.revisions_apart(url) == ("0001", "0002")
    assert not any("s3cret-pw" in argument for argument in seen["arguments"])
    assert seen["env"]["HUB_MIGRATE_DATABASE_URL"] == url


def test_the_commands_of_the_long_running_processes_do_not_import_alembic():
    code = "import sys, hub.cli, hub.cli.serve, hub.cli.run, hub.broker; print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako'}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_a_revision_that_cannot_be_read_says_so():
    with pytest.raises(ConfigurationError, match="^the database revision could not be read: "):
        migrate.revisions_apart("postgresql://hub:s3cret-pw@127.0.0.1:1/hub")
