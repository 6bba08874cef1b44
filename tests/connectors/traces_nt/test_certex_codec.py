"""The CSW-CERTEX v06 codec against the real TRACES-NT captures: every capture read back into values, the captured
requests and clearance answers rebuilt from their values, our answers round-tripped, bad input named by its field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from lxml import etree

from connectors.traces_nt import certex, certex_values
from connectors.traces_nt.certex import (
    AvailableQuantity,
    CertexHeader,
    ChedClearanceRequest,
    ChedClearanceResponse,
    ProcessedChedInformation,
    ProcessedChedRequest,
)
from hub.customs.ledger import (
    CertifiedLine,
    Clearance,
    ClearanceOutcome,
    DeclaredItem,
    FailureReason,
    Movement,
    MovementState,
    format_quantity,
    reserve,
)
from hub.errors import HostileXMLError, InputError
from hub.namespaces import RAM, RSM_SPS_CERTIFICATE, SOAP11_ENV
from tests.support.standards import standard_file

UTC = timezone.utc
CEST = timezone(timedelta(hours=2))
CHED = "CHEDP.XI.2026.0000875"
OFFICE = "XI000002"


def capture(name: str) -> tuple[etree._Element | None, etree._Element]:
    return certex.read_certex_envelope(standard_file(f"samples/traces-ws/{name}").read_bytes())


def shape(element: etree._Element) -> tuple:
    """An element's tag, trimmed text, attributes and children's shapes: prefixes, whitespace and comments ignored."""
    children = tuple(shape(child) for child in element.iterchildren(etree.Element))
    return element.tag, (element.text or "").strip() if not children else "", tuple(sorted(element.attrib.items())), children


def structure(element: etree._Element) -> tuple:
    """An element's tag and its children's structures: no text, attributes, prefixes or comments."""
    return element.tag, tuple(structure(child) for child in element.iterchildren(etree.Element))


# --- the captures, read ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "message_id"), [
    ("01-read.request.xml", "24ecc7102a494669ae881a6708e6e732"),
    ("02-reserveA.request.xml", "15d1cec56a9e4552be26c16e7f2f1800"),
    ("05-releaseA.request.xml", "a279e9f3330541588d801504cd803736"),
    ("09-deleteB.request.xml", "6824ba4637e7400787c80e9217cbe1d2"),
])
def test_request_headers_are_read(name, message_id):
    header, _ = capture(name)
    assert certex.read_certex_header(header) == CertexHeader(message_id=message_id, requester_prefix=OFFICE, customs_office=OFFICE)


@pytest.mark.parametrize(("name", "message_id"), [
    ("05-releaseA.response.xml", "a279e9f3330541588d801504cd803736"),
    ("07-releaseA-again.response.xml", "379a5d6ccf0843429b090982ce36c856"),
    ("14-wrong-code.response.xml", "53bfe0760a444fc481da8779941dfffa"),
])
def test_answer_headers_echo_the_certex_header_without_office(name, message_id):
    header, _ = capture(name)
    assert certex.read_certex_header(header) == CertexHeader(message_id=message_id, requester_prefix=OFFICE)


def test_a_header_without_certex_header_reads_as_none():
    header, _ = capture("UnauthenticatedException.xml")
    assert certex.read_certex_header(header) is None and certex.read_certex_header(None) is None


READ = ProcessedChedRequest(ched_id=CHED, office=OFFICE, sending_date=datetime(2026, 9, 29, 14, 10, 42, 90741, tzinfo=UTC))
RESERVE_A = ProcessedChedRequest(
    ched_id=CHED, office=OFFICE, declaration="26GB1669CAPTUREA01", quantity_management=True,
    items=(DeclaredItem(goods_item=1, line=1, quantity=Decimal("0.001"), class_code="040100", unit="KGM"),),
    sending_date=datetime(2026, 9, 29, 14, 12, 2, 966105, tzinfo=UTC))
RESERVE_PP = ProcessedChedRequest(
    ched_id="CHEDPP.XI.2026.0000074", office=OFFICE, declaration="26UK12345678900001", quantity_management=True,
    items=(DeclaredItem(goods_item=1, line=1, quantity=Decimal("10"), class_code="08051028", unit="KGM"),),
    language="EN", sending_date=datetime(2026, 6, 30, 8, 0, 53, tzinfo=UTC))
RELEASE_A = ChedClearanceRequest(ched_id=CHED, office=OFFICE, declaration="26GB1669CAPTUREA01", clearance=Clearance.RELEASED,
                                 sending_date=datetime(2026, 9, 29, 14, 12, 53, 330665, tzinfo=UTC))
DELETE_B = ChedClearanceRequest(ched_id=CHED, office=OFFICE, declaration="26GB1669CAPTUREB01", clearance=Clearance.INVALIDATED,
                                sending_date=datetime(2026, 9, 29, 14, 20, 13, 239046, tzinfo=UTC))
RELEASED = ChedClearanceResponse(outcome=ClearanceOutcome.PROCESSED, sending_date=datetime(2026, 9, 29, 14, 12, 53, 330000, tzinfo=UTC))
RELEASED_AGAIN = ChedClearanceResponse(outcome=ClearanceOutcome.NOTHING_TO_PROCESS,
                                       sending_date=datetime(2026, 9, 29, 14, 17, 6, 430000, tzinfo=UTC))

PROCESSED_CHED_REQUESTS = [("01-read.request.xml", READ), ("02-reserveA.request.xml", RESERVE_A),
                           ("GetProcessedChedRequest.xml", RESERVE_PP)]
CLEARANCE_REQUESTS = [("05-releaseA.request.xml", RELEASE_A), ("09-deleteB.request.xml", DELETE_B)]
CLEARANCE_RESPONSES = [("05-releaseA.response.xml", RELEASED), ("07-releaseA-again.response.xml", RELEASED_AGAIN)]


@pytest.mark.parametrize(("name", "expected"), PROCESSED_CHED_REQUESTS)
def test_processed_ched_requests_are_read(name, expected):
    _, body = capture(name)
    assert certex.read_processed_ched_request(body) == expected


@pytest.mark.parametrize(("name", "expected"), CLEARANCE_REQUESTS)
def test_clearance_requests_are_read(name, expected):
    _, body = capture(name)
    assert certex.read_ched_clearance_request(body) == expected


@pytest.mark.parametrize(("name", "expected"), CLEARANCE_RESPONSES)
def test_clearance_responses_are_read(name, expected):
    _, body = capture(name)
    assert certex.read_ched_clearance_response(body) == expected


def test_the_wrong_code_answer_is_read():
    _, body = capture("14-wrong-code.response.xml")
    information = certex.read_processed_ched_information_response(body)
    assert information == ProcessedChedInformation(
        certificate=None,  # removed from the capture (a comment says so)
        available=(AvailableQuantity(line=1, class_code="0401", unit="KGM", quantity=Decimal("399.998")),),
        consumed=(
            Movement(declaration="24GBBGBKCDMS640103", goods_item=1, line=1, quantity=Decimal("600"),
                     state=MovementState.WRITTEN_OFF, office=OFFICE, at=datetime(2026, 9, 28, 16, 28, 40, tzinfo=CEST)),
            Movement(declaration="26GB1669CAPTUREA01", goods_item=1, line=1, quantity=Decimal("0.002"),
                     state=MovementState.WRITTEN_OFF, office=OFFICE, at=datetime(2026, 9, 29, 16, 12, 53, tzinfo=CEST)),
        ),
        reservation_accepted=False, failure=FailureReason.COMMODITY_MISMATCH, failed_goods_item=1, failed_line=1,
        push_active=False, operation_code="0",
    )


def test_the_unauthenticated_fault_is_read():
    _, body = capture("UnauthenticatedException.xml")
    assert certex.read_certex_fault(body) == certex.CertexFault(code="Client", string="UnauthenticatedException")
    _, answer = capture("05-releaseA.response.xml")
    assert certex.read_certex_fault(answer) is None


# --- the captures, rebuilt ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "values"), PROCESSED_CHED_REQUESTS)
def test_processed_ched_requests_are_built_as_captured(name, values):
    _, body = capture(name)
    assert shape(certex.processed_ched_request(values)) == shape(body)


@pytest.mark.parametrize(("name", "values"), CLEARANCE_REQUESTS)
def test_clearance_requests_are_built_as_captured(name, values):
    _, body = capture(name)
    assert shape(certex.ched_clearance_request(values)) == shape(body)


@pytest.mark.parametrize(("name", "values"), CLEARANCE_RESPONSES)
def test_clearance_responses_are_built_as_captured(name, values):
    _, body = capture(name)
    assert shape(certex.ched_clearance_response(values)) == shape(body)


@pytest.mark.parametrize("name", ["01-read.request.xml", "GetProcessedChedRequest.xml"])
def test_request_headers_are_built_as_captured(name):
    header, _ = capture(name)
    values = certex.read_certex_header(header)
    captured = [header.find(f"{{{certex.CHED_V06}}}CertexHeader"), header.find(f"{{{certex.BODY_V1}}}CustomsOfficeReferenceNumber")]
    assert [shape(e) for e in certex.certex_headers(values)] == [shape(e) for e in captured]


def test_answer_header_is_built_as_captured():
    header, _ = capture("05-releaseA.response.xml")
    built = certex.certex_headers(CertexHeader(message_id="a279e9f3330541588d801504cd803736", requester_prefix=OFFICE))
    assert [shape(e) for e in built] == [shape(header.find(f"{{{certex.CHED_V06}}}CertexHeader"))]


def test_a_built_request_travels_in_an_envelope():
    data = certex.certex_envelope(certex.certex_headers(CertexHeader(message_id="m1", requester_prefix="P", customs_office=OFFICE)),
                                  certex.processed_ched_request(RESERVE_A))
    header, body = certex.read_certex_envelope(data)
    assert certex.read_certex_header(header) == CertexHeader(message_id="m1", requester_prefix="P", customs_office=OFFICE)
    assert certex.read_processed_ched_request(body) == RESERVE_A


# --- our answers, round-tripped -------------------------------------------------------------------------------------


def certificate() -> etree._Element:
    root = etree.Element(f"{{{RSM_SPS_CERTIFICATE}}}SPSCertificate", nsmap={"rsm": RSM_SPS_CERTIFICATE, "ram": RAM})
    document = etree.SubElement(root, f"{{{RSM_SPS_CERTIFICATE}}}SPSExchangedDocument")
    etree.SubElement(document, f"{{{RAM}}}ID").text = CHED
    return root


LINES = [CertifiedLine(1, "0401", "KGM", Decimal("1000")), CertifiedLine(2, "04069021", "KGM", Decimal("50"))]
AT = datetime(2026, 9, 29, 14, 12, 53, 330000, tzinfo=UTC)
MOVEMENTS = [
    Movement("24GBBGBKCDMS640103", 1, 1, Decimal("600"), MovementState.WRITTEN_OFF, OFFICE, datetime(2026, 9, 28, 14, 28, 40, tzinfo=UTC)),
    Movement("26GB1669CAPTUREB01", 1, 1, Decimal("0.5"), MovementState.RESERVED, OFFICE, AT),
    Movement("26GB1669CAPTUREB01", 2, 2, Decimal("10"), MovementState.RELEASED, OFFICE, AT),
]


def round_trip(element: etree._Element) -> etree._Element:
    _, body = certex.read_certex_envelope(certex.certex_envelope([], element))
    return body


def test_a_read_answer_round_trips():
    sps = certificate()
    element = certex.processed_ched_information_response(LINES, MOVEMENTS, certificate=sps)
    read = certex.read_processed_ched_information_response(round_trip(element))
    assert etree.tostring(read.certificate, method="c14n", exclusive=True) == etree.tostring(sps, method="c14n", exclusive=True)
    assert read == ProcessedChedInformation.from_ledger(LINES, MOVEMENTS, certificate=read.certificate)
    assert read.available == (AvailableQuantity(line=1, class_code="0401", unit="KGM", quantity=Decimal("399.5")),
                              AvailableQuantity(line=2, class_code="04069021", unit="KGM", quantity=Decimal("50")))
    assert [m.declaration for m in read.reserved] == ["26GB1669CAPTUREB01"] and len(read.consumed) == 1
    assert read.reservation_accepted is None and read.failure is None and read.push_active is False
    assert element.find(f"{{{certex.CHED_V06}}}ReservationResult") is None
    assert sps.getparent() is None  # the caller's certificate is copied, not moved


def test_a_failed_reservation_answer_round_trips_with_the_failed_item():
    items = [DeclaredItem(1, 1, Decimal("1"), "0401", "KGM"), DeclaredItem(2, 2, Decimal("51"), "040690", "KGM")]
    reservation = reserve(LINES, MOVEMENTS, declaration="26GB1669CAPTUREC01", items=items, office=OFFICE, at=AT)
    element = certex.processed_ched_information_response(LINES, MOVEMENTS, reservation=reservation, push_active=True)
    read = certex.read_processed_ched_information_response(round_trip(element))
    assert (read.reservation_accepted, read.failure, read.failed_goods_item, read.failed_line, read.push_active) == (
        False, FailureReason.QUANTITY_EXCEEDED, 2, 2, True)
    assert read == ProcessedChedInformation.from_ledger(LINES, MOVEMENTS, reservation=reservation, push_active=True)


def test_an_accepted_reservation_answer_round_trips():
    items = [DeclaredItem(1, 2, Decimal("50"), "0406", "KGM")]
    reservation = reserve(LINES, MOVEMENTS, declaration="26GB1669CAPTUREC01", items=items, office=OFFICE, at=AT)
    movements = [*MOVEMENTS, *reservation.movements]
    information = ProcessedChedInformation.from_ledger(LINES, movements, reservation=reservation)
    read = certex.read_processed_ched_information_response(round_trip(certex.processed_ched_information_element(information)))
    assert read == information and read.reservation_accepted is True
    assert read.available[1].quantity == 0 and len(read.reserved) == 2


def test_the_reserved_quantity_has_the_shape_of_the_consumed_one():
    element = certex.processed_ched_information_response(LINES, MOVEMENTS)
    summary = element.find(f"{{{certex.CHED_V06}}}QuantityManagementSummary")
    names = [etree.QName(e).localname for e in summary]
    assert names == ["AvailableQuantity", "AvailableQuantity", "ReservedQuantity", "ConsumedQuantity"]
    reserved, consumed = summary[2], summary[3]
    _, captured = capture("14-wrong-code.response.xml")
    captured_consumed = captured.find(f".//{{{certex.BASE_V03}}}ConsumedQuantity")
    assert structure(consumed) == structure(captured_consumed)
    assert structure(reserved)[1] == structure(captured_consumed)[1]


def test_clearance_messages_round_trip():
    assert certex.read_ched_clearance_request(round_trip(certex.ched_clearance_request(RELEASE_A))) == RELEASE_A
    assert certex.read_ched_clearance_response(round_trip(certex.ched_clearance_response(RELEASED))) == RELEASED


def test_the_fault_round_trips():
    data = certex.certex_fault("no CHED CHEDP.XI.2026.9999999", message_id="abc")
    _, body = certex.read_certex_envelope(data)
    assert certex.read_certex_fault(body) == certex.CertexFault(
        code="Client", string="no CHED CHEDP.XI.2026.9999999", message_id="abc", error_message="no CHED CHEDP.XI.2026.9999999")
    assert body.find(f"detail/{certex.EXCEPTION_WITH_UNIQUE_INFO}") is not None


@pytest.mark.parametrize(("value", "text"), [
    (datetime(2026, 9, 29, 14, 12, 53, 330000, tzinfo=UTC), "2026-09-29T14:12:53.330Z"),
    (datetime(2026, 9, 29, 14, 12, 53, 330665, tzinfo=UTC), "2026-09-29T14:12:53.330665Z"),
    (datetime(2026, 6, 30, 8, 0, 53, tzinfo=UTC), "2026-06-30T08:00:53Z"),
    (datetime(2026, 9, 28, 16, 28, 40, tzinfo=CEST), "2026-09-28T16:28:40+02:00"),
    (datetime(2026, 6, 30, 8, 0, 53), "2026-06-30T08:00:53Z"),
])
def test_instants_are_written_without_loss(value, text):
    assert certex_values.format_instant(value) == text


@pytest.mark.parametrize(("value", "text"), [("600", "600"), ("0.001", "0.001"), ("0.0010", "0.001"), ("1E+3", "1000"), ("2400.50", "2400.5")])
def test_quantities_are_written_plainly(value, text):
    assert format_quantity(Decimal(value)) == text


# --- bad input ------------------------------------------------------------------------------------------------------


def replaced(name: str, old: str, new: str) -> etree._Element:
    data = standard_file(f"samples/traces-ws/{name}").read_bytes().replace(old.encode(), new.encode())
    return certex.read_certex_envelope(data)[1]


@pytest.mark.parametrize(("name", "old", "new", "reader", "where", "message"), [
    ("02-reserveA.request.xml", ">0.001<", ">a lot<", certex.read_processed_ched_request,
     "/soap:Envelope/soap:Body/v06:ProcessedChedRequest/v06:CommodityDescriptionForChed/v03:NetWeightQuantity", "decimal"),
    ("02-reserveA.request.xml", ">0.001<", ">1e3<", certex.read_processed_ched_request, "v03:NetWeightQuantity", "decimal"),
    ("02-reserveA.request.xml", "<GoodsItemNumber xmlns=\"http://ec.europa.eu/sanco/tracesnt/customs_certex/base/v03\">1<",
     "<GoodsItemNumber xmlns=\"http://ec.europa.eu/sanco/tracesnt/customs_certex/base/v03\">-1<", certex.read_processed_ched_request,
     "v06:CommodityDescriptionForChed/v03:GoodsItemNumber", "whole number"),
    ("01-read.request.xml", "CHEDP.XI.2026.0000875", "", certex.read_processed_ched_request,
     "/soap:Envelope/soap:Body/v06:ProcessedChedRequest/v06:ChedCertificateId", "missing"),
    ("01-read.request.xml", "<QuantityManagementIndication>0<", "<QuantityManagementIndication>2<", certex.read_processed_ched_request,
     "v06:QuantityManagementIndication", "boolean"),
    ("01-read.request.xml", "2026-09-29T14:10:42.090741Z", "yesterday", certex.read_processed_ched_request,
     "v06:SendingDate", "date-time"),
    ("05-releaseA.request.xml", ">01<", ">05<", certex.read_ched_clearance_request,
     "v06:ChedClearanceRequest/v06:GoodsClearanceInformation", "known code (01, 02)"),
    ("05-releaseA.request.xml", "<ReferenceNumber xmlns=\"http://ec.europa.eu/sanco/tracesnt/customs_certex/base/v03\">XI000002</ReferenceNumber>",
     "", certex.read_ched_clearance_request, "v06:CompetentCustomsOffice/v03:ReferenceNumber", "missing"),
    ("05-releaseA.response.xml", ">01<", ">02<", certex.read_ched_clearance_response,
     "v06:QuantityManagementOutcome", "known code (01, 03)"),
    ("14-wrong-code.response.xml", ">03<", ">99<", certex.read_processed_ched_information_response,
     "v06:ReservationFailureReason", "known code (03, 04)"),
    ("14-wrong-code.response.xml", ">399.998<", "><", certex.read_processed_ched_information_response,
     "v03:AvailableQuantity/v03:SwSupportingDocument/v03:Quantity", "missing"),
    ("14-wrong-code.response.xml", ">600<", ">six hundred<", certex.read_processed_ched_information_response,
     "v03:ConsumedQuantity[1]/v03:SwSupportingDocument/v03:Quantity", "decimal"),
])
def test_bad_input_names_the_field(name, old, new, reader, where, message):
    body = replaced(name, old, new)
    with pytest.raises(InputError) as raised:
        reader(body)
    assert raised.value.where.endswith(where) and message in raised.value.message


def test_the_wrong_message_is_named():
    _, body = capture("05-releaseA.request.xml")
    with pytest.raises(InputError, match="expected ProcessedChedRequest") as raised:
        certex.read_processed_ched_request(body)
    assert raised.value.where == "/soap:Envelope/soap:Body/v06:ChedClearanceRequest"


def test_a_certex_header_without_message_id_is_refused():
    header, _ = capture("01-read.request.xml")
    certex_header = header.find(f"{{{certex.CHED_V06}}}CertexHeader")
    certex_header.remove(certex_header[0])
    with pytest.raises(InputError, match="MessageId") as raised:
        certex.read_certex_header(header)
    assert raised.value.where.endswith("v06:CertexHeader/v03:MessageId")


def test_hostile_xml_is_refused():
    data = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><s:Envelope xmlns:s="' + SOAP11_ENV.encode()
            + b'"><s:Body><x>&e;</x></s:Body></s:Envelope>')
    with pytest.raises(HostileXMLError):
        certex.read_certex_envelope(data)
    with pytest.raises(InputError, match="SOAP 1.1 Envelope"):
        certex.read_certex_envelope(b"<a/>")
