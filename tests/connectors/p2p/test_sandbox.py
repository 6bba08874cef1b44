"""The point-to-point sandbox on its own: what a faithful foreign authority accepts, refuses, and answers, and the
switches that make it misbehave. Driven in-process (no socket) through :class:`InProcessTransport`."""

from __future__ import annotations

import json
import ssl
import time
import uuid

import httpx
import pytest

from connectors.p2p.protocol import AckStatus, parse_acknowledgement
from connectors.p2p.sandbox import create_sandbox_app
from connectors.serving import InProcessTransport, serve_sandbox
from hub.errors import ConfigurationError, MalformedXMLError
from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml
from hub.signing import Signer, Verifier
from hub.xmlsafe import parse_xml
from tests.contract.suite import EXAMPLE_RECORD, wait_for

NUMBER = "FR-2026-PC-000123"


@pytest.fixture(scope="module")
def signed(certificates) -> bytes:
    return certificates.signed(NUMBER)


@pytest.fixture(scope="module")
def unsigned() -> bytes:
    return to_xml(render_certificate(record_from_data(json.loads(EXAMPLE_RECORD.read_text())), "full").root)


@pytest.fixture
def pushes():
    return Pushes()


class Pushes:
    """The hub end of pushes: records each one; answers from ``statuses`` in turn (then 202)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.statuses: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append((str(request.url), request.content))
        return httpx.Response(self.statuses.pop(0) if self.statuses else 202)


@pytest.fixture
def sandbox_app(pki, pushes):
    """The point-to-point sandbox as a foreign authority (signing as US), pushing its acknowledgements to ``pushes``."""
    return create_sandbox_app(
        trust_store=pki.trust_store(), signing_key_provider=pki.key_provider("US"),
        push_url="http://127.0.0.1:8000/v1/inbound/{authority}", push_transport=httpx.MockTransport(pushes),
    )


@pytest.fixture
def sandbox(sandbox_app):
    with httpx.Client(transport=InProcessTransport(sandbox_app), base_url="http://sandbox/p2p/authority", timeout=5) as client:
        yield client


def send(client: httpx.Client, body: bytes, *, message_id: str | None = None, content_type: str | None = "application/xml",
         path: str = "") -> httpx.Response:
    headers = {"Message-ID": message_id or str(uuid.uuid4()), "X-Correlation-ID": "corr-1"}
    if content_type:
        headers["Content-Type"] = content_type
    # httpx gives base URLs a trailing slash; the protocol's endpoint has none.
    return client.post(path or str(client.base_url).rstrip("/"), content=body, headers=headers)


def received(client: httpx.Client) -> list[dict]:
    return client.get("/received").json()["received"]


def test_a_signed_certificate_gets_a_signed_receipt(sandbox, signed, verifier):
    response = send(sandbox, signed, message_id="msg-1")
    assert response.status_code == 202
    assert response.headers["Receipt-ID"].startswith("RCPT-")
    verified = verifier.verify(response.content)
    assert "C=US" in verified.signer_subject
    receipt = parse_acknowledgement(verified.signed_root)
    assert (receipt.message_id, receipt.certificate_number) == ("msg-1", NUMBER)
    assert b"<ram:StatusCode>97</ram:StatusCode>" in response.content
    assert b"<ram:TypeCode>851</ram:TypeCode>" in response.content
    [entry] = received(sandbox)
    assert entry | {"receipt_id": None} == {
        "message_id": "msg-1", "certificate_number": NUMBER, "type_code": "851", "correlation_id": "corr-1",
        "status": "accepted", "reason": None, "receipt_id": None, "deliveries": 1,
    }


def test_a_duplicate_message_id_gets_the_same_receipt_with_200(sandbox, signed):
    first = send(sandbox, signed, message_id="msg-1")
    again = send(sandbox, signed, message_id="msg-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.content == first.content and again.headers["Receipt-ID"] == first.headers["Receipt-ID"]
    assert [(e["message_id"], e["deliveries"]) for e in received(sandbox)] == [("msg-1", 2)]
    assert len(sandbox.get("/acks").json()["acks"]) == 1, "a duplicate is not acknowledged twice"


def test_requests_without_the_protocol_headers_are_refused(sandbox, signed):
    assert sandbox.post("http://sandbox/p2p/authority", content=signed, headers={"Content-Type": "application/xml"}).status_code == 400
    missing_type = send(sandbox, signed, content_type=None)
    assert missing_type.status_code == 400 and missing_type.json()["code"] == "CONTENT_TYPE_MISSING"
    assert send(sandbox, signed, content_type="text/plain").status_code == 415
    assert send(sandbox, signed, content_type="application/xml; charset=utf-8").status_code == 202
    assert sandbox.post("http://sandbox/p2p/nobody", content=signed, headers={"Message-ID": "x"}).status_code == 404


@pytest.mark.parametrize(
    "body",
    [b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>', b"<r><unclosed></r>"],
)
def test_hostile_or_malformed_xml_is_refused(sandbox, body):
    response = send(sandbox, body)
    assert response.status_code == 400 and response.json()["code"] == "XML_REFUSED"
    assert received(sandbox) == []


def assert_signed_rejection(response: httpx.Response, verifier: Verifier, code: str) -> str:
    assert response.status_code == 422
    verified = verifier.verify(response.content)
    report = parse_acknowledgement(verified.signed_root)
    assert b"<ram:StatusCode>41</ram:StatusCode>" in response.content
    assert report.reason_code == code
    return report.reason_text


def test_an_unsigned_certificate_is_rejected(sandbox, unsigned, verifier):
    assert_signed_rejection(send(sandbox, unsigned, message_id="m"), verifier, "SIGNATURE_MISSING")
    assert [(e["status"], e["reason"][:19]) for e in received(sandbox)] == [("rejected", "[SIGNATURE_MISSING]")]
    assert sandbox.get("/acks").json()["acks"] == []


def test_a_tampered_certificate_is_rejected(sandbox, signed, verifier):
    tampered = signed.replace(b"Cydia pomonella", b"Cydia pomonelle")
    text = assert_signed_rejection(send(sandbox, tampered), verifier, "SIGNATURE_INVALID")
    assert "digest" in text


def test_a_certificate_signed_under_another_ca_is_rejected(sandbox, unsigned, stranger_pki, verifier):
    forged = Signer(stranger_pki.key_provider("FR")).sign(unsigned)
    text = assert_signed_rejection(send(sandbox, forged), verifier, "SIGNATURE_INVALID")
    assert "trust anchor" in text


def test_an_invalid_certificate_is_rejected_with_the_xpath(sandbox, pki, unsigned, verifier):
    root = parse_xml(unsigned)
    country = root.find(".//{*}ImportSPSCountry/{*}ID")
    country.text = "QQ"
    body = Signer(pki.key_provider("FR")).sign(to_xml(root))
    text = assert_signed_rejection(send(sandbox, body), verifier, "VALIDATION_FAILED")
    assert text.startswith("/rsm:SPSCertificate/rsm:SPSConsignment/ram:ImportSPSCountry/ram:ID: QQ")


def test_a_rejected_message_can_be_resent_under_the_same_identity(sandbox, signed, unsigned):
    send(sandbox, signed, message_id="before")
    assert send(sandbox, unsigned, message_id="again").status_code == 422
    send(sandbox, signed, message_id="after")
    assert send(sandbox, signed, message_id="again").status_code == 202
    assert [(e["message_id"], e["status"], e["deliveries"]) for e in received(sandbox)] == [
        ("before", "accepted", 1), ("again", "accepted", 2), ("after", "accepted", 1),
    ]


def test_unavailable_for_count_requests_with_retry_after(sandbox, signed):
    sandbox.post("/control", json={"fault": "unavailable", "count": 2, "retry_after": 1.2}).raise_for_status()
    answers = [send(sandbox, signed, message_id="m") for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 202]
    assert [a.headers.get("Retry-After") for a in answers[:2]] == ["2", "2"]
    assert [e["deliveries"] for e in received(sandbox)] == [1], "refused requests are not received"


def test_server_error_malformed_refuse_and_drop(sandbox, signed):
    for fault in ({"fault": "server_error"}, {"fault": "malformed"}, {"fault": "refuse", "status": 401}, {"fault": "drop"}):
        sandbox.post("/control", json=fault).raise_for_status()
    assert send(sandbox, signed).status_code == 500
    garbage = send(sandbox, signed)
    assert garbage.status_code == 200
    with pytest.raises(MalformedXMLError):
        parse_xml(garbage.content)
    assert send(sandbox, signed).status_code == 401
    with pytest.raises(httpx.RemoteProtocolError):
        send(sandbox, signed)
    assert send(sandbox, signed).status_code == 202
    assert len(received(sandbox)) == 1


def test_slow_answers_and_clearing_faults(sandbox, signed):
    sandbox.post("/control", json={"fault": "slow", "seconds": 0.3}).raise_for_status()
    started = time.monotonic()
    assert send(sandbox, signed).status_code == 202
    assert time.monotonic() - started >= 0.3
    sandbox.post("/control", json={"fault": "server_error", "count": 5}).raise_for_status()
    sandbox.post("/control", json={"fault": "none"}).raise_for_status()
    assert send(sandbox, signed).status_code == 202


def test_a_slow_request_outliving_a_reset_is_forgotten(sandbox, sandbox_app, signed):
    sandbox.post("/control", json={"fault": "slow", "seconds": 0.3}).raise_for_status()
    with httpx.Client(transport=InProcessTransport(sandbox_app), base_url="http://sandbox/p2p/authority", timeout=0.05) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            send(impatient, signed)
        assert sandbox.delete("/state").status_code == 204
        time.sleep(0.4)
    assert received(sandbox) == []


def test_bad_controls_are_refused(sandbox):
    for body in ({"fault": "explode"}, {"ack": "maybe"}, {"fault": "refuse", "status": 500}, {"colour": "red"}):
        response = sandbox.post("/control", json=body)
        assert response.status_code == 400 and response.json()["code"] == "BAD_CONTROL", body


def test_the_ack_feed_follows_the_ack_behaviour(sandbox, signed, verifier):
    send(sandbox, signed, message_id="m1")
    sandbox.post("/control", json={"ack": "reject", "reason_code": "PEST_FOUND", "reason_text": "live larvae"})
    send(sandbox, signed, message_id="m2")
    sandbox.post("/control", json={"ack": "warn"})
    send(sandbox, signed, message_id="m3")
    sandbox.post("/control", json={"ack": "none"})
    send(sandbox, signed, message_id="m4")
    feed = sandbox.get("/acks", params={"after": 0}).json()
    assert [entry["seq"] for entry in feed["acks"]] == [1, 2, 3] and feed["next"] == 3
    reports = [parse_acknowledgement(verifier.verify(entry["xml"].encode()).signed_root) for entry in feed["acks"]]
    assert [(r.message_id, r.outcome.value, r.reason_code) for r in reports] == [
        ("m1", "acknowledged", None), ("m2", "rejected", "PEST_FOUND"), ("m3", "acknowledged_with_warnings", "WARN"),
    ]
    assert reports[1].reason_text == "live larvae"
    assert sandbox.get("/acks", params={"after": 2}).json() == {"acks": feed["acks"][2:], "next": 3}
    assert sandbox.get("/acks", params={"after": 3}).json() == {"acks": [], "next": 3}
    assert sandbox.get("/acks", params={"after": "x"}).status_code == 400


def test_the_ack_feed_can_fail_too(sandbox, signed):
    sandbox.post("/control", json={"fault": "unavailable", "target": "acks"}).raise_for_status()
    send(sandbox, signed)
    assert sandbox.get("/acks").status_code == 503
    assert len(sandbox.get("/acks").json()["acks"]) == 1


def test_acks_are_pushed_per_authority_and_retried(sandbox_app, signed, pushes, verifier):
    pushes.statuses = [503]
    with httpx.Client(transport=InProcessTransport(sandbox_app), base_url="http://sandbox/p2p/customs") as customs:
        assert send(customs, signed, message_id="pushed").status_code == 202
        wait_for(lambda: len(pushes.received) == 2, what="the push and its retry")
    urls = {url for url, _ in pushes.received}
    assert urls == {"http://127.0.0.1:8000/v1/inbound/customs"}
    report = parse_acknowledgement(verifier.verify(pushes.received[-1][1]).signed_root)
    assert (report.message_id, report.outcome.value) == ("pushed", "acknowledged")


def test_reset_forgets_messages_acks_and_behaviour(sandbox, signed):
    sandbox.post("/control", json={"ack": "reject"})
    send(sandbox, signed, message_id="m1")
    sandbox.post("/control", json={"fault": "server_error"})
    assert sandbox.delete("/state").status_code == 204
    assert received(sandbox) == [] and sandbox.get("/acks").json() == {"acks": [], "next": 0}
    assert send(sandbox, signed, message_id="m1").status_code == 202, "no fault left, and m1 is new again"
    xml = sandbox.get("/acks").json()["acks"][0]["xml"]
    assert f"<ram:StatusCode>{AckStatus.APPROVED.value}</ram:StatusCode>" in xml


def test_serving_over_mutual_tls_needs_the_pki(pki, sandbox_app, tmp_path):
    server = serve_sandbox(sandbox_app, port=8443, certs_dir=pki.directory)
    assert server.config.ssl_cert_reqs == ssl.CERT_REQUIRED
    assert server.config.ssl_ca_certs == str(pki.ca_cert)
    with pytest.raises(ConfigurationError, match="ca.pem"):
        serve_sandbox(sandbox_app, port=8443, certs_dir=tmp_path)
