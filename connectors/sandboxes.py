"""The sandboxes: local stand-ins for the hub's counterparts, each speaking the counterpart's real protocol, and how
to run each as a server. ``hub serve`` hosts the sandboxes of the configured connector types and those that call the
hub; ``hub sandbox NAME`` runs one alone. Each is registered once in :data:`SANDBOX_TYPES`.
"""

from __future__ import annotations

from pathlib import Path

import uvicorn

from connectors.serving import serve_sandbox
from hub.connector import SandboxContext, SandboxType
from hub.errors import ConfigurationError

#: The development account of the TRACES-NT sandbox (config/connectors.yaml uses it by default).
TRACES_SANDBOX_ACCOUNT = {"username": "hub-sandbox", "authentication_key": "sandbox-authentication-key", "client_id": "hub-development"}
#: Its customs (CSW-CERTEX) account: TRACES-NT gives customs a separate one.
TRACES_SANDBOX_CUSTOMS_ACCOUNT = {"username": "customs-sandbox", "authentication_key": "sandbox-customs-authentication-key", "client_id": "customs-development"}
#: Where the hub serves its own CITES permit exchange unless told otherwise.
CITES_EXCHANGE_PORT = 8448


def _tls(app, context: SandboxContext, port: int, *, client_certificates: bool = True) -> uvicorn.Server:
    return serve_sandbox(app, host=context.host, port=port, certs_dir=Path(context.certs_dir), client_certificates=client_certificates, plain_http=context.plain_http)


def p2p_sandbox(context: SandboxContext, *, port: int) -> uvicorn.Server:
    """A foreign authority and a customs endpoint over HTTPS with mutual TLS, pushing their signed
    acknowledgements back to the hub's inbound endpoint."""
    from connectors.p2p.sandbox import create_sandbox_from_pki

    inbound = f"{context.hub_url}/v1/inbound"
    app = create_sandbox_from_pki(Path(context.certs_dir), push_url={"authority": f"{inbound}/foreign_authority", "customs": f"{inbound}/customs"})
    return _tls(app, context, port)


def ephyto_hub_sandbox(context: SandboxContext, *, port: int) -> uvicorn.Server:
    """The IPPC ePhyto Hub over HTTPS with client certificates; an envelope counts as delivered to the importing
    NPPO one second after it arrives."""
    from connectors.ephyto_hub.sandbox import create_ephyto_hub_sandbox

    return _tls(create_ephyto_hub_sandbox(delivery_delay=1.0), context, port)


def traces_nt_sandbox(context: SandboxContext, *, port: int) -> uvicorn.Server:
    """TRACES-NT over HTTPS (callers authenticate by WS-Security, not by client certificate); CHEDs are accepted at
    the border unless told otherwise through its /control endpoint."""
    from connectors.traces_nt.sandbox import create_traces_sandbox_app
    from hub.signing import PemKeyProvider

    account, customs = TRACES_SANDBOX_ACCOUNT, TRACES_SANDBOX_CUSTOMS_ACCOUNT
    signing = Path(context.certs_dir) / "signing"
    app = create_traces_sandbox_app(
        accounts={account["username"]: account["authentication_key"]}, client_ids={account["username"]: account["client_id"]},
        customs_accounts={customs["username"]: customs["authentication_key"]}, customs_client_ids={customs["username"]: customs["client_id"]},
        # Decided CHEDs are signed as the member state's authority would (the FR key of the development PKI).
        signing_key_provider=PemKeyProvider(signing / "FR.key", signing / "FR.pem"),
    )
    return _tls(app, context, port, client_certificates=False)


def single_window_sandbox(context: SandboxContext, *, port: int) -> uvicorn.Server:
    """A national single window (IOP ``EnvioCertificadoFitosanitario``) over HTTPS with mutual TLS: it receipts each
    certificate (RCB/ERR) and shows its border steps through ``consultaEventosSeguimiento``; decide with /decision."""
    from connectors.single_window.sandbox import create_sandbox_from_pki

    return _tls(create_sandbox_from_pki(context.certs_dir), context, port)


def cites_authority_sandbox(context: SandboxContext, *, port: int) -> uvicorn.Server:
    """A foreign CITES management authority (Japan) that fetches permits from the hub's exchange and confirms the
    quantities it inspected, on request through its /control endpoints."""
    from connectors.cites_p2p.sandbox import AuthoritySandboxConfig, create_cites_authority_sandbox

    exchange = context.exchange_url or f"https://127.0.0.1:{context.ports.get('cites_exchange', CITES_EXCHANGE_PORT)}/cites/v2/CitesDataExchange"
    config = AuthoritySandboxConfig(country="JP", exchange_url=exchange, callee="FR")
    return _tls(create_cites_authority_sandbox(config, certs_dir=context.certs_dir), context, port)


def as4_sandbox(context: SandboxContext, *, port: int) -> uvicorn.Server:
    """Japan's plant-protection authority behind an eDelivery AS4 access point (``as4/JP`` of the development PKI):
    it receipts the hub's user messages and pushes its business responses to the hub's AS4 endpoint."""
    from connectors.as4.sandbox import create_as4_sandbox_from_pki

    app = create_as4_sandbox_from_pki(context.certs_dir, push_url=f"{context.hub_url}/v1/inbound/as4_authority")
    return _tls(app, context, port, client_certificates=False)


def delta_sandbox(context: SandboxContext, *, port: int) -> uvicorn.Server:
    """DELTA-G over plain HTTP: declarations lodged there ask the hub's customs registry with a customs API key of
    tenant FR."""
    from connectors.delta.sandbox import create_delta_sandbox

    if context.api_key is None:
        raise ConfigurationError("the DELTA-G sandbox needs a customs API key of the hub (tenant FR)")
    app = create_delta_sandbox(hub_url=context.hub_url, api_key=context.api_key())
    return uvicorn.Server(uvicorn.Config(app, host=context.host, port=port, lifespan="off", log_level="warning", access_log=False))


SANDBOX_TYPES: dict[str, SandboxType] = {
    sandbox.name: sandbox
    for sandbox in (
        SandboxType("p2p", 8443, p2p_sandbox, "a foreign authority and French customs' copy, pushing signed acknowledgements back (mutual TLS)", "/p2p/authority and /p2p/customs"),
        SandboxType("ephyto_hub", 8444, ephyto_hub_sandbox, "the IPPC ePhyto Hub (mutual TLS)", "/hub/DeliveryService"),
        SandboxType("traces_nt", 8445, traces_nt_sandbox, "EU TRACES-NT, CSW-CERTEX included (WS-Security)", "/tracesnt/ws"),
        SandboxType("delta", 8446, delta_sandbox, "DELTA-G, French customs clearance, asking the hub's registry", "/declarations", scheme="http", calls_hub=True),
        SandboxType("single_window", 8447, single_window_sandbox, "a national single window, Peru's (IOP, mutual TLS)", "/iop/EnvioCertificadoFitosanitario"),
        SandboxType("as4", 8450, as4_sandbox, "Japan's plant-protection authority behind an eDelivery AS4 access point (TLS)", "/as4"),
        SandboxType("cites_authority", 8449, cites_authority_sandbox, "Japan's CITES management authority, fetching permits from the hub (mutual TLS)", "/control/fetch", calls_hub=True),
    )
}
