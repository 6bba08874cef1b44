"""``hub serve``: the API, the delivery worker, the hub's CITES exchange and the sandboxes of the configured
counterparts, in one process and one event loop; ``hub worker`` delivers only, for more processes and machines.
With ``--workers N`` the delivery runs instead in N child ``hub worker`` processes that ``hub serve`` supervises
(:class:`WorkerProcesses`), so that the API and the deliveries use more than one core.

What the hub hosts comes from the registries: a sandbox per configured connector type, and the sandboxes that call
the hub (customs, a foreign CITES authority), each on its registered port unless ``ports`` says otherwise.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from sqlalchemy import select

from connectors.registry import hosted_sandboxes
from connectors.sandboxes import CITES_EXCHANGE_PORT
from hub import eventloop, families
from hub.allocator import start_trimming
from hub.api.auth import create_client, find_client
from hub.broker import Broker
from hub.config import DEFAULT_DATABASE_URL, Settings
from hub.connector import SandboxContext
from hub.errors import ConfigurationError, HubError
from hub.standards import PROJECT_ROOT
from hub.store.migrate import upgrade_apart
from hub.store.models import ApiClient
from hub.tls_peer import PeerCertificate
from hub.web.app import create_site

log = logging.getLogger("hub.serve")
http_log = logging.getLogger("hub.http")
DEV_KEY_FILE = PROJECT_ROOT / "var" / "dev-api-key"


@dataclass
class ServeOptions:
    """How ``hub serve`` runs: ``ports`` overrides a sandbox's registered port by name (``cites_exchange`` is the
    hub's own permit exchange; 0 does not serve it)."""

    host: str = "127.0.0.1"
    port: int = 8000
    worker: bool = True
    sandboxes: bool = True
    ports: dict[str, int] = field(default_factory=dict)
    migrate: bool = True
    dev_key: bool | None = None  # None: only on the embedded default database
    api_tls: bool = False  # the API over HTTPS, asking callers for a client certificate (mutual TLS clients)
    workers: int = 0  # delivery in this many child `hub worker` processes; 0: the worker runs in this process
    verbosity: int = 0  # -v count, handed on to the worker processes

    def port_of(self, name: str, default: int) -> int:
        return self.ports.get(name, default)


def development_key(broker: Broker, key_file: Path = DEV_KEY_FILE) -> str:
    """The development API key (tenant FR), made once and kept in ``var/dev-api-key`` (git-ignored)."""
    key = key_file.read_text().strip() if key_file.is_file() else None
    with broker.database.transaction() as session:
        if key and find_client(session, key):
            return key
        _client, key = create_client(session, name=f"dev-{os.urandom(3).hex()}", tenant="FR")
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


DEV_PERSON_FILE = PROJECT_ROOT / "var" / "dev-console-login"


def development_person(broker: Broker, login_file: Path = DEV_PERSON_FILE) -> tuple[str, str]:
    """The development console login (an administrator: sees every tenant, may resend and abandon), made once and
    kept in ``var/dev-console-login`` (git-ignored, mode 0600): (name, password)."""
    if login_file.is_file():
        name, _, password = login_file.read_text().strip().partition(" ")
        with broker.database.sessions() as session:
            if name and session.scalar(select(ApiClient.id).where(ApiClient.name == name)):
                return name, password
    name, password = f"dev-{os.urandom(2).hex()}", secrets.token_urlsafe(12)
    with broker.database.transaction() as session:
        create_client(session, name=name, role="administrator", password=password)
    login_file.parent.mkdir(parents=True, exist_ok=True)
    login_file.write_text(f"{name} {password}\n")
    login_file.chmod(0o600)
    return name, password


def customs_key(broker: Broker) -> str:
    """A key for a sandbox that plays customs when there is no development key: a client of tenant FR made for
    this run."""
    with broker.database.transaction() as session:
        return create_client(session, name=f"customs-sandbox-{os.urandom(3).hex()}", tenant="FR")[1]


def cites_exchange_server(broker: Broker, *, host: str, port: int) -> uvicorn.Server:
    """The hub's own CITES permit exchange (EPIX style) over HTTPS with mutual TLS: foreign management authorities
    fetch permits by number and confirm the quantities they inspected; the caller is its client certificate's C=."""
    from connectors.cites_p2p.service import create_exchange_app
    from connectors.serving import serve_sandbox

    app = create_exchange_app(broker.database, certs_dir=broker.settings.certs_dir, signer_for=broker.signer_for)
    return serve_sandbox(app, host=host, port=port, certs_dir=Path(broker.settings.certs_dir))


class RequestLog:
    """ASGI middleware: one line per HTTP request (method, path, status, milliseconds) on ``hub.http``."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not http_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), {"code": 500}

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            http_log.info("%s %s %s %.0f ms", scope["method"], scope["path"], status["code"], (time.perf_counter() - started) * 1000)


def configure_logging(verbosity: int) -> None:
    """Quiet by default (warnings); ``-v``: a line per request and per delivery step; ``-vv``: debug."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname).1s %(name)s  %(message)s", datefmt="%H:%M:%S")
    for name in ("hub", "connectors"):
        logging.getLogger(name).setLevel(level)
    logging.getLogger("hub.serve").setLevel(min(level, logging.INFO))
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.setLevel(logging.WARNING if verbosity < 2 else logging.INFO)
    uvicorn_log.addFilter(_idle_connections_at_stop)


def _idle_connections_at_stop(record: logging.LogRecord) -> bool:
    # Counterparts keep idle keep-alive connections to the hub; closing them at stop is no error of the operator's.
    return not str(record.msg).startswith(("Cancel ", "Waiting for connections to close"))


def api_server(app, *, host: str, port: int, tls_from: Path | None = None) -> uvicorn.Server:
    """The API's server: plain HTTP, or with ``tls_from`` (a certs directory: ``tls/server.pem``/``.key``,
    ``ca.pem``) HTTPS that asks every caller for a client certificate issued by that CA and verifies the one given
    (a client without one still authenticates by API key or token; one registered by its certificate needs it)."""
    settings = dict(lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=3)
    if tls_from is None:
        return uvicorn.Server(uvicorn.Config(app, host=host, port=port, **settings))
    files = [tls_from / "tls" / "server.pem", tls_from / "tls" / "server.key", tls_from / "ca.pem"]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise ConfigurationError(f"--api-tls needs {', '.join(missing)} (run `hub certs init`)")
    return uvicorn.Server(uvicorn.Config(PeerCertificate(app), host=host, port=port, ssl_certfile=str(files[0]), ssl_keyfile=str(files[1]),
                                         ssl_ca_certs=str(files[2]), ssl_cert_reqs=ssl.CERT_OPTIONAL, **settings))


def _servers(broker: Broker, options: ServeOptions, *, api_key) -> list[tuple[str, uvicorn.Server]]:
    app = create_site(broker)  # the API and the pages (console, public verification)
    api = api_server(RequestLog(app), host=options.host, port=options.port, tls_from=Path(broker.settings.certs_dir) if options.api_tls else None)
    api.hub_app = app  # the worker reports delivery timings to the app's metrics
    servers = [("api", api)]
    exchange_port = options.port_of("cites_exchange", CITES_EXCHANGE_PORT)
    if exchange_port and (Path(broker.settings.certs_dir) / "tls" / "server.pem").is_file():
        servers.append(("cites_exchange", cites_exchange_server(broker, host=options.host, port=exchange_port)))
    else:
        log.warning("the CITES permit exchange is not served: port 0, or no TLS server certificate in %s/tls", broker.settings.certs_dir)
    if options.sandboxes:
        context = SandboxContext(
            certs_dir=str(broker.settings.certs_dir), hub_url=broker.settings.public_url,
            ports={"cites_exchange": exchange_port, **options.ports}, api_key=api_key,
        )
        for sandbox in hosted_sandboxes({name: c.config for name, c in broker.connectors.items()}):
            servers.append((sandbox.name, sandbox.factory(context, port=options.port_of(sandbox.name, sandbox.default_port))))
    return servers


def taken_ports(servers: list[tuple[str, uvicorn.Server]]) -> list[str]:
    """The servers whose address is already in use, each as ``name (host:port)``."""
    taken = []
    for name, server in servers:
        with socket.socket(socket.AF_INET6 if ":" in server.config.host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
            try:
                probe.bind((server.config.host, server.config.port))
            except OSError:
                taken.append(f"{name} ({server.config.host}:{server.config.port})")
    return taken


def warm_up() -> None:
    """Compile what the first document would: every family's mapping specs, schemas and code lists, by rendering
    (and validating) each bundled example record in every profile and reading the default one back."""
    for path in sorted(PROJECT_ROOT.glob("mappings/*/*/examples/*.record.json")):
        try:
            data = json.loads(path.read_text())
            family = families.for_data(data)
            record = family.from_data(data)
            for profile in family.profiles:
                element, _report = family.render(record, profile=profile)
                if profile == family.default_profile:
                    family.parse(element)
        except (OSError, ValueError, HubError) as exc:  # a warm-up only: the first document pays instead
            log.debug("warm-up skipped %s: %s", path.name, exc)


def freeze_start_up() -> None:
    """Move every object alive after start-up out of the garbage collector's sight."""
    gc.freeze()  # start-up's objects live as long as the process: the collector walking them took 15-18% of parse/validate


#: Seconds before a worker process that keeps dying is started again: the first wait, doubled up to the longest.
RESTART_BACKOFF = (0.5, 15.0)
#: A worker process that ran this long before dying is started again after the first wait.
STEADY_SECONDS = 30.0
#: How long the worker processes have to finish what they send once told to stop, before they are killed.
WORKER_STOP_SECONDS = 30.0


class WorkerProcesses:
    """``count`` child ``hub worker`` processes on the serve process's settings (same environment, database and
    public address), supervised by :meth:`supervise`: one that dies is started again after a back-off that doubles
    while it keeps dying young. :meth:`stop` sends SIGTERM (each finishes what it sends), then SIGKILL to those
    still running after ``stop_timeout`` seconds."""

    def __init__(self, count: int, *, settings: Settings, verbosity: int = 0, stop_timeout: float = WORKER_STOP_SECONDS) -> None:
        self.count = count
        self.stop_timeout = stop_timeout
        self.command = [sys.executable, "-m", "hub", "worker", "--supervisor", str(os.getpid()), *(["-" + "v" * verbosity] if verbosity > 0 else [])]
        environment = {name: value for name, value in os.environ.items() if name != "HUB_DATABASE_URL_FILE"}
        self.environment = {**environment, "HUB_DATABASE_URL": settings.database_url, "HUB_PUBLIC_URL": settings.public_url}
        self.processes: list[subprocess.Popen] = []
        self._stopping = False

    def start(self) -> None:
        """Start every worker process."""
        self.processes = [self._spawn(slot) for slot in range(self.count)]

    def _spawn(self, slot: int) -> subprocess.Popen:
        # A process group of its own: Ctrl-C at a terminal reaches this process only, which stops the API first,
        # then the workers. A worker whose serve process is gone stops by itself (``--supervisor``).
        process = subprocess.Popen(self.command, env=self.environment, process_group=0)
        log.info("worker process %d of %d started (pid %d)", slot + 1, self.count, process.pid)
        return process

    async def supervise(self, *, every: float = 0.2) -> None:
        """Start again, after its back-off, each worker process that dies, until :meth:`stop`."""
        started = [time.monotonic()] * self.count
        backoff = [RESTART_BACKOFF[0]] * self.count
        restart_at: list[float | None] = [None] * self.count
        while not self._stopping:
            now = time.monotonic()
            for slot, process in enumerate(self.processes):
                if restart_at[slot] is not None:
                    if now >= restart_at[slot]:
                        try:
                            self.processes[slot], started[slot], restart_at[slot] = self._spawn(slot), now, None
                        except OSError as exc:  # no process to be had now (too many, no memory): try again later
                            log.error("worker process %d could not be started: %s; trying again in %.1f s", slot + 1, exc, backoff[slot])
                            restart_at[slot], backoff[slot] = now + backoff[slot], min(backoff[slot] * 2, RESTART_BACKOFF[1])
                    continue
                code = process.poll()
                if code is None:
                    continue
                if now - started[slot] >= STEADY_SECONDS:
                    backoff[slot] = RESTART_BACKOFF[0]
                delay, backoff[slot] = backoff[slot], min(backoff[slot] * 2, RESTART_BACKOFF[1])
                log.warning("worker process %d (pid %d) %s; starting it again in %.1f s", slot + 1, process.pid, _exit_status(code), delay)
                restart_at[slot] = now + delay
            await asyncio.sleep(every)

    async def stop(self) -> None:
        """Stop every worker process: SIGTERM, then SIGKILL after ``stop_timeout``; none is started again."""
        self._stopping = True
        running = [process for process in self.processes if process.poll() is None]
        for process in running:
            _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(process.poll() is None for process in running) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for process in running:
            if process.poll() is None:
                log.warning("worker process (pid %d) still running %g s after SIGTERM: killed", process.pid, self.stop_timeout)
                _signal(process, signal.SIGKILL)
                await asyncio.to_thread(process.wait)


def _signal(process: subprocess.Popen, signum: signal.Signals) -> None:
    try:
        process.send_signal(signum)
    except ProcessLookupError:
        pass  # gone between the check and the signal


def _exit_status(code: int) -> str:
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


async def _serve(broker: Broker, options: ServeOptions, *, api_key) -> None:
    servers = _servers(broker, options, api_key=api_key)
    taken = taken_ports(servers)
    if taken:
        raise ConfigurationError(f"address already in use: {', '.join(taken)}; stop the process holding it (another `hub serve`?), or move it with --port / --sandbox-port NAME=PORT")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    for _name, server in servers:
        server.config.install_signal_handlers = False  # Ctrl-C and SIGTERM stop everything in order, below
    worker = broker.make_worker() if options.worker and not options.workers else None
    processes = WorkerProcesses(options.workers, settings=broker.settings, verbosity=options.verbosity) if options.workers else None
    warm_up()
    if worker:
        histogram = servers[0][1].hub_app.state.metrics.delivery_seconds
        worker.observe_delivery = lambda destination, seconds: histogram.labels(destination=destination).observe(seconds)
        worker.start()
    if processes:
        processes.start()
        supervising = asyncio.create_task(processes.supervise(), name="worker processes")
    freeze_start_up()
    stop_trimming = threading.Event()
    start_trimming(stop_trimming)
    running = [asyncio.create_task(server.serve(), name=name) for name, server in servers]
    try:
        # Until asked to stop, or until a server stops by itself (it could not start, say).
        waiting = asyncio.create_task(stopping.wait())
        await asyncio.wait([waiting, *running], return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        log.info("stopping")
        servers[0][1].should_exit = True  # the API first: no new submission while the rest winds down
        await asyncio.gather(running[0], return_exceptions=True)
    finally:
        # The worker first, while the counterparts still answer: what it was sending finishes, and its connections
        # close, so that no server waits on an idle keep-alive connection to stop.
        if worker:
            log.info("stopping the delivery worker")
            await asyncio.to_thread(worker.stop)
        if processes:
            log.info("stopping the %d worker processes", options.workers)
            supervising.cancel()
            await processes.stop()
        for _name, server in servers[1:]:
            server.should_exit = True
        await asyncio.gather(*running, return_exceptions=True)
        stop_trimming.set()
        log.info("stopped")


def banner(broker: Broker, options: ServeOptions, key: str | None, person: tuple[str, str] | None = None) -> str:
    """What ``hub serve`` prints once started: where the API, the console, the exchange and each sandbox listen."""
    scheme = "https" if options.api_tls else "http"
    lines = [f"  API      {scheme}://{options.host}:{options.port}   (OpenAPI: /docs)"]
    if key:
        lines.append(f"  API key  {key}   (tenant FR, development only; kept in var/dev-api-key)")
    if person:
        lines.append(f"  console  {scheme}://{options.host}:{options.port}/console   log in as {person[0]}, password {person[1]} (development only; var/dev-console-login)")
    lines.append(f"  verify   {scheme}://{options.host}:{options.port}/verify   (public: a certificate's number and code)")
    if options.sandboxes:
        for sandbox in hosted_sandboxes({name: c.config for name, c in broker.connectors.items()}):
            port = options.port_of(sandbox.name, sandbox.default_port)
            lines.append(f"  sandbox  {sandbox.scheme}://127.0.0.1:{port}{sandbox.path.split(' ')[0]}   {sandbox.plays}")
    exchange = options.port_of("cites_exchange", CITES_EXCHANGE_PORT)
    if exchange:
        lines.append(f"  CITES    https://127.0.0.1:{exchange}/cites/v2/CitesDataExchange   (the hub's permit exchange, mutual TLS)")
    if options.workers:
        lines.append(f"  delivery {options.workers} worker process{'es' if options.workers > 1 else ''} (`hub worker`), started again if one dies")
    elif options.worker:
        lines.append("  delivery in this process (--workers N: in N processes of their own)")
    else:
        lines.append("  delivery not here (--no-worker): run `hub worker`")
    lines.append("  Ctrl-C stops; -v logs every request and delivery step")
    return "\n" + "\n".join(lines) + "\n"


def serve(settings: Settings, options: ServeOptions) -> None:
    """Run until interrupted (Ctrl-C or SIGTERM), then stop every server and the worker cleanly."""
    if options.migrate:
        upgrade_apart(settings.database_url)
    broker = Broker.from_settings(settings)
    key = person = None
    if options.dev_key if options.dev_key is not None else settings.database_url == DEFAULT_DATABASE_URL:
        key, person = development_key(broker), development_person(broker)
    print(banner(broker, options, key, person), flush=True)
    try:
        eventloop.run(_serve(broker, options, api_key=(lambda: key) if key else (lambda: customs_key(broker))))
    finally:
        broker.close()
