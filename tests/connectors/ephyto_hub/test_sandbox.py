"""The sandbox Hub as clients of the REAL Hub WSDL see it: zeep built from ``ephyto-prod.wsdl`` (address pointed at
the sandbox) delivers, lists, pulls and acknowledges envelopes and answers with country responses, and our connector
reads the tracking and the responses that result."""

from __future__ import annotations

import httpx
import pytest
import zeep
import zeep.exceptions

from hub.connector import ConnectorContext, Outcome
from connectors.ephyto_hub import EphytoHubConfig, EphytoHubConnector
from connectors.ephyto_hub.connector import WSDL_PATH
from connectors.ephyto_hub.transport import HttpxTransport
from connectors.serving import InProcessTransport
from hub.xmlsafe import parse_xml
from lxml import etree
from tests.support.standards import standard_file

ADDRESS = "http://sandbox/hub/DeliveryService"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
BINDING = "{http://ephyto.ippc.int/}DeliveryServiceSoapBinding"


def soap_client(wsdl, http: httpx.Client):
    client = zeep.Client(str(wsdl), transport=HttpxTransport(http))
    return client.create_service(BINDING, ADDRESS)


@pytest.fixture
def real_hub(standards, hub_http):
    """A client of the real Hub WSDL, talking to the sandbox."""
    return soap_client(standard_file("ephyto-hub/ephyto-prod.wsdl"), hub_http)


@pytest.fixture
def connector(pki, sandbox_hub):
    config = EphytoHubConfig(endpoint=ADDRESS, tracking_poll_interval=0)
    connector = EphytoHubConnector("ephyto_hub", config, transport=InProcessTransport(sandbox_hub),
                                   context=ConnectorContext(certs_dir=str(pki.directory), public_url="http://hub"))
    yield connector
    connector.close()


def envelope(number="FR-2026-PC-1", content="<rsm:SPSCertificate xmlns:rsm='urn:x'/>", to="EC"):
    return {"From": "FR", "To": to, "CertificateType": 851, "CertificateStatus": 70,
            "NPPOCertificateNumber": number, "Content": content}


@pytest.mark.parametrize("wsdl", ["ephyto-hub/ephyto-prod.wsdl", "ephyto-hub/ephyto-uat.wsdl"])
def test_the_real_wsdl_loads_and_names_what_ours_names(standards, wsdl):
    real = zeep.Client(str(standard_file(wsdl)), transport=HttpxTransport())
    ours = zeep.Client(str(WSDL_PATH), transport=HttpxTransport())
    [real_port] = real.wsdl.services["DeliveryService"].ports.values()
    [our_port] = ours.wsdl.services["DeliveryService"].ports.values()
    assert real_port.name == our_port.name == "IDeliveryServiceImplPort"
    assert set(our_port.binding._operations) <= set(real_port.binding._operations)
    for name, operation in our_port.binding._operations.items():
        assert operation.soapaction == real_port.binding._operations[name].soapaction


def test_requests_from_our_wsdl_and_the_real_one_are_the_same_bytes(standards, hub_http):
    real = zeep.Client(str(standard_file("ephyto-hub/ephyto-prod.wsdl")), transport=HttpxTransport())
    ours = zeep.Client(str(WSDL_PATH), transport=HttpxTransport())
    for operation, arguments in [("DeliverEnvelope", {"env": envelope()}), ("GetEnvelopeTrackingInfo", {"hubTrackingNumber": "H1"}),
                                 ("GetImportEnvelopeHeaders", {"countryCode": ""}), ("PULLSingleImportEnvelope", {"hubTrackingNumber": "H1"}),
                                 ("AcknowledgeEnvelopeReceipt", {"hubTrackingNumber": "H1"}),
                                 ("AdvancedAcknowledgeEnvelopeReceipt", {"hubTrackingNumber": "H1", "warningMessage": "abbreviated"}),
                                 ("AcknowledgeFailedEnvelopeReceipt", {"hubTrackingNumber": "H1", "message": "unreadable"})]:
        # Bodies only: the real WSDL's wsam:Action attributes make zeep add WS-Addressing headers; ours has none.
        made = [etree.tostring(c.create_message(c.service, operation, **arguments).find(f"{{{SOAP}}}Body")) for c in (real, ours)]
        assert made[0] == made[1], operation


def test_real_client_delivers_pulls_and_acknowledges(real_hub):
    header = real_hub.DeliverEnvelope(env=envelope())
    number = header.hubDeliveryNumber
    assert number and header.NPPOCertificateNumber == "FR-2026-PC-1"
    assert real_hub.GetEnvelopeTrackingInfo(hubTrackingNumber=number).HUBTrackingInfo == "PendingDelivery"
    [listed] = real_hub.GetImportEnvelopeHeaders(countryCode="EC")
    assert (listed.hubDeliveryNumber, listed.From, listed.CertificateType) == (number, "FR", 851)
    assert not real_hub.GetImportEnvelopeHeaders(countryCode="US")  # an empty array reads as None in zeep
    pulled = real_hub.PULLSingleImportEnvelope(hubTrackingNumber=number)
    assert pulled.Content == envelope()["Content"]
    real_hub.AcknowledgeEnvelopeReceipt(hubTrackingNumber=number)
    assert real_hub.GetEnvelopeTrackingInfo(hubTrackingNumber=number).HUBTrackingInfo == "Delivered"
    with pytest.raises(zeep.exceptions.Fault, match="already Delivered"):
        real_hub.AcknowledgeEnvelopeReceipt(hubTrackingNumber=number)


def test_what_our_connector_delivers_the_real_client_pulls_and_its_verdict_comes_back(real_hub, connector, ephyto_certificates):
    message = ephyto_certificates.message(destination="ephyto_hub")
    number = connector.deliver(message).receipt_id
    assert connector.poll_acks() == []
    [listed] = real_hub.GetImportEnvelopeHeaders(countryCode="EC")
    assert listed.hubDeliveryNumber == number
    pulled = real_hub.PULLSingleImportEnvelope(hubTrackingNumber=number)
    assert pulled.Content.encode("utf-8") == message.payload
    assert parse_xml(pulled.Content.encode("utf-8")).find("{*}SPSExchangedDocument/{*}ID").text == message.certificate_number
    assert real_hub.AcknowledgeFailedEnvelopeReceipt(hubTrackingNumber=number, message="signature does not verify") == "OK"
    [report] = connector.poll_acks()
    assert (report.outcome, report.reason_code, report.reason_text, report.message_id) == (
        Outcome.REJECTED, "DeliveredNotReadable", "signature does not verify", message.id,
    )


def test_advanced_acknowledgement_is_delivered_with_warnings(real_hub, connector, ephyto_certificates):
    number = connector.deliver(ephyto_certificates.message(destination="ephyto_hub")).receipt_id
    real_hub.AdvancedAcknowledgeEnvelopeReceipt(hubTrackingNumber=number, warningMessage="botanical name abbreviated")
    [report] = connector.poll_acks()
    assert (report.outcome, report.reason_text) == (Outcome.ACKNOWLEDGED_WITH_WARNINGS, "botanical name abbreviated")


def test_delay_settles_pending_envelopes(real_hub, hub_http):
    number = real_hub.DeliverEnvelope(env=envelope()).hubDeliveryNumber
    hub_http.post("/control", json={"delivery_delay": 0, "tracking": "DeliveredNotReadable", "message": "no"}).raise_for_status()
    # The outcome in force when the envelope arrived decides its end, not one set later.
    assert real_hub.GetEnvelopeTrackingInfo(hubTrackingNumber=number).HUBTrackingInfo == "Delivered"
    later = real_hub.DeliverEnvelope(env=envelope(number="FR-2")).hubDeliveryNumber
    info = real_hub.GetEnvelopeTrackingInfo(hubTrackingNumber=later)
    assert (info.HUBTrackingInfo, info.hubDeliveryErrorMessage) == ("DeliveredNotReadable", "no")
    assert real_hub.GetEnvelopeTrackingInfo(hubTrackingNumber="HUB-NOPE").HUBTrackingInfo == "EnvelopeNotExists"


def test_the_same_envelope_again_keeps_its_number(real_hub, hub_http):
    first = real_hub.DeliverEnvelope(env=envelope()).hubDeliveryNumber
    assert real_hub.DeliverEnvelope(env=envelope()).hubDeliveryNumber == first
    assert real_hub.DeliverEnvelope(env=envelope(content="<other/>")).hubDeliveryNumber != first
    [entry, _] = hub_http.get("/received").json()["received"]
    assert entry["deliveries"] == 2


def test_active_nppos_validation_and_faults(real_hub, hub_http):
    assert [n.Country for n in real_hub.GetActiveNppos()] == ["FR", "US", "EC", "NO"]
    assert real_hub.ValidatePhytoXML(ePhytoXML="<rsm:SPSCertificate xmlns:rsm='urn:x'/>") == []
    [finding] = real_hub.ValidatePhytoXML(ePhytoXML="not xml")
    assert (finding.area, finding.level) == ("Schema", "SEVERE")
    with pytest.raises(zeep.exceptions.Fault, match="not an active NPPO") as raised:
        real_hub.DeliverEnvelope(env=envelope(to="ZZ"))
    assert raised.value.detail.find("{http://ephyto.ippc.int/}HubWebException") is not None
    hub_http.post("/control", json={"fault": "refuse"}).raise_for_status()
    with pytest.raises(zeep.exceptions.Fault, match="refused"):
        real_hub.DeliverEnvelope(env=envelope())
    assert hub_http.get("/received").json()["received"] == []
    assert hub_http.post("/control", json={"fault": "explode"}).status_code == 400


def test_country_response_envelope_is_taken(hub_http):
    ours = soap_client(WSDL_PATH, hub_http)
    header = ours.DeliverCountryResponseEnvelope(CountryResponseEnvelope={
        "From": "EC", "To": "FR", "CertificateType": 851, "CertificateStatus": 70, "NPPOCertificateNumber": "FR-1",
    })
    assert header.hubDeliveryNumber and header.To == "FR"


def test_a_queued_norwegian_certificate_is_pulled_and_acknowledged_by_a_real_client(real_hub, hub_http, standards):
    sample = standard_file("samples/ephyto/NO-ephyto-SPSCertificate.xml").read_text(encoding="utf-8")
    hub_http.post("/control", json={"delivery_delay": 0}).raise_for_status()  # only DeliverEnvelope's envelopes settle alone
    queued = hub_http.post("/control/envelopes", json={"From": "NO", "To": "FR", "Content": sample})
    assert queued.status_code == 201
    number = queued.json()["hubDeliveryNumber"]
    [listed] = real_hub.GetImportEnvelopeHeaders(countryCode="FR")
    assert (listed.hubDeliveryNumber, listed.From, listed.CertificateType, listed.NPPOCertificateNumber) == (number, "NO", 851, "123ABC")
    pulled = real_hub.PULLSingleImportEnvelope(hubTrackingNumber=number)
    assert pulled.Content == sample and pulled.HUBTrackingInfo == "PendingDelivery"
    assert real_hub.AdvancedAcknowledgeEnvelopeReceipt(hubTrackingNumber=number, warningMessage="botanical name abbreviated") == "OK"
    info = real_hub.GetEnvelopeTrackingInfo(hubTrackingNumber=number)
    assert (info.HUBTrackingInfo, info.hubDeliveryErrorMessage) == ("DeliveredWithWarnings", "botanical name abbreviated")
    assert not real_hub.GetImportEnvelopeHeaders(countryCode="FR")


def test_a_real_clients_country_response_reaches_our_connector(real_hub, pki, sandbox_hub, ephyto_certificates):
    config = EphytoHubConfig(endpoint=ADDRESS, tracking_poll_interval=3600, import_nppos=["FR"])
    connector = EphytoHubConnector("ephyto_hub", config, transport=InProcessTransport(sandbox_hub),
                                   context=ConnectorContext(certs_dir=str(pki.directory), public_url="http://hub"))
    message = ephyto_certificates.message(destination="ephyto_hub")
    number = connector.deliver(message).receipt_id
    real_hub.AcknowledgeEnvelopeReceipt(hubTrackingNumber=number)
    with pytest.raises(zeep.exceptions.Fault, match="not an active NPPO"):
        real_hub.DeliverCountryResponseEnvelope(CountryResponseEnvelope={**response_header(message, to="ZZ")})
    answer = real_hub.DeliverCountryResponseEnvelope(CountryResponseEnvelope={
        **response_header(message),
        "SPSAcknowledgement": {"SPSAcknowledgementDocument": {
            "StatusCode": 41, "ReasonInformation": {"_value_1": "consignment destroyed at the border"},
            "ReferenceSPSReferencedDocument": [{"TypeCode": "851", "ID": message.certificate_number}],
        }},
    }).hubDeliveryNumber
    [listed] = real_hub.GetImportEnvelopeHeaders(countryCode="FR")
    assert (listed.hubDeliveryNumber, listed.From) == (answer, "EC")
    assert parse_xml(real_hub.PULLSingleImportEnvelope(hubTrackingNumber=answer).Content.encode()).tag.endswith("}SPSAcknowledgement")
    try:
        [report] = [r for r in connector.poll_acks() if r.kind == "business_response"]
        assert (report.outcome, report.certificate_number, report.reason_code, report.reason_text, report.country) == (
            Outcome.REJECTED, message.certificate_number, None, "consignment destroyed at the border", "EC",
        )
        connector.answers_recorded([report])  # as the worker does once the report is in the store
    finally:
        connector.close()
    assert real_hub.GetEnvelopeTrackingInfo(hubTrackingNumber=answer).HUBTrackingInfo == "Delivered"


def response_header(message, *, to="FR") -> dict:
    return {"From": "EC", "To": to, "CertificateType": 851, "CertificateStatus": 70, "NPPOCertificateNumber": message.certificate_number}
