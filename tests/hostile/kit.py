"""The attacked hub of the hostile corpus: a case builds a :class:`Call` with the :class:`Kit`; the test sends it, checks
the refusal, that nothing was stored half-way (:meth:`Kit.stored` before and after) and that the hub is still up."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from connectors.p2p import P2PConfig, P2PConnector
from hub.connector import ConnectorContext
from hub.signing import PemKeyProvider, Signer
from hub.store.models import Acknowledgement, Message
from tests.hostile import payloads
from tests.support.broker import ROUTES, ScriptedConnector, make_broker

#: Every table a refused request must leave as it was (the audit log and the clients are not among them: a refusal
#: may well be audited).
STORED = ("documents", "document_products", "messages", "payloads", "trace_events", "acknowledgements", "non_conformities",
          "non_conformity_products", "webhook_subscriptions", "delivery_attempts", "quantity_movements", "customs_operations",
          "cites_approvals")

#: The default test routes, plus phytosanitary certificates to a foreign authority reached point to point: the
#: counterpart whose pushed acknowledgements ``POST /v1/inbound/foreign_authority`` takes.
HOSTILE_ROUTES = {"rules": ROUTES["rules"] + [{"name": "phyto-p2p", "when": {"kind": ["phytosanitary"]}, "to": ["foreign_authority"]}]}


@dataclass(frozen=True)
class Call:
    """One request of a case: sent as the API client ``client`` (tests/support/api.py), or with no credentials."""

    method: str
    path: str
    content: bytes | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    client: str | None = "FR"


@dataclass
class Kit:
    """What a case may use to build its request: the API, the broker behind it, the PKIs and the canary."""

    api: Any
    broker: Any
    pki: Any
    stranger_pki: Any
    issued: dict[str, payloads.IssuedKey]
    canary: payloads.Canary

    def signer(self, country: str = "FR") -> Signer:
        return self.broker.signer_for(country)

    def signer_of(self, name: str) -> Signer:
        """A country of the PKI (``US``), an identity of ``issued`` (see conftest.py), ``tls-server`` / ``tls-client``
        (the PKI's TLS keys) or ``stranger`` (another CA's FR)."""
        if name in self.pki.signing_keys:
            return self.signer(name)
        if name == "tls-server":
            return Signer(PemKeyProvider(self.pki.server_key, self.pki.server_cert))
        if name == "tls-client":
            return Signer(PemKeyProvider(self.pki.client_keys["FR"], self.pki.client_certs["FR"]))
        if name == "stranger":
            return Signer(self.stranger_pki.key_provider("FR"))
        return Signer(self.issued[name])

    def submitted(self, **changes) -> dict:
        """A good certificate submitted by FR (setup of a case, before the rows are counted): its answer."""
        answer = self.api.post("/v1/documents", json=payloads.record(**changes))
        assert answer.status_code == 202, answer.text
        return answer.json()

    def message_to(self, destination: str = "foreign_authority") -> tuple[str, str]:
        """(message id, certificate number) of a fresh submission's message to ``destination``."""
        submitted = self.submitted()
        with self.broker.database.sessions() as session:
            message = session.get(Message, next(m["id"] for m in submitted["messages"] if m["destination"] == destination))
            return message.id, message.document.certificate_number

    def send(self, call: Call) -> httpx.Response:
        headers = dict(call.headers)
        if call.client is None:
            headers["Authorization"] = ""
        elif call.client != "FR":
            headers.update(self.api.headers_of(call.client))
        return self.api.request(call.method, call.path, content=call.content, json=call.json, headers=headers, params=call.params)

    def stored(self) -> dict[str, Any]:
        """Row counts of every table of :data:`STORED`, and the state of every message."""
        with self.broker.database.sessions() as session:
            counts: dict[str, Any] = {table: session.scalar(text(f"SELECT count(*) FROM {table}")) for table in STORED}
            counts["message states"] = dict(session.execute(select(Message.id, Message.state)).all())
            return counts

    def newest_acknowledgement(self) -> Acknowledgement:
        with self.broker.database.sessions() as session:
            return session.scalars(select(Acknowledgement).order_by(Acknowledgement.received_at.desc(), Acknowledgement.id.desc()).limit(1)).one()

    def assert_still_up(self) -> None:
        """The hub answers its health check, and a good request that writes to the store succeeds (a hostile request
        that left a transaction open or a lock held would make it fail)."""
        assert self.api.get("/healthz").status_code == 200
        answer = self.api.post("/v1/webhooks", json={"url": "https://hooks.example.org/hub"})
        assert answer.status_code == 201, answer.text
        assert self.api.delete(f"/v1/webhooks/{answer.json()['id']}").status_code == 204


def hostile_broker(database_url, pki):
    """A broker over the test database whose destinations are two scripted counterparts and a foreign authority
    reached point to point (acknowledgements pushed to ``/v1/inbound/foreign_authority``, verified against ``pki``)."""
    context = ConnectorContext(certs_dir=str(pki.directory), public_url="http://127.0.0.1:8000", trust_store=pki.trust_store())
    unreachable = httpx.MockTransport(lambda request: httpx.Response(503))
    foreign = P2PConnector("foreign_authority", P2PConfig(endpoints={"*": "https://127.0.0.1:9/p2p/authority"}, acks="push"),
                           transport=unreachable, context=context)
    foreign.open()
    connectors = {"authority": ScriptedConnector("authority"), "customs": ScriptedConnector("customs"), "foreign_authority": foreign}
    return make_broker(database_url, pki, connectors=connectors, routes=HOSTILE_ROUTES)


def as_json(answer: httpx.Response) -> dict:
    """The answer's JSON object, or a failure naming what came instead."""
    try:
        body = answer.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        pytest.fail(f"{answer.status_code} answer is no JSON: {answer.text[:300]!r}")
    assert isinstance(body, dict), body
    return body
