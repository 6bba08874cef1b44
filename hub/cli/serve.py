"""``hub serve``: the API, the delivery worker and (with the default configuration) the local sandboxes, in one
process and one event loop, routed to each other; ``hub worker``: delivery only, for more processes and machines."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from hub.api.app import create_app
from hub.api.auth import create_client, find_client
from hub.broker import Broker
from hub.config import DEFAULT_DATABASE_URL, Settings
from hub.standards import PROJECT_ROOT
from hub.store.migrate import upgrade

log = logging.getLogger("hub.cli.serve")
DEV_KEY_FILE = PROJECT_ROOT / "var" / "dev-api-key"


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    worker: bool = True
    sandboxes: bool = True
    sandbox_port: int = 8443
    ephyto_sandbox_port: int = 8444
    traces_sandbox_port: int = 8445
    delta_sandbox_port: int = 8446
    single_window_sandbox_port: int = 8447
    cites_exchange_port: int = 8448
    cites_sandbox_port: int = 8449
    migrate: bool = True
    dev_key: bool | None = None  # None: only on the embedded default database


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


def sandbox_server(settings: Settings, *, port: int, plain_http: bool = False) -> uvicorn.Server:
    """The point-to-point sandbox (a foreign authority and a customs endpoint) over HTTPS with mutual TLS, pushing
    its signed acknowledgements back to this hub's inbound endpoint."""
    from connectors.p2p.sandbox import create_sandbox_from_pki
    from connectors.p2p.serving import serve_sandbox

    inbound = f"{settings.public_url}/v1/inbound"
    app = create_sandbox_from_pki(Path(settings.certs_dir), push_url={"authority": f"{inbound}/foreign_authority", "customs": f"{inbound}/customs"})
    return serve_sandbox(app, port=port, certs_dir=Path(settings.certs_dir), plain_http=plain_http)


def ephyto_hub_sandbox_server(settings: Settings, *, port: int, plain_http: bool = False) -> uvicorn.Server:
    """The IPPC ePhyto Hub sandbox over HTTPS with client certificates; an envelope counts as delivered to the
    importing NPPO one second after it arrives."""
    from connectors.ephyto_hub.sandbox import create_ephyto_hub_sandbox
    from connectors.p2p.serving import serve_sandbox

    return serve_sandbox(create_ephyto_hub_sandbox(delivery_delay=1.0), port=port, certs_dir=Path(settings.certs_dir), plain_http=plain_http)


#: The development account of the TRACES-NT sandbox (config/connectors.yaml uses it by default).
TRACES_SANDBOX_ACCOUNT = {"username": "hub-sandbox", "authentication_key": "sandbox-authentication-key", "client_id": "hub-development"}
#: Its customs (CSW-CERTEX) account: TRACES-NT gives customs a separate one.
TRACES_SANDBOX_CUSTOMS_ACCOUNT = {"username": "customs-sandbox", "authentication_key": "sandbox-customs-authentication-key", "client_id": "customs-development"}


def traces_nt_sandbox_server(settings: Settings, *, port: int, plain_http: bool = False) -> uvicorn.Server:
    """The TRACES-NT sandbox over HTTPS (callers authenticate by WS-Security, not by client certificate); CHEDs are
    accepted at the border unless told otherwise through its /control endpoint."""
    from connectors.p2p.serving import serve_sandbox
    from connectors.traces_nt.sandbox import create_traces_sandbox_app
    from hub.signing import PemKeyProvider

    account, customs = TRACES_SANDBOX_ACCOUNT, TRACES_SANDBOX_CUSTOMS_ACCOUNT
    signing = Path(settings.certs_dir) / "signing"
    app = create_traces_sandbox_app(
        accounts={account["username"]: account["authentication_key"]}, client_ids={account["username"]: account["client_id"]},
        customs_accounts={customs["username"]: customs["authentication_key"]}, customs_client_ids={customs["username"]: customs["client_id"]},
        # Decided CHEDs are signed as the member state's authority would (the FR key of the development PKI).
        signing_key_provider=PemKeyProvider(signing / "FR.key", signing / "FR.pem"),
    )
    return serve_sandbox(app, port=port, certs_dir=Path(settings.certs_dir), client_certificates=False, plain_http=plain_http)


def single_window_sandbox_server(settings: Settings, *, port: int, plain_http: bool = False) -> uvicorn.Server:
    """A national single window (IOP ``EnvioCertificadoFitosanitario``) over HTTPS with mutual TLS: it receipts each
    certificate (RCB/ERR) and shows its border steps through ``consultaEventosSeguimiento``; decide with /decision."""
    from connectors.p2p.serving import serve_sandbox
    from connectors.single_window.sandbox import create_sandbox_from_pki

    return serve_sandbox(create_sandbox_from_pki(settings.certs_dir), port=port, certs_dir=Path(settings.certs_dir), plain_http=plain_http)


def cites_exchange_server(broker: Broker, *, port: int) -> uvicorn.Server:
    """The hub's own CITES permit exchange (EPIX style) over HTTPS with mutual TLS: foreign management authorities
    fetch permits by number and confirm the quantities they inspected; the caller is its client certificate's C=."""
    from connectors.p2p.serving import serve_sandbox
    from connectors.cites_p2p.service import create_exchange_app

    app = create_exchange_app(broker.database, certs_dir=broker.settings.certs_dir, signer_for=broker.signer_for)
    return serve_sandbox(app, port=port, certs_dir=Path(broker.settings.certs_dir))


def cites_authority_sandbox_server(settings: Settings, *, port: int, exchange_port: int = 8448, plain_http: bool = False) -> uvicorn.Server:
    """A foreign CITES management authority (Japan) that fetches permits from the hub's exchange and confirms the
    quantities it inspected, on request through its /control endpoints."""
    from connectors.cites_p2p.sandbox import AuthoritySandboxConfig, create_cites_authority_sandbox
    from connectors.p2p.serving import serve_sandbox

    config = AuthoritySandboxConfig(country="JP", exchange_url=f"https://127.0.0.1:{exchange_port}/cites/v2/CitesDataExchange", callee="FR")
    app = create_cites_authority_sandbox(config, certs_dir=settings.certs_dir)
    return serve_sandbox(app, port=port, certs_dir=Path(settings.certs_dir), plain_http=plain_http)


def sandbox_customs_key(broker: Broker) -> str:
    """A key for the DELTA-G sandbox when there is no development key (a database of its own): a customs client of
    tenant FR made for this run."""
    with broker.database.transaction() as session:
        return create_client(session, name=f"delta-g-sandbox-{os.urandom(3).hex()}", tenant="FR")[1]


def delta_sandbox_server(settings: Settings, *, port: int, api_key: str) -> uvicorn.Server:
    """The DELTA-G sandbox on loopback HTTP: declarations lodged there ask this hub's customs registry with
    ``api_key`` (a customs client of tenant FR)."""
    from connectors.delta.sandbox import create_delta_sandbox

    app = create_delta_sandbox(hub_url=settings.public_url, api_key=api_key)
    return uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))


SANDBOXES = {
    "p2p": sandbox_server,
    "ephyto_hub": ephyto_hub_sandbox_server,
    "traces_nt": traces_nt_sandbox_server,
    "single_window": single_window_sandbox_server,
    "cites_authority": cites_authority_sandbox_server,
    "delta": delta_sandbox_server,
}


async def _serve(broker: Broker, options: ServeOptions, *, customs_key: str | None = None) -> None:
    app = create_app(broker)
    servers = [uvicorn.Server(uvicorn.Config(app, host=options.host, port=options.port, log_level="info", access_log=False))]
    if options.cites_exchange_port and (Path(broker.settings.certs_dir) / "tls" / "server.pem").is_file():
        servers.append(cites_exchange_server(broker, port=options.cites_exchange_port))
    else:
        log.warning("the CITES permit exchange is not served: port 0, or no TLS server certificate in %s/tls", broker.settings.certs_dir)
    if options.sandboxes:
        servers.append(sandbox_server(broker.settings, port=options.sandbox_port))
        servers.append(ephyto_hub_sandbox_server(broker.settings, port=options.ephyto_sandbox_port))
        servers.append(traces_nt_sandbox_server(broker.settings, port=options.traces_sandbox_port))
        servers.append(single_window_sandbox_server(broker.settings, port=options.single_window_sandbox_port))
        servers.append(cites_authority_sandbox_server(broker.settings, port=options.cites_sandbox_port, exchange_port=options.cites_exchange_port))
        servers.append(delta_sandbox_server(broker.settings, port=options.delta_sandbox_port, api_key=customs_key or sandbox_customs_key(broker)))
    for extra in servers[1:]:
        extra.config.install_signal_handlers = False  # the API server owns Ctrl-C and stops the others
    worker = broker.make_worker() if options.worker else None
    if worker:
        histogram = app.state.metrics.delivery_seconds
        worker.observe_delivery = lambda destination, seconds: histogram.labels(destination=destination).observe(seconds)
        worker.start()
    try:
        api = asyncio.create_task(servers[0].serve())
        others = [asyncio.create_task(s.serve()) for s in servers[1:]]
        await api
        for server in servers[1:]:
            server.should_exit = True
        await asyncio.gather(*others, return_exceptions=True)
    finally:
        if worker:
            worker.stop()
        broker.close()


def serve(settings: Settings, options: ServeOptions) -> None:
    """Run until interrupted."""
    if options.migrate:
        upgrade(settings.database_url)
    broker = Broker.from_settings(settings)
    key = None
    if options.dev_key if options.dev_key is not None else settings.database_url == DEFAULT_DATABASE_URL:
        key = development_key(broker)
        print(f"\n  API      http://{options.host}:{options.port}   (OpenAPI: /docs)\n  API key  {key}   (tenant FR, development only)")
        if options.sandboxes:
            print(f"  sandbox  https://127.0.0.1:{options.sandbox_port}/p2p/authority and /p2p/customs   (mutual TLS)")
            print(f"  sandbox  https://127.0.0.1:{options.ephyto_sandbox_port}/hub/DeliveryService   (IPPC ePhyto Hub, mutual TLS)")
            print(f"  sandbox  https://127.0.0.1:{options.traces_sandbox_port}/tracesnt/ws   (TRACES-NT, WS-Security)")
            print(f"  sandbox  https://127.0.0.1:{options.single_window_sandbox_port}/iop/EnvioCertificadoFitosanitario   (a national single window, mutual TLS)")
            print(f"  sandbox  https://127.0.0.1:{options.cites_sandbox_port}/control/fetch   (a foreign CITES management authority, JP, mutual TLS)")
            print(f"  sandbox  http://127.0.0.1:{options.delta_sandbox_port}/declarations   (DELTA-G customs clearance)")
        print(f"  CITES    https://127.0.0.1:{options.cites_exchange_port}/cites/v2/CitesDataExchange   (permit exchange, mutual TLS)\n")
    try:
        asyncio.run(_serve(broker, options, customs_key=key))
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled once everything has stopped
        pass
