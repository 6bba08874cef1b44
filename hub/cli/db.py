"""``hub db …``: migrate the broker's database (Alembic, scripts shipped in the package); prune old history into an
archive and restore it (:mod:`hub.store.retention`).

The database is ``--database-url``, else ``HUB_DATABASE_URL``, else the embedded default (SQLite under ``var/``).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Callable, Optional

import typer
from sqlalchemy.exc import SQLAlchemyError

from hub.cli.common import audited, open_database, settings
from hub.config import Settings
from hub.errors import HubError
from hub.redaction import redact
from hub.store import migrate, retention

db_app = typer.Typer(no_args_is_help=True, add_completion=False, help="The broker's database: migrations, retention.")

DatabaseUrl = typer.Option(None, "--database-url", help="sqlite:///path or postgresql://…; default: HUB_DATABASE_URL")


def _url(database_url: Optional[str]) -> str:
    # Not from_env(database_url=None): that None currently hides HUB_DATABASE_URL.
    if database_url:
        return database_url
    try:
        return Settings.from_env().database_url
    except (ValueError, HubError) as exc:  # HUB_DATABASE_URL_FILE unreadable, or given twice; a setting refused
        typer.echo(f"error: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from None


def _run(action: Callable[..., object], *args: str) -> None:
    from alembic.util import CommandError  # here: importing Alembic costs every other command of the hub its time

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


_AGE = re.compile(r"\s*(\d+)\s*([dhw]?)\s*")
_UNITS = {"": "days", "d": "days", "h": "hours", "w": "weeks"}


def _age(value: str | None) -> timedelta:
    """``--older-than``: ``365d``, ``12h``, ``2w`` (a bare number is days); else ``HUB_RETENTION_DAYS``."""
    if value is None:
        days = settings().retention_days
        if not days:
            typer.echo("error: --older-than: say how old history must be to go (e.g. 365d), or set HUB_RETENTION_DAYS", err=True)
            raise typer.Exit(2)
        return timedelta(days=days)
    found = _AGE.fullmatch(value)
    if not found or int(found.group(1)) == 0:
        typer.echo(f"error: --older-than: {value!r} is not a positive age: say 365d, 12h or 2w", err=True)
        raise typer.Exit(2)
    try:
        return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    except OverflowError:
        typer.echo(f"error: --older-than: {value!r} is too long an age", err=True)
        raise typer.Exit(2) from None


def _database(database_url: Optional[str]):
    return open_database(Settings(database_url=_url(database_url)))


@db_app.command()
@audited("db.prune", target=("older_than", "archive", "dry_run"))
def prune(
    older_than: Optional[str] = typer.Option(None, "--older-than", help="age of the last change: 365d, 12h, 2w; default: HUB_RETENTION_DAYS"),
    archive: Optional[Path] = typer.Option(None, "--archive", help="directory of the archive files; default: HUB_ARCHIVE_DIR, else no archive"),
    dry_run: bool = typer.Option(False, "--dry-run", help="count what would go; change and write nothing"),
    batch: int = typer.Option(1000, "--batch", min=1, max=100_000, help="documents per transaction (and per archive file)"),
    database_url: Optional[str] = DatabaseUrl,
) -> None:
    """Archive, then delete, the trace events, delivery attempts and raw payloads of documents settled longer ago
    than --older-than (documents, messages, answers, non-conformities and signed certificates stay). Prints a JSON
    summary."""
    age = _age(older_than)
    if archive is None:
        archive = settings().archive_dir
    database = _database(database_url)
    try:
        report = retention.prune(database, older_than=age, archive_dir=archive, batch=batch, dry_run=dry_run)
    except (HubError, SQLAlchemyError, OSError) as exc:
        typer.echo(f"error: {redact(str(exc))}", err=True)
        raise typer.Exit(2) from None
    finally:
        database.dispose()
    typer.echo(json.dumps(report.as_dict(), indent=2))


@db_app.command("restore-archive")
@audited("db.restore-archive", target="file")
def restore_archive(
    file: Path = typer.Argument(..., help="an archive file written by `hub db prune` (hub-archive-….jsonl.gz)"),
    database_url: Optional[str] = DatabaseUrl,
) -> None:
    """Put back what an archive file holds (trace events, delivery attempts, raw payloads); what is there already
    stays, so restoring twice is restoring once. Prints a JSON summary."""
    database = _database(database_url)
    try:
        report = retention.restore(database, file)
    except (HubError, SQLAlchemyError) as exc:
        typer.echo(f"error: {redact(str(exc))}", err=True)
        raise typer.Exit(2) from None
    finally:
        database.dispose()
    typer.echo(json.dumps(report.as_dict(), indent=2))
