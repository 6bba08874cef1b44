"""Operating the hub from the command line: API clients, traces, the counterparts' health, fetching a partner's
CITES permit. Each works on a fresh database (the embedded one is migrated; another is refused with the command to
run)."""

from __future__ import annotations

import re
from typing import Optional

import typer
from sqlalchemy import or_, select

from hub.cli.common import DatabaseUrl, SEVERE, fail, open_database, settings
from hub.errors import HubError

clients_app = typer.Typer(help="API clients: one API key per client, bound to a tenant (the issuing authority).", no_args_is_help=True)
_CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_TENANT = re.compile(r"^[A-Z]{2}$")


@clients_app.command("add")
def clients_add(
    name: str = typer.Argument(..., help="a name for the client, e.g. the issuing system (letters, digits, . _ -)"),
    tenant: str = typer.Option(..., help="issuing authority (ISO 3166 country code, e.g. FR), or * for an operator"),
    operator: bool = typer.Option(False, help="may read every tenant's documents"),
    database_url: Optional[str] = DatabaseUrl,
) -> None:
    """Create a client and print its API key (shown once)."""
    from hub.api.auth import create_client
    from hub.store.models import ApiClient

    if not _CLIENT_NAME.match(name):
        fail(f"client name {name!r}: 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit")
    tenant = tenant.strip().upper()
    if tenant != "*" and not _TENANT.match(tenant):
        fail(f"tenant {tenant!r}: an ISO 3166 country code of two letters (e.g. FR), or * for an operator")
    database = open_database(settings(database_url))
    try:
        with database.transaction() as session:
            if session.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
                fail(f"a client named {name!r} exists already; choose another name")
            client, key = create_client(session, name=name, tenant=tenant, operator=operator)
    finally:
        database.dispose()
    typer.echo(key)
    typer.echo(f"client {client.name} (tenant {client.tenant}{', operator' if client.operator else ''}); keep the key: it is not shown again", err=True)


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
    from hub.broker import Broker

    chosen = settings(database_url)
    open_database(chosen).dispose()
    try:
        broker = Broker.from_settings(chosen)
    except HubError as exc:
        fail(str(exc))
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
