"""The CSW-CERTEX port of the TRACES-NT sandbox (``CustomsCertexChedServiceV06``): customs reads, reserves, writes off
and releases quantities of the CHEDs the sandbox received, with the rules of :mod:`hub.customs.ledger`.

Each CHED's ledger is built from its certificate when it is submitted (:func:`certified_lines`). Answers carry the
headers of the saved answers (``Message``, ``wsse:Security`` with a 5-second timestamp, ``CertexHeader`` echoed);
whatever TRACES would refuse is answered with the fault ``ExceptionWithUniqueInfoType``
(:func:`connectors.traces_nt.certex.certex_fault`).

Choices of the sandbox, where the stored material is silent:

* A line's quantity is its ``NetWeightMeasure``, else its ``NetVolumeMeasure`` (the saved CHED-A samples count
  animals that way, ``H87``); a line with neither is not on the ledger (customs gets ``03`` for it). Its commodity code
  is the ``ClassCode`` of its first ``CN`` (or ``HS``) classification, else of its first classification.
* Only a CHED decided favourably (validated, authorised for onward movement, or partially rejected) takes a
  reservation; a reservation against a refused, deleted, cancelled or undecided CHED is answered with the fault,
  naming the CHED's status. Reads and clearances are answered whatever the decision: a read takes nothing, and a
  clearance only settles reservations made while the CHED could take them.
* ``ChedClearanceResponse/SendingDate`` echoes the request's, in milliseconds (as the captured answers do).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Mapping

from lxml import etree

from hub.connector import Outcome
from connectors.traces_nt import protocol
from connectors.traces_nt.wssecurity import answer_security
from connectors.traces_nt import certex
from hub.customs import ledger
from connectors.traces_nt.certex import CertexHeader, ChedClearanceRequest, ProcessedChedRequest
from hub.customs.ledger import CertifiedLine, Movement, MovementState
from hub.errors import InputError
from hub.namespaces import RAM, RSM_SPS_CERTIFICATE
from hub.xmlsafe import parse_xml

MESSAGE_V1 = "http://ec.europa.eu/sanco/tracesnt/message/v1"
_CN_SYSTEMS = ("CN", "HS")


@dataclass
class ChedLedger:
    """One CHED's quantities: its certified lines and every movement customs made against them."""

    lines: tuple[CertifiedLine, ...]
    movements: list[Movement] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "lines": [b.as_json() for b in ledger.balances(self.lines, self.movements)],
            "movements": [m.as_json() for m in self.movements],
        }


class CertexRefusal(Exception):
    """A request the CERTEX port answers with ``ExceptionWithUniqueInfoType``; ``str()`` is the ``errorMessage``."""


def certified_lines(certificate: etree._Element) -> tuple[CertifiedLine, ...]:
    """The ledger lines of a CHED's ``rsm:SPSCertificate``, one per ``IncludedSPSTradeLineItem`` with a quantity."""
    lines: dict[int, CertifiedLine] = {}
    for position, item in enumerate(certificate.iter(f"{{{RAM}}}IncludedSPSTradeLineItem"), 1):
        number = (item.findtext(f"{{{RAM}}}SequenceNumeric") or "").strip()
        number = int(number) if number.isdigit() else position
        measure = item.find(f"{{{RAM}}}NetWeightMeasure")
        measure = measure if measure is not None else item.find(f"{{{RAM}}}NetVolumeMeasure")
        quantity = _decimal(measure.text if measure is not None else None)
        if quantity is not None and number not in lines:
            lines[number] = CertifiedLine(number, _class_code(item), (measure.get("unitCode") or "").strip() or None, quantity)
    return tuple(lines.values())


def _class_code(item: etree._Element) -> str | None:
    classifications = list(item.iterfind(f"{{{RAM}}}ApplicableSPSClassification"))
    preferred = [c for c in classifications if (c.findtext(f"{{{RAM}}}SystemID") or "").strip().upper() in _CN_SYSTEMS]
    for classification in preferred + classifications:
        code = (classification.findtext(f"{{{RAM}}}ClassCode") or "").strip()
        if code:
            return code
    return None


def _decimal(text: str | None) -> Decimal | None:
    try:
        value = Decimal((text or "").strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() and value > 0 else None


class CertexPort:
    """Answers CSW-CERTEX requests against the sandbox's CHEDs (``cheds`` maps a reference to an object with
    ``reference``, ``certificate`` (bytes), ``status`` (:class:`~connectors.traces_nt.protocol.ChedStatus`) and
    ``ledger`` (:class:`ChedLedger`)). Not thread-safe: the sandbox answers on one event loop."""

    def __init__(self, cheds: Mapping[str, object]) -> None:
        self._cheds = cheds

    def answer(self, header: etree._Element | None, element: etree._Element, *, now: datetime | None = None) -> tuple[int, bytes]:
        """(HTTP status, SOAP envelope) for one authenticated request: 200 and the answer, or 500 and the fault."""
        now = now or datetime.now(timezone.utc)
        certex_header: CertexHeader | None = None
        try:
            certex_header = certex.read_certex_header(header)
            if element.tag == certex.PROCESSED_CHED_REQUEST:
                body = self._processed(certex.read_processed_ched_request(element), now)
            elif element.tag == certex.CHED_CLEARANCE_REQUEST:
                body = self._clearance(certex.read_ched_clearance_request(element), now)
            else:
                raise CertexRefusal(f"no operation of {certex.SERVICE} takes {element.tag}")
        except (CertexRefusal, InputError) as exc:
            message_id = certex_header.message_id if certex_header is not None else None
            return 500, certex.certex_fault(str(exc), message_id=message_id)
        return 200, certex.certex_envelope(_answer_headers(certex_header, now), body)

    def _processed(self, request: ProcessedChedRequest, now: datetime) -> etree._Element:
        ched = self._ched(request.ched_id)
        book: ChedLedger = ched.ledger
        reservation = None
        if request.quantity_management:
            _check_reservable(ched, request)
            reservation = ledger.reserve(book.lines, book.movements, declaration=request.declaration, items=request.items,
                                         office=request.office, at=now)
            if reservation.accepted:
                replaced = ledger.superseded(book.movements, declaration=request.declaration, items=request.items)
                book.movements[:] = [replace(m, state=MovementState.RELEASED, at=now) if m in replaced else m
                                     for m in book.movements] + list(reservation.movements)
        certificate = parse_xml(ched.certificate, source=f"CHED {ched.reference}")
        sps = certificate if certificate.tag == f"{{{RSM_SPS_CERTIFICATE}}}SPSCertificate" else None
        return certex.processed_ched_information_response(book.lines, book.movements, reservation=reservation, certificate=sps)

    def _clearance(self, request: ChedClearanceRequest, now: datetime) -> etree._Element:
        book: ChedLedger = self._ched(request.ched_id).ledger
        outcome, changes = ledger.clear(book.movements, declaration=request.declaration, clearance=request.clearance, at=now)
        changed = {id(old): new for old, new in changes}
        book.movements[:] = [changed.get(id(m), m) for m in book.movements]
        echoed = request.sending_date.replace(microsecond=request.sending_date.microsecond // 1000 * 1000)
        return certex.ched_clearance_response(certex.ChedClearanceResponse(outcome=outcome, sending_date=echoed))

    def _ched(self, reference: str):
        ched = self._cheds.get(reference)
        if ched is None:
            raise CertexRefusal(f"CHED {reference} does not exist or is not visible to this customs account")
        return ched


def _check_reservable(ched, request: ProcessedChedRequest) -> None:
    status: protocol.ChedStatus = ched.status
    if status.outcome not in (Outcome.ACKNOWLEDGED, Outcome.ACKNOWLEDGED_WITH_WARNINGS):
        alias = protocol.STATUS_ALIASES.get(status.status_code, "unknown")
        raise CertexRefusal(f"CHED {ched.reference} cannot be used for customs clearance: its status is "
                            f"{status.status_code} ({alias})")
    if not request.declaration:
        raise CertexRefusal("a reservation (QuantityManagementIndication 1) needs CustomsDeclarationReferenceNumber/MRN")
    if not request.items:
        raise CertexRefusal("a reservation (QuantityManagementIndication 1) needs at least one CommodityDescriptionForChed")


def _answer_headers(header: CertexHeader | None, now: datetime) -> list[etree._Element]:
    """``Message`` (the request id TRACES logs), ``wsse:Security`` and the ``CertexHeader`` echoed, as in the captures."""
    message = etree.Element(f"{{{MESSAGE_V1}}}Message", nsmap={None: MESSAGE_V1}, severity="debugging")
    etree.SubElement(message, f"{{{MESSAGE_V1}}}ID").text = "WS_REQUEST_ID"
    etree.SubElement(message, f"{{{MESSAGE_V1}}}Message").text = str(uuid.uuid4())
    headers = [message, answer_security(now=now)]
    if header is not None:
        headers.append(certex.certex_header(header))
    return headers
