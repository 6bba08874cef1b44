"""Customs over CSW-CERTEX against the TRACES-NT sandbox: a CHED submitted through the CHED account, then read,
reserved, written off and released through the separate customs account, with the ledger's rules and the real
fault when the customs account does not authenticate."""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from decimal import Decimal

import httpx
import pytest
from lxml import etree
from pydantic import ValidationError

from hub.connector import ConnectorContext, OutboundMessage
from connectors.serving import InProcessTransport
from connectors.traces_nt import TracesNtConfig, TracesNtConnector, protocol
from connectors.traces_nt.customs import certified_lines
from connectors.traces_nt.sandbox import create_traces_sandbox_app
from connectors.traces_nt.wssecurity import traces_headers
from connectors.traces_nt import certex
from connectors.traces_nt.certex import AvailableQuantity, CertexHeader, ProcessedChedRequest
from hub.customs.ledger import CertifiedLine, Clearance, ClearanceOutcome, DeclaredItem, FailureReason, MovementState
from hub.errors import ConfigurationError, PermanentDeliveryError, TransientDeliveryError
from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml
from hub.namespaces import RAM, RSM_SPS_CERTIFICATE, SOAP11_ENV
from hub.xmlsafe import parse_xml
from tests.connectors.traces_nt.harness import BASE, CHED_RECORD, CLIENT_ID, CUSTOMS, CUSTOMS_KEY, KEY, USERNAME, canonical
from tests.support.standards import standard_file

CUSTOMS_CLIENT_ID = "CLIENT-DOUANE-1"
OFFICE = "FR000690"
MRN_A, MRN_B, MRN_C = "26FR0000000000A01", "26FR0000000000B01", "26FR0000000000C01"
CHED_V06 = certex.CHED_V06


def two_line_ched(number: str = "FR-CHED-2026-900001") -> bytes:
    """The worked CHED-P with a second line: 1 = Gruyère 04069021, 2400 KGM; 2 = Emmental 04069013, 100 KGM."""
    data = json.loads(CHED_RECORD.read_text(encoding="utf-8"))
    data["certificate_number"] = number
    [item] = data["consignment"]["items"]
    second = copy.deepcopy(item["line_items"][0])
    second.update(sequence_number=2, descriptions=["Emmental"], net_weight={"value": "100", "unit": "KGM"},
                  classifications=[{"system_id": "CN", "class_code": "04069013"}])
    item["line_items"].append(second)
    return to_xml(render_certificate(record_from_data(data), "full").root)


def message(payload: bytes) -> OutboundMessage:
    return OutboundMessage(id=str(uuid.uuid4()), correlation_id="c", destination="traces_nt", document_id="d",
                           document_kind="ched", certificate_number="n", status="issued", issuing_country="FR",
                           exporting_country="CH", importing_country="FR", payload=payload)


class Recording(InProcessTransport):
    """The in-process transport, keeping every (request, response) body."""

    def __init__(self, app) -> None:
        super().__init__(app)
        self.exchanges: list[tuple[bytes, bytes]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.exchanges.append((request.content, response.content))
        return response


class Certex:
    def __init__(self) -> None:
        self.app = create_traces_sandbox_app(accounts={USERNAME: KEY}, client_ids={USERNAME: CLIENT_ID},
                                             customs_accounts={CUSTOMS: CUSTOMS_KEY},
                                             customs_client_ids={CUSTOMS: CUSTOMS_CLIENT_ID})
        self.client = httpx.Client(transport=InProcessTransport(self.app), base_url=BASE)
        self.recordings: dict[int, Recording] = {}
        self.opened: list[TracesNtConnector] = []

    def connector(self, **settings) -> TracesNtConnector:
        config = TracesNtConfig(**{
            "endpoint": f"{BASE}/tracesnt/ws", "submission_service": "ChedSubmissionService", "username": USERNAME,
            "authentication_key": KEY, "client_id": CLIENT_ID, "certex_username": CUSTOMS,
            "certex_authentication_key": CUSTOMS_KEY, "certex_client_id": CUSTOMS_CLIENT_ID, "customs_office": OFFICE,
            **settings})
        transport = Recording(self.app)
        connector = TracesNtConnector("traces_nt", config, transport=transport,
                                      context=ConnectorContext(certs_dir="unused", public_url="http://hub"))
        self.recordings[id(connector)] = transport
        self.opened.append(connector)
        return connector

    def exchanges(self, connector: TracesNtConnector) -> list[tuple[bytes, bytes]]:
        """Every (request, answer) ``connector`` exchanged."""
        return self.recordings[id(connector)].exchanges

    def submit(self, payload: bytes | None = None, **control) -> str:
        if control:
            self.client.post("/control", json=control).raise_for_status()
        return self.connector().deliver(message(payload or two_line_ched())).receipt_id

    def quantities(self, reference: str) -> dict:
        return self.client.get(f"/quantities/{reference}").raise_for_status().json()

    def close(self) -> None:
        for connector in self.opened:
            connector.close()
        self.client.close()


@pytest.fixture
def certex_sandbox():
    """The TRACES-NT sandbox with its CSW-CERTEX customs port, the CHED account and the customs account."""
    harness = Certex()
    yield harness
    harness.close()


@pytest.fixture
def customs(certex_sandbox):
    """A connector calling the customs port with the customs account."""
    return certex_sandbox.connector()


def item(goods_item, line, quantity, class_code, unit="KGM") -> DeclaredItem:
    return DeclaredItem(goods_item=goods_item, line=line, quantity=Decimal(quantity), class_code=class_code, unit=unit)


def available(information) -> dict[int, Decimal]:
    return {a.line: a.quantity for a in information.available}


# --- reading --------------------------------------------------------------------------------------------------------


def test_a_submitted_ched_is_read_with_its_certificate_and_quantities(certex_sandbox, customs):
    reference = certex_sandbox.submit()
    information = customs.certex_read(reference)
    assert information.available == (AvailableQuantity(line=1, class_code="04069021", unit="KGM", quantity=Decimal("2400")),
                                     AvailableQuantity(line=2, class_code="04069013", unit="KGM", quantity=Decimal("100")))
    assert information.certificate.tag == f"{{{RSM_SPS_CERTIFICATE}}}SPSCertificate"
    assert information.certificate.findtext(f"{{{RSM_SPS_CERTIFICATE}}}SPSExchangedDocument/{{{RAM}}}ID") == "FR-CHED-2026-900001"
    assert (information.reserved, information.consumed, information.reservation_accepted, information.failure) == ((), (), None, None)


def test_the_request_is_shaped_as_the_captures_with_a_fresh_message_id(certex_sandbox, customs):
    reference = certex_sandbox.submit()
    customs.certex_read(reference)
    customs.certex_read(reference)
    (first, first_answer), (second, _) = certex_sandbox.exchanges(customs)
    sent = etree.fromstring(first)
    captured = etree.parse(str(standard_file("samples/traces-ws/01-read.request.xml"))).getroot()
    header_tags = [e.tag for e in sent.find(f"{{{SOAP11_ENV}}}Header")]
    assert header_tags[:4] == [e.tag for e in captured.find(f"{{{SOAP11_ENV}}}Header")][:4]
    assert header_tags[4].endswith("}Security")
    values = certex.read_certex_header(sent.find(f"{{{SOAP11_ENV}}}Header"))
    assert re.fullmatch(r"[0-9a-f]{32}", values.message_id) and (values.requester_prefix, values.customs_office) == (OFFICE, OFFICE)
    assert certex.read_certex_header(etree.fromstring(second).find(f"{{{SOAP11_ENV}}}Header")).message_id != values.message_id
    body = sent.find(f"{{{SOAP11_ENV}}}Body")[0]
    assert [etree.QName(e).localname for e in body] == [etree.QName(e).localname for e in captured.find(f"{{{SOAP11_ENV}}}Body")[0]]
    assert certex.read_processed_ched_request(body).ched_id == reference
    # The answer echoes the CertexHeader, as TRACES does.
    answer_header = etree.fromstring(first_answer).find(f"{{{SOAP11_ENV}}}Header")
    assert certex.read_certex_header(answer_header) == CertexHeader(message_id=values.message_id, requester_prefix=OFFICE)


def test_the_requester_prefix_can_differ_from_the_office(certex_sandbox):
    reference = certex_sandbox.submit()
    connector = certex_sandbox.connector(certex_requester_prefix="123456-")
    connector.certex_read(reference, office="FR000380")
    sent, _ = certex_sandbox.exchanges(connector)[-1]
    header = certex.read_certex_header(etree.fromstring(sent).find(f"{{{SOAP11_ENV}}}Header"))
    assert (header.requester_prefix, header.customs_office) == ("123456-", "FR000380")


# --- reservations ---------------------------------------------------------------------------------------------------


def test_reserve_then_beyond_the_remaining_then_a_wrong_code(certex_sandbox, customs):
    reference = certex_sandbox.submit()
    reserved = customs.certex_reserve(reference, declaration=MRN_A, items=[item(1, 1, "1000", "040690")])
    assert reserved.reservation_accepted is True and reserved.failure is None
    assert available(reserved) == {1: Decimal("1400"), 2: Decimal("100")}
    [movement] = reserved.reserved
    assert (movement.declaration, movement.goods_item, movement.line, movement.quantity, movement.office) == (
        MRN_A, 1, 1, Decimal("1000"), OFFICE)

    beyond = customs.certex_reserve(reference, declaration=MRN_B, items=[item(1, 2, "50", "04069013"), item(2, 1, "1400.001", "04069021")])
    assert (beyond.reservation_accepted, beyond.failure, beyond.failed_goods_item, beyond.failed_line) == (
        False, FailureReason.QUANTITY_EXCEEDED, 2, 1)
    assert available(beyond) == {1: Decimal("1400"), 2: Decimal("100")}  # all or nothing
    assert [m.declaration for m in beyond.reserved] == [MRN_A]

    wrong = customs.certex_reserve(reference, declaration=MRN_C, items=[item(1, 1, "1", "0207")])
    assert (wrong.reservation_accepted, wrong.failure, wrong.failed_goods_item, wrong.failed_line) == (
        False, FailureReason.COMMODITY_MISMATCH, 1, 1)
    answer = certex_sandbox.exchanges(customs)[-1][1]
    assert b"<v06:ReservationFailureReason>03</v06:ReservationFailureReason>" in answer
    assert customs.certex_read(reference).reserved == reserved.reserved


def test_a_repeated_reservation_replaces_the_earlier_one(certex_sandbox, customs):
    reference = certex_sandbox.submit()
    customs.certex_reserve(reference, declaration=MRN_A, items=[item(1, 2, "60", "04069013")])
    again = customs.certex_reserve(reference, declaration=MRN_A, items=[item(1, 2, "70", "04069013")])
    assert again.reservation_accepted is True and available(again)[2] == Decimal("30")
    assert [m.quantity for m in again.reserved] == [Decimal("70")]
    states = [m["state"] for m in certex_sandbox.quantities(reference)["movements"]]
    assert states == [MovementState.RELEASED.value, MovementState.RESERVED.value]


def test_an_identical_reservation_repeated_after_a_timeout_is_held_once(certex_sandbox):
    """What makes a retry safe: the sandbox answers late (after the caller's timeout) but keeps the reservation; the
    same request again is accepted and replaces it, and a read shows one reservation of the MRN's goods item."""
    customs = certex_sandbox.connector(timeout=0.5)
    reference = certex_sandbox.submit()
    certex_sandbox.client.post("/control", json={"fault": "slow", "target": "certex", "seconds": 1.0}).raise_for_status()
    with pytest.raises(TransientDeliveryError):
        customs.certex_reserve(reference, declaration=MRN_A, items=[item(1, 1, "100", "04069021")])
    for _ in range(100):  # the late answer lands after the caller stopped waiting
        if customs.certex_read(reference).reserved:
            break
        time.sleep(0.05)
    assert [(m.declaration, m.goods_item, m.line, m.quantity) for m in customs.certex_read(reference).reserved] == [(MRN_A, 1, 1, Decimal("100"))]
    again = customs.certex_reserve(reference, declaration=MRN_A, items=[item(1, 1, "100", "04069021")])
    assert again.reservation_accepted is True and available(again)[1] == Decimal("2300")
    assert [(m.declaration, m.quantity) for m in again.reserved] == [(MRN_A, Decimal("100"))]


# --- clearance ------------------------------------------------------------------------------------------------------


def test_release_writes_off_once(certex_sandbox, customs):
    reference = certex_sandbox.submit()
    customs.certex_reserve(reference, declaration=MRN_A, items=[item(1, 1, "1000", "04069021")])
    released = customs.certex_clear(reference, declaration=MRN_A, clearance=Clearance.RELEASED)
    assert released.outcome is ClearanceOutcome.PROCESSED
    information = customs.certex_read(reference)
    assert information.reserved == () and [(m.declaration, m.quantity) for m in information.consumed] == [(MRN_A, Decimal("1000"))]
    assert available(information)[1] == Decimal("1400")
    again = customs.certex_clear(reference, declaration=MRN_A, clearance=Clearance.RELEASED)
    assert again.outcome is ClearanceOutcome.NOTHING_TO_PROCESS
    assert available(customs.certex_read(reference))[1] == Decimal("1400")


def test_the_clearance_answer_echoes_the_sending_date_in_milliseconds(certex_sandbox, customs):
    reference = certex_sandbox.submit()
    customs.certex_clear(reference, declaration=MRN_A, clearance=Clearance.RELEASED)
    sent, answer = certex_sandbox.exchanges(customs)[-1]
    request = certex.read_ched_clearance_request(etree.fromstring(sent).find(f"{{{SOAP11_ENV}}}Body")[0])
    response = certex.read_ched_clearance_response(etree.fromstring(answer).find(f"{{{SOAP11_ENV}}}Body")[0])
    assert response.sending_date == request.sending_date.replace(microsecond=request.sending_date.microsecond // 1000 * 1000)


def test_invalidation_makes_the_quantity_available_again(certex_sandbox, customs):
    reference = certex_sandbox.submit()
    customs.certex_reserve(reference, declaration=MRN_B, items=[item(1, 2, "100", "04069013")])
    assert available(customs.certex_read(reference))[2] == 0
    invalidated = customs.certex_clear(reference, declaration=MRN_B, clearance=Clearance.INVALIDATED)
    assert invalidated.outcome is ClearanceOutcome.PROCESSED
    information = customs.certex_read(reference)
    assert available(information)[2] == Decimal("100") and information.reserved == () and information.consumed == ()
    assert customs.certex_clear(reference, declaration=MRN_B, clearance=Clearance.RELEASED).outcome is ClearanceOutcome.NOTHING_TO_PROCESS
    taken = customs.certex_reserve(reference, declaration=MRN_C, items=[item(1, 2, "100", "04069013")])
    assert taken.reservation_accepted is True


def test_the_quantities_endpoint_shows_the_ledger(certex_sandbox, customs):
    reference = certex_sandbox.submit()
    customs.certex_reserve(reference, declaration=MRN_A, items=[item(1, 1, "400", "04069021")])
    customs.certex_clear(reference, declaration=MRN_A, clearance=Clearance.RELEASED)
    ledger = certex_sandbox.quantities(reference)
    assert ledger["ched_status"] == "70"
    assert ledger["lines"][0] == {"line": 1, "class_code": "04069021", "unit": "KGM", "certified": "2400", "reserved": "0",
                                  "written_off": "400", "available": "2000"}
    assert [(m["declaration"], m["state"], m["office"]) for m in ledger["movements"]] == [(MRN_A, "written_off", OFFICE)]
    assert [c["reference"] for c in certex_sandbox.client.get("/quantities").json()["cheds"]] == [reference]
    assert certex_sandbox.client.get("/quantities/CHEDP.FR.2026.9999999").status_code == 404


# --- refusals -------------------------------------------------------------------------------------------------------


def test_an_unknown_ched_is_the_services_fault_and_permanent(customs, certex_sandbox):
    with pytest.raises(PermanentDeliveryError, match="ExceptionWithUniqueInfoType") as raised:
        customs.certex_read("CHEDP.FR.2026.9999999")
    assert not isinstance(raised.value, TransientDeliveryError)
    fault = certex.read_certex_fault(certex.read_certex_envelope(raised.value.response)[1])
    sent = certex.read_certex_header(etree.fromstring(raised.value.request).find(f"{{{SOAP11_ENV}}}Header"))
    assert fault.code == "Client" and "CHEDP.FR.2026.9999999" in fault.error_message and fault.message_id == sent.message_id
    with pytest.raises(PermanentDeliveryError, match="does not exist"):
        customs.certex_clear("CHEDP.FR.2026.9999999", declaration=MRN_A, clearance=Clearance.RELEASED)


@pytest.mark.parametrize(("decision", "status"), [("reject", "41 \\(REJECTED\\)"), ("pending", "42 \\(IN_PROGRESS\\)")])
def test_a_ched_not_decided_favourably_takes_no_reservation(certex_sandbox, customs, decision, status):
    reference = certex_sandbox.submit(decision=decision)
    with pytest.raises(PermanentDeliveryError, match=f"cannot be used for customs clearance: its status is {status}"):
        customs.certex_reserve(reference, declaration=MRN_A, items=[item(1, 1, "1", "04069021")])
    information = customs.certex_read(reference)
    assert information.reserved == () and available(information)[1] == Decimal("2400")


def test_a_partially_rejected_ched_takes_reservations(certex_sandbox, customs):
    reference = certex_sandbox.submit(decision="partial", reason_code="FAILED_PHYSICAL_CHECK")
    assert customs.certex_reserve(reference, declaration=MRN_A, items=[item(1, 2, "1", "04069013")]).reservation_accepted


def test_a_reservation_without_items_or_declaration_is_refused(certex_sandbox, customs):
    reference = certex_sandbox.submit()
    with pytest.raises(PermanentDeliveryError, match="at least one CommodityDescriptionForChed"):
        customs.certex_reserve(reference, declaration=MRN_A, items=[])
    with pytest.raises(PermanentDeliveryError, match="needs CustomsDeclarationReferenceNumber/MRN"):
        customs.certex_reserve(reference, declaration="", items=[item(1, 1, "1", "04069021")])


# --- authentication -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [
    {"certex_authentication_key": "not-the-key"},
    {"certex_username": "stranger"},
    {"certex_client_id": "ANOTHER-CLIENT"},
    {"certex_username": USERNAME, "certex_authentication_key": KEY, "certex_client_id": CLIENT_ID},  # the CHED account
])
def test_refused_customs_credentials_get_the_real_fault(certex_sandbox, settings):
    reference = certex_sandbox.submit()
    with pytest.raises(PermanentDeliveryError, match="UnauthenticatedException") as raised:
        certex_sandbox.connector(**settings).certex_read(reference)
    saved = standard_file("samples/traces-ws/UnauthenticatedException.xml").read_bytes()
    assert canonical(raised.value.response) == canonical(saved)


def test_the_customs_account_cannot_submit_cheds(certex_sandbox):
    connector = certex_sandbox.connector(username=CUSTOMS, authentication_key=CUSTOMS_KEY, client_id=CUSTOMS_CLIENT_ID)
    with pytest.raises(PermanentDeliveryError, match="UnauthenticatedException"):
        connector.deliver(message(two_line_ched()))


def certex_call(certex_sandbox, envelope: bytes) -> httpx.Response:
    return certex_sandbox.client.post(f"/tracesnt/ws/{certex.SERVICE}", content=envelope, headers={"Content-Type": protocol.SOAP_MEDIA_TYPE})


def read_envelope(reference: str, *, key: str = CUSTOMS_KEY, digest: str | None = None) -> bytes:
    headers = traces_headers(username=CUSTOMS, authentication_key=key, client_id=CUSTOMS_CLIENT_ID)
    if digest is not None:
        headers[-1].find(".//{*}Password").text = digest
    headers[2:2] = certex.certex_headers(CertexHeader(message_id=uuid.uuid4().hex, requester_prefix=OFFICE, customs_office=OFFICE))
    return protocol.envelope(headers, certex.processed_ched_request(ProcessedChedRequest(ched_id=reference, office=OFFICE)))


def test_the_customs_digest_is_checked_and_a_replay_refused(certex_sandbox):
    reference = certex_sandbox.submit()
    good = read_envelope(reference)
    assert certex_call(certex_sandbox, good).status_code == 200
    replayed = certex_call(certex_sandbox, good)
    assert replayed.status_code == 500 and b"<faultstring>UnauthenticatedException</faultstring>" in replayed.content
    tampered = certex_call(certex_sandbox, read_envelope(reference, digest="AAAAAAAAAAAAAAAAAAAAAAAAAAA="))
    assert tampered.status_code == 500 and b"UnauthenticatedException" in tampered.content
    no_security = protocol.envelope(certex.certex_headers(CertexHeader(message_id="m")),
                                    certex.processed_ched_request(ProcessedChedRequest(ched_id=reference, office=OFFICE)))
    assert b"UnauthenticatedException" in certex_call(certex_sandbox, no_security).content


def test_the_sandbox_answers_the_captured_reservation_body(certex_sandbox):
    # The body of 02-reserveA, sent as captured (its CHED reference swapped for the sandbox's), is understood.
    reference = certex_sandbox.submit(payload=None)
    body = etree.parse(str(standard_file("samples/traces-ws/02-reserveA.request.xml"))).getroot().find(f"{{{SOAP11_ENV}}}Body")[0]
    body.find(f"{{{CHED_V06}}}ChedCertificateId").text = reference
    body.find(f".//{{{certex.BASE_V03}}}ClassCode").text = "040690"
    headers = traces_headers(username=CUSTOMS, authentication_key=CUSTOMS_KEY, client_id=CUSTOMS_CLIENT_ID)
    headers[2:2] = certex.certex_headers(CertexHeader(message_id="15d1cec56a9e4552be26c16e7f2f1800", requester_prefix="XI000002",
                                                      customs_office="XI000002"))
    answer = certex_call(certex_sandbox, protocol.envelope(headers, body))
    assert answer.status_code == 200
    information = certex.read_processed_ched_information_response(certex.read_certex_envelope(answer.content)[1])
    assert information.reservation_accepted is True and available(information)[1] == Decimal("2399.999")
    assert [m.declaration for m in information.reserved] == ["26GB1669CAPTUREA01"]


# --- faults, configuration, certificates ----------------------------------------------------------------------------


def test_a_busy_customs_port_is_transient(certex_sandbox, customs):
    reference = certex_sandbox.submit()
    certex_sandbox.client.post("/control", json={"fault": "unavailable", "target": "certex", "retry_after": 3}).raise_for_status()
    with pytest.raises(TransientDeliveryError) as raised:
        customs.certex_read(reference)
    assert raised.value.retry_after == 3
    assert customs.certex_read(reference).available


def test_a_server_fault_on_the_customs_port_is_transient(certex_sandbox, customs):
    reference = certex_sandbox.submit()
    certex_sandbox.client.post("/control", json={"fault": "soap_fault", "target": "certex"}).raise_for_status()
    with pytest.raises(TransientDeliveryError, match="Server"):
        customs.certex_clear(reference, declaration=MRN_A, clearance=Clearance.RELEASED)


def test_customs_calls_need_the_customs_account_and_an_office(certex_sandbox):
    connector = certex_sandbox.connector(certex_username=None, certex_authentication_key=None)
    with pytest.raises(ConfigurationError, match="no customs \\(CSW-CERTEX\\) account"):
        connector.certex_read("CHEDP.FR.2026.0000001")
    with pytest.raises(ConfigurationError, match="no customs office"):
        certex_sandbox.connector(customs_office=None).certex_read("CHEDP.FR.2026.0000001")
    with pytest.raises(ValidationError, match="go together"):
        certex_sandbox.connector(certex_authentication_key=None)
    with pytest.raises(ValidationError, match="not an http"):
        certex_sandbox.connector(certex_url="ftp://traces")


def test_the_customs_url_defaults_to_the_v06_service():
    config = TracesNtConfig(submission_service="S", username="u", authentication_key="k", client_id="c",
                            certex_username="customs", certex_authentication_key="ck")
    assert config.certex_endpoint() == "https://webgate.acceptance.ec.europa.eu/tracesnt/ws/CustomsCertexChedServiceV06"
    assert "ck" not in repr(config)
    assert TracesNtConfig(**{**config.model_dump(), "authentication_key": "k", "certex_authentication_key": "ck",
                             "certex_url": "https://other/ws/Certex/"}).certex_endpoint() == "https://other/ws/Certex"


@pytest.mark.parametrize(("relative", "line"), [
    ("samples/traces/CreateAndSubmitChedForDecision-0101-Horse.xml", CertifiedLine(1, "0101", "H87", Decimal("1"))),
    ("samples/traces/CreateAndSubmitChedForDecision-01061900-Rats.xml", CertifiedLine(1, "01061900", "H87", Decimal("18"))),
])
def test_the_real_cheds_give_their_ledger_lines(certex_sandbox, customs, relative, line):
    document = parse_xml(standard_file(relative).read_bytes())
    certificate = next(document.iter(f"{{{RSM_SPS_CERTIFICATE}}}SPSCertificate"))
    assert certified_lines(certificate) == (line,)
    reference = certex_sandbox.submit(standard_file(relative).read_bytes())
    assert [(a.line, a.class_code, a.unit, a.quantity) for a in customs.certex_read(reference).available] == [
        (line.line, line.class_code, line.unit, line.quantity)]


def test_an_unreadable_customs_request_is_the_fault_naming_the_field(certex_sandbox):
    reference = certex_sandbox.submit()
    envelope = read_envelope(reference)
    request = certex.processed_ched_request(ProcessedChedRequest(
        ched_id=reference, office=OFFICE, declaration=MRN_A, quantity_management=True, items=(item(1, 1, "5", "04069021"),)))
    request.find(f".//{{{certex.BASE_V03}}}NetWeightQuantity").text = "five"
    root = etree.fromstring(envelope)
    body = root.find(f"{{{SOAP11_ENV}}}Body")
    body.replace(body[0], request)
    answer = certex_call(certex_sandbox, etree.tostring(root))
    assert answer.status_code == 500
    fault = certex.read_certex_fault(certex.read_certex_envelope(answer.content)[1])
    sent = certex.read_certex_header(root.find(f"{{{SOAP11_ENV}}}Header"))
    assert fault.message_id == sent.message_id
    assert "v06:CommodityDescriptionForChed/v03:NetWeightQuantity" in fault.error_message and "'five'" in fault.error_message
