"""Operating the hub from the command line: API clients, traces, the counterparts' health, fetching a partner's
CITES permit. Each works on a fresh database (the embedded one is migrated; another is refused with the command to
run)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer
from sqlalchemy import or_, select

from hub.cli.common import DatabaseUrl, SEVERE, audited, fail, open_broker, open_database, settings
from hub.errors import HubError

clients_app = typer.Typer(help="Machine clients: a role, the tenants it works for, and how it authenticates (API key, TLS certificate, signed JWT).", no_args_is_help=True)
_CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@clients_app.command("add")
@audited("clients.add", target="name")
def clients_add(
    name: str = typer.Argument(..., help="a name for the client, e.g. the issuing system (letters, digits, . _ -); its OAuth2 client_id"),
    role: Optional[str] = typer.Option(None, help="issuing_authority (default with --tenant CC), operator, auditor, foreign_authority, administrator (default with --tenant '*')"),
    tenant: Optional[str] = typer.Option(None, help="the client's own country for an issuing or foreign authority (ISO 3166, e.g. FR); '*' makes an administrator"),
    acts_for: Optional[str] = typer.Option(None, "--acts-for", help="CC[,CC]: the authorities an operator acts for, or an auditor reads ('*': every tenant, auditors only)"),
    certificate: Optional[str] = typer.Option(None, help="PEM file: the client authenticates by this TLS client certificate (its SHA-256 fingerprint)"),
    certificate_subject: Optional[str] = typer.Option(None, help="RFC 4514 subject, e.g. 'CN=border,O=DGAL,C=FR': any TLS client certificate the server's CA issued under it"),
    jwt_public_key: Optional[str] = typer.Option(None, "--jwt-public-key", help="PEM public key (or certificate): the client signs JWT assertions for POST /v1/oauth/token"),
    operator: bool = typer.Option(False, hidden=True, help="before roles: read every tenant (now: an administrator)"),
    password: bool = typer.Option(False, "--password", help="a person who logs into the console (/console/login): the password is asked for (twice, not shown)"),
    password_file: Optional[str] = typer.Option(None, "--password-file", help="a person who logs into the console: the password is the first line of this file"),
    database_url: Optional[str] = DatabaseUrl,
) -> None:
    """Create a client. An API key is printed (once) unless the client authenticates by certificate, JWT or password."""
    from hub.api.auth import create_client, grant_for
    from hub.store.models import ApiClient

    if not _CLIENT_NAME.match(name):
        fail(f"client name {name!r}: 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit")
    try:
        grant_for(role=role, tenant=tenant, acts_for=acts_for, operator=operator)  # refused before the database is opened
    except HubError as exc:
        fail(_option_message(exc))
    files = {"certificate": _read_pem(certificate, "--certificate"), "jwt_key": _read_pem(jwt_public_key, "--jwt-public-key"), "password": _password(password, password_file)}
    database = open_database(settings(database_url))
    try:
        with database.transaction() as session:
            if session.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
                fail(f"a client named {name!r} exists already; choose another name")
            client, key = create_client(session, name=name, tenant=tenant, role=role, acts_for=acts_for, operator=operator, certificate_subject=certificate_subject, **files)
            summary = _describe(client)
    except HubError as exc:
        fail(_option_message(exc))
    finally:
        database.dispose()
    if key:
        typer.echo(key)
    typer.echo(f"client {summary}" + ("; keep the key: it is not shown again" if key else ""), err=True)


@clients_app.command("list")
def clients_list(database_url: Optional[str] = DatabaseUrl) -> None:
    """List the clients: name, role, tenants, how each authenticates (never a key)."""
    from hub.store.models import ApiClient

    database = open_database(settings(database_url))
    try:
        with database.sessions() as session:
            for client in session.scalars(select(ApiClient).order_by(ApiClient.name)):
                typer.echo(_describe(client))
    finally:
        database.dispose()


@clients_app.command("remove")
@audited("clients.remove", target="name")
def clients_remove(name: str = typer.Argument(..., help="the client's name"), database_url: Optional[str] = DatabaseUrl) -> None:
    """Remove a client: its key, certificate and tokens stop working (a running hub within a minute)."""
    from sqlalchemy import delete

    from hub.store.models import ApiClient, OAuthAssertion, OAuthToken

    database = open_database(settings(database_url))
    try:
        with database.transaction() as session:
            client = session.scalars(select(ApiClient).where(ApiClient.name == name)).first()
            if client is None:
                fail(f"no client named {name!r} (hub clients list)")
            session.execute(delete(OAuthToken).where(OAuthToken.client_id == client.id))
            session.execute(delete(OAuthAssertion).where(OAuthAssertion.client_id == client.id))
            session.delete(client)
    finally:
        database.dispose()
    typer.echo(f"client {name} removed", err=True)


def _option_message(exc: HubError) -> str:
    """The refusal as one line naming the option at fault (``--acts-for: …``), unless the message names it already."""
    message = getattr(exc, "message", None) or str(exc)
    option = (getattr(exc, "where", None) or "").replace("_", "-")
    return message if not option or option == "name" or message.startswith(option.split("-")[0]) else f"--{option}: {message}"


def _password(asked: bool, path: str | None) -> str | None:
    """The console password: from ``--password-file`` (its first line) or asked for with ``--password``; checked
    (length) before the database is opened."""
    from hub.api.auth import MAX_PASSWORD, MIN_PASSWORD

    if asked and path:
        fail("give --password (asked for) or --password-file, not both")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8").splitlines()[0] if Path(path).stat().st_size <= 4096 else None
        except (OSError, UnicodeDecodeError, IndexError) as exc:
            fail(f"--password-file {path}: cannot be read ({getattr(exc, 'strerror', None) or 'empty or not UTF-8 text'})")
        if value is None:
            fail(f"--password-file {path}: more than 4 KiB; the password is its first line")
    elif asked:
        value = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        return None
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        fail(f"--password: a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return value


def _read_pem(path: str | None, option: str) -> bytes | None:
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        fail(f"{option} {path}: cannot be read ({exc.strerror or exc})")
    if len(data) > 64 * 1024 or b"-----BEGIN " not in data:
        fail(f"{option} {path}: not a PEM file")
    return data


def _describe(client) -> str:
    bound = f"acts for {client.acts_for}" if client.acts_for else f"tenant {client.tenant}"
    ways = [way for way, present in (("API key", client.key_hash), ("TLS certificate sha256 " + (client.certificate_sha256 or "")[:16] + "…", client.certificate_sha256),
                                     (f"TLS certificate subject {client.certificate_subject}", client.certificate_subject), ("signed JWT (POST /v1/oauth/token)", client.jwt_public_key),
                                     ("password (console)", client.password_hash)) if present]
    return f"{client.name} ({client.role}, {bound}; authenticates by {', '.join(ways)})"


@audited("trace.read", target="ident")
def trace(
    ident: str = typer.Argument(..., help="a document id, message id or correlation id"),
    database_url: Optional[str] = DatabaseUrl,
) -> None:
    """Print the timeline of a document or message, hop by hop."""
    from hub.store.models import Message, TraceEvent
    from hub.store.trace import message_timeline

    database = open_database(settings(database_url))
    with database.sessions() as session:
        message = session.get(Message, ident)
        if message is not None:
            events = message_timeline(session, message)
        else:
            events = session.scalars(select(TraceEvent).where(or_(TraceEvent.document_id == ident, TraceEvent.correlation_id == ident)).order_by(TraceEvent.id)).all()
        if not events:
            fail(f"nothing traced under {ident}", SEVERE)
        typer.echo(f"correlation {events[0].correlation_id}")
        start = events[0].at
        for event in events:
            offset = (event.at - start).total_seconds() * 1000
            where = f" → {event.destination}" if event.destination else ""
            state = f" [{event.state}]" if event.state else ""
            details = ", ".join(f"{k}={v}" for k, v in (event.detail or {}).items() if v not in (None, "", [], {}))
            typer.echo(f"{event.at:%H:%M:%S.%f}"[:-3] + f" +{offset:7.0f} ms  {event.event:<28}{state}{where}  {event.actor}" + (f"  ({details})" if details else ""))
    database.dispose()


def connectors(database_url: Optional[str] = DatabaseUrl) -> None:
    """List the configured destinations with their health: last success, backlog, dead letters, error rate."""
    from connectors.registry import load_connector_configs
    from hub.notify.health import destination_health, format_table

    chosen = settings(database_url)
    try:
        kinds = {name: config.type for name, config in load_connector_configs(chosen.connectors_file).items()}
    except HubError as exc:
        fail(str(exc))
    database = open_database(chosen)
    with database.sessions() as session:
        typer.echo(format_table(destination_health(session, kinds)))
    database.dispose()


@audited("fetch-permit", target=("number", "callee"))
def fetch_permit(
    number: str = typer.Argument(..., help="the permit or certificate number"),
    url: str = typer.Option(..., "--from", help="the partner's exchange, e.g. https://…/cites/v2/CitesDataExchange"),
    callee: str = typer.Option(..., help="the partner authority's country (IsoCountryCode)"),
    country: str = typer.Option("FR", "--as", help="our country: whose TLS client certificate calls"),
    non_final: bool = typer.Option(False, "--non-final", help="GetNonFinalCitesCertificate instead of the final one"),
    toolkit: str = typer.Option("2", "--toolkit", help="the ePermit toolkit the partner speaks: 2, or 1 (CBFShip permits)"),
    database_url: Optional[str] = DatabaseUrl,
) -> None:
    """Fetch a partner authority's CITES permit through its exchange and receive it (verified, validated, stored)."""
    broker = open_broker(settings(database_url))
    try:
        if toolkit not in ("1", "2"):
            fail(f"--toolkit is 1 or 2, not {toolkit!r}")
        verdict = broker.fetch_permit(url, number, country=country.upper(), callee=callee.upper(), final=not non_final, version=toolkit)
    except HubError as exc:
        fail(str(exc), SEVERE)
    finally:
        broker.close()
    typer.echo(f"{verdict.outcome.value}: document {verdict.document_id}" + (f" ({verdict.reason})" if verdict.reason else ""))
    if verdict.document_id is None:
        raise typer.Exit(SEVERE)


def register(app: typer.Typer) -> None:
    """Add the operations commands to ``app``."""
    app.command(help="Print the timeline of a document or message.")(trace)
    app.command(help="List the counterparts with their health.")(connectors)
    app.command("fetch-permit", help="Fetch a partner authority's CITES permit through its exchange.")(fetch_permit)
    app.add_typer(clients_app, name="clients")
