"""TRACES-NT's EU-Intra certificate service (``euintra`` = ``http://ec.europa.eu/tracesnt/certificate/euintra/v1``):
``getEuIntraCertificate`` (one intra-EU health certificate by its ``INTRA.EU.…`` number) and ``findEuIntraCertificate``
(a page of summaries, by update or creation date range), built and read with lxml, no I/O; and :class:`EuIntraPort`,
the sandbox's side of the same service.

Shapes as real TRACES-NT answers show them: ``GetEuIntraCertificateResponse`` holds the certificate as an
``euintra:SPSCertificate`` whose children are the UN/CEFACT ``rsm:SPSExchangedDocument`` and ``rsm:SPSConsignment``;
``FindEuIntraCertificateResponse`` (``pageSize``, ``offset`` 1-based) holds ``EuIntraCertificateResult`` entries
(``ID``, ``Status`` with its ``name``, ``UpdateDateTime``, ``CountryOfConsignee``, ``CountryOfDestination`` …); faults
``EuIntraCertificateNotFoundException`` / ``EuIntraCertificatePermissionDeniedException`` naming the
``CertificateIdentifier``. A find request names its range in ``UpdateDateTimeRange`` (``base/v4`` ``From``, ``To``).
The name of the service's port (``EuIntraCertificateServiceV1``) is ours: the material does not show it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timezone

from lxml import etree

from connectors.traces_nt import protocol
from hub.errors import InputError
from hub.namespaces import RSM_SPS_CERTIFICATE
from hub.xmlsafe import parse_xml

EUINTRA_V1 = "http://ec.europa.eu/tracesnt/certificate/euintra/v1"
BASE_V4 = "http://ec.europa.eu/sanco/tracesnt/base/v4"
GET_OPERATION = "getEuIntraCertificate"
FIND_OPERATION = "findEuIntraCertificate"
GET_REQUEST = f"{{{EUINTRA_V1}}}GetEuIntraCertificateRequest"
FIND_REQUEST = f"{{{EUINTRA_V1}}}FindEuIntraCertificateRequest"
REQUESTS = frozenset({GET_REQUEST, FIND_REQUEST})
CONTAINER = f"{{{EUINTRA_V1}}}SPSCertificate"
NOT_FOUND = "EuIntraCertificateNotFoundException"
PERMISSION_DENIED = "EuIntraCertificatePermissionDeniedException"


@dataclass(frozen=True)
class EuIntraSummary:
    """One ``EuIntraCertificateResult`` of a find: the certificate's number, status, when it last changed, and the
    countries it concerns."""

    id: str
    status: str | None
    status_name: str | None
    updated_at: datetime | None
    consignor_country: str | None
    consignee_country: str | None
    destination_country: str | None

    @property
    def destined_to(self) -> str | None:
        """The country the consignment goes to: its destination, else its consignee's."""
        return self.destination_country or self.consignee_country


# --- requests ---------------------------------------------------------------------------------------------------------


def get_request(certificate_id: str) -> etree._Element:
    """``GetEuIntraCertificateRequest`` for ``certificate_id``."""
    request = etree.Element(GET_REQUEST, nsmap={None: EUINTRA_V1})
    etree.SubElement(request, f"{{{EUINTRA_V1}}}ID").text = certificate_id
    return request


def find_request(*, updated_from: datetime, updated_to: datetime, offset: int = 1, page_size: int = 100) -> etree._Element:
    """``FindEuIntraCertificateRequest``: the certificates updated in [``updated_from``, ``updated_to``], one page."""
    request = etree.Element(FIND_REQUEST, nsmap={None: EUINTRA_V1, "base": BASE_V4}, offset=str(offset), pageSize=str(page_size))
    window = etree.SubElement(request, f"{{{EUINTRA_V1}}}UpdateDateTimeRange")
    etree.SubElement(window, f"{{{BASE_V4}}}From").text = _instant(updated_from)
    etree.SubElement(window, f"{{{BASE_V4}}}To").text = _instant(updated_to)
    return request


def read_get_request(element: etree._Element) -> str:
    """The certificate number a ``GetEuIntraCertificateRequest`` asks for."""
    number = (element.findtext(f"{{{EUINTRA_V1}}}ID") or "").strip()
    if not number:
        raise InputError("GetEuIntraCertificateRequest/ID is missing", where="GetEuIntraCertificateRequest")
    return number


def read_find_request(element: etree._Element) -> tuple[datetime | None, datetime | None, int, int]:
    """(from, to, offset, page size) of a ``FindEuIntraCertificateRequest`` (by update or creation range)."""
    window = element.find(f"{{{EUINTRA_V1}}}UpdateDateTimeRange")
    if window is None:
        window = element.find(f"{{{EUINTRA_V1}}}CreateDateTimeRange")
    bounds = [_read_instant(window, name) if window is not None else None for name in ("From", "To")]
    try:
        offset, page_size = int(element.get("offset", "1")), int(element.get("pageSize", "100"))
    except ValueError:
        raise InputError("offset and pageSize are whole numbers", where="FindEuIntraCertificateRequest") from None
    if offset < 1 or not 1 <= page_size <= 1000:
        raise InputError("offset starts at 1 and pageSize is 1 to 1000", where="FindEuIntraCertificateRequest")
    return bounds[0], bounds[1], offset, page_size


# --- responses --------------------------------------------------------------------------------------------------------


def get_response(certificate: etree._Element) -> etree._Element:
    """``GetEuIntraCertificateResponse`` holding ``certificate`` (an ``rsm:SPSCertificate`` or already TRACES's own
    ``euintra:SPSCertificate``) as TRACES writes it: in its ``euintra:SPSCertificate`` container."""
    response = etree.Element(f"{{{EUINTRA_V1}}}GetEuIntraCertificateResponse", nsmap={"euintra": EUINTRA_V1, "rsm": RSM_SPS_CERTIFICATE})
    response.append(as_container(certificate))
    return response


def as_container(certificate: etree._Element) -> etree._Element:
    """``certificate`` in TRACES's ``euintra:SPSCertificate`` container (a copy)."""
    container = etree.Element(CONTAINER, nsmap={"euintra": EUINTRA_V1})
    container.extend(copy.deepcopy(child) for child in certificate if isinstance(child.tag, str))
    return container


def read_get_response(element: etree._Element) -> bytes:
    """The certificate of a ``GetEuIntraCertificateResponse``: its container serialised on its own."""
    container = element.find(CONTAINER)
    if element.tag != f"{{{EUINTRA_V1}}}GetEuIntraCertificateResponse" or container is None:
        raise InputError(f"expected GetEuIntraCertificateResponse holding an SPSCertificate, found {element.tag}", where="Body")
    return etree.tostring(container)


def find_response(results: list[EuIntraSummary], *, offset: int, page_size: int) -> etree._Element:
    """``FindEuIntraCertificateResponse`` with one ``EuIntraCertificateResult`` per summary."""
    response = etree.Element(f"{{{EUINTRA_V1}}}FindEuIntraCertificateResponse", nsmap={"euintra": EUINTRA_V1}, offset=str(offset), pageSize=str(page_size))
    for summary in results:
        result = etree.SubElement(response, f"{{{EUINTRA_V1}}}EuIntraCertificateResult")
        _add(result, "ID", summary.id)
        status = _add(result, "Status", summary.status)
        if status is not None and summary.status_name:
            status.set("name", summary.status_name)
        _add(result, "UpdateDateTime", _instant(summary.updated_at) if summary.updated_at else None)
        _add(result, "CountryOfConsignor", summary.consignor_country)
        _add(result, "CountryOfConsignee", summary.consignee_country)
        _add(result, "CountryOfDestination", summary.destination_country)
    return response


def read_find_response(element: etree._Element) -> list[EuIntraSummary]:
    """The summaries of a ``FindEuIntraCertificateResponse``."""
    if element.tag != f"{{{EUINTRA_V1}}}FindEuIntraCertificateResponse":
        raise InputError(f"expected FindEuIntraCertificateResponse, found {element.tag}", where="Body")
    summaries = []
    for result in element.findall(f"{{{EUINTRA_V1}}}EuIntraCertificateResult"):
        status = result.find(f"{{{EUINTRA_V1}}}Status")
        summaries.append(EuIntraSummary(
            id=_text(result, "ID") or "",
            status=(status.text or "").strip() or None if status is not None else None,
            status_name=status.get("name") if status is not None else None,
            updated_at=_read_instant(result, "UpdateDateTime", EUINTRA_V1),
            consignor_country=_text(result, "CountryOfConsignor"),
            consignee_country=_text(result, "CountryOfConsignee"),
            destination_country=_text(result, "CountryOfDestination"),
        ))
    return [s for s in summaries if s.id]


def certificate_fault(exception: str, certificate_id: str, string: str) -> bytes:
    """A fault of the service naming the certificate (``EuIntraCertificateNotFoundException`` …)."""
    detail = etree.Element(f"{{{EUINTRA_V1}}}{exception}", nsmap={None: EUINTRA_V1})
    etree.SubElement(detail, f"{{{EUINTRA_V1}}}CertificateIdentifier").text = certificate_id
    return protocol.fault("Client", string, detail=detail)


# --- the sandbox's port ---------------------------------------------------------------------------------------------


@dataclass
class HeldIntra:
    """An EU-Intra certificate the sandbox holds, and the country it is destined to."""

    id: str
    certificate: etree._Element
    updated_at: datetime
    status: str
    destination: str | None
    consignor_country: str | None


class EuIntraPort:
    """The sandbox's EU-Intra certificate service: certificates added with :meth:`hold` are found and read."""

    def __init__(self) -> None:
        self.held: dict[str, HeldIntra] = {}

    def hold(self, document: bytes, *, now: datetime | None = None) -> HeldIntra:
        """Hold a certificate (an ``rsm:SPSCertificate``, TRACES's container, or a whole get response)."""
        root = parse_xml(document, source="EU-Intra certificate")
        content = root if root.find(f"{{{RSM_SPS_CERTIFICATE}}}SPSExchangedDocument") is not None else root.find(f".//{{{RSM_SPS_CERTIFICATE}}}SPSExchangedDocument/..")
        if content is None:
            raise InputError("no SPSExchangedDocument: not an EU-Intra certificate", where="body")
        number = (content.findtext(f"{{{RSM_SPS_CERTIFICATE}}}SPSExchangedDocument/{{*}}ID") or "").strip()
        if not number:
            raise InputError("the certificate has no SPSExchangedDocument/ID", where="body")
        consignment = content.find(f"{{{RSM_SPS_CERTIFICATE}}}SPSConsignment")
        destination = _country(consignment, "ImportSPSCountry") or _party_country(consignment, "ConsigneeSPSParty")
        held = HeldIntra(number, as_container(content), now or datetime.now(timezone.utc),
                         (content.findtext(f"{{{RSM_SPS_CERTIFICATE}}}SPSExchangedDocument/{{*}}StatusCode") or "").strip(),
                         destination, _party_country(consignment, "ConsignorSPSParty"))
        self.held[number] = held
        return held

    def answer(self, element: etree._Element) -> tuple[int, etree._Element | bytes]:
        """(HTTP status, answer element, or a fault's bytes) for one request of :data:`REQUESTS`."""
        try:
            if element.tag == GET_REQUEST:
                number = read_get_request(element)
                if number not in self.held:
                    return 500, certificate_fault(NOT_FOUND, number, "Certificate not found")
                return 200, get_response(self.held[number].certificate)
            since, until, offset, page_size = read_find_request(element)
        except InputError as exc:
            return 500, protocol.fault("Client", str(exc))
        matching = sorted((h for h in self.held.values() if (since is None or h.updated_at >= since) and (until is None or h.updated_at <= until)),
                          key=lambda h: h.updated_at, reverse=True)
        page = matching[offset - 1: offset - 1 + page_size]
        return 200, find_response([EuIntraSummary(h.id, h.status, None, h.updated_at, h.consignor_country, h.destination, h.destination) for h in page],
                                  offset=offset, page_size=page_size)


def _country(consignment: etree._Element | None, name: str) -> str | None:
    found = consignment.findtext(f"{{*}}{name}/{{*}}ID") if consignment is not None else None
    return (found or "").strip() or None


def _party_country(consignment: etree._Element | None, name: str) -> str | None:
    found = consignment.findtext(f"{{*}}{name}/{{*}}SpecifiedSPSAddress/{{*}}CountryID") if consignment is not None else None
    return (found or "").strip() or None


def _add(parent: etree._Element, name: str, text: str | None) -> etree._Element | None:
    if text is None:
        return None
    child = etree.SubElement(parent, f"{{{EUINTRA_V1}}}{name}")
    child.text = text
    return child


def _text(parent: etree._Element, name: str) -> str | None:
    return (parent.findtext(f"{{{EUINTRA_V1}}}{name}") or "").strip() or None


def _instant(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _read_instant(parent: etree._Element | None, name: str, namespace: str = BASE_V4) -> datetime | None:
    text = (parent.findtext(f"{{{namespace}}}{name}") or "").strip() if parent is not None else ""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{name} {text!r} is not an ISO 8601 date-time", where=name) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
