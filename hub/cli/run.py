"""Running the hub: ``hub serve`` (everything in one process, or the deliveries in ``--workers N`` processes of
their own), ``hub worker`` (delivery only) and ``hub sandbox`` (one counterpart sandbox alone)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Optional

import typer

from hub import eventloop
from hub.allocator import limit_arenas, start_trimming
from hub.cli.common import DatabaseUrl, fail, open_broker, settings
from hub.errors import HubError


def _ports(values: list[str]) -> dict[str, int]:
    from connectors.sandboxes import SANDBOX_TYPES

    ports = {}
    for value in values:
        name, _, number = value.partition("=")
        if name not in SANDBOX_TYPES or not number.isdigit() or not 0 < int(number) < 65536:
            fail(f"--sandbox-port takes NAME=PORT with NAME one of {', '.join(SANDBOX_TYPES)}; got {value!r}")
        ports[name] = int(number)
    return ports


def serve(
    host: str = typer.Option("127.0.0.1", help="address the API listens on"),
    port: int = typer.Option(8000, min=1, max=65535, help="port of the API"),
    worker: bool = typer.Option(True, "--worker/--no-worker", help="run the delivery worker in this process (when --workers is 0)"),
    workers: int = typer.Option(0, "--workers", min=0, max=64, help="deliver in N child `hub worker` processes (same settings and database), restarted if one dies; 0: in this process"),
    sandboxes: bool = typer.Option(True, "--sandboxes/--no-sandboxes", help="run the sandboxes of the configured counterparts"),
    sandbox_port: list[str] = typer.Option([], "--sandbox-port", help="NAME=PORT: another port for a sandbox (p2p, ephyto_hub, traces_nt, delta, single_window, cites_authority); may repeat"),
    cites_exchange_port: int = typer.Option(8448, min=0, max=65535, help="HTTPS port (mutual TLS) of the hub's CITES permit exchange (0: not served; it needs tls/server.pem in the certs dir)"),
    api_tls: bool = typer.Option(False, "--api-tls", help="serve the API over HTTPS (tls/server.pem of the certs dir), asking callers for a client certificate of its CA: for clients registered by certificate"),
    database_url: Optional[str] = DatabaseUrl,
    public_url: Optional[str] = typer.Option(None, envvar="HUB_PUBLIC_URL", help="where counterparts push acknowledgements"),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="-v: a line per request and delivery step; -vv: debug"),
) -> None:
    """Run the hub: API, delivery worker and local sandboxes in one process, or the delivery in ``--workers N``
    processes beside it (migrates the database first)."""
    from hub.cli.serve import ServeOptions, configure_logging, serve as run

    limit_arenas()  # before any thread: each would take an arena of its own
    configure_logging(verbose)
    options = ServeOptions(host=host, port=port, worker=worker, sandboxes=sandboxes, ports={**_ports(sandbox_port), 'cites_exchange': cites_exchange_port}, api_tls=api_tls,
                           workers=workers, verbosity=verbose)
    try:
        run(settings(database_url, public_url=public_url or f"{'https' if api_tls else 'http'}://127.0.0.1:{port}"), options)
    except HubError as exc:
        fail(str(exc))
    except OSError as exc:  # a port already taken, mostly
        fail(f"cannot serve: {exc}")


def worker(
    concurrency: Optional[int] = typer.Option(None, min=1, max=256, help="deliveries in parallel in this process (default HUB_WORKER_CONCURRENCY, 4)"),
    once: bool = typer.Option(False, "--once", help="deliver what is due, then stop"),
    database_url: Optional[str] = DatabaseUrl,
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="-v: a line per delivery step"),
    supervisor: Optional[int] = typer.Option(None, "--supervisor", hidden=True, help="PID of the `hub serve --workers` that started this worker: stop when it is gone"),
) -> None:
    """Deliver the outbox (several workers, processes or machines share it, on SQLite or PostgreSQL); stops on
    Ctrl-C or SIGTERM, finishing the deliveries under way."""
    from hub.cli.serve import configure_logging, freeze_start_up, warm_up

    limit_arenas()
    configure_logging(verbose)
    chosen = settings(database_url, worker_concurrency=concurrency)
    broker = open_broker(chosen, apart=True)  # Alembic never loaded into a process that runs for long
    delivery = broker.make_worker()
    if once:
        typer.echo(f"{delivery.drain()} message(s) delivered")
        broker.close()
        return
    stop = threading.Event()
    # Both signals only ask to stop: a second Ctrl-C while the deliveries under way finish must not cut them short.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    warm_up()
    delivery.start()
    freeze_start_up()
    start_trimming(stop)
    typer.echo(f"{delivery.name} delivering with {chosen.worker_concurrency} thread(s)" + ("" if supervisor else "; Ctrl-C stops"))
    try:
        while not stop.wait(0.5):
            if supervisor and os.getppid() != supervisor:  # gone, and this process handed to another parent
                typer.echo(f"{delivery.name}: the serve process is gone; stopping", err=True)
                break
    finally:
        delivery.stop()
        broker.close()


def sandbox(
    name: str = typer.Argument("p2p", help="the counterpart to play: p2p (a foreign authority and customs), ephyto_hub, traces_nt, single_window, cites_authority or delta (customs clearance)"),
    port: Optional[int] = typer.Option(None, min=1, max=65535, help="port (default: the sandbox's own; HTTPS with the development PKI, delta: plain HTTP)"),
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0 in a container)"),
    hub_url: str = typer.Option("http://127.0.0.1:8000", envvar="HUB_PUBLIC_URL", help="the hub: where to push acknowledgements, and the registry delta asks"),
    exchange_url: Optional[str] = typer.Option(None, help="cites_authority: the hub's CITES exchange (default https://127.0.0.1:8448/cites/v2/CitesDataExchange)"),
    api_key: Optional[str] = typer.Option(None, envvar="HUB_API_KEY", help="delta: the customs API key (default: var/dev-api-key)"),
    plain_http: bool = typer.Option(False, "--plain-http", help="plain HTTP on loopback, for debugging with any SOAP client (callers are then named in the message, not by certificate)"),
) -> None:
    """Run a counterpart sandbox on its own (``hub serve`` runs them in-process by default)."""
    from connectors.sandboxes import SANDBOX_TYPES
    from hub.cli.serve import DEV_KEY_FILE
    from hub.connector import SandboxContext

    if name not in SANDBOX_TYPES:
        fail(f"unknown sandbox {name!r}; known: {', '.join(SANDBOX_TYPES)}")
    kind = SANDBOX_TYPES[name]
    key = api_key or (DEV_KEY_FILE.read_text().strip() if DEV_KEY_FILE.is_file() else None)
    if name == "delta" and not key:
        fail("delta needs a customs API key: --api-key, HUB_API_KEY, or run `make run` once to make var/dev-api-key")
    context = SandboxContext(certs_dir=str(settings().certs_dir), hub_url=hub_url, host=host, plain_http=plain_http, api_key=lambda: key, exchange_url=exchange_url)
    port = port or kind.default_port
    try:
        server = kind.factory(context, port=port)
    except HubError as exc:
        fail(str(exc))
    scheme = "http" if plain_http else kind.scheme
    typer.echo(f"sandbox {name} ({kind.plays}) on {scheme}://{host}:{port}{kind.path.split(' ')[0]}")
    try:
        eventloop.run(server.serve())
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    """Add the run commands to ``app``."""
    app.command(help="Run the hub: API, delivery worker and local sandboxes in one process (--workers N: delivery in N processes).")(serve)
    app.command(help="Run a delivery worker (more processes share the outbox).")(worker)
    app.command(help="Run a counterpart sandbox on its own.")(sandbox)
