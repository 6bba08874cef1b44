"""What every ``hub`` command shares: reading a file or standard input, failing with a message and an exit code
(never a traceback), printing a validation report, opening the hub's database ready for use, and recording a
command that changes the hub's state in its audit log (:func:`audited`)."""

from __future__ import annotations

import functools
import getpass
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, TypeVar

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from hub.config import DEFAULT_DATABASE_URL, Settings
from hub.errors import HubError, RecordError
from hub.redaction import redact
from hub.report import ValidationReport
from hub.store import audit, migrate
from hub.store.db import Database

DEFAULT_CERTS_DIR = Path(os.environ.get("HUB_CERTS_DIR", "certs/dev"))
#: Exit codes, as the README says.
VALID, SEVERE, BAD_INPUT = 0, 1, 2

DatabaseUrl = typer.Option(None, "--database-url", envvar="HUB_DATABASE_URL", help="sqlite:///path or postgresql+psycopg://…; default: SQLite var/hub.db")


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


def fail(message: str, code: int = BAD_INPUT) -> NoReturn:
    """Print ``error: message`` on standard error and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def read_input(path: str) -> bytes:
    """The bytes of ``path``, or of standard input for ``-``."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


def looks_like_json(data: bytes) -> bool:
    """Whether ``data`` starts like JSON (a record) rather than XML (a document)."""
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")


def explain(exc: HubError) -> str:
    """An error as a user reads it: a record's problems one per line with their field paths."""
    if isinstance(exc, RecordError):
        return "invalid record:\n" + "\n".join(f"  {p.path}: {p.message}" for p in exc.problems)
    return str(exc)


def print_report(report: ValidationReport, output: OutputFormat = OutputFormat.text, *, err: bool) -> None:
    """Every finding with its place and messages (English and French), then the summary."""
    if output is OutputFormat.json:
        typer.echo(report.model_dump_json(indent=2), err=err)
        return
    for f in report.findings:
        where = f"{f.xpath}" + (f" (field {f.field})" if f.field else "")
        typer.echo(f"{f.severity.value:<8} {f.rule:<26} {where}\n         {f.message_en}\n         {f.message_fr}", err=err)
    typer.echo(report.summary(), err=err)


def settings(database_url: Optional[str] = None, **overrides: object) -> Settings:
    """The settings from the environment, ``database_url`` and ``overrides`` taking precedence."""
    try:
        return Settings.from_env(database_url=database_url, **overrides)
    except (ValueError, HubError) as exc:  # pydantic's ValidationError, or a ConfigurationError naming the variable
        fail(f"invalid settings: {exc}")


def open_database(settings: Settings, *, apart: bool = False) -> Database:
    """The hub's database, ready for use: the embedded default is migrated on first use; any other database not
    at the newest revision is refused with the command to run (never a "no such table" traceback). ``apart``: both
    in a child process, for a process that runs for long (:func:`hub.store.migrate.upgrade_apart`)."""
    url = settings.database_url
    try:
        if url == DEFAULT_DATABASE_URL:
            (migrate.upgrade_apart if apart else migrate.upgrade)(url)
        else:
            at, newest = migrate.revisions_apart(url) if apart else (migrate.current(url), migrate.head())
            if at != newest:
                state = "is empty" if at is None else f"is at revision {at}, not {newest}"
                fail(f"the database {_safe(url)} {state}: run `hub db upgrade` first", BAD_INPUT)
        return Database(url)
    except (HubError, SQLAlchemyError) as exc:
        fail(f"cannot open the database {_safe(url)}: {redact(str(exc))}")


def open_broker(chosen: Settings, *, apart: bool = False):
    """The broker of ``chosen`` settings, on a database that is there and migrated; a clear one-line failure
    (exit 2) otherwise. The caller closes it. ``apart``: as :func:`open_database`."""
    from hub.broker import Broker  # imported when needed: commands without a broker start faster

    open_database(chosen, apart=apart).dispose()
    try:
        return Broker.from_settings(chosen)
    except HubError as exc:
        fail(str(exc))


def _safe(url: str) -> str:
    """A database URL without its password, for messages."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"


Command = TypeVar("Command", bound=Callable[..., Any])


def audited(action: str, *, target: str | tuple[str, ...] = ()) -> Callable[[Command], Command]:
    """Record every run of a command in the hub's audit log: ``cli:<os user>``, ``action`` (``clients.add``), the
    command's ``target`` parameters (``name=fr-system``), and its outcome (``ok``, ``exit 2``, ``error``), in the
    database its ``database_url`` parameter (else the settings) names. Where there is no audit log yet (no database,
    or one not migrated) nothing is recorded; a database that fails is told on standard error. Either way the
    command's own outcome stands."""
    names = (target,) if isinstance(target, str) else tuple(target)

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            outcome = "error"
            try:
                result = command(*args, **kwargs)
                outcome = "ok"
                return result
            except typer.Exit as exc:
                outcome = "ok" if exc.exit_code == 0 else f"exit {exc.exit_code}"
                raise
            except SystemExit as exc:
                outcome = "ok" if exc.code in (0, None) else f"exit {exc.code}"
                raise
            finally:
                chosen = " ".join(f"{name}={_shown(kwargs[name])}" for name in names if kwargs.get(name) not in (None, "", [], ()))
                record_command(action, target=chosen or None, outcome=outcome, database_url=kwargs.get("database_url"))

        return run  # type: ignore[return-value]

    return decorate


def record_command(action: str, *, outcome: str, target: str | None = None, database_url: str | None = None) -> None:
    """Append one entry for a command to the audit log (see :func:`audited`); never raises."""
    try:
        url = database_url or Settings.from_env().database_url
        parsed = make_url(url)
    except (ValueError, ArgumentError, HubError) as exc:
        typer.echo(f"note: not recorded in the audit log: {str(exc).splitlines()[0]}", err=True)
        return
    if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).is_file()):
        return  # no database yet, so no audit log to write to
    try:
        database = Database(url)
    except (HubError, SQLAlchemyError):
        return  # a database URL that cannot work: the command has said so itself
    try:
        audit.record(database, actor=f"cli:{os_user()}", action=action, target=target, outcome=outcome)
    except SQLAlchemyError as exc:
        # A database not migrated (yet, or any more: `db downgrade`) has no audit log: the command has said so itself.
        if not ("audit_log" in str(exc) and ("no such table" in str(exc) or "does not exist" in str(exc))):
            typer.echo(f"note: not recorded in the audit log: {type(exc).__name__} on {_safe(url)}", err=True)
    finally:
        database.dispose()


def os_user() -> str:
    """Who runs the command, as the operating system knows them."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid-{os.getuid()}"


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)
