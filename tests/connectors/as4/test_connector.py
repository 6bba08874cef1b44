"""The AS4 connector against the sandbox access point: the connector contract, and what AS4 itself demands
(receipts proving what was sent, error signals mapped, duplicate elimination, the P-Mode enforced on what arrives).

Both access points are real: the hub signs with ``as4/FR`` and encrypts for ``as4/JP`` of the development PKI, the
sandbox decrypts, verifies, and answers with signed receipts; its business responses are pushed back through
``open_exchange``/``reply`` exactly as ``POST /v1/inbound/as4_authority`` does.
"""

from __future__ import annotations

import httpx
import pytest

from connectors.as4 import As4Config, As4Connector
from connectors.as4.ebms import read_messaging
from connectors.as4.packaging import read_packet
from connectors.as4.sandbox import create_as4_sandbox_from_pki
from connectors.serving import InProcessTransport
from hub.connector import ConnectorContext, InboundOutcome, InboundVerdict, Outcome, RepliesInProtocol
from hub.errors import HubError, PermanentDeliveryError, TransientDeliveryError
from hub.signing import Signer
from tests.contract.suite import ConnectorContract, ReceivedMessage, SampleCertificates, wait_for

NAME = "as4_authority"
HUB_URL = "http://127.0.0.1:8000"
HUB_HOST = "127.0.0.1"
ROLE = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"


def pmode(**overrides) -> As4Config:
    settings = {
        "endpoint": "http://sandbox/as4",
        "initiator": {"party_id": "fr-nppo-ap", "role": ROLE + "initiator", "country": "FR"},
        "responder": {"party_id": "jp-nppo-ap", "role": ROLE + "responder", "country": "JP"},
        "service": {"value": "urn:trade-document-hub:services:sps-certificates"},
        "action": "Certificate",
        **overrides,
    }
    return As4Config(**settings)


class Controls:
    """The sandbox's control endpoints; ``received`` reports the hub's message ids (eb:MessageId = id@host)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def control(self, **body) -> None:
        self.client.post("/as4/control", json=body).raise_for_status()

    def fault(self, kind, *, count=1, retry_after=None, seconds=None, code=None) -> None:
        extra = {k: v for k, v in {"retry_after": retry_after, "seconds": seconds, "code": code}.items() if v is not None}
        self.control(fault=kind, count=count, **extra)

    def acknowledge_with(self, mode, *, reason_code=None, reason_text=None) -> None:
        self.control(ack=mode, reason_code=reason_code, reason_text=reason_text)

    def raw_received(self) -> list[dict]:
        return self.client.get("/as4/received").raise_for_status().json()["received"]

    def received(self) -> list[ReceivedMessage]:
        return [ReceivedMessage(entry["message_id"].rpartition("@")[0], entry["certificate_number"], entry["status"],
                                entry["deliveries"]) for entry in self.raw_received()]

    def reset(self) -> None:
        self.client.delete("/as4/state").raise_for_status()


class HubEndpoint:
    """Plays ``POST /v1/inbound/as4_authority``: the connector opens the exchange, the 'hub' records the answers,
    the connector replies (a receipt, or the error signal of a refusal)."""

    def __init__(self) -> None:
        self.connector: As4Connector | None = None
        self.reports = []
        self.replies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        try:
            exchange = self.connector.open_exchange(request.content, request.headers)
        except HubError as exc:
            reply = self.connector.refuse(request.content, request.headers, exc)
        else:
            if exchange.repeated is not None:
                reply = exchange.repeated
            else:
                self.reports.extend(exchange.answers)
                reply = self.connector.reply(exchange, [], None)
        self.replies.append(reply.body)
        return httpx.Response(reply.status, content=reply.body, headers={"content-type": reply.media_type})


class As4Harness:
    def __init__(self, pki, certificates, app, controls: Controls, endpoint: HubEndpoint) -> None:
        self.pki, self.certificates, self.app, self.controls, self.endpoint = pki, certificates, app, controls, endpoint
        self.opened: list[As4Connector] = []

    def connector(self, **settings) -> As4Connector:
        context = ConnectorContext(certs_dir=str(self.pki.directory), public_url=HUB_URL)
        connector = As4Connector(NAME, pmode(**settings), transport=InProcessTransport(self.app), context=context)
        connector.open()
        self.opened.append(connector)
        self.endpoint.connector = connector
        return connector

    def message(self, **options):
        return self.certificates.message(destination=NAME, importing_country="JP", **options)

    def acks(self, connector, *, count, timeout=5.0):
        wait_for(lambda: len(self.endpoint.reports) >= count, timeout=timeout, what=f"{count} business response(s)")
        return list(self.endpoint.reports)

    def close(self) -> None:
        for connector in self.opened:
            connector.close()


@pytest.fixture
def harness(pki, certificates):
    endpoint = HubEndpoint()
    app = create_as4_sandbox_from_pki(pki.directory, push_url=f"{HUB_URL}/v1/inbound/{NAME}")
    app.state.access_point.push_transport = httpx.MockTransport(endpoint)
    client = httpx.Client(transport=InProcessTransport(app), base_url="http://sandbox")
    made = As4Harness(pki, certificates, app, Controls(client), endpoint)
    yield made
    made.close()
    client.close()


class TestContract(ConnectorContract):
    """The connector contract every counterpart passes, over AS4."""


# --- what goes on the wire ------------------------------------------------------------------------------------------


def test_the_user_message_is_signed_encrypted_compressed_and_the_receipt_proves_it(harness, pki):
    connector, message = harness.connector(), harness.message()
    result = connector.deliver(message)
    assert result.outcome is Outcome.ACCEPTED
    sent = read_packet(result.request, _content_type(result.request))
    [user_message] = read_messaging(sent).user_messages
    assert user_message.info.message_id == f"{message.id}@{HUB_HOST}"
    assert user_message.conversation_id == message.correlation_id
    assert (user_message.service, user_message.action) == ("urn:trade-document-hub:services:sps-certificates", "Certificate")
    assert user_message.property_value("originalSender") == "FR" and user_message.property_value("finalRecipient") == "JP"
    [info] = user_message.parts
    assert (info.mime_type, info.compression_type) == ("application/xml", "application/gzip")
    [part] = sent.attachments
    assert part.content_type == "application/octet-stream"
    assert message.payload not in result.request, "the certificate went in clear"
    answer = read_messaging(read_packet(result.response, "application/soap+xml"))
    [receipt] = answer.signal_messages
    assert receipt.info.ref_to_message_id == user_message.info.message_id
    assert {reference.uri for reference in receipt.receipt.references} >= {f"cid:{part.content_id}"}


def _content_type(body: bytes) -> str:
    boundary = body.split(b"\r\n", 1)[0][2:].decode()
    return f'multipart/related; boundary="{boundary}"; type="application/soap+xml"'


def test_a_resend_is_the_same_as4_message_and_gets_the_same_receipt(harness):
    connector, message = harness.connector(), harness.message()
    first, again = connector.deliver(message), connector.deliver(message)
    assert again.receipt_id == first.receipt_id
    [entry] = harness.controls.raw_received()
    assert entry["message_id"] == f"{message.id}@{HUB_HOST}" and entry["deliveries"] == 2


@pytest.mark.parametrize(("code", "expected"), [("EBMS:0202", TransientDeliveryError), ("EBMS:0005", TransientDeliveryError),
                                                ("EBMS:0101", PermanentDeliveryError), ("EBMS:0303", PermanentDeliveryError)])
def test_error_signals_retry_or_give_up_by_their_code(harness, code, expected):
    connector, message = harness.connector(), harness.message()
    harness.controls.fault("error_signal", code=code)
    with pytest.raises(expected) as raised:
        connector.deliver(message)
    assert code in str(raised.value)


def test_a_refused_certificate_is_a_rejection_naming_the_authoritys_reason(harness):
    connector = harness.connector()
    result = connector.deliver(harness.message(tampered=True))
    assert result.outcome is Outcome.REJECTED
    assert result.reason_code == "EBMS:0004"
    assert result.reason_text.startswith("[SIGNATURE_INVALID]") and "changed after it was signed" in result.reason_text


@pytest.mark.parametrize("fault", ["no_receipt", "bad_signature", "bad_receipt"])
def test_a_missing_forged_or_foreign_receipt_is_not_a_delivery(harness, fault):
    connector, message = harness.connector(), harness.message()
    harness.controls.fault(fault)
    with pytest.raises(TransientDeliveryError) as raised:
        connector.deliver(message)
    said = {"no_receipt": "EBMS:0301", "bad_signature": "EBMS:0101", "bad_receipt": "EBMS:0302"}[fault]
    assert said in str(raised.value)
    # reception awareness: the retry is the same message, taken as a duplicate, and now receipted
    assert connector.deliver(message).outcome is Outcome.ACCEPTED
    assert [r.message_id for r in harness.controls.received()] == [message.id]


def test_a_receipt_from_another_access_point_is_refused(harness, pki):
    """The P-Mode names the counterpart's certificate: a receipt signed by any other access point (even one the
    same CA issued) does not count."""
    connector = harness.connector(security={"counterpart_certificate": str(pki.access_point_certs["US"])})
    with pytest.raises(TransientDeliveryError, match="EBMS:0101"):
        connector.deliver(harness.message())


def test_business_responses_are_authenticated_and_repeated_ones_answered_once(harness):
    harness.controls.control(duplicates=True)
    connector, message = harness.connector(), harness.message()
    connector.deliver(message)
    wait_for(lambda: len(harness.endpoint.replies) >= 2, what="the response and its duplicate")
    assert len(harness.endpoint.reports) == 1, "a repeated eb:MessageId must not be processed twice"
    first, second = harness.endpoint.replies[:2]
    assert first == second, "a repeat gets the very same receipt"
    [report] = harness.endpoint.reports
    assert (report.message_id, report.answered_by, report.outcome) == (message.id, "JP", Outcome.ACKNOWLEDGED)


def test_the_connector_takes_exchanges_in_its_protocol(harness):
    assert isinstance(harness.connector(), RepliesInProtocol)


def test_a_message_from_outside_the_pmode_is_refused_with_ebms_0010(harness):
    """A user message whose From party is not the P-Mode's responder: refused, never handed on."""
    connector = harness.connector(responder={"party_id": "someone-else", "role": ROLE + "responder", "country": "JP"})
    connector.deliver(harness.message())
    wait_for(lambda: harness.endpoint.replies, what="the pushed response")
    answer = read_messaging(read_packet(harness.endpoint.replies[0], "application/soap+xml"))
    [signal] = answer.signal_messages
    assert [error.error_code for error in signal.errors] == ["EBMS:0010"]
    assert harness.endpoint.reports == []


# --- One-way/Pull: the hub pulls what the counterpart holds for it --------------------------------------------------

PULL = {"mpc": "urn:trade-document-hub:mpc:jp-nppo-to-fr-nppo", "interval": 0.01}


def _pulled(connector, method, *, count=1):
    found = []
    wait_for(lambda: found.extend(getattr(connector, method)()) or len(found) >= count, what=f"{count} pulled")
    return found


def test_business_responses_are_pulled_then_receipted_once_recorded(harness):
    harness.controls.control(pull=True)
    connector, message = harness.connector(pull=PULL), harness.message()
    assert connector.deliver(message).outcome is Outcome.ACCEPTED
    [report] = _pulled(connector, "poll_acks")
    assert (report.message_id, report.outcome, report.answered_by) == (message.id, Outcome.ACKNOWLEDGED, "JP")
    assert harness.endpoint.reports == [], "nothing was pushed"
    [held] = harness.controls.client.get("/as4/outbox").json()["held"]
    assert held["state"] == "offered", "not receipted before the hub has recorded it"
    connector.answers_recorded([report])
    [held] = harness.controls.client.get("/as4/outbox").json()["held"]
    assert held["state"] == "receipted"
    assert connector.poll_acks() == []


def test_an_empty_channel_is_nothing_to_pull(harness):
    harness.controls.control(pull=True)
    connector = harness.connector(pull=PULL)
    assert connector.poll_acks() == [] and connector.pull_documents() == []


def test_a_pulled_message_not_receipted_is_offered_again(harness, monkeypatch):
    """The hub stopped after pulling, before recording: nothing is lost, the counterpart offers it again."""
    monkeypatch.setattr("connectors.as4.sandbox.REOFFER_AFTER", 0.05)
    harness.controls.control(pull=True)
    first, message = harness.connector(pull=PULL), harness.message()
    first.deliver(message)
    assert len(_pulled(first, "poll_acks")) == 1
    restarted = harness.connector(pull=PULL)
    [again] = _pulled(restarted, "poll_acks")
    assert again.message_id == message.id
    restarted.answers_recorded([again])
    [held] = harness.controls.client.get("/as4/outbox").json()["held"]
    assert (held["state"], held["offers"]) == ("receipted", 2)


@pytest.mark.parametrize(("verdict", "state"), [(InboundVerdict(InboundOutcome.ACCEPTED, document_id="d1"), "receipted"),
                                                (InboundVerdict(InboundOutcome.FAILED, reason="invalid: …", refusal="INVALID"), "refused")])
def test_pulled_certificates_are_answered_after_the_hub_decides(harness, pki, verdict, state):
    harness.controls.control(pull=True)
    connector = harness.connector(pull=PULL)
    document = SampleCertificates(Signer(pki.key_provider("JP"))).signed("JP-2026-PULL-1")
    queued = harness.controls.client.post("/as4/send", content=document, headers={"Content-Type": "application/xml"}).json()
    assert queued["kind"] == "queued"
    [pulled] = _pulled(connector, "pull_documents")
    assert pulled.payload == document and pulled.counterpart_reference == queued["message_id"] and pulled.sender_country == "JP"
    connector.confirm_document(pulled, verdict)
    [held] = harness.controls.client.get("/as4/outbox").json()["held"]
    assert held["state"] == state
    if state == "refused":
        assert held["answer"].startswith("EBMS:0004") and "[INVALID]" in held["answer"]


def test_a_pull_on_a_channel_not_ours_gets_nothing(harness):
    harness.controls.control(pull=True)
    connector, message = harness.connector(pull={**PULL, "mpc": "urn:someone-else"}), harness.message()
    connector.deliver(message)
    assert connector.poll_acks() == []
    [held] = harness.controls.client.get("/as4/outbox").json()["held"]
    assert (held["state"], held["offers"]) == ("waiting", 0)
    assert [r.message_id for r in _pulled(harness.connector(pull=PULL), "poll_acks")] == [message.id]
