"""What an import envelope holds, read without I/O: its ``Content`` as bytes, and country responses as reports.

The Hub hands every envelope addressed to an NPPO as an ``Envelope`` whose ``Content`` is a string (FACTS.md §3.2).
An importing NPPO answers a certificate with ``DeliverCountryResponseEnvelope``: a ``CountryResponseEnvelope`` typed
with ``rsm:SPSAcknowledgement``. It reaches the exporting NPPO's import list like any envelope (sandbox assumption:
the Hub's documents on this are not among our facts), and only the root of its Content tells it from a certificate::

    rsm:SPSAcknowledgement/rsm:SPSAcknowledgementDocument
        ram:IssueDateTime/udt:DateTimeString?
        ram:StatusCode                       UNCL 4405: 39 approved, 41 rejected, 97 pending
        ram:ReasonInformation?               "[CODE] text" (or text alone); with 39, a code starting WARN = warnings
        ram:ReferenceSPSReferencedDocument*  the certificate: TypeCode + ID (its NPPOCertificateNumber)
                                             the envelope answered: TypeCode + RelationshipTypeCode ACW + ID (its
                                             hubDeliveryNumber)
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from lxml import etree

from hub.connector import AckReport, Outcome
from connectors.p2p.protocol import PREVIOUS_MESSAGE_RELATIONSHIP, WARNING_CODE_PREFIX, AckStatus, format_reason, parse_reason
from hub.errors import InputError
from hub.namespaces import RAM, RSM_SPS_ACKNOWLEDGEMENT, UDT
from hub.xmlsafe import parse_xml

#: The kind of :class:`~hub.connector.AckReport` a country response becomes.
BUSINESS_RESPONSE = "business_response"
SPS_ACKNOWLEDGEMENT = f"{{{RSM_SPS_ACKNOWLEDGEMENT}}}SPSAcknowledgement"

_DOCUMENT = f"{{{RSM_SPS_ACKNOWLEDGEMENT}}}SPSAcknowledgementDocument"
_OUTCOMES = {AckStatus.APPROVED: Outcome.ACKNOWLEDGED, AckStatus.REJECTED: Outcome.REJECTED, AckStatus.PENDING: Outcome.ACCEPTED}
_DECLARED_ENCODING = re.compile(r"""^(<\?xml[^>]*?\bencoding\s*=\s*["'])([^"']+)(["'])""")
_UNICODE_STARTS = (
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_BE, "utf-16"), (codecs.BOM_UTF16_LE, "utf-16"),
    (b"\x00<", "utf-16-be"), (b"<\x00", "utf-16-le"),
)


@dataclass(frozen=True)
class CountryResponse:
    """What a country response says, read from its SPSAcknowledgement."""

    outcome: Outcome
    certificate_number: str | None
    hub_delivery_number: str | None
    reason_code: str | None
    reason_text: str | None


def content_bytes(content: str | None) -> bytes:
    """The envelope's ``Content`` as UTF-8 XML bytes.

    Content is normally the XML itself. Some exporting systems put it base64-encoded, sometimes as UTF-16 (the
    Norwegian production client decodes both, FACTS.md §3): such Content is decoded. An XML declaration naming
    another encoding is rewritten to UTF-8 (the text was decoded already; signatures never cover the declaration).
    Content that is neither is returned as it is, for the caller's validation to refuse.
    """
    text = (content or "").lstrip("\ufeff \t\r\n")
    if text.startswith("<"):
        return _utf8(text)
    try:
        decoded = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    return _xml_bytes(decoded) or (content or "").encode("utf-8")


def country_response_root(payload: bytes) -> etree._Element | None:
    """The ``rsm:SPSAcknowledgement`` root when ``payload`` is a country response; None for anything else (a
    certificate, or something unreadable that the caller's validation refuses)."""
    try:
        root = parse_xml(payload, source="envelope Content")
    except InputError:
        return None
    return root if root.tag == SPS_ACKNOWLEDGEMENT else None


def read_country_response(root: etree._Element) -> CountryResponse:
    """Read an ``rsm:SPSAcknowledgement``: 39 → ACKNOWLEDGED (``ACKNOWLEDGED_WITH_WARNINGS`` when the reason code
    starts with ``WARN``), 41 → REJECTED, 97 → ACCEPTED. Raises :class:`~hub.errors.InputError` (naming the XPath)
    for a missing document or a status code outside these."""
    document = root.find(_DOCUMENT)
    if document is None:
        raise InputError("no rsm:SPSAcknowledgementDocument", where="/rsm:SPSAcknowledgement")
    where = "/rsm:SPSAcknowledgement/rsm:SPSAcknowledgementDocument"
    status_text = (document.findtext(f"{{{RAM}}}StatusCode") or "").strip()
    try:
        status = AckStatus(status_text)
    except ValueError:
        raise InputError(f"StatusCode {status_text!r} is not 39, 41 or 97", where=f"{where}/ram:StatusCode") from None
    reason_code, reason_text = parse_reason(document.findtext(f"{{{RAM}}}ReasonInformation"))
    outcome = _OUTCOMES[status]
    if outcome is Outcome.ACKNOWLEDGED and reason_code and reason_code.upper().startswith(WARNING_CODE_PREFIX):
        outcome = Outcome.ACKNOWLEDGED_WITH_WARNINGS
    certificate_number, hub_delivery_number = _references(document)
    return CountryResponse(outcome, certificate_number, hub_delivery_number, reason_code, reason_text)


def country_response_report(
    root: etree._Element, payload: bytes, *, header_certificate_number: str | None, country: str | None
) -> AckReport:
    """The :class:`~hub.connector.AckReport` (kind ``business_response``) for a country response, correlated by
    the hubDeliveryNumber it answers (``receipt_id``) when it names one, and by the certificate number (its own
    reference, else the envelope header's ``NPPOCertificateNumber``). ``country`` is the answering NPPO."""
    response = read_country_response(root)
    return AckReport(
        outcome=response.outcome,
        kind=BUSINESS_RESPONSE,
        receipt_id=response.hub_delivery_number,
        certificate_number=response.certificate_number or header_certificate_number or None,
        reason_code=response.reason_code,
        reason_text=response.reason_text,
        payload=payload,
        country=country,
        answered_by=country,  # the envelope's From, as the Hub authenticated its sender
    )


def build_country_response(
    *,
    status: AckStatus | str | int,
    certificate_number: str,
    certificate_type: int | str = 851,
    hub_delivery_number: str | None = None,
    reason_code: str | None = None,
    reason_text: str | None = None,
    issued_at: datetime | None = None,
) -> bytes:
    """An unsigned ``rsm:SPSAcknowledgement`` answering certificate ``certificate_number`` (and, when given, the
    envelope ``hub_delivery_number``), UTF-8 with declaration."""
    status = status if isinstance(status, AckStatus) else AckStatus(str(status))
    issued_at = issued_at or datetime.now(timezone.utc)
    root = etree.Element(SPS_ACKNOWLEDGEMENT, nsmap={"rsm": RSM_SPS_ACKNOWLEDGEMENT, "ram": RAM, "udt": UDT})
    document = etree.SubElement(root, _DOCUMENT)
    _sub(_sub(document, RAM, "IssueDateTime"), UDT, "DateTimeString", issued_at.isoformat(timespec="seconds"))
    _sub(document, RAM, "StatusCode", status.value)
    reason = format_reason(reason_code, reason_text)
    if reason is not None:
        _sub(document, RAM, "ReasonInformation", reason)
    certificate = _sub(document, RAM, "ReferenceSPSReferencedDocument")
    _sub(certificate, RAM, "TypeCode", str(certificate_type))
    _sub(certificate, RAM, "ID", certificate_number)
    if hub_delivery_number:
        envelope = _sub(document, RAM, "ReferenceSPSReferencedDocument")
        _sub(envelope, RAM, "TypeCode", str(certificate_type))
        _sub(envelope, RAM, "RelationshipTypeCode", PREVIOUS_MESSAGE_RELATIONSHIP)
        _sub(envelope, RAM, "ID", hub_delivery_number)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _references(document: etree._Element) -> tuple[str | None, str | None]:
    certificate_number = hub_delivery_number = None
    for reference in document.iterfind(f"{{{RAM}}}ReferenceSPSReferencedDocument"):
        relationship = (reference.findtext(f"{{{RAM}}}RelationshipTypeCode") or "").strip()
        identifier = (reference.findtext(f"{{{RAM}}}ID") or "").strip() or None
        if relationship == PREVIOUS_MESSAGE_RELATIONSHIP:
            hub_delivery_number = hub_delivery_number or identifier
        elif not relationship:
            certificate_number = certificate_number or identifier
    return certificate_number, hub_delivery_number


def _xml_bytes(data: bytes) -> bytes | None:
    for start, codec in _UNICODE_STARTS:
        if data.startswith(start):
            try:
                return _utf8(data.decode(codec).lstrip("\ufeff"))
            except UnicodeDecodeError:
                return None
    return data if data.lstrip().startswith(b"<") else None


def _utf8(text: str) -> bytes:
    declared = _DECLARED_ENCODING.match(text)
    if declared is not None and declared.group(2).lower().replace("_", "-") not in ("utf-8", "utf8"):
        text = _DECLARED_ENCODING.sub(r"\g<1>UTF-8\g<3>", text, count=1)
    return text.encode("utf-8")


def _sub(parent: etree._Element, namespace: str, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{namespace}}}{name}")
    if text is not None:
        element.text = text
    return element
