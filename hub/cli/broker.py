"""Broker commands of the ``hub`` command line: serve, worker, clients, trace."""

from __future__ import annotations

import time
from typing import Optional

import typer
from sqlalchemy import or_, select

from hub.config import Settings
from hub.errors import HubError

clients_app = typer.Typer(help="API clients: one API key per client, bound to a tenant (the issuing authority).", no_args_is_help=True)


def _settings(database_url: Optional[str]) -> Settings:
    return Settings.from_env(database_url=database_url)


def serve(
    host: str = typer.Option("127.0.0.1", help="address the API listens on"),
    port: int = typer.Option(8000, help="port of the API"),
    worker: bool = typer.Option(True, "--worker/--no-worker", help="run the delivery worker in this process"),
    sandboxes: bool = typer.Option(True, "--sandboxes/--no-sandboxes", help="run the local counterpart sandboxes"),
    sandbox_port: int = typer.Option(8443, help="HTTPS port of the point-to-point sandbox"),
    ephyto_sandbox_port: int = typer.Option(8444, help="HTTPS port of the IPPC ePhyto Hub sandbox"),
    traces_sandbox_port: int = typer.Option(8445, help="HTTPS port of the TRACES-NT sandbox"),
    delta_sandbox_port: int = typer.Option(8446, help="HTTP port (loopback) of the DELTA-G customs sandbox"),
    single_window_sandbox_port: int = typer.Option(8447, help="HTTPS port of the national single-window sandbox"),
    cites_exchange_port: int = typer.Option(8448, help="HTTPS port (mutual TLS) of the hub's CITES permit exchange (0: not served; it needs tls/server.pem in the certs dir)"),
    cites_sandbox_port: int = typer.Option(8449, help="HTTPS port of the foreign CITES management authority sandbox"),
    database_url: Optional[str] = typer.Option(None, envvar="HUB_DATABASE_URL", help="default: SQLite file var/hub.db"),
    public_url: Optional[str] = typer.Option(None, envvar="HUB_PUBLIC_URL", help="where counterparts push acknowledgements"),
) -> None:
    """Run the hub: API, delivery worker and local sandboxes in one process (migrates the database first)."""
    from hub.cli.serve import ServeOptions, serve as run

    settings = Settings.from_env(database_url=database_url, public_url=public_url or f"http://127.0.0.1:{port}")
    run(settings, ServeOptions(host=host, port=port, worker=worker, sandboxes=sandboxes, sandbox_port=sandbox_port, ephyto_sandbox_port=ephyto_sandbox_port, traces_sandbox_port=traces_sandbox_port, delta_sandbox_port=delta_sandbox_port, single_window_sandbox_port=single_window_sandbox_port, cites_exchange_port=cites_exchange_port, cites_sandbox_port=cites_sandbox_port))


def sandbox(
    name: str = typer.Argument("p2p", help="the counterpart to play: p2p (a foreign authority and customs), ephyto_hub, traces_nt, single_window, cites_authority or delta (customs clearance)"),
    port: int = typer.Option(8443, help="port (HTTPS with the development PKI; delta: plain HTTP on loopback)"),
    hub_url: str = typer.Option("http://127.0.0.1:8000", envvar="HUB_PUBLIC_URL", help="the hub: where to push acknowledgements, and the registry delta asks"),
    api_key: Optional[str] = typer.Option(None, envvar="HUB_API_KEY", help="delta: the customs API key (default: var/dev-api-key)"),
    plain_http: bool = typer.Option(False, "--plain-http", help="plain HTTP on loopback, for debugging with any SOAP client (callers are then named in the message, not by certificate)"),
) -> None:
    """Run a counterpart sandbox on its own (``hub serve`` runs it in-process by default)."""
    import asyncio

    from hub.cli.serve import SANDBOXES

    if name not in SANDBOXES:
        typer.echo(f"unknown sandbox {name!r}; known: {', '.join(SANDBOXES)}", err=True)
        raise typer.Exit(2)
    settings = Settings.from_env(public_url=hub_url)
    if name == "delta":
        from hub.cli.serve import DEV_KEY_FILE

        key = api_key or (DEV_KEY_FILE.read_text().strip() if DEV_KEY_FILE.is_file() else None)
        if not key:
            typer.echo("delta needs a customs API key: --api-key, HUB_API_KEY, or run `make run` once to make var/dev-api-key", err=True)
            raise typer.Exit(2)
        server = SANDBOXES[name](settings, port=port, api_key=key)
        typer.echo(f"sandbox delta on http://127.0.0.1:{port}/declarations, asking {hub_url}")
    else:
        server = SANDBOXES[name](settings, port=port, plain_http=plain_http)
        typer.echo(f"sandbox {name} on {'http' if plain_http else 'https'}://127.0.0.1:{port}")
    try:
        asyncio.run(server.serve())
    except KeyboardInterrupt:
        pass


def worker(
    concurrency: Optional[int] = typer.Option(None, help="deliveries in parallel in this process (default HUB_WORKER_CONCURRENCY, 4)"),
    once: bool = typer.Option(False, "--once", help="deliver what is due, then stop"),
    database_url: Optional[str] = typer.Option(None, envvar="HUB_DATABASE_URL"),
) -> None:
    """Deliver the outbox (several workers on several machines share it on PostgreSQL)."""
    from hub.broker import Broker

    settings = Settings.from_env(database_url=database_url, worker_concurrency=concurrency)
    broker = Broker.from_settings(settings)
    delivery = broker.make_worker()
    if once:
        typer.echo(f"{delivery.drain()} message(s) delivered")
        return
    delivery.start()
    typer.echo(f"{delivery.name} delivering with {settings.worker_concurrency} thread(s); Ctrl-C stops")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        delivery.stop()


def fetch_permit(
    number: str = typer.Argument(..., help="the permit or certificate number"),
    url: str = typer.Option(..., "--from", help="the partner's exchange, e.g. https://…/cites/v2/CitesDataExchange"),
    callee: str = typer.Option(..., help="the partner authority's country (IsoCountryCode)"),
    country: str = typer.Option("FR", "--as", help="our country: whose TLS client certificate calls"),
    non_final: bool = typer.Option(False, "--non-final", help="GetNonFinalCitesCertificate instead of the final one"),
    database_url: Optional[str] = typer.Option(None, envvar="HUB_DATABASE_URL"),
) -> None:
    """Fetch a partner authority's CITES permit through its exchange and receive it (verified, validated, stored)."""
    from hub.broker import Broker

    try:
        broker = Broker.from_settings(_settings(database_url))
    except HubError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    try:
        verdict = broker.fetch_permit(url, number, country=country.upper(), callee=callee.upper(), final=not non_final)
    except HubError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)
    finally:
        broker.close()
    typer.echo(f"{verdict.outcome.value}: document {verdict.document_id}" + (f" ({verdict.reason})" if verdict.reason else ""))
    if verdict.document_id is None:
        raise typer.Exit(1)


def connectors(database_url: Optional[str] = typer.Option(None, envvar="HUB_DATABASE_URL")) -> None:
    """List the configured destinations with their health: last success, backlog, dead letters, error rate."""
    from connectors.registry import load_connector_configs
    from hub.notify.health import destination_health, format_table
    from hub.store.db import Database

    settings = _settings(database_url)
    kinds = {name: config.type for name, config in load_connector_configs(settings.connectors_file).items()}
    database = Database(settings.database_url)
    with database.sessions() as session:
        typer.echo(format_table(destination_health(session, kinds)))


@clients_app.command("add")
def clients_add(
    name: str = typer.Argument(..., help="a name for the client, e.g. the issuing system"),
    tenant: str = typer.Option(..., help="issuing authority (ISO country code), or * for an operator"),
    operator: bool = typer.Option(False, help="may read every tenant's documents"),
    database_url: Optional[str] = typer.Option(None, envvar="HUB_DATABASE_URL"),
) -> None:
    """Create a client and print its API key (shown once)."""
    from hub.api.auth import create_client
    from hub.store.db import Database

    database = Database(_settings(database_url).database_url)
    with database.transaction() as session:
        client, key = create_client(session, name=name, tenant=tenant, operator=operator)
    typer.echo(key)
    typer.echo(f"client {client.name} (tenant {client.tenant}{', operator' if client.operator else ''}); keep the key: it is not shown again", err=True)


def trace(
    ident: str = typer.Argument(..., help="a document id, message id or correlation id"),
    database_url: Optional[str] = typer.Option(None, envvar="HUB_DATABASE_URL"),
) -> None:
    """Print the timeline of a document or message, hop by hop."""
    from hub.store.db import Database
    from hub.store.models import Message, TraceEvent
    from hub.store.trace import message_timeline

    database = Database(_settings(database_url).database_url)
    with database.sessions() as session:
        message = session.get(Message, ident)
        if message is not None:
            events = message_timeline(session, message)
        else:
            events = session.scalars(select(TraceEvent).where(or_(TraceEvent.document_id == ident, TraceEvent.correlation_id == ident)).order_by(TraceEvent.id)).all()
        if not events:
            typer.echo(f"nothing traced under {ident}", err=True)
            raise typer.Exit(1)
        typer.echo(f"correlation {events[0].correlation_id}")
        start = events[0].at
        for event in events:
            offset = (event.at - start).total_seconds() * 1000
            where = f" → {event.destination}" if event.destination else ""
            state = f" [{event.state}]" if event.state else ""
            details = ", ".join(f"{k}={v}" for k, v in (event.detail or {}).items() if v not in (None, "", [], {}))
            typer.echo(f"{event.at:%H:%M:%S.%f}"[:-3] + f" +{offset:7.0f} ms  {event.event:<28}{state}{where}  {event.actor}" + (f"  ({details})" if details else ""))
