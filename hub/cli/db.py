"""``hub db …``: migrate the broker's database (Alembic, scripts shipped in the package).

The database is ``--database-url``, else ``HUB_DATABASE_URL``, else the embedded default (SQLite under ``var/``).
"""

from __future__ import annotations

from typing import Callable, Optional

import typer
from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from hub.cli.common import audited
from hub.config import Settings
from hub.errors import HubError
from hub.redaction import redact
from hub.store import migrate

db_app = typer.Typer(no_args_is_help=True, add_completion=False, help="The broker's database: migrations.")

DatabaseUrl = typer.Option(None, "--database-url", help="sqlite:///path or postgresql://…; default: HUB_DATABASE_URL")


def _url(database_url: Optional[str]) -> str:
    # Not from_env(database_url=None): that None currently hides HUB_DATABASE_URL.
    if database_url:
        return database_url
    try:
        return Settings.from_env().database_url
    except ValueError as exc:  # HUB_DATABASE_URL_FILE unreadable, or given twice
        typer.echo(f"error: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from None


def _run(action: Callable[..., object], *args: str) -> None:
    try:
        action(*args)
    except (HubError, CommandError, SQLAlchemyError) as exc:
        typer.echo(f"error: {redact(str(exc))}", err=True)
        raise typer.Exit(2) from None


def _report(url: str) -> None:
    revision = migrate.current(url)
    if revision is None:
        typer.echo("base (not migrated)")
    else:
        typer.echo(f"{revision}{' (head)' if revision == migrate.head() else ''}")


@db_app.command()
@audited("db.upgrade", target="revision")
def upgrade(
    revision: str = typer.Argument("head", help="target revision"),
    database_url: Optional[str] = DatabaseUrl,
) -> None:
    """Migrate the database up to REVISION (the newest by default); creates a new SQLite file."""
    url = _url(database_url)
    _run(migrate.upgrade, url, revision)
    _run(_report, url)


@db_app.command()
@audited("db.downgrade", target="revision")
def downgrade(
    revision: str = typer.Argument(..., help="target revision; 'base' drops every table"),
    database_url: Optional[str] = DatabaseUrl,
) -> None:
    """Migrate the database down to REVISION."""
    url = _url(database_url)
    _run(migrate.downgrade, url, revision)
    _run(_report, url)


@db_app.command()
def current(database_url: Optional[str] = DatabaseUrl) -> None:
    """Print the revision the database is at, marked '(head)' when it is the newest."""
    _run(_report, _url(database_url))
