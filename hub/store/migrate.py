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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from hub.store.db import make_engine
from hub.store.models import UTCDateTime

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str, *, connection: Connection | None = None) -> Config:
    """An Alembic configuration for the database at ``url``, using the package's migration scripts.

    When ``connection`` is given, migrations run on it instead of on a new engine; a transaction the caller has
    begun on it stays the caller's to commit.
    """
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
    command.upgrade(alembic_config(url, connection=connection), revision)


def downgrade(url: str, revision: str, *, connection: Connection | None = None) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``base`` empties it)."""
    command.downgrade(alembic_config(url, connection=connection), revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None when it was never migrated."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision among the package's migration scripts."""
    revision = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert revision is not None, "the package ships no migration"
    return revision


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
