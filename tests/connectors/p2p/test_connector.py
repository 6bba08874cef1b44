"""The point-to-point connector: the contract suite in-process (pushed acks) and over real mutual TLS (polled acks),
then what is particular to this connector: endpoints, status mapping, TLS refusals, inbound verification, the
protocol's pure functions, and the connector configuration and registry."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from hub.connector import AwaitingAck, AckReport, Connector, ConnectorContext, Outcome, PollsAcks, ReceivesInbound
from connectors.p2p import P2PConfig, P2PConnector
from connectors.p2p.protocol import (
    AckStatus,
    build_acknowledgement,
    parse_acknowledgement,
    parse_reason,
    parse_retry_after,
)
from connectors.p2p.sandbox import create_sandbox_app
from connectors.serving import InProcessTransport, running_sandbox
from connectors.registry import CONNECTOR_TYPES, build_connector, load_connector_configs
from hub.errors import (
    ConfigurationError,
    DeliveryError,
    HostileXMLError,
    InputError,
    PermanentDeliveryError,
    SignatureMissing,
    TransientDeliveryError,
    UnknownDocumentError,
    UntrustedCertificateError,
)
from hub.signing import Signer
from hub.standards import PROJECT_ROOT
from hub.validation.schemas import load_schema
from hub.xmlsafe import parse_xml
from tests.contract.suite import ConnectorContract, ReceivedMessage, client_tls, wait_for

NAME = "foreign_authority"
HUB_URL = "http://127.0.0.1:8000"


class HttpControls:
    """The sandbox's control endpoints, driven over HTTP like any client would."""

    def __init__(self, client: httpx.Client, base: str) -> None:
        self.client, self.base = client, base

    def control(self, **body: object) -> None:
        self.client.post(f"{self.base}/control", json=body).raise_for_status()

    def fault(self, kind, *, count=1, retry_after=None, seconds=None) -> None:
        extra = {key: value for key, value in {"retry_after": retry_after, "seconds": seconds}.items() if value is not None}
        self.control(fault=kind, count=count, **extra)

    def acknowledge_with(self, mode, *, reason_code=None, reason_text=None) -> None:
        self.control(ack=mode, reason_code=reason_code, reason_text=reason_text)

    def received(self) -> list[ReceivedMessage]:
        entries = self.client.get(f"{self.base}/received").raise_for_status().json()["received"]
        keys = ("message_id", "certificate_number", "status", "deliveries")
        return [ReceivedMessage(**{key: entry[key] for key in keys}) for entry in entries]

    def reset(self) -> None:
        self.client.delete(f"{self.base}/state").raise_for_status()


class PushedAcks:
    """Plays the hub's ``POST /v1/inbound/{connector}``: hands pushed bodies to the connector, keeps the reports."""

    def __init__(self) -> None:
        self.connector: P2PConnector | None = None
        self.reports: list[AckReport] = []
        self.urls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        try:
            self.reports.extend(self.connector.parse_inbound(request.content, request.headers))
        except InputError:
            return httpx.Response(400)
        return httpx.Response(202)


class P2PHarness:
    """The contract harness for :class:`P2PConnector` against the sandbox, in-process or over mutual TLS."""

    def __init__(self, *, pki, certificates, base: str, controls: HttpControls, acks: str, app=None, pushed=None):
        self.pki, self.certificates, self.base, self.controls = pki, certificates, base, controls
        self.app, self.acks_mode, self.pushed = app, acks, pushed
        self.opened: list[Connector] = []

    def connector(self, **settings) -> P2PConnector:
        config = P2PConfig(**{"endpoints": {"*": f"{self.base}/p2p/authority"}, "acks": self.acks_mode, "answered_by": {"*": "US"}, **settings})
        context = ConnectorContext(certs_dir=str(self.pki.directory), public_url=HUB_URL)
        transport = InProcessTransport(self.app) if self.app is not None else None  # None: real HTTPS with mTLS
        connector = P2PConnector(NAME, config, transport=transport, context=context)
        connector.open()
        self.opened.append(connector)
        if self.pushed is not None:
            self.pushed.connector = connector
        return connector

    def message(self, **options):
        return self.certificates.message(destination=NAME, **options)

    def acks(self, connector, *, count, timeout=5.0):
        if connector.config.acks == "push":
            wait_for(lambda: len(self.pushed.reports) >= count, timeout=timeout, what=f"{count} pushed ack(s)")
            return list(self.pushed.reports)
        collected: list[AckReport] = []
        wait_for(lambda: collected.extend(connector.poll_acks()) or len(collected) >= count, timeout=timeout,
                 what=f"{count} polled ack(s)")
        return collected

    def close(self) -> None:
        for connector in self.opened:
            connector.close()


@pytest.fixture
def in_process(pki, certificates):
    pushed = PushedAcks()
    app = create_sandbox_app(
        trust_store=pki.trust_store(),
        signing_key_provider=pki.key_provider("US"),
        push_url={"authority": f"{HUB_URL}/v1/inbound/{NAME}", "customs": f"{HUB_URL}/v1/inbound/customs"},
        push_transport=httpx.MockTransport(pushed),
    )
    client = httpx.Client(transport=InProcessTransport(app), base_url="http://sandbox")
    harness = P2PHarness(
        pki=pki, certificates=certificates, base="http://sandbox", controls=HttpControls(client, "/p2p/authority"),
        app=app, acks="push", pushed=pushed,
    )
    yield harness
    harness.close()
    client.close()


@pytest.fixture(scope="module")
def sandbox_server(pki):
    app = create_sandbox_app(trust_store=pki.trust_store(), signing_key_provider=pki.key_provider("US"))
    with running_sandbox(app, certs_dir=pki.directory) as running:
        yield running


@pytest.fixture
def over_tls(pki, certificates, sandbox_server):
    client = httpx.Client(verify=client_tls(pki), base_url=sandbox_server.url)
    controls = HttpControls(client, "/p2p/authority")
    controls.reset()
    HttpControls(client, "/p2p/customs").reset()
    harness = P2PHarness(pki=pki, certificates=certificates, base=sandbox_server.url, controls=controls, acks="poll")
    yield harness
    harness.close()
    client.close()


class TestContractInProcessPushedAcks(ConnectorContract):
    @pytest.fixture
    def harness(self, in_process):
        return in_process


class TestContractMutualTLSPolledAcks(ConnectorContract):
    @pytest.fixture
    def harness(self, over_tls):
        return over_tls


# --- endpoints and answers -------------------------------------------------------------------------------------


def test_no_endpoint_for_the_importing_country_is_permanent(in_process):
    connector = in_process.connector(endpoints={"US": "http://sandbox/p2p/customs"})
    with pytest.raises(PermanentDeliveryError, match=r"no endpoint for importing country 'EC' and no '\*'"):
        connector.deliver(in_process.message(importing_country="EC"))
    assert in_process.controls.received() == []


def test_endpoint_is_chosen_by_importing_country(in_process):
    connector = in_process.connector(endpoints={"US": "http://sandbox/p2p/customs", "*": "http://sandbox/p2p/authority"})
    to_us, to_american = in_process.message(importing_country="US"), in_process.message(importing_country="EC")
    connector.deliver(to_us)
    connector.deliver(to_american)
    customs = HttpControls(in_process.controls.client, "/p2p/customs")
    assert [r.message_id for r in customs.received()] == [to_us.id]
    assert [r.message_id for r in in_process.controls.received()] == [to_american.id]


def test_retry_after_as_an_http_date(in_process):
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    in_process.controls.fault("unavailable", retry_after=format_datetime(when, usegmt=True))
    with pytest.raises(TransientDeliveryError) as raised:
        in_process.connector().deliver(in_process.message())
    assert 25 <= raised.value.retry_after <= 30


def test_unsupported_media_type_is_permanent(in_process):
    with pytest.raises(PermanentDeliveryError, match="415"):
        in_process.connector().deliver(in_process.message(media_type="text/plain"))


def test_pushed_acks_go_to_the_connector_named_in_the_url(in_process):
    in_process.connector().deliver(in_process.message())
    wait_for(lambda: in_process.pushed.urls, what="a push")
    assert in_process.pushed.urls == [f"{HUB_URL}/v1/inbound/{NAME}"]


def scripted(status: int, body: bytes = b"", headers: dict | None = None) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, content=body, headers=headers or {}))


def scripted_connector(pki, transport) -> P2PConnector:
    config = P2PConfig(endpoints={"*": "https://127.0.0.1:9/p2p/authority"})
    return P2PConnector(NAME, config, transport=transport, context=ConnectorContext(certs_dir=str(pki.directory), public_url=HUB_URL))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 301])
def test_client_errors_are_permanent(pki, certificates, status):
    with pytest.raises(PermanentDeliveryError) as raised:
        scripted_connector(pki, scripted(status, b"no")).deliver(certificates.message(destination=NAME))
    assert not isinstance(raised.value, TransientDeliveryError)
    assert raised.value.response == b"no" and raised.value.request.startswith(b"<?xml")


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (502, None), (504, None), (408, None), (429, 3.0), (503, 3.0)])
def test_server_errors_are_transient(pki, certificates, status, retry_after):
    transport = scripted(status, b"busy", {"Retry-After": "3"})
    with pytest.raises(TransientDeliveryError) as raised:
        scripted_connector(pki, transport).deliver(certificates.message(destination=NAME))
    assert raised.value.retry_after == retry_after


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut")])
def test_network_failures_are_transient(pki, certificates, failure):
    def fail(request):
        raise failure

    with pytest.raises(TransientDeliveryError):
        scripted_connector(pki, httpx.MockTransport(fail)).deliver(certificates.message(destination=NAME))


def test_a_receipt_must_fit_the_message(pki, stranger_pki, certificates):
    message = certificates.message(destination=NAME, importing_country="US")  # the US authority answers
    american = Signer(pki.key_provider("US")).sign
    other = american(build_acknowledgement(status=97, certificate_type_code="851", certificate_number=message.certificate_number,
                                          message_id="another-message"))
    unsigned = build_acknowledgement(status=97, certificate_type_code="851", certificate_number=message.certificate_number,
                                     message_id=message.id)
    mine = american(unsigned)
    approval = american(build_acknowledgement(status=39, certificate_type_code="851", certificate_number="x", message_id=message.id))
    rejection = build_acknowledgement(status=41, certificate_type_code="851", certificate_number="x", message_id=message.id,
                                      reason_code="REFUSED")
    for transport, problem in [
        (scripted(202, other, {"Receipt-ID": "R1"}), "acknowledges message 'another-message'"),
        (scripted(202, mine), "without a Receipt-ID"),
        (scripted(422, approval), "a 422 whose acknowledgement says acknowledged"),
        (scripted(202, b"not xml", {"Receipt-ID": "R1"}), "unreadable 202 answer"),
        (scripted(202, unsigned, {"Receipt-ID": "R1"}), "202 answer .* refused"),
        # Issue 12 #10: a synchronous rejection signed outside the trust store, or by another authority, is no answer.
        (scripted(422, Signer(stranger_pki.key_provider("US")).sign(rejection)), "422 answer .* refused"),
        (scripted(422, Signer(pki.key_provider("FR")).sign(rejection)), "signed by FR, not by US"),  # our own key
    ]:
        with pytest.raises(TransientDeliveryError, match=problem):
            scripted_connector(pki, transport).deliver(message)
    accepted = scripted_connector(pki, scripted(202, mine, {"Receipt-ID": "R1"})).deliver(message)
    assert (accepted.outcome, accepted.receipt_id, accepted.response) == (Outcome.ACCEPTED, "R1", mine)


# --- mutual TLS ---------------------------------------------------------------------------------------------------


def test_a_client_without_certificate_is_refused_at_tls(over_tls, pki):
    # TLS 1.3: the server checks the client certificate after the client considers the handshake done, so the client
    # only sees the connection close. That looks exactly like a transient drop, hence TransientDeliveryError.
    transport = httpx.HTTPTransport(verify=client_tls(pki, country=None))
    config = P2PConfig(endpoints={"*": f"{over_tls.base}/p2p/authority"})
    connector = P2PConnector(NAME, config, transport=transport, context=ConnectorContext(str(pki.directory), HUB_URL))
    with pytest.raises(TransientDeliveryError) as raised:
        connector.deliver(over_tls.message())
    connector.close()
    assert isinstance(raised.value, DeliveryError) and raised.value.request
    assert over_tls.controls.received() == []
    assert over_tls.connector().deliver(over_tls.message()).outcome is Outcome.ACCEPTED  # the same server, with a certificate


def test_an_untrusted_server_is_permanent(over_tls, stranger_pki):
    connector = over_tls.connector(ca_bundle=stranger_pki.ca_cert)
    with pytest.raises(PermanentDeliveryError, match="untrusted certificate"):
        connector.deliver(over_tls.message())
    assert over_tls.controls.received() == []


def test_an_issuing_country_without_client_certificate_is_permanent(over_tls):
    message = replace(over_tls.message(), issuing_country="DE")
    with pytest.raises(PermanentDeliveryError, match="no TLS client certificate for issuing country 'DE'"):
        over_tls.connector().deliver(message)


# --- inbound acknowledgements -------------------------------------------------------------------------------------


def an_ack(message_id="m-1", status=39, reason_code=None) -> bytes:
    return build_acknowledgement(status=status, certificate_type_code="851", certificate_number="FR-1",
                                 message_id=message_id, reason_code=reason_code)


def test_parse_inbound_verifies_then_reads(in_process, pki, stranger_pki):
    connector = in_process.connector()
    signed = Signer(pki.key_provider("US")).sign(an_ack(status=41, reason_code="PEST_FOUND"))
    [report] = connector.parse_inbound(signed, {"content-type": "application/xml"})
    assert (report.outcome, report.message_id, report.reason_code, report.country) == (Outcome.REJECTED, "m-1", "PEST_FOUND", "US")
    assert report.payload == signed
    with pytest.raises(SignatureMissing):
        connector.parse_inbound(an_ack(), {})
    with pytest.raises(UntrustedCertificateError):
        connector.parse_inbound(Signer(stranger_pki.key_provider("US")).sign(an_ack()), {})
    with pytest.raises(HostileXMLError):
        connector.parse_inbound(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', {})
    with pytest.raises(UnknownDocumentError):
        connector.parse_inbound(in_process.message().payload, {})


def test_polling_skips_forged_acks_and_keeps_its_cursor(in_process, pki, stranger_pki):
    connector = in_process.connector(acks="poll")
    feed = in_process.app.state.sandbox.authorities["authority"].acks
    feed.append((1, Signer(stranger_pki.key_provider("US")).sign(an_ack("forged")).decode()))
    feed.append((2, Signer(pki.key_provider("US")).sign(an_ack("genuine")).decode()))
    reports = connector.poll_acks()
    assert [r.message_id for r in reports] == ["genuine"]
    assert connector.ack_cursors == {}  # read, not recorded: a store that failed meanwhile gets it again
    assert [r.message_id for r in connector.poll_acks()] == ["genuine"]
    connector.answers_recorded(reports)
    assert connector.ack_cursors == {"http://sandbox/p2p/authority": 2}
    assert connector.poll_acks() == []


def test_a_failing_ack_feed_is_transient(in_process):
    in_process.controls.control(fault="unavailable", target="acks", retry_after=4)
    connector = in_process.connector(acks="poll")
    with pytest.raises(TransientDeliveryError) as raised:
        connector.poll_acks()
    assert raised.value.retry_after == 4
    assert connector.poll_acks() == []


def test_one_failing_feed_does_not_lose_the_others(in_process):
    customs = HttpControls(in_process.controls.client, "/p2p/customs")
    connector = in_process.connector(
        acks="poll", endpoints={"US": "http://sandbox/p2p/customs", "*": "http://sandbox/p2p/authority"}
    )
    to_us, to_american = in_process.message(importing_country="US"), in_process.message(importing_country="EC")
    connector.deliver(to_us)
    connector.deliver(to_american)
    customs.control(fault="server_error", target="acks")
    first = connector.poll_acks()
    assert [r.message_id for r in first] == [to_american.id]
    connector.answers_recorded(first)
    assert [r.message_id for r in connector.poll_acks()] == [to_us.id]


def test_an_answer_signed_by_another_authority_than_the_importing_one_is_no_receipt(in_process, pki):
    """Issue 12 #2/#10: the synchronous answer must be signed by the authority the message went to."""
    connector = in_process.connector(answered_by={})  # the default: the importing country answers
    with pytest.raises(TransientDeliveryError, match="signed by US, not by EC"):
        connector.deliver(in_process.message(importing_country="EC"))
    assert connector.deliver(in_process.message(importing_country="US")).outcome is Outcome.ACCEPTED


def test_requery_reads_the_feed_again_for_overdue_messages(in_process):
    connector = in_process.connector(acks="push")
    message = in_process.message(importing_country="US")
    connector.deliver(message)
    other = in_process.message(importing_country="US")
    connector.deliver(other)
    overdue = [AwaitingAck(message_id=message.id, receipt_id="r", certificate_number=message.certificate_number,
                           issuing_country="FR", importing_country="US")]
    assert [r.message_id for r in connector.requery(overdue)] == [message.id]


# --- protocol -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason_code", "outcome"),
    [(97, None, Outcome.ACCEPTED), (39, None, Outcome.ACKNOWLEDGED), (39, "WARN_LABEL", Outcome.ACKNOWLEDGED_WITH_WARNINGS),
     (39, "INFO", Outcome.ACKNOWLEDGED), (41, "SIGNATURE_INVALID", Outcome.REJECTED)],
)
def test_acknowledgements_are_valid_and_read_back(status, reason_code, outcome):
    xml = build_acknowledgement(status=status, certificate_type_code="851", certificate_number="FR-2026-PC-000123",
                                message_id="m-42", reason_code=reason_code, reason_text="some text" if reason_code else None,
                                issued_at=datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc))
    load_schema("SPSAcknowledgement").assertValid(parse_xml(xml))
    report = parse_acknowledgement(xml)
    assert (report.outcome, report.message_id, report.certificate_number, report.reason_code) == (
        outcome, "m-42", "FR-2026-PC-000123", reason_code,
    )
    assert b"<ram:RelationshipTypeCode>ACW</ram:RelationshipTypeCode>" in xml
    assert b"2026-11-20T10:00:00+00:00" in xml


def test_unreadable_acknowledgements_are_refused():
    with pytest.raises(UnknownDocumentError):
        parse_acknowledgement(b"<a/>")
    with pytest.raises(InputError, match="StatusCode '70'"):
        parse_acknowledgement(an_ack().replace(b">39<", b">70<"))
    with pytest.raises(InputError, match="neither a message"):
        parse_acknowledgement(an_ack().replace(b"m-1", b"").replace(b"FR-1", b""))


def test_reasons_and_retry_hints():
    assert parse_reason("[VALIDATION_FAILED] /rsm:X: bad") == ("VALIDATION_FAILED", "/rsm:X: bad")
    assert parse_reason("no code here") == (None, "no code here")
    assert parse_reason(None) == (None, None)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert AckStatus("41") is AckStatus.REJECTED


# --- configuration and registry --------------------------------------------------------------------------------------


def test_the_default_deployment_config_loads():
    configs = load_connector_configs(PROJECT_ROOT / "config" / "connectors.yaml", environ={})
    assert set(configs) == {"foreign_authority", "customs", "ephyto_hub", "traces_nt", "single_window", "as4_authority"}
    as4 = configs.pop("as4_authority")
    assert (as4.endpoint, as4.responder.country, as4.security.encrypt) == ("https://127.0.0.1:8450/as4", "JP", True)
    assert configs["ephyto_hub"].endpoint == "https://127.0.0.1:8444/hub/DeliveryService"
    assert configs.pop("traces_nt").url("x") == "https://127.0.0.1:8445/tracesnt/ws/x"
    configs.pop("ephyto_hub")
    assert configs.pop("single_window").recipient_country == "PE"
    assert configs["foreign_authority"].endpoints == {"*": "https://127.0.0.1:8443/p2p/authority"}
    assert configs["customs"].endpoints == {"*": "https://127.0.0.1:8443/p2p/customs"}
    assert all(isinstance(c, P2PConfig) and c.profile == "full" and c.acks == "push" for c in configs.values())
    moved = load_connector_configs(PROJECT_ROOT / "config" / "connectors.yaml", environ={"HUB_SANDBOX_URL": "https://127.0.0.1:9443"})
    assert moved["customs"].endpoints["*"] == "https://127.0.0.1:9443/p2p/customs"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "connectors.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("type: ftp", r"connector 'partner': field 'type': unknown type 'ftp' \(known: p2p, traces_nt"),
        ("type: p2p\n    endpoints: {'*': 'https://x'}\n    endpoint: x", r"connector 'partner': field 'endpoint': unknown field"),
        ("type: p2p\n    endpoints: {France: 'https://x'}", r"connector 'partner': field 'endpoints': .*'France'"),
        ("type: p2p\n    endpoints: {'*': 'ftp://x'}", r"field 'endpoints': .*not an http\(s\) URL"),
        ("type: p2p\n    endpoints: {'*': 'https://x'}\n    acks: email", r"field 'acks'"),
        ("type: p2p\n    endpoints: {'*': 'https://x'}\n    timeout: -1", r"field 'timeout'"),
        ("type: p2p\n    endpoints: {'*': 'https://x'}\n    client_certificate: a.pem", r"client_key go together"),
        ("type: p2p\n    endpoints: {'*': '${NOPE}/p2p'}", r"field 'endpoints.\*': environment variable NOPE is not set"),
        ("type: p2p", r"field 'endpoints': Field required"),
    ],
)
def test_bad_configs_name_file_connector_and_field(tmp_path, entry, expected):
    path = write(tmp_path, f"connectors:\n  partner:\n    {entry}\n")
    with pytest.raises(ConfigurationError, match=expected) as raised:
        load_connector_configs(path, environ={})
    assert str(path) in str(raised.value)


def test_bad_files_are_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_connector_configs(tmp_path / "absent.yaml")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_connector_configs(write(tmp_path, "connectors: [\n"))
    with pytest.raises(ConfigurationError, match="one key, 'connectors'"):
        load_connector_configs(write(tmp_path, "routes: {}\n"))
    with pytest.raises(ConfigurationError, match="lower-case letters"):
        load_connector_configs(write(tmp_path, "connectors:\n  Bad-Name: {type: p2p}\n"))


def test_build_connector_from_the_registry(pki):
    assert CONNECTOR_TYPES["p2p"].config_model is P2PConfig
    configs = load_connector_configs(PROJECT_ROOT / "config" / "connectors.yaml", environ={})
    context = ConnectorContext(certs_dir=str(pki.directory), public_url=HUB_URL)
    connector = build_connector("customs", configs["customs"], context=context)
    assert isinstance(connector, P2PConnector) and isinstance(connector, Connector)
    assert isinstance(connector, PollsAcks) and isinstance(connector, ReceivesInbound)
    assert connector.name == "customs" and connector.config is configs["customs"]
    connector.open()
    connector.close()
    with pytest.raises(ConfigurationError, match="unknown type 'smtp'"):
        build_connector("x", configs["customs"].model_copy(update={"type": "smtp"}), context=context)


def test_open_checks_key_material(tmp_path):
    config = P2PConfig(endpoints={"*": "https://127.0.0.1:8443/p2p/authority"})
    connector = P2PConnector(NAME, config, context=ConnectorContext(certs_dir=str(tmp_path), public_url=HUB_URL))
    with pytest.raises(ConfigurationError, match=r"ca_bundle .*ca.pem is not a readable file"):
        connector.open()


def test_delivery_errors_keep_the_exchange():
    error = TransientDeliveryError("busy", retry_after=2, request=b"req", response=b"resp")
    assert (error.retry_after, error.request, error.response) == (2, b"req", b"resp")
    permanent = PermanentDeliveryError("no", response=b"403")
    assert (permanent.request, permanent.response, str(permanent)) == (None, b"403", "no")
