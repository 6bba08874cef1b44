"""Alembic migrations of the broker's store, run from Python: no alembic.ini, nothing read from the working directory.

The scripts live in the package (``hub/store/migrations``); ``alembic_config`` points Alembic at them and at one
database. To write a revision after changing ``hub.store.models``, compare them with a scratch SQLite database
at head (SQLite makes autogenerate render batch operations, which PostgreSQL runs as plain ALTERs)::

    from alembic import command
    from hub.store.migrate import alembic_config, upgrade
    upgrade("sqlite:////tmp/scratch.db")
    command.revision(alembic_config("sqlite:////tmp/scratch.db"), message="what changed", autogenerate=True,
                     rev_id="0002")

then read and tidy the generated file; ``tests/store/test_database.py`` checks that the migrations equal the models.

Alembic (with Mako) is imported by the functions that use it, not by this module: the long-running processes
(``hub serve``, ``hub worker``) migrate and check the revision in a child process (:func:`upgrade_apart`,
:func:`revisions_apart`), so that the ten megabytes Alembic's modules take never sit in their memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from hub.errors import ConfigurationError
from hub.redaction import redact
from hub.store.db import make_engine
from hub.store.models import UTCDateTime

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str, *, connection: Connection | None = None) -> Config:
    """An Alembic configuration for the database at ``url``, using the package's migration scripts.

    When ``connection`` is given, migrations run on it instead of on a new engine; a transaction the caller has
    begun on it stays the caller's to commit.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    # ConfigParser interpolates '%', which URL-encoded passwords contain.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str, revision: str = "head", *, connection: Connection | None = None) -> None:
    """Migrate the database at ``url`` up to ``revision`` (the newest by default)."""
    from alembic import command

    command.upgrade(alembic_config(url, connection=connection), revision)


def downgrade(url: str, revision: str, *, connection: Connection | None = None) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``base`` empties it)."""
    from alembic import command

    command.downgrade(alembic_config(url, connection=connection), revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision among the package's migration scripts."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert revision is not None, "the package ships no migration"
    return revision


def upgrade_apart(url: str) -> None:
    """:func:`upgrade` to the newest revision, in a child process (see the module's docstring); raises
    :class:`~hub.errors.ConfigurationError` with the child's reason when it fails."""
    _apart("upgrade", url)


def revisions_apart(url: str) -> tuple[str | None, str]:
    """``(current(url), head())``, read in a child process (see the module's docstring); raises
    :class:`~hub.errors.ConfigurationError` with the child's reason when it fails."""
    revisions = json.loads(_apart("revisions", url))
    return revisions["current"], revisions["head"]


def _apart(action: str, url: str) -> str:
    """The last line the child printed for ``action``."""
    # The URL goes through the environment, never the command line: other users may read a process's arguments.
    done = subprocess.run([sys.executable, "-m", __name__, action], env={**os.environ, _URL_VARIABLE: url},
                          capture_output=True, text=True, timeout=_APART_TIMEOUT, check=False)
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        failed = "could not be migrated" if action == "upgrade" else "revision could not be read"
        raise ConfigurationError(f"the database {failed}: {redact(reason[0])}")
    return (done.stdout.strip().splitlines() or [""])[-1]


_URL_VARIABLE = "HUB_MIGRATE_DATABASE_URL"
#: Seconds a migration in a child process may take (a long one on a big PostgreSQL store, at an upgrade).
_APART_TIMEOUT = 3600


def _main(action: str) -> int:
    """The child's side of :func:`_apart`: one line on standard error and exit code 2 when it fails."""
    from alembic.util import CommandError

    url = os.environ[_URL_VARIABLE]
    try:
        if action == "upgrade":
            upgrade(url)
        else:
            print(json.dumps({"current": current(url), "head": head()}))
    except (ConfigurationError, CommandError, sa.exc.SQLAlchemyError) as exc:
        print(" ".join(str(exc).split()), file=sys.stderr)
        return 2
    return 0


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Autogenerate hook: write the store's custom column types as plain SQLAlchemy types, so that revisions never
    import the models (a revision must keep working after the models change)."""
    if type_ != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    variants = getattr(obj, "_variant_mapping", {})
    if isinstance(obj, sa.BigInteger) and set(variants) == {"sqlite"} and isinstance(variants["sqlite"], sa.Integer):
        return 'sa.BigInteger().with_variant(sa.Integer(), "sqlite")'
    return False


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
