"""The IPPC ePhyto Hub connector: the contract suite against the sandbox Hub (in-process and over mutual TLS), the
HUBTrackingInfo mapping, how SOAP faults and HTTP failures become delivery errors, and the envelope it sends checked
against the schema embedded in the real Hub WSDL."""

from __future__ import annotations

import httpx
import pytest
from lxml import etree

from hub.connector import AwaitingAck, ConnectorContext, Outcome, PollsAcks, PullsDocuments
from connectors.ephyto_hub import EphytoHubConfig, EphytoHubConnector, HUBTrackingInfo, ack_from_tracking
from connectors.ephyto_hub.connector import Awaiting
from connectors.ephyto_hub.sandbox import create_ephyto_hub_sandbox
from connectors.serving import InProcessTransport
from hub.errors import PermanentDeliveryError, TransientDeliveryError
from hub.validation.schemas import schema_from_wsdl
from hub.xmlsafe import parse_xml
from tests.contract.suite import ConnectorContract, ReceivedMessage, client_tls, wait_for
from tests.support.standards import standard_file

NAME = "ephyto_hub"
SERVICE = "/hub/DeliveryService"


class HubControls:
    """The sandbox Hub's control endpoints; ``received`` names messages by the certificate numbers the harness made."""

    def __init__(self, client: httpx.Client, message_ids: dict[str, str]) -> None:
        self.client, self.message_ids = client, message_ids

    def control(self, **body: object) -> None:
        self.client.post("/control", json=body).raise_for_status()

    def fault(self, kind, *, count=1, retry_after=None, seconds=None) -> None:
        extra = {key: value for key, value in {"retry_after": retry_after, "seconds": seconds}.items() if value is not None}
        self.control(fault=kind, count=count, **extra)

    def acknowledge_with(self, mode, *, reason_code=None, reason_text=None) -> None:
        tracking = {"acknowledge": "Delivered", "warn": "DeliveredWithWarnings", "reject": "FailedDelivery"}[mode]
        self.control(tracking=tracking, message=reason_text)

    def received(self) -> list[ReceivedMessage]:
        entries = self.client.get("/received").raise_for_status().json()["received"]
        return [
            ReceivedMessage(self.message_ids.get(e["NPPOCertificateNumber"], "?"), e["NPPOCertificateNumber"], "accepted", e["deliveries"])
            for e in entries
        ]

    def reset(self) -> None:
        self.client.delete("/state").raise_for_status()
        self.control(delivery_delay=0)  # the contract expects answers without an importing NPPO acting


class HubHarness:
    """The contract harness for :class:`EphytoHubConnector` against the sandbox Hub."""

    def __init__(self, *, pki, certificates, client: httpx.Client, base: str, app=None) -> None:
        self.pki, self.certificates, self.base, self.app = pki, certificates, base, app
        self.message_ids: dict[str, str] = {}
        self.controls = HubControls(client, self.message_ids)
        self.controls.reset()
        self.opened: list[EphytoHubConnector] = []

    def connector(self, **settings) -> EphytoHubConnector:
        config = EphytoHubConfig(**{"endpoint": f"{self.base}{SERVICE}", "tracking_poll_interval": 0, **settings})
        transport = InProcessTransport(self.app) if self.app is not None else None  # None: real HTTPS with mTLS
        connector = EphytoHubConnector(NAME, config, transport=transport, context=_context(self.pki))
        connector.open()
        self.opened.append(connector)
        return connector

    def message(self, **options):
        message = self.certificates.message(destination=NAME, **options)
        self.message_ids[message.certificate_number] = message.id
        return message

    def acks(self, connector, *, count, timeout=5.0):
        collected = []
        wait_for(lambda: collected.extend(connector.poll_acks()) or len(collected) >= count, timeout=timeout,
                 what=f"{count} tracked ack(s)")
        return collected

    def close(self) -> None:
        for connector in self.opened:
            connector.close()


def _context(pki) -> ConnectorContext:
    return ConnectorContext(certs_dir=str(pki.directory), public_url="http://127.0.0.1:8000")


@pytest.fixture
def in_process(pki, ephyto_certificates):
    app = create_ephyto_hub_sandbox()
    client = httpx.Client(transport=InProcessTransport(app), base_url="http://sandbox")
    harness = HubHarness(pki=pki, certificates=ephyto_certificates, client=client, base="http://sandbox", app=app)
    yield harness
    harness.close()
    client.close()


@pytest.fixture
def over_tls(pki, ephyto_certificates, hub_server):
    client = httpx.Client(verify=client_tls(pki), base_url=hub_server.url)
    harness = HubHarness(pki=pki, certificates=ephyto_certificates, client=client, base=hub_server.url)
    yield harness
    harness.close()
    client.close()


class HubContract(ConnectorContract):
    def test_business_rejection_is_a_result_not_an_error(self, harness):
        # Cannot apply: DeliverEnvelope has no business answer. The Hub takes the envelope (or refuses it with a
        # HubWebException, a permanent error); the importing NPPO's verdict comes later as HUBTrackingInfo, which
        # test_acknowledgement_mapping and the tracking tests below cover.
        pytest.skip("the Hub never rejects a certificate synchronously")

    @pytest.mark.parametrize(
        ("mode", "expected"),
        [("acknowledge", Outcome.ACKNOWLEDGED), ("warn", Outcome.ACKNOWLEDGED_WITH_WARNINGS), ("reject", Outcome.REJECTED)],
    )
    def test_acknowledgement_mapping(self, harness, mode, expected):
        # As the shared case, except the rejection's reason code: the Hub carries no code of the importing NPPO's,
        # only its tracking value (FailedDelivery) and message text.
        if mode != "reject":
            return super().test_acknowledgement_mapping(harness, mode, expected)
        harness.controls.acknowledge_with("reject", reason_text="live Cydia pomonella found at inspection")
        connector, message = harness.connector(), harness.message()
        assert connector.deliver(message).outcome is Outcome.ACCEPTED
        [ack] = harness.acks(connector, count=1)
        assert (ack.outcome, ack.message_id, ack.certificate_number) == (Outcome.REJECTED, message.id, message.certificate_number)
        assert (ack.reason_code, ack.reason_text) == ("FailedDelivery", "live Cydia pomonella found at inspection")


class TestContractInProcess(HubContract):
    @pytest.fixture
    def harness(self, in_process):
        return in_process


class TestContractMutualTLS(HubContract):
    @pytest.fixture
    def harness(self, over_tls):
        return over_tls


# --- tracking ----------------------------------------------------------------------------------------------------

AWAITING = Awaiting("m-1", "FR-2026-PC-1", "EC", "FR")


@pytest.mark.parametrize(
    ("tracking", "outcome", "reason_code"),
    [
        ("PendingDelivery", None, None),
        (None, None, None),
        ("Delivered", Outcome.ACKNOWLEDGED, None),
        ("DeliveredWithWarnings", Outcome.ACKNOWLEDGED_WITH_WARNINGS, "DeliveredWithWarnings"),
        ("DeliveredNotReadable", Outcome.REJECTED, "DeliveredNotReadable"),
        ("FailedDelivery", Outcome.REJECTED, "FailedDelivery"),
        ("EnvelopeNotExists", Outcome.REJECTED, "ENVELOPE_NOT_EXISTS"),
        ("SomethingNew", None, None),
    ],
)
def test_every_tracking_value_maps(tracking, outcome, reason_code):
    report = ack_from_tracking("HUB-1", tracking, "the Hub says so", AWAITING)
    if outcome is None:
        assert report is None
        return
    assert (report.outcome, report.reason_code, report.receipt_id) == (outcome, reason_code, "HUB-1")
    assert (report.message_id, report.certificate_number, report.country) == ("m-1", "FR-2026-PC-1", "EC")
    assert report.reason_text == "the Hub says so"


def test_the_mapping_covers_every_value_the_hub_defines():
    assert {value.value for value in HUBTrackingInfo} == {
        "PendingDelivery", "Delivered", "FailedDelivery", "EnvelopeNotExists", "DeliveredWithWarnings", "DeliveredNotReadable",
    }


@pytest.mark.parametrize(
    ("tracking", "outcome"),
    [("DeliveredNotReadable", Outcome.REJECTED), ("DeliveredWithWarnings", Outcome.ACKNOWLEDGED_WITH_WARNINGS)],
)
def test_tracking_from_the_sandbox(in_process, tracking, outcome):
    in_process.controls.control(tracking=tracking, message="Content is not an SPSCertificate")
    connector = in_process.connector()
    receipt = connector.deliver(in_process.message()).receipt_id
    [report] = connector.poll_acks()
    assert (report.outcome, report.reason_code, report.reason_text, report.receipt_id) == (
        outcome, tracking, "Content is not an SPSCertificate", receipt,
    )
    assert connector.awaiting == {} and connector.poll_acks() == []


def test_pending_envelopes_stay_awaited_and_unknown_ones_are_rejected(in_process):
    in_process.controls.control(delivery_delay=None)
    connector = in_process.connector()
    receipt = connector.deliver(in_process.message()).receipt_id
    assert connector.poll_acks() == [] and set(connector.awaiting) == {receipt}
    connector.awaiting["HUB-NO-SUCH"] = Awaiting("m-x", "FR-X", "EC", "FR")
    [report] = connector.poll_acks()
    assert (report.receipt_id, report.outcome, report.reason_code) == ("HUB-NO-SUCH", Outcome.REJECTED, "ENVELOPE_NOT_EXISTS")


def test_a_restarted_connector_follows_the_envelopes_it_is_handed(in_process):
    in_process.controls.control(tracking="Delivered")
    message = in_process.message()
    receipt = in_process.connector().deliver(message).receipt_id
    restarted = in_process.connector()
    assert restarted.poll_acks() == []
    restarted.resume([AwaitingAck(message_id=message.id, receipt_id=receipt, certificate_number=message.certificate_number, issuing_country=message.issuing_country, importing_country=message.importing_country)])
    [report] = restarted.poll_acks()
    assert (report.message_id, report.receipt_id, report.outcome) == (message.id, receipt, Outcome.ACKNOWLEDGED)


def test_tracking_is_not_asked_again_before_the_interval(in_process):
    in_process.controls.control(delivery_delay=None)
    connector = in_process.connector(tracking_poll_interval=3600)
    connector.deliver(in_process.message())
    assert connector.poll_acks() == []
    in_process.controls.control(delivery_delay=0)
    assert connector.poll_acks() == []  # asked a moment ago: not due yet


def test_a_failing_tracking_call_is_transient(in_process):
    connector = in_process.connector()
    connector.deliver(in_process.message())
    in_process.controls.control(fault="unavailable", target="GetEnvelopeTrackingInfo", retry_after=4)
    with pytest.raises(TransientDeliveryError) as raised:
        connector.poll_acks()
    assert raised.value.retry_after == 4
    assert [r.outcome for r in connector.poll_acks()] == [Outcome.ACKNOWLEDGED]


# --- faults and failures -------------------------------------------------------------------------------------------

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def soap_fault(code: str, detail: str = "") -> bytes:
    return (f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Body><soap:Fault><faultcode>{code}</faultcode>'
            f"<faultstring>no</faultstring>{detail}</soap:Fault></soap:Body></soap:Envelope>").encode()


HUB_EXCEPTION = '<detail><ns:HubWebException xmlns:ns="http://ephyto.ippc.int/"><ns:message>bad</ns:message></ns:HubWebException></detail>'


def scripted(pki, status: int, body: bytes, headers: dict | None = None) -> EphytoHubConnector:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body, headers=headers or {}))
    config = EphytoHubConfig(endpoint=f"https://127.0.0.1:9{SERVICE}")
    return EphytoHubConnector(NAME, config, transport=transport, context=_context(pki))


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "retry_after"),
    [
        (500, soap_fault("soap:Server", HUB_EXCEPTION), {}, PermanentDeliveryError, None),
        (500, soap_fault("soap:Client"), {}, PermanentDeliveryError, None),
        (500, soap_fault("soap:Server"), {}, TransientDeliveryError, None),
        (503, b"<html>down</html>", {"Retry-After": "9"}, TransientDeliveryError, 9.0),
        (503, soap_fault("soap:Server", HUB_EXCEPTION), {"Retry-After": "9"}, TransientDeliveryError, 9.0),
        (502, b"<html>bad gateway</html>", {}, TransientDeliveryError, None),
        (404, b"<html>not found</html>", {}, PermanentDeliveryError, None),
        (200, b"<<< not xml", {}, TransientDeliveryError, None),
        (200, b"<a/>", {}, TransientDeliveryError, None),
    ],
)
def test_answers_map_to_delivery_errors(pki, ephyto_certificates, status, body, headers, error, retry_after):
    with pytest.raises(error) as raised:
        scripted(pki, status, body, headers).deliver(ephyto_certificates.message(destination=NAME))
    if error is PermanentDeliveryError:
        assert not isinstance(raised.value, TransientDeliveryError)
    assert raised.value.retry_after == retry_after if error is TransientDeliveryError else True
    assert raised.value.request.startswith(b"<?xml") and raised.value.response == body


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut")])
def test_network_failures_are_transient(pki, ephyto_certificates, failure):
    def fail(request):
        raise failure

    connector = EphytoHubConnector(NAME, EphytoHubConfig(endpoint=f"https://127.0.0.1:9{SERVICE}"),
                                   transport=httpx.MockTransport(fail), context=_context(pki))
    with pytest.raises(TransientDeliveryError) as raised:
        connector.deliver(ephyto_certificates.message(destination=NAME))
    assert raised.value.request


def test_a_message_without_importing_country_is_permanent(in_process):
    with pytest.raises(PermanentDeliveryError, match="no importing country"):
        in_process.connector().deliver(in_process.message(importing_country=None))
    assert in_process.controls.received() == []


def test_an_nppo_the_hub_does_not_know_is_refused_for_good(in_process):
    with pytest.raises(PermanentDeliveryError, match="not an active NPPO"):
        in_process.connector().deliver(in_process.message(importing_country="ZZ"))


# --- the envelope against the real Hub --------------------------------------------------------------------------


def test_the_deliver_envelope_request_is_valid_for_the_real_hub(in_process, standards):
    message = in_process.message()
    request = in_process.connector().deliver(message).request
    operation = parse_xml(request).find(f"{{{SOAP}}}Body/*")
    hub_schema = schema_from_wsdl(standard_file("ephyto-hub/ephyto-prod.wsdl"))
    hub_schema.assertValid(etree.ElementTree(parse_xml(etree.tostring(operation))))
    entities = "{http://ephyto.ippc.int/HUB.Entities}"
    env = operation.find("{http://ephyto.ippc.int/}env")
    assert [env.findtext(entities + name) for name in ("From", "To", "CertificateType", "CertificateStatus", "NPPOCertificateNumber")] == [
        "FR", "EC", "851", "70", message.certificate_number,
    ]
    assert env.findtext(entities + "Content").encode("utf-8") == message.payload


def test_config_defaults_and_checks(pki):
    config = EphytoHubConfig()
    assert (config.type, config.profile, config.endpoint) == ("ephyto_hub", "ephyto", "https://hub.ephytoexchange.org/hub/DeliveryService")
    assert config.import_nppos == []
    for bad in ({"endpoint": "ftp://x"}, {"from_nppo": "France"}, {"client_certificate": "a.pem"}, {"timeout": 0}, {"endpont": "x"},
                {"import_nppos": ["fr"]}):
        with pytest.raises(ValueError):
            EphytoHubConfig(**bad)
    connector = EphytoHubConnector(NAME, config, context=_context(pki))
    assert isinstance(connector, PollsAcks) and isinstance(connector, PullsDocuments)
    connector.open()
    connector.close()
