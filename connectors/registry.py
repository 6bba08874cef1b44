"""Which connector types exist, how the hub's counterparts are configured, and how a connector is built.

The registry is an explicit dict (no registration as an import side effect): adding a counterpart type means adding
one entry here (its config model, its connector and the sandbox that plays it, registered in
:mod:`connectors.sandboxes`). ``config/connectors.yaml`` names each configured counterpart and its ``type``::

    connectors:
      foreign_authority:
        type: p2p
        endpoints: {"*": "${HUB_SANDBOX_URL:-https://127.0.0.1:8443}/p2p/authority"}

String values may use ``${VAR}`` or ``${VAR:-default}``: environment variables substituted when the file is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import ValidationError

from connectors.sandboxes import SANDBOX_TYPES
from hub.connector import Connector, ConnectorConfig, ConnectorContext, ConnectorType, SandboxType
from connectors.as4 import As4Config, As4Connector
from connectors.ephyto_hub import EphytoHubConfig, EphytoHubConnector
from connectors.p2p import P2PConfig, P2PConnector
from connectors.single_window import SingleWindowConfig, SingleWindowConnector
from connectors.traces_nt import TracesNtConfig, TracesNtConnector
from hub.errors import ConfigurationError

CONNECTOR_TYPES: dict[str, ConnectorType] = {
    "p2p": ConnectorType(
        name="p2p",
        sandbox="p2p",
        config_model=P2PConfig,
        factory=P2PConnector,
        description="a foreign authority reached directly: signed XML over HTTPS with mutual TLS",
    ),
    "traces_nt": ConnectorType(
        name="traces_nt",
        sandbox="traces_nt",
        config_model=TracesNtConfig,
        factory=TracesNtConnector,
        description="EU TRACES-NT: CHEDs submitted for decision over SOAP with WS-Security, decisions polled; CSW-CERTEX quantities",
    ),
    "ephyto_hub": ConnectorType(
        name="ephyto_hub",
        sandbox="ephyto_hub",
        config_model=EphytoHubConfig,
        factory=EphytoHubConnector,
        description="the IPPC ePhyto Hub: DeliverEnvelope over SOAP with a TLS client certificate, tracking polled; import pulled",
    ),
    "single_window": ConnectorType(
        name="single_window",
        sandbox="single_window",
        config_model=SingleWindowConfig,
        factory=SingleWindowConnector,
        description="a national single window: IOP EnvioCertificadoFitosanitario over SOAP 1.1 with mutual TLS, border tracking polled",
    ),
    "as4": ConnectorType(
        name="as4",
        sandbox="as4",
        config_model=As4Config,
        factory=As4Connector,
        description="an eDelivery AS4 access point: ebMS3 user messages signed, encrypted and compressed, signed receipts; business responses and documents pushed back",
    ),
}

#: Connector names appear in URLs (``/v1/inbound/{name}``) and metrics labels.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_connector_configs(path: Path | str, *, environ: Mapping[str, str] | None = None) -> dict[str, ConnectorConfig]:
    """Read and check every connector in ``path``; the key is the connector's name.

    Raises :class:`~hub.errors.ConfigurationError` naming the file, the connector and the field for an unreadable
    file, an unknown ``type``, an unknown or invalid field, or an environment variable that is not set.
    """
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML ({exc})") from None
    if document is None:
        return {}
    if not isinstance(document, dict) or set(document) - {"connectors"}:
        raise ConfigurationError(f"{path}: expected a mapping with one key, 'connectors'")
    entries = document.get("connectors") or {}
    if not isinstance(entries, dict):
        raise ConfigurationError(f"{path}: 'connectors' must map connector names to their settings")
    return {str(name): _load_one(path, str(name), entry, environ) for name, entry in entries.items()}


def hosted_sandboxes(configs: Mapping[str, ConnectorConfig]) -> list[SandboxType]:
    """The sandboxes that play the counterparts of ``configs`` (one per connector type), and those that call the
    hub, in port order."""
    wanted = {CONNECTOR_TYPES[config.type].sandbox for config in configs.values()}
    return sorted((s for s in SANDBOX_TYPES.values() if s.calls_hub or s.name in wanted), key=lambda s: s.default_port)


def build_connector(
    name: str,
    config: ConnectorConfig,
    *,
    transport: httpx.BaseTransport | None = None,
    context: ConnectorContext,
) -> Connector:
    """The connector ``name`` of ``config.type``, handed its transport (None: real network) and context."""
    try:
        connector_type = CONNECTOR_TYPES[config.type]
    except KeyError:
        known = ", ".join(CONNECTOR_TYPES)
        raise ConfigurationError(f"connector {name!r}: unknown type {config.type!r} (known: {known})") from None
    if not isinstance(config, connector_type.config_model):
        raise ConfigurationError(
            f"connector {name!r}: a {type(config).__name__} is not a {connector_type.config_model.__name__}"
        )
    return connector_type.factory(name, config, transport=transport, context=context)


def _load_one(path: Path, name: str, entry: Any, environ: Mapping[str, str]) -> ConnectorConfig:
    where = f"{path}: connector {name!r}"
    if not _NAME.match(name):
        raise ConfigurationError(f"{where}: the name must be lower-case letters, digits and '_', starting with a letter")
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where}: expected a mapping of settings")
    kind = entry.get("type")
    if kind not in CONNECTOR_TYPES:
        raise ConfigurationError(f"{where}: field 'type': unknown type {kind!r} (known: {', '.join(CONNECTOR_TYPES)})")
    data = _substitute(entry, environ, where=where, field="")
    try:
        return CONNECTOR_TYPES[kind].config_model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"field '{_dotted(error['loc'])}': {_message(error)}" for error in exc.errors())
        raise ConfigurationError(f"{where}: {problems}") from None


def _substitute(value: Any, environ: Mapping[str, str], *, where: str, field: str) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, environ, where=where, field=f"{field}.{k}" if field else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, environ, where=where, field=f"{field}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(found: re.Match) -> str:
        variable, default = found.group(1), found.group(2)
        if variable in environ and environ[variable] != "":
            return environ[variable]
        if default is not None:
            return default
        raise ConfigurationError(f"{where}: field '{field}': environment variable {variable} is not set and has no default")

    return _VARIABLE.sub(replace, value)


def _dotted(location: tuple) -> str:
    return ".".join(str(part) for part in location) or "(connector)"


def _message(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return error["msg"].removeprefix("Value error, ")
