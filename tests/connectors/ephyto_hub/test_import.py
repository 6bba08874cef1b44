"""The import side of the IPPC ePhyto Hub connector against the sandbox Hub: certificates addressed to our NPPO are
pulled, offered until confirmed, and confirmed as accepted, accepted with warnings or failed (which the exporter's
tracking shows); country responses (``rsm:SPSAcknowledgement``) become business-response reports, acknowledged to
the Hub only once handed over; faults while pulling are typed errors. Foreign NPPOs are played by zeep clients of the
REAL Hub WSDL, and every import-side request the connector sends is checked against the real Hub's schema."""

from __future__ import annotations

import base64

import httpx
import pytest
import zeep
import zeep.exceptions
from lxml import etree

from hub.connector import ConnectorContext, InboundOutcome, InboundVerdict, Outcome, PullsDocuments
from connectors.ephyto_hub import EphytoHubConfig, EphytoHubConnector
from connectors.ephyto_hub.responses import build_country_response
from connectors.ephyto_hub.transport import HttpxTransport
from connectors.serving import InProcessTransport
from hub.errors import PermanentDeliveryError, TransientDeliveryError
from hub.validation.schemas import schema_from_wsdl
from hub.xmlsafe import parse_xml
from tests.contract.suite import client_tls
from tests.support.standards import standard_file

NAME = "ephyto_hub"
ADDRESS = "http://sandbox/hub/DeliveryService"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
BINDING = "{http://ephyto.ippc.int/}DeliveryServiceSoapBinding"
NORWAY_SAMPLE = "samples/ephyto/NO-ephyto-SPSCertificate.xml"


class Recording(httpx.BaseTransport):
    """Passes requests to ``inner`` and keeps every (request body, response body)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.exchanges = inner, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.exchanges.append((request.read(), response.read()))
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def norway_sample(standards) -> bytes:
    return standard_file(NORWAY_SAMPLE).read_bytes()


@pytest.fixture
def connect(pki, sandbox_hub):
    """Connectors over the in-process sandbox (import for FR unless told otherwise), closed after the test."""
    made = []

    def connect(transport: httpx.BaseTransport | None = None, **settings) -> EphytoHubConnector:
        config = EphytoHubConfig(**{"endpoint": ADDRESS, "tracking_poll_interval": 0, "import_nppos": ["FR"], **settings})
        connector = EphytoHubConnector(NAME, config, transport=transport or InProcessTransport(sandbox_hub), context=_context(pki))
        made.append(connector)
        return connector

    yield connect
    for connector in made:
        connector.close()


@pytest.fixture
def nppo(standards, hub_http):
    """A foreign NPPO's system: a zeep client of the real Hub WSDL talking to the sandbox (in-process, so it names
    itself with ``countryCode`` where a certificate would)."""
    return _real_client(hub_http, ADDRESS)


def _real_client(http: httpx.Client, address: str):
    client = zeep.Client(str(standard_file("ephyto-hub/ephyto-prod.wsdl")), transport=HttpxTransport(http))
    return client.create_service(BINDING, address)


def _context(pki) -> ConnectorContext:
    return ConnectorContext(certs_dir=str(pki.directory), public_url="http://127.0.0.1:8000")


def queue(http: httpx.Client, content: str | bytes, *, sender: str = "NO", to: str = "FR", **header) -> str:
    """Queue an envelope as if NPPO ``sender`` had delivered it; its hubDeliveryNumber."""
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    answer = http.post("/control/envelopes", json={"From": sender, "To": to, "Content": text, **header})
    assert answer.status_code == 201, answer.text
    return answer.json()["hubDeliveryNumber"]


def tracking(nppo, number: str) -> tuple[str, str | None]:
    info = nppo.GetEnvelopeTrackingInfo(hubTrackingNumber=number)
    return info.HUBTrackingInfo, info.hubDeliveryErrorMessage


# --- certificates ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (InboundVerdict(InboundOutcome.ACCEPTED, document_id="d-1"), ("Delivered", None)),
        (InboundVerdict(InboundOutcome.ACCEPTED_WITH_WARNINGS, reason="botanical name abbreviated"),
         ("DeliveredWithWarnings", "botanical name abbreviated")),
        (InboundVerdict(InboundOutcome.FAILED, reason="the signature does not verify"),
         ("DeliveredNotReadable", "the signature does not verify")),
    ],
)
def test_a_norwegian_certificate_is_pulled_and_its_verdict_reaches_the_exporter(connect, hub_http, nppo, norway_sample, verdict, expected):
    number = queue(hub_http, norway_sample, sender="NO", to="FR")
    queue(hub_http, norway_sample, sender="NO", to="US")  # another NPPO's: not ours to pull
    connector = connect()
    [document] = connector.pull_documents()
    assert (document.payload, document.counterpart_reference, document.sender_country) == (norway_sample, number, "NO")
    assert parse_xml(document.payload).find("{*}SPSExchangedDocument/{*}ID").text == "123ABC"
    assert tracking(nppo, number) == ("PendingDelivery", None)  # pulling acknowledges nothing
    connector.confirm_document(document, verdict)
    assert tracking(nppo, number) == expected
    assert list(connector.pull_documents()) == []


def test_a_document_not_confirmed_is_pulled_again(connect, hub_http, nppo, norway_sample):
    number = queue(hub_http, norway_sample)
    connector = connect()
    assert [d.counterpart_reference for d in connector.pull_documents()] == [number]
    assert [d.counterpart_reference for d in connector.pull_documents()] == [number]
    restarted = connect()
    [document] = restarted.pull_documents()
    assert tracking(nppo, number) == ("PendingDelivery", None)
    restarted.confirm_document(document, InboundVerdict(InboundOutcome.ACCEPTED))
    assert list(connector.pull_documents()) == [] and list(restarted.pull_documents()) == []


def test_our_own_export_imported_and_refused_comes_back_as_a_rejection(connect, ephyto_certificates):
    # One connector exports FR → EC and imports for EC: the refusal's reason travels through the Hub's tracking.
    connector = connect(import_nppos=["EC"])
    message = ephyto_certificates.message(destination=NAME, importing_country="EC")
    receipt = connector.deliver(message).receipt_id
    [document] = connector.pull_documents()
    assert (document.payload, document.counterpart_reference, document.sender_country) == (message.payload, receipt, "FR")
    connector.confirm_document(document, InboundVerdict(InboundOutcome.FAILED, reason="SPSCertificate: ConsigneeSPSParty missing"))
    [report] = connector.poll_acks()
    assert (report.outcome, report.message_id, report.receipt_id) == (Outcome.REJECTED, message.id, receipt)
    assert (report.reason_code, report.reason_text) == ("DeliveredNotReadable", "SPSCertificate: ConsigneeSPSParty missing")


def test_base64_content_is_decoded(connect, hub_http, norway_sample):
    # Some exporting systems send Content base64-encoded, even as UTF-16 (the Norwegian production client copes).
    encoded = base64.b64encode(norway_sample.decode("utf-8").encode("utf-16")).decode("ascii")
    number = queue(hub_http, encoded, NPPOCertificateNumber="123ABC")
    [document] = connect().pull_documents()
    assert document.counterpart_reference == number
    root = parse_xml(document.payload)
    assert root.find("{*}SPSExchangedDocument/{*}ID").text == "123ABC"
    assert etree.tostring(root) == etree.tostring(parse_xml(norway_sample))


def test_without_import_nppos_nothing_is_asked(pki):
    asked = []
    transport = httpx.MockTransport(lambda request: asked.append(request) or httpx.Response(500))
    connector = EphytoHubConnector(NAME, EphytoHubConfig(endpoint=ADDRESS), transport=transport, context=_context(pki))
    assert isinstance(connector, PullsDocuments)
    assert list(connector.pull_documents()) == [] and connector.poll_acks() == []
    assert asked == []
    connector.close()


# --- country responses ------------------------------------------------------------------------------------------------


def test_a_rejecting_country_response_becomes_a_rejected_report(connect, hub_http, nppo, ephyto_certificates):
    connector = connect()
    message = ephyto_certificates.message(destination=NAME, importing_country="US")
    receipt = connector.deliver(message).receipt_id
    # The US NPPO pulls the certificate, takes it, then answers with its SPSAcknowledgement (typed, as the real WSDL has it).
    [listed] = nppo.GetImportEnvelopeHeaders(countryCode="US")
    assert listed.hubDeliveryNumber == receipt
    nppo.AcknowledgeEnvelopeReceipt(hubTrackingNumber=receipt)
    answered = nppo.DeliverCountryResponseEnvelope(CountryResponseEnvelope={
        "From": "US", "To": "FR", "CertificateType": 851, "CertificateStatus": 70, "NPPOCertificateNumber": message.certificate_number,
        "SPSAcknowledgement": {"SPSAcknowledgementDocument": {
            "StatusCode": 41, "ReasonInformation": {"_value_1": "[PEST] live Cydia pomonella found at inspection", "languageID": "en"},
            "ReferenceSPSReferencedDocument": [
                {"TypeCode": "851", "ID": message.certificate_number},
                {"TypeCode": "851", "RelationshipTypeCode": "ACW", "ID": receipt},
            ],
        }},
    }).hubDeliveryNumber

    assert list(connector.pull_documents()) == []  # a response is not a document
    reports = {report.kind: report for report in connector.poll_acks()}
    assert reports["acknowledgement"].outcome is Outcome.ACKNOWLEDGED  # the Hub's tracking: Delivered
    response = reports["business_response"]
    assert (response.outcome, response.reason_code, response.reason_text) == (
        Outcome.REJECTED, "PEST", "live Cydia pomonella found at inspection",
    )
    assert (response.receipt_id, response.certificate_number, response.country) == (receipt, message.certificate_number, "US")
    assert parse_xml(response.payload).find("{*}SPSAcknowledgementDocument/{*}StatusCode").text == "41"
    # Handed over, not recorded: offered again (a store that failed meanwhile gets it again), never acknowledged.
    assert [report.kind for report in connector.poll_acks()] == ["business_response"]
    assert tracking(nppo, answered) == ("PendingDelivery", None)
    # Recorded: a crash now would still leave it on the Hub. The next poll acknowledges it.
    connector.answers_recorded([response])
    assert tracking(nppo, answered) == ("PendingDelivery", None)
    assert connector.poll_acks() == []
    assert tracking(nppo, answered) == ("Delivered", None)
    assert connector.poll_acks() == []


@pytest.mark.parametrize(
    ("reason_code", "outcome"), [(None, Outcome.ACKNOWLEDGED), ("WARN-LABEL", Outcome.ACKNOWLEDGED_WITH_WARNINGS)],
)
def test_an_accepting_country_response_is_acknowledged(connect, hub_http, nppo, reason_code, outcome):
    answer = build_country_response(status=39, certificate_number="FR-2026-PC-1", reason_code=reason_code, reason_text="label worn")
    number = queue(hub_http, answer, sender="US", to="FR")
    connector = connect()
    [report] = connector.poll_acks()
    assert (report.kind, report.outcome, report.certificate_number, report.receipt_id) == ("business_response", outcome, "FR-2026-PC-1", None)
    assert report.reason_text == "label worn" and report.payload == answer
    assert list(connector.pull_documents()) == []  # held for acknowledgement, never offered as a document
    connector.answers_recorded([report])
    connector.close()  # closing acknowledges what was recorded
    assert tracking(nppo, number) == ("Delivered", None)


def test_a_country_response_without_its_own_reference_uses_the_envelope_header(connect, hub_http):
    answer = etree.tostring(parse_xml(build_country_response(status=41, certificate_number="X")))
    answer = answer.replace(b"<ram:ID>X</ram:ID>", b"")
    queue(hub_http, answer, sender="US", to="FR", NPPOCertificateNumber="FR-2026-PC-7")
    [report] = connect().poll_acks()
    assert (report.outcome, report.certificate_number) == (Outcome.REJECTED, "FR-2026-PC-7")


def test_an_unreadable_country_response_is_acknowledged_as_failed(connect, hub_http, nppo):
    answer = build_country_response(status=41, certificate_number="FR-2026-PC-1").replace(b">41<", b">12<")
    number = queue(hub_http, answer, sender="US", to="FR")
    connector = connect()
    assert connector.poll_acks() == [] and list(connector.pull_documents()) == []
    info, message = tracking(nppo, number)
    assert info == "DeliveredNotReadable" and "StatusCode '12'" in message


def test_a_certificate_met_while_polling_is_offered_once_pulled(connect, hub_http, sandbox_hub, norway_sample):
    number = queue(hub_http, norway_sample)
    recording = Recording(InProcessTransport(sandbox_hub))
    connector = connect(recording)
    assert connector.poll_acks() == []
    [document] = connector.pull_documents()
    assert document.counterpart_reference == number
    pulls = [request for request, _ in recording.exchanges if b"PULLSingleImportEnvelope" in request]
    assert len(pulls) == 1


# --- faults -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["GetImportEnvelopeHeaders", "PULLSingleImportEnvelope"])
@pytest.mark.parametrize(
    ("fault", "error", "retry_after"),
    [("unavailable", TransientDeliveryError, 3.0), ("server_error", TransientDeliveryError, None),
     ("malformed", TransientDeliveryError, None), ("refuse", PermanentDeliveryError, None)],
)
def test_faults_while_pulling_are_typed_errors_and_lose_nothing(connect, hub_http, norway_sample, target, fault, error, retry_after):
    number = queue(hub_http, norway_sample)
    hub_http.post("/control", json={"fault": fault, "target": target, "retry_after": 3}).raise_for_status()
    connector = connect()
    with pytest.raises(error) as raised:
        list(connector.pull_documents())
    if error is PermanentDeliveryError:
        assert not isinstance(raised.value, TransientDeliveryError)
    else:
        assert raised.value.retry_after == retry_after
    assert [d.counterpart_reference for d in connector.pull_documents()] == [number]


def test_a_failing_listing_makes_poll_acks_raise(connect, hub_http):
    hub_http.post("/control", json={"fault": "unavailable", "target": "GetImportEnvelopeHeaders", "retry_after": 5}).raise_for_status()
    with pytest.raises(TransientDeliveryError) as raised:
        connect().poll_acks()
    assert raised.value.retry_after == 5


def test_network_failures_while_pulling_are_transient(connect):
    def refuse(request):
        raise httpx.ConnectError("connection refused")

    with pytest.raises(TransientDeliveryError):
        list(connect(httpx.MockTransport(refuse)).pull_documents())


def test_a_failing_confirmation_is_typed_and_can_be_repeated(connect, hub_http, nppo, norway_sample):
    number = queue(hub_http, norway_sample)
    connector = connect()
    [document] = connector.pull_documents()
    hub_http.post("/control", json={"fault": "server_error", "target": "AcknowledgeEnvelopeReceipt"}).raise_for_status()
    with pytest.raises(TransientDeliveryError):
        connector.confirm_document(document, InboundVerdict(InboundOutcome.ACCEPTED))
    connector.confirm_document(document, InboundVerdict(InboundOutcome.ACCEPTED))
    assert tracking(nppo, number) == ("Delivered", None)
    with pytest.raises(PermanentDeliveryError, match="already Delivered"):
        connector.confirm_document(document, InboundVerdict(InboundOutcome.ACCEPTED))


# --- the real Hub's schema ----------------------------------------------------------------------------------------------


def test_import_requests_and_sandbox_answers_are_valid_for_the_real_hub(connect, hub_http, sandbox_hub, norway_sample, ephyto_certificates):
    for _ in range(3):
        queue(hub_http, norway_sample)
    queue(hub_http, build_country_response(status=41, certificate_number="FR-1", hub_delivery_number="HUB-1"), sender="US")
    recording = Recording(InProcessTransport(sandbox_hub))
    connector = connect(recording)
    assert len(connector.poll_acks()) == 1
    verdicts = [InboundVerdict(InboundOutcome.ACCEPTED), InboundVerdict(InboundOutcome.ACCEPTED_WITH_WARNINGS, reason="w"),
                InboundVerdict(InboundOutcome.FAILED, reason="f")]
    for document, verdict in zip(list(connector.pull_documents()), verdicts, strict=True):
        connector.confirm_document(document, verdict)
    connector.poll_acks()  # acknowledges the country response
    hub_schema = schema_from_wsdl(standard_file("ephyto-hub/ephyto-prod.wsdl"))
    sent = set()
    for request, response in recording.exchanges:
        for body in (request, response):
            operation = parse_xml(body).find(f"{{{SOAP}}}Body/*")
            hub_schema.assertValid(etree.ElementTree(parse_xml(etree.tostring(operation))))
        sent.add(etree.QName(parse_xml(request).find(f"{{{SOAP}}}Body/*")).localname)
    assert sent == {"GetImportEnvelopeHeaders", "PULLSingleImportEnvelope", "AcknowledgeEnvelopeReceipt",
                    "AdvancedAcknowledgeEnvelopeReceipt", "AcknowledgeFailedEnvelopeReceipt"}


# --- over mutual TLS: the NPPO is its client certificate ---------------------------------------------------------------


def test_over_mutual_tls_each_nppo_pulls_its_own_with_its_certificate(pki, hub_server, standards):
    sample = standard_file(NORWAY_SAMPLE).read_bytes()
    control = httpx.Client(verify=client_tls(pki), base_url=hub_server.url)
    address = f"{hub_server.url}/hub/DeliveryService"
    to_france, to_us = queue(control, sample, to="FR"), queue(control, sample, to="US")
    us_http = httpx.Client(verify=client_tls(pki, "US"))
    as_us = _real_client(us_http, address)
    try:
        # The certificate names the NPPO: US sees only its envelope whatever countryCode says, and cannot take FR's.
        assert [h.hubDeliveryNumber for h in as_us.GetImportEnvelopeHeaders(countryCode="FR")] == [to_us]
        with pytest.raises(zeep.exceptions.Fault, match="no envelope"):
            as_us.AcknowledgeEnvelopeReceipt(hubTrackingNumber=to_france)
        config = EphytoHubConfig(endpoint=address, import_nppos=["FR", "US"])
        connector = EphytoHubConnector(NAME, config, context=_context(pki))
        connector.open()
        documents = {d.counterpart_reference: d for d in connector.pull_documents()}
        assert set(documents) == {to_france, to_us} and documents[to_france].payload == sample
        for document in documents.values():  # each acknowledged with its own NPPO's certificate, or the Hub refuses
            connector.confirm_document(document, InboundVerdict(InboundOutcome.ACCEPTED))
        assert list(connector.pull_documents()) == []
        connector.close()
        received = {e["hubDeliveryNumber"]: e["HUBTrackingInfo"] for e in control.get("/received").json()["received"]}
        assert received == {to_france: "Delivered", to_us: "Delivered"}
    finally:
        us_http.close()
        control.close()


def test_config_import_nppos():
    assert EphytoHubConfig().import_nppos == []
    assert EphytoHubConfig(import_nppos=["FR", "NO"]).import_nppos == ["FR", "NO"]
    for bad in (["fr"], ["FR", "FR"], ["France"]):
        with pytest.raises(ValueError):
            EphytoHubConfig(import_nppos=bad)


def test_the_control_endpoint_refuses_what_the_hub_would_not_hold(hub_http):
    sample = "<rsm:SPSCertificate xmlns:rsm='urn:un:unece:uncefact:data:standard:SPSCertificate:17'/>"
    assert hub_http.post("/control/envelopes", json={"From": "NO", "To": "ZZ", "Content": sample}).status_code == 400
    assert hub_http.post("/control/envelopes", json={"From": "Norway", "To": "FR", "Content": sample}).status_code == 400
    assert hub_http.post("/control/envelopes", json={"To": "FR", "Content": sample}).status_code == 400
    queued = hub_http.post("/control/envelopes", json={"From": "NO", "To": "FR", "Content": sample}).json()
    assert (queued["CertificateType"], queued["CertificateStatus"], queued["NPPOCertificateNumber"]) == ("851", "70", "")

