"""The EU customs single window CSW-CERTEX exchange for CHEDs (TRACES-NT ``CustomsCertexChedService`` v06), both
directions: customs asks (``ProcessedChedRequest``, ``ChedClearanceRequest``), the certificate registry answers
(``ProcessedChedInformationResponse``, ``ChedClearanceResponse``, or the fault ``ExceptionWithUniqueInfoType``).
Builders and readers over lxml, no I/O; quantities follow :mod:`hub.customs.ledger`.

Names and namespaces are those of the saved TRACES-NT captures (``samples/traces-ws/``)::

    v06  http://ec.europa.eu/sanco/tracesnt/customs_certex/ched/v06    messages, CertexHeader and their own children
    v03  http://ec.europa.eu/sanco/tracesnt/customs_certex/base/v03    the children of v06 groups (MRN, ReferenceNumber…)
    v1   http://ec.europa.eu/tracesnt/body/v1                          header CustomsOfficeReferenceNumber

Shapes taken from the captures: ``CertexHeader``, ``CustomsOfficeReferenceNumber``, ``ProcessedChedRequest`` (read
and reservation), ``ProcessedChedInformationResponse`` (``QuantityManagementSummary`` with ``AvailableQuantity`` and
``ConsumedQuantity``, ``OperationCode``, ``ReservationResult``, ``ReservationFailureReason``,
``ReservationFailureConsignmentItem``, ``PushActive``), ``ChedClearanceRequest`` and ``ChedClearanceResponse``.
Ours, for want of a capture: ``ReservedQuantity`` (FACTS names it; we give it the shape of ``ConsumedQuantity``), the
``v06`` namespace of ``ChedCertificate``, and the detail of the fault (see :func:`certex_fault`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Iterable, Sequence, TypeVar

from lxml import etree

from hub.customs.ledger import (
    CertifiedLine,
    Clearance,
    ClearanceOutcome,
    DeclaredItem,
    FailureReason,
    Movement,
    MovementState,
    Reservation,
    balances,
    format_quantity,
)
from connectors.traces_nt import certex_values as values
from connectors.traces_nt.certex_values import BASE_V03, BODY_V1, CHED_V06
from hub.errors import InputError
from hub.namespaces import SOAP11_ENV
from hub.xmlsafe import parse_xml

#: The service path TRACES-NT publishes (FACTS §5).
SERVICE = "CustomsCertexChedServiceV06"

PROCESSED_CHED_REQUEST = f"{{{CHED_V06}}}ProcessedChedRequest"
PROCESSED_CHED_INFORMATION_RESPONSE = f"{{{CHED_V06}}}ProcessedChedInformationResponse"
CHED_CLEARANCE_REQUEST = f"{{{CHED_V06}}}ChedClearanceRequest"
CHED_CLEARANCE_RESPONSE = f"{{{CHED_V06}}}ChedClearanceResponse"
EXCEPTION_WITH_UNIQUE_INFO = f"{{{CHED_V06}}}ExceptionWithUniqueInfoType"

_NSMAP = {"v06": CHED_V06, "v03": BASE_V03}
_E = TypeVar("_E", bound=Enum)


# --- values -----------------------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, kw_only=True)
class CertexHeader:
    """``v06:CertexHeader`` {``v03:MessageId``, ``v03:UniqRequesterPrefix``} and the ``v1:CustomsOfficeReferenceNumber``
    header beside it (requests carry it; the captured answers do not, so it is None there)."""

    message_id: str
    requester_prefix: str | None = None
    customs_office: str | None = None


@dataclass(frozen=True, kw_only=True)
class ProcessedChedRequest:
    """Customs asks about a CHED: ``quantity_management`` False reads its quantities (``QuantityManagementIndication``
    0), True reserves ``items`` for ``declaration`` (the MRN; 1)."""

    ched_id: str
    office: str
    declaration: str | None = None
    items: tuple[DeclaredItem, ...] = ()
    quantity_management: bool = False
    language: str = "en"
    sending_date: datetime = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class AvailableQuantity:
    """What remains on one certificate line (``AvailableQuantity``)."""

    line: int
    class_code: str | None
    unit: str | None
    quantity: Decimal


@dataclass(frozen=True, kw_only=True)
class ProcessedChedInformation:
    """``ProcessedChedInformationResponse``: the certificate (``rsm:SPSCertificate`` or None), what is available per
    line, the reserved and written-off (consumed) movements, and, after a reservation, whether it was accepted and why
    not. Reserved and consumed movements carry the certificate line's commodity code and unit on the wire; the
    declared code (TRACES echoes it) is not kept by :class:`~hub.customs.ledger.Movement`."""

    certificate: etree._Element | None = None
    available: tuple[AvailableQuantity, ...] = ()
    reserved: tuple[Movement, ...] = ()
    consumed: tuple[Movement, ...] = ()
    reservation_accepted: bool | None = None
    failure: FailureReason | None = None
    failed_goods_item: int | None = None
    failed_line: int | None = None
    push_active: bool = False
    operation_code: str = "0"

    @classmethod
    def from_ledger(
        cls,
        lines: Iterable[CertifiedLine],
        movements: Iterable[Movement],
        *,
        reservation: Reservation | None = None,
        certificate: etree._Element | None = None,
        push_active: bool = False,
    ) -> "ProcessedChedInformation":
        """The answer for a CHED's ledger. ``movements`` must already hold what ``reservation`` (when given) reserved:
        the reservation only says whether it was accepted, and which item failed."""
        movements = list(movements)
        failed = reservation.failed_item if reservation is not None else None
        return cls(
            certificate=certificate,
            available=tuple(AvailableQuantity(line=b.line.line, class_code=b.line.class_code, unit=b.line.unit,
                                              quantity=b.available) for b in balances(lines, movements)),
            reserved=tuple(m for m in movements if m.state is MovementState.RESERVED),
            consumed=tuple(m for m in movements if m.state is MovementState.WRITTEN_OFF),
            reservation_accepted=reservation.accepted if reservation is not None else None,
            failure=reservation.failure if reservation is not None else None,
            failed_goods_item=failed.goods_item if failed is not None else None,
            failed_line=failed.line if failed is not None else None,
            push_active=push_active,
        )


@dataclass(frozen=True, kw_only=True)
class ChedClearanceRequest:
    """Customs says what became of ``declaration`` (``CustomsDocumentReference``): goods released (01) or the
    declaration invalidated (02)."""

    ched_id: str
    office: str
    declaration: str
    clearance: Clearance
    sending_date: datetime = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class ChedClearanceResponse:
    """``ChedClearanceResponse``: ``QuantityManagementOutcome`` and the request's ``SendingDate`` (echoed, as in the
    captures)."""

    outcome: ClearanceOutcome
    sending_date: datetime
    operation_code: str = "0"


@dataclass(frozen=True, kw_only=True)
class CertexFault:
    """The service's fault: ``faultcode`` (without prefix), ``faultstring``, and our detail's message id and text."""

    code: str
    string: str
    message_id: str | None = None
    error_message: str | None = None


# --- headers ----------------------------------------------------------------------------------------------------------


def certex_header(header: CertexHeader) -> etree._Element:
    """``v06:CertexHeader`` alone (what the captured answers carry)."""
    element = etree.Element(f"{{{CHED_V06}}}CertexHeader", nsmap=_NSMAP)
    values.add_child(element, BASE_V03, "MessageId", header.message_id)
    values.add_child(element, BASE_V03, "UniqRequesterPrefix", header.requester_prefix)
    return element


def certex_headers(header: CertexHeader) -> list[etree._Element]:
    """The CERTEX headers of a request, in the captures' order: ``v06:CertexHeader``, then
    ``v1:CustomsOfficeReferenceNumber`` when ``customs_office`` is set."""
    elements = [certex_header(header)]
    if header.customs_office is not None:
        office = etree.Element(f"{{{BODY_V1}}}CustomsOfficeReferenceNumber", nsmap={"v1": BODY_V1})
        office.text = header.customs_office
        elements.append(office)
    return elements


def read_certex_header(soap_header: etree._Element | None) -> CertexHeader | None:
    """The CERTEX headers found in ``soap_header`` (a ``soap:Header``), or None when there is no ``CertexHeader``."""
    element = soap_header.find(f"{{{CHED_V06}}}CertexHeader") if soap_header is not None else None
    if element is None:
        return None
    office = soap_header.findtext(f"{{{BODY_V1}}}CustomsOfficeReferenceNumber")
    return CertexHeader(message_id=values.child_text(element, BASE_V03, "MessageId"),
                        requester_prefix=values.child_text(element, BASE_V03, "UniqRequesterPrefix", required=False),
                        customs_office=(office or "").strip() or None)


# --- ProcessedChedRequest ---------------------------------------------------------------------------------------------


def processed_ched_request(request: ProcessedChedRequest) -> etree._Element:
    """``v06:ProcessedChedRequest``, in the element order of the captures (an empty
    ``CustomsDeclarationReferenceNumber`` for a read without declaration)."""
    element = etree.Element(PROCESSED_CHED_REQUEST, nsmap=_NSMAP)
    values.add_child(element, CHED_V06, "SendingDate", values.format_instant(request.sending_date))
    values.add_child(element, CHED_V06, "ChedCertificateId", request.ched_id)
    reference = values.add_child(element, CHED_V06, "CustomsDeclarationReferenceNumber")
    values.add_child(reference, BASE_V03, "MRN", request.declaration)
    values.add_office(element, request.office)
    for item in request.items:
        description = values.add_child(element, CHED_V06, "CommodityDescriptionForChed")
        values.add_child(description, BASE_V03, "GoodsItemNumber", str(item.goods_item))
        values.add_child(description, BASE_V03, "CertificateLineNumber", str(item.line))
        values.add_child(description, BASE_V03, "ClassCode", item.class_code)
        values.add_child(description, BASE_V03, "NetWeightQuantity", format_quantity(item.quantity))
        values.add_child(description, BASE_V03, "NetWeightUnitOfMeasure", item.unit)
    values.add_child(element, CHED_V06, "Language", request.language)
    values.add_child(element, CHED_V06, "QuantityManagementIndication", "1" if request.quantity_management else "0")
    return element


def read_processed_ched_request(element: etree._Element) -> ProcessedChedRequest:
    """The request in a ``v06:ProcessedChedRequest``; :class:`InputError` naming the field that is missing or wrong."""
    values.expect_tag(element, PROCESSED_CHED_REQUEST)
    reference = element.find(f"{{{CHED_V06}}}CustomsDeclarationReferenceNumber")
    items = tuple(_declared_item(d) for d in element.iterfind(f"{{{CHED_V06}}}CommodityDescriptionForChed"))
    return ProcessedChedRequest(
        ched_id=values.child_text(element, CHED_V06, "ChedCertificateId"),
        office=values.child_text(values.required_child(element, CHED_V06, "CompetentCustomsOffice"), BASE_V03, "ReferenceNumber"),
        declaration=values.child_text(reference, BASE_V03, "MRN", required=False) if reference is not None else None,
        items=items,
        quantity_management=values.boolean_of(element, CHED_V06, "QuantityManagementIndication"),
        language=values.child_text(element, CHED_V06, "Language", required=False) or "en",
        sending_date=values.instant_of(element, CHED_V06, "SendingDate"),
    )


def _declared_item(description: etree._Element) -> DeclaredItem:
    return DeclaredItem(
        goods_item=values.integer_of(description, BASE_V03, "GoodsItemNumber"),
        line=values.integer_of(description, BASE_V03, "CertificateLineNumber"),
        quantity=values.quantity_of(description, BASE_V03, "NetWeightQuantity"),
        class_code=values.child_text(description, BASE_V03, "ClassCode", required=False),
        unit=values.child_text(description, BASE_V03, "NetWeightUnitOfMeasure", required=False),
    )


# --- ProcessedChedInformationResponse ---------------------------------------------------------------------------------


def processed_ched_information_response(
    lines: Iterable[CertifiedLine],
    movements: Iterable[Movement],
    *,
    reservation: Reservation | None = None,
    certificate: etree._Element | None = None,
    push_active: bool = False,
) -> etree._Element:
    """``v06:ProcessedChedInformationResponse`` for a CHED's ledger (see :meth:`ProcessedChedInformation.from_ledger`);
    ``certificate`` (an ``rsm:SPSCertificate``) is copied into ``ChedCertificate``."""
    return processed_ched_information_element(ProcessedChedInformation.from_ledger(
        lines, movements, reservation=reservation, certificate=certificate, push_active=push_active))


def processed_ched_information_element(information: ProcessedChedInformation) -> etree._Element:
    """``v06:ProcessedChedInformationResponse`` from its values, in the element order of ``14-wrong-code``."""
    element = etree.Element(PROCESSED_CHED_INFORMATION_RESPONSE, nsmap=_NSMAP)
    if information.certificate is not None:
        values.add_child(element, CHED_V06, "ChedCertificate").append(values.deep_copy(information.certificate))
    summary = values.add_child(element, CHED_V06, "QuantityManagementSummary")
    for available in information.available:
        entry = values.add_child(summary, BASE_V03, "AvailableQuantity")
        _commodity(entry, available.class_code, available.unit, available.quantity, available.line)
    for name, movements in (("ReservedQuantity", information.reserved), ("ConsumedQuantity", information.consumed)):
        for movement in movements:
            _movement(values.add_child(summary, BASE_V03, name), movement, information.available)
    values.add_child(element, CHED_V06, "OperationCode", information.operation_code)
    if information.reservation_accepted is not None:
        values.add_child(element, CHED_V06, "ReservationResult", "1" if information.reservation_accepted else "0")
    if information.failure is not None:
        values.add_child(element, CHED_V06, "ReservationFailureReason", information.failure.value)
    if information.failed_goods_item is not None or information.failed_line is not None:
        item = values.add_child(element, CHED_V06, "ReservationFailureConsignmentItem")
        values.add_child(item, BASE_V03, "GoodsItemNumber", values.optional_str(information.failed_goods_item))
        values.add_child(item, BASE_V03, "DocumentLineItemNumber", values.optional_str(information.failed_line))
    values.add_child(element, CHED_V06, "PushActive", "true" if information.push_active else "false")
    return element


def _commodity(entry: etree._Element, class_code: str | None, unit: str | None, quantity: Decimal, line: int) -> None:
    if class_code is not None:
        values.add_child(values.add_child(entry, BASE_V03, "CommodityCode"), BASE_V03, "HarmonizedSystemSubheadingcode", class_code)
    document = values.add_child(entry, BASE_V03, "SwSupportingDocument")
    values.add_child(document, BASE_V03, "UnitOfMeasure", unit)
    values.add_child(document, BASE_V03, "Quantity", format_quantity(quantity))
    values.add_child(document, BASE_V03, "CertificateLineNumber", str(line))


def _movement(entry: etree._Element, movement: Movement, available: Sequence[AvailableQuantity]) -> None:
    line = next((a for a in available if a.line == movement.line), None)
    values.add_child(entry, BASE_V03, "GoodsItemNumber", str(movement.goods_item))
    _commodity(entry, line.class_code if line else None, line.unit if line else None, movement.quantity, movement.line)
    values.add_child(entry, BASE_V03, "EventDateTime", values.format_instant(movement.at) if movement.at else None)
    if movement.office is not None:
        values.add_child(values.add_child(entry, BASE_V03, "CompetentCustomsOffice"), BASE_V03, "ReferenceNumber", movement.office)
    values.add_child(entry, BASE_V03, "MRN", movement.declaration)


def read_processed_ched_information_response(element: etree._Element) -> ProcessedChedInformation:
    """The values of a ``v06:ProcessedChedInformationResponse``; :class:`InputError` naming a missing or wrong field.
    ``certificate`` is the ``rsm:SPSCertificate`` element inside ``ChedCertificate`` (part of ``element``'s tree)."""
    values.expect_tag(element, PROCESSED_CHED_INFORMATION_RESPONSE)
    container = element.find(f"{{{CHED_V06}}}ChedCertificate")
    certificate = next(container.iterchildren(etree.Element), None) if container is not None else None
    summary = element.find(f"{{{CHED_V06}}}QuantityManagementSummary")
    entries = (lambda name: summary.iterfind(f"{{{BASE_V03}}}{name}")) if summary is not None else (lambda name: ())
    failed = element.find(f"{{{CHED_V06}}}ReservationFailureConsignmentItem")
    result = element.find(f"{{{CHED_V06}}}ReservationResult")
    return ProcessedChedInformation(
        certificate=certificate,
        available=tuple(_available(e) for e in entries("AvailableQuantity")),
        reserved=tuple(_read_movement(e, MovementState.RESERVED) for e in entries("ReservedQuantity")),
        consumed=tuple(_read_movement(e, MovementState.WRITTEN_OFF) for e in entries("ConsumedQuantity")),
        reservation_accepted=values.boolean_of(element, CHED_V06, "ReservationResult") if result is not None else None,
        failure=values.code_of(element, CHED_V06, "ReservationFailureReason", FailureReason, required=False),
        failed_goods_item=values.integer_of(failed, BASE_V03, "GoodsItemNumber", required=False) if failed is not None else None,
        failed_line=values.integer_of(failed, BASE_V03, "DocumentLineItemNumber", required=False) if failed is not None else None,
        push_active=values.boolean_of(element, CHED_V06, "PushActive", required=False) or False,
        operation_code=values.child_text(element, CHED_V06, "OperationCode", required=False) or "0",
    )


def _available(entry: etree._Element) -> AvailableQuantity:
    document = values.required_child(entry, BASE_V03, "SwSupportingDocument")
    return AvailableQuantity(line=values.integer_of(document, BASE_V03, "CertificateLineNumber"), class_code=_class_code(entry),
                             unit=values.child_text(document, BASE_V03, "UnitOfMeasure", required=False),
                             quantity=values.quantity_of(document, BASE_V03, "Quantity"))


def _read_movement(entry: etree._Element, state: MovementState) -> Movement:
    document = values.required_child(entry, BASE_V03, "SwSupportingDocument")
    office = entry.find(f"{{{BASE_V03}}}CompetentCustomsOffice")
    at = entry.find(f"{{{BASE_V03}}}EventDateTime")
    return Movement(
        declaration=values.child_text(entry, BASE_V03, "MRN", required=False) or "",
        goods_item=values.integer_of(entry, BASE_V03, "GoodsItemNumber"),
        line=values.integer_of(document, BASE_V03, "CertificateLineNumber"),
        quantity=values.quantity_of(document, BASE_V03, "Quantity"),
        state=state,
        office=values.child_text(office, BASE_V03, "ReferenceNumber", required=False) if office is not None else None,
        at=values.instant_of(entry, BASE_V03, "EventDateTime") if at is not None else None,
    )


def _class_code(entry: etree._Element) -> str | None:
    commodity = entry.find(f"{{{BASE_V03}}}CommodityCode")
    return values.child_text(commodity, BASE_V03, "HarmonizedSystemSubheadingcode", required=False) if commodity is not None else None


# --- ChedClearanceRequest / ChedClearanceResponse ---------------------------------------------------------------------


def ched_clearance_request(request: ChedClearanceRequest) -> etree._Element:
    """``v06:ChedClearanceRequest``, in the element order of the captures."""
    element = etree.Element(CHED_CLEARANCE_REQUEST, nsmap=_NSMAP)
    values.add_office(element, request.office)
    values.add_child(element, CHED_V06, "SendingDate", values.format_instant(request.sending_date))
    values.add_child(element, CHED_V06, "CustomsDocumentReference", request.declaration)
    values.add_child(element, CHED_V06, "ChedCertificateId", request.ched_id)
    values.add_child(element, CHED_V06, "GoodsClearanceInformation", request.clearance.value)
    return element


def read_ched_clearance_request(element: etree._Element) -> ChedClearanceRequest:
    """The values of a ``v06:ChedClearanceRequest``; :class:`InputError` naming a missing or wrong field."""
    values.expect_tag(element, CHED_CLEARANCE_REQUEST)
    return ChedClearanceRequest(
        ched_id=values.child_text(element, CHED_V06, "ChedCertificateId"),
        office=values.child_text(values.required_child(element, CHED_V06, "CompetentCustomsOffice"), BASE_V03, "ReferenceNumber"),
        declaration=values.child_text(element, CHED_V06, "CustomsDocumentReference"),
        clearance=values.code_of(element, CHED_V06, "GoodsClearanceInformation", Clearance),
        sending_date=values.instant_of(element, CHED_V06, "SendingDate"),
    )


def ched_clearance_response(response: ChedClearanceResponse) -> etree._Element:
    """``v06:ChedClearanceResponse`` as ``05-releaseA.response.xml``."""
    element = etree.Element(CHED_CLEARANCE_RESPONSE, nsmap=_NSMAP)
    values.add_child(element, CHED_V06, "QuantityManagementOutcome", response.outcome.value)
    values.add_child(element, CHED_V06, "SendingDate", values.format_instant(response.sending_date))
    values.add_child(element, CHED_V06, "OperationCode", response.operation_code)
    return element


def read_ched_clearance_response(element: etree._Element) -> ChedClearanceResponse:
    """The values of a ``v06:ChedClearanceResponse``; :class:`InputError` naming a missing or wrong field."""
    values.expect_tag(element, CHED_CLEARANCE_RESPONSE)
    return ChedClearanceResponse(
        outcome=values.code_of(element, CHED_V06, "QuantityManagementOutcome", ClearanceOutcome),
        sending_date=values.instant_of(element, CHED_V06, "SendingDate"),
        operation_code=values.child_text(element, CHED_V06, "OperationCode", required=False) or "0",
    )


# --- the fault --------------------------------------------------------------------------------------------------------


def certex_fault(error_message: str, *, message_id: str | None = None, code: str = "Client") -> bytes:
    """A SOAP 1.1 fault envelope carrying ``ExceptionWithUniqueInfoType`` (``code`` is ``Client`` or ``Server``).

    Ours: FACTS names only the fault type. The detail element is ``v06:ExceptionWithUniqueInfoType`` with
    ``v03:MessageId`` (the request's ``CertexHeader/MessageId``, echoed) and ``v06:errorMessage``; the two child names
    are those a public TRACES client reads from the fault, their namespaces are our guess.
    """
    root = etree.Element(f"{{{SOAP11_ENV}}}Envelope", nsmap={"env": SOAP11_ENV})
    etree.SubElement(root, f"{{{SOAP11_ENV}}}Header")
    fault = etree.SubElement(etree.SubElement(root, f"{{{SOAP11_ENV}}}Body"), f"{{{SOAP11_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"env:{code}"
    etree.SubElement(fault, "faultstring").text = error_message
    detail = etree.SubElement(etree.SubElement(fault, "detail"), EXCEPTION_WITH_UNIQUE_INFO, nsmap=_NSMAP)
    values.add_child(detail, BASE_V03, "MessageId", message_id)
    values.add_child(detail, CHED_V06, "errorMessage", error_message)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def read_certex_fault(element: etree._Element) -> CertexFault | None:
    """The fault if ``element`` (a SOAP Body child) is a ``soap:Fault``, else None; ``message_id`` and
    ``error_message`` come from an ``ExceptionWithUniqueInfoType`` detail when there is one."""
    if element.tag != f"{{{SOAP11_ENV}}}Fault":
        return None
    detail = element.find(f"detail/{EXCEPTION_WITH_UNIQUE_INFO}")
    return CertexFault(
        code=(element.findtext("faultcode") or "").strip().rpartition(":")[2],
        string=(element.findtext("faultstring") or "").strip(),
        message_id=values.child_text(detail, BASE_V03, "MessageId", required=False) if detail is not None else None,
        error_message=values.child_text(detail, CHED_V06, "errorMessage", required=False) if detail is not None else None,
    )


# --- envelopes --------------------------------------------------------------------------------------------------------


def certex_envelope(headers: Sequence[etree._Element], body: etree._Element) -> bytes:
    """A SOAP 1.1 envelope with ``headers`` and one body element, serialised (UTF-8, with declaration)."""
    root = etree.Element(f"{{{SOAP11_ENV}}}Envelope", nsmap={"soapenv": SOAP11_ENV})
    etree.SubElement(root, f"{{{SOAP11_ENV}}}Header").extend(headers)
    etree.SubElement(root, f"{{{SOAP11_ENV}}}Body").append(body)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def read_certex_envelope(data: bytes) -> tuple[etree._Element | None, etree._Element]:
    """(``soap:Header`` or None, the first Body child) of untrusted bytes, parsed safely; :class:`InputError` else."""
    root = parse_xml(data, source="CSW-CERTEX message")
    if root.tag != f"{{{SOAP11_ENV}}}Envelope":
        raise InputError(f"expected a SOAP 1.1 Envelope, found {root.tag}", where="/")
    body = root.find(f"{{{SOAP11_ENV}}}Body")
    first = next(body.iterchildren(etree.Element), None) if body is not None else None
    if first is None:
        raise InputError("the SOAP Body is missing or empty", where="/soap:Envelope")
    return root.find(f"{{{SOAP11_ENV}}}Header"), first
