"""The hub over AS4, end to end: a certificate routed to an AS4 destination leaves as a signed, encrypted, compressed
user message over TLS, is receipted, and is acknowledged by the authority's business response pushed to
``/v1/inbound/as4_authority``; a certificate sent by that authority's access point goes through the hub's reception
(signature, entitlement, validation, store, hand on) before the receipt is returned; what cannot be taken is answered
with an ebMS error signal, never a 500 (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from connectors.as4.ebms import read_messaging
from connectors.as4.packaging import read_packet
from connectors.as4.sandbox import HUB_MPC, MPC, create_as4_sandbox_from_pki
from connectors.serving import running_sandbox
from hub.api.app import create_app
from hub.broker import Broker
from hub.config import Settings
from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml
from hub.store.migrate import upgrade
from hub.store.models import Document, Message, TraceEvent
from tests.support.api import api_client
from tests.support.broker import example_record

NAME = "as4_authority"
ROLE = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"


@pytest.fixture(params=["push"])
def hub(request, database_url, pki, tmp_path: Path):
    """The hub (API and worker) with one AS4 counterpart: the sandbox access point over TLS, pushing back to the
    hub's API in-process (or, ``pull``, holding its messages for the hub to pull)."""
    sandbox_app = create_as4_sandbox_from_pki(pki.directory, push_url=f"http://hub/v1/inbound/{NAME}")
    with running_sandbox(sandbox_app, certs_dir=pki.directory, client_certificates=False) as sandbox:
        connectors = tmp_path / "connectors.yaml"
        connectors.write_text(json.dumps({"connectors": {NAME: {
            "type": "as4", "endpoint": f"{sandbox.url}/as4", "max_attempts": 3,
            "initiator": {"party_id": "fr-nppo-ap", "role": ROLE + "initiator", "country": "FR"},
            "responder": {"party_id": "jp-nppo-ap", "role": ROLE + "responder", "country": "JP"},
            "service": {"value": "urn:trade-document-hub:services:sps-certificates"}, "action": "Certificate",
            **({"pull": {"mpc": MPC, "interval": 0.05}} if request.param == "pull" else {}),
            **({"binding": "pull", "mpc": HUB_MPC, "timeout": 1} if request.param == "pulled" else {}),
        }}}))
        routes = tmp_path / "routes.yaml"
        routes.write_text(json.dumps({"rules": [
            {"name": "to-japan", "when": {"importing_country": ["JP"]}, "to": [NAME]},
        ]}))
        upgrade(database_url)
        broker = Broker.from_settings(Settings(database_url=database_url, certs_dir=pki.directory, connectors_file=connectors,
                                               routes_file=routes, public_url="http://hub"))
        sandbox_app.state.access_point.push_transport = httpx.ASGITransport(app=create_app(broker))
        worker = broker.make_worker(webhooks=False)
        control = httpx.Client(base_url=sandbox.url, verify=ssl.create_default_context(cafile=str(pki.ca_cert)))
        control.post("/as4/control", json={"pull": request.param == "pull"}).raise_for_status()
        try:
            with api_client(broker) as client:
                yield broker, worker, client, control
        finally:
            broker.close()


def _state(broker, message_id: str) -> str:
    with broker.database.sessions() as session:
        return session.get(Message, message_id).state


def _wait_for_state(broker, message_id: str, state: str, timeout: float = 20.0, *, worker=None) -> None:
    deadline = time.monotonic() + timeout
    while _state(broker, message_id) != state:
        assert time.monotonic() < deadline, f"message {message_id} is {_state(broker, message_id)}, not {state}"
        if worker is not None:
            worker.poll_acks()
        time.sleep(0.05)


def test_a_certificate_to_an_as4_destination_is_receipted_then_acknowledged(hub):
    broker, worker, client, sandbox = hub
    record = example_record(certificate_number="FR-2026-AS4-0001")
    record["consignment"]["import_country"] = {"id": "JP"}
    answer = client.post("/v1/documents", json=record)
    assert answer.status_code == 202, answer.text
    [message] = answer.json()["messages"]
    assert message["destination"] == NAME
    assert worker.drain() == 1
    _wait_for_state(broker, message["id"], "acknowledged")
    [received] = sandbox.get("/as4/received").json()["received"]
    assert received["certificate_number"] == "FR-2026-AS4-0001" and received["status"] == "accepted"
    with broker.database.sessions() as session:
        stored = session.get(Message, message["id"])
        assert stored.receipt_id == received["receipt_id"], "the AS4 receipt's MessageId is the message's receipt"
        events = [e.event for e in session.scalars(select(TraceEvent).where(TraceEvent.message_id == message["id"]).order_by(TraceEvent.id))]
    # The business response may overtake the settling of the receipt (then traced receipt.recorded, after it).
    assert events[:2] == ["message.queued", "message.sending"]
    assert sorted(events[2:]) in (["acknowledgement.acknowledged", "receipt.accepted"], ["acknowledgement.acknowledged", "receipt.recorded"])


def jp_certificate(broker, number: str) -> bytes:
    """A phytosanitary certificate Japan's NPPO issued for France, signed with its key."""
    record = example_record(certificate_number=number)
    record["consignment"].update({"export_country": {"id": "JP"}, "import_country": {"id": "FR"}})
    return broker.signer_for("JP").sign(to_xml(render_certificate(record_from_data(record), "full").root))


def test_a_certificate_received_over_as4_is_stored_before_the_receipt_and_a_repeat_is_stored_once(hub):
    broker, _, _, sandbox = hub
    document = jp_certificate(broker, "JP-2026-AS4-0042")
    answer = sandbox.post("/as4/send", params={"repeat": "true"}, content=document, headers={"Content-Type": "application/xml"}).json()
    assert answer["kind"] == "receipt", answer
    with broker.database.sessions() as session:
        stored = session.scalars(select(Document).where(Document.certificate_number == "JP-2026-AS4-0042")).all()
    assert [(d.direction, d.tenant, d.issuing_country) for d in stored] == [("inbound", "FR", "JP")]


def test_a_refused_certificate_gets_an_error_signal_naming_why_and_nothing_is_stored(hub):
    broker, _, _, sandbox = hub
    document = jp_certificate(broker, "JP-2026-AS4-0043").replace(b"JP-2026-AS4-0043", b"JP-2026-AS4-0044")
    answer = sandbox.post("/as4/send", content=document, headers={"Content-Type": "application/xml"}).json()
    assert answer["kind"] == "error"
    [error] = answer["errors"]
    assert error.startswith("EBMS:0004") and "SIGNATURE" in error
    with broker.database.sessions() as session:
        assert session.scalars(select(Document).where(Document.certificate_number.like("JP-2026-AS4-004%"))).all() == []


@pytest.mark.parametrize(("body", "content_type", "code"), [
    (b"not xml at all", "application/soap+xml", "EBMS:0009"),
    (b"--x\r\nContent-Type: application/soap+xml\r\n\r\n<a/>", 'multipart/related; boundary="x"', "EBMS:0007"),
    (b'<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Header/><S12:Body/></S12:Envelope>',
     "application/soap+xml", "EBMS:0009"),
])
def test_garbage_at_the_as4_endpoint_gets_an_error_signal_not_a_500(hub, body, content_type, code):
    _, _, client, _ = hub
    answer = client.post(f"/v1/inbound/{NAME}", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == 200
    [signal] = read_messaging(read_packet(answer.content, answer.headers["content-type"])).signal_messages
    assert [error.error_code for error in signal.errors] == [code]


@pytest.mark.parametrize("hub", ["pull"], indirect=True)
def test_pulled_business_responses_and_certificates_are_recorded_then_receipted(hub):
    broker, worker, client, sandbox = hub
    record = example_record(certificate_number="FR-2026-AS4-0101")
    record["consignment"]["import_country"] = {"id": "JP"}
    [message] = client.post("/v1/documents", json=record).json()["messages"]
    assert worker.drain() == 1
    _wait_for_state(broker, message["id"], "acknowledged", worker=worker)
    held = sandbox.post("/as4/send", content=jp_certificate(broker, "JP-2026-AS4-0102"), headers={"Content-Type": "application/xml"}).json()
    assert held["kind"] == "queued"
    deadline = time.monotonic() + 20
    while broker.pull_documents() == 0:
        assert time.monotonic() < deadline, "the certificate held for the hub was not pulled"
        time.sleep(0.05)
    with broker.database.sessions() as session:
        [stored] = session.scalars(select(Document).where(Document.certificate_number == "JP-2026-AS4-0102")).all()
    assert (stored.direction, stored.tenant) == ("inbound", "FR")
    states = {entry["action"]: entry["state"] for entry in sandbox.get("/as4/outbox").json()["held"]}
    assert states == {"BusinessResponse": "receipted", "Certificate": "receipted"}


def _jp_record(number: str) -> dict:
    record = example_record(certificate_number=number)
    record["consignment"]["import_country"] = {"id": "JP"}
    return record


@pytest.mark.parametrize("hub", ["pulled"], indirect=True)
def test_a_counterpart_that_pulls_gets_its_certificate_only_when_it_asks_and_receipts_it(hub):
    broker, worker, client, sandbox = hub
    assert sandbox.post("/as4/pull").json()["kind"] == "empty", "nothing held yet: EBMS:0006"
    [message] = client.post("/v1/documents", json=_jp_record("FR-2026-AS4-0201")).json()["messages"]
    assert worker.drain() == 0, "a pulled destination is never pushed to"
    assert _state(broker, message["id"]) == "queued"
    pulled = sandbox.post("/as4/pull").json()
    assert (pulled["kind"], pulled["certificate_number"], pulled["status"]) == ("user-message", "FR-2026-AS4-0201", "accepted")
    assert pulled["message_id"] == f"{message['id']}@hub"
    _wait_for_state(broker, message["id"], "acknowledged")
    with broker.database.sessions() as session:
        assert session.get(Message, message["id"]).receipt_id == pulled["receipt_id"]
    assert sandbox.post("/as4/pull").json()["kind"] == "empty"


@pytest.mark.parametrize("hub", ["pulled"], indirect=True)
def test_a_pulled_message_never_receipted_is_offered_again_when_its_lease_ends(hub):
    broker, _, client, sandbox = hub
    [message] = client.post("/v1/documents", json=_jp_record("FR-2026-AS4-0202")).json()["messages"]
    first = sandbox.post("/as4/pull", params={"receipt": "false"}).json()
    assert first["kind"] == "user-message" and _state(broker, message["id"]) == "sending"
    assert sandbox.post("/as4/pull").json()["kind"] == "empty", "held by the first pull until its lease ends"
    time.sleep(1.2)  # the P-Mode's timeout: 1 s
    again = sandbox.post("/as4/pull").json()
    assert (again["message_id"], again["deliveries"]) == (first["message_id"], 2)
    _wait_for_state(broker, message["id"], "acknowledged")


@pytest.mark.parametrize("hub", ["pulled"], indirect=True)
def test_a_pull_on_another_channel_is_refused(hub):
    _, _, _, sandbox = hub
    answer = sandbox.post("/as4/pull", params={"mpc": "urn:someone-elses-channel"}).json()
    assert answer["kind"] == "error" and answer["errors"][0].startswith("EBMS:0010")
