"""The TRACES-NT connector wired to its in-process sandbox: the accounts, the signed CHEDs it sends, the sandbox's
control endpoints, the contract harness, and the saved TRACES code lists (read when a test asks, never at import)."""

from __future__ import annotations

import copy
import functools
import itertools
import json
import re
import uuid
from pathlib import Path

import httpx
from lxml import etree

from connectors.serving import InProcessTransport
from connectors.traces_nt import TracesNtConfig, TracesNtConnector
from connectors.traces_nt.sandbox import create_traces_sandbox_app
from hub.connector import ConnectorContext, OutboundMessage
from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml
from hub.signing import Signer
from hub.standards import PROJECT_ROOT
from tests.contract.suite import ReceivedMessage
from tests.support.standards import params_from_standard_file, standard_file

NAME = "traces_nt"
BASE = "http://traces"
#: The hub's own TRACES account; another authority's; the customs (CERTEX) account.
USERNAME, KEY, CLIENT_ID = "hub-fr", "authentication-key-of-hub-fr", "CLIENT-FR-1"
OTHER, OTHER_KEY = "hub-de", "authentication-key-of-hub-de"
CUSTOMS, CUSTOMS_KEY = "douane-fr", "authentication-key-of-douane-fr"
CHED_RECORD = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples" / "ched-P-FR-cheese.record.json"
_DECISIONS = {"acknowledge": "accept", "warn": "partial", "reject": "reject"}


def read_code_list(path: Path) -> dict:
    """A saved TRACES seed code list (JSON with ``//`` comment lines)."""
    return json.loads(re.sub(r"^\s*//.*$", "", path.read_text(encoding="utf-8"), flags=re.MULTILINE))


@functools.cache
def code_list(relative: str) -> dict:
    """The saved code list at ``relative`` under the standards folder, read once, when a test first asks."""
    return read_code_list(standard_file(relative))


def codes_of(relative: str) -> list:
    """The codes of a saved code list, sorted, to parametrise a test over (one failing parameter if it is missing)."""
    return params_from_standard_file(relative, lambda path: sorted(read_code_list(path)))


class ChedMessages:
    """Signed CHED-P certificates (the worked example), a new local number for each message."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        self._example = json.loads(CHED_RECORD.read_text(encoding="utf-8"))
        self._numbers = itertools.count(1)

    def message(self, *, certificate_number=None, replaces=None, tampered=False) -> OutboundMessage:
        number = certificate_number or f"FR-CHED-2026-{800000 + next(self._numbers)}"
        data = copy.deepcopy(self._example)
        data["certificate_number"] = number
        if replaces is not None:
            data.setdefault("notes", []).extend([{"subject": "ADRP", "content": ["true"]},
                                                 {"subject": "ADRPN", "content": [replaces.certificate_number]}])
        payload = self._signer.sign(to_xml(render_certificate(record_from_data(data), "full").root))
        return OutboundMessage(
            id=str(uuid.uuid4()), correlation_id=str(uuid.uuid4()), destination=NAME, document_id=f"doc-{number}",
            document_kind="ched", certificate_number=number, status="issued", issuing_country="FR",
            exporting_country="CH", importing_country="FR", payload=payload,
        )


class SandboxControls:
    """The sandbox's control endpoints; ``received`` maps local numbers back to the harness's message ids."""

    def __init__(self, client: httpx.Client, messages_by_number: dict[str, str]) -> None:
        self.client, self.by_number = client, messages_by_number

    def control(self, **body) -> None:
        self.client.post("/control", json=body).raise_for_status()

    def fault(self, kind, *, count=1, retry_after=None, seconds=None) -> None:
        extra = {k: v for k, v in {"retry_after": retry_after, "seconds": seconds}.items() if v is not None}
        self.control(fault=kind, count=count, **extra)

    def acknowledge_with(self, mode, *, reason_code=None, reason_text=None) -> None:
        self.control(decision=_DECISIONS[mode], reason_code=reason_code, reason_text=reason_text)

    def received(self) -> list[ReceivedMessage]:
        entries = self.client.get("/received").raise_for_status().json()["received"]
        return [ReceivedMessage(self.by_number.get(e["certificate_number"], e["reference"]), e["certificate_number"],
                                e["status"], e["deliveries"]) for e in entries]

    def reset(self) -> None:
        self.client.delete("/state").raise_for_status()


class TracesHarness:
    def __init__(self, app, signer: Signer, trust_store=None) -> None:
        self.app = app
        self.trust_store = trust_store
        self.messages = ChedMessages(signer)
        self.by_number: dict[str, str] = {}
        self.client = httpx.Client(transport=InProcessTransport(app), base_url=BASE)
        self.controls = SandboxControls(self.client, self.by_number)
        self.opened: list[TracesNtConnector] = []

    def config(self, **settings) -> TracesNtConfig:
        return TracesNtConfig(**{"endpoint": f"{BASE}/tracesnt/ws", "submission_service": "ChedSubmissionService",
                                 "username": USERNAME, "authentication_key": KEY, "client_id": CLIENT_ID, **settings})

    def connector(self, **settings) -> TracesNtConnector:
        connector = TracesNtConnector(NAME, self.config(**settings), transport=InProcessTransport(self.app),
                                      context=ConnectorContext(certs_dir="unused", public_url="http://hub", trust_store=self.trust_store))
        connector.open()
        self.opened.append(connector)
        return connector

    def message(self, **options) -> OutboundMessage:
        message = self.messages.message(**options)
        self.by_number[message.certificate_number] = message.id
        return message

    def acks(self, connector, *, count, timeout=5.0):
        collected = []
        for _ in range(20):
            collected.extend(connector.poll_acks())
            if len(collected) >= count:
                break
        return collected

    def close(self) -> None:
        for connector in self.opened:
            connector.close()
        self.client.close()


def make_harness(pki, **sandbox) -> TracesHarness:
    """The sandbox with the three accounts (``sandbox`` adds its options, e.g. a signing key) and the harness over it."""
    app = create_traces_sandbox_app(accounts={USERNAME: KEY, OTHER: OTHER_KEY}, client_ids={USERNAME: CLIENT_ID},
                                    customs_accounts={CUSTOMS: CUSTOMS_KEY}, **sandbox)
    return TracesHarness(app, Signer(pki.key_provider("FR")), trust_store=pki.trust_store())


def canonical(data: bytes) -> bytes:
    return etree.tostring(etree.fromstring(data, etree.XMLParser(remove_blank_text=True)), method="c14n")


def sample_message(relative: str) -> OutboundMessage:
    return OutboundMessage(id=str(uuid.uuid4()), correlation_id="c", destination=NAME, document_id="d", document_kind="ched",
                           certificate_number="", status="issued", issuing_country="KE", exporting_country="KE",
                           importing_country=None, payload=standard_file(relative).read_bytes())
