"""The point-to-point wire protocol as pure functions: acknowledgements built and read, headers named. No I/O.

An acknowledgement is a UN/CEFACT ``SPSAcknowledgement`` 17 (see ``README.md`` beside this module)::

    rsm:SPSAcknowledgement/rsm:SPSAcknowledgementDocument
        ram:IssueDateTime/udt:DateTime
        ram:StatusCode                       UNCL 4405: 97 pending (receipt), 39 approved, 41 rejected
        ram:ReasonInformation?               "[CODE] text"; with 39, a code starting WARN means "with warnings"
        ram:ReferenceSPSReferencedDocument   the certificate: TypeCode (UNCL 1001) + ID (certificate number)
        ram:ReferenceSPSReferencedDocument   the message: TypeCode + RelationshipTypeCode ACW + ID (Message-ID)
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from enum import Enum

from lxml import etree

from hub.connector import AckReport, Outcome
from connectors.http import RETRY_AFTER_HEADER, parse_retry_after  # noqa: F401  (re-exported: part of the protocol)
from hub.errors import InputError, UnknownDocumentError
from hub.namespaces import CITES_EPERMIT, CITES_RAM_DRAFT, RAM, RSM_SPS_ACKNOWLEDGEMENT, UDT
from hub.xmlsafe import parse_xml

MESSAGE_ID_HEADER = "Message-ID"
CORRELATION_ID_HEADER = "X-Correlation-ID"
RECEIPT_ID_HEADER = "Receipt-ID"
XML_MEDIA_TYPE = "application/xml"

#: UNCL 1153 "reference number to previous message": marks the reference carrying the Message-ID.
PREVIOUS_MESSAGE_RELATIONSHIP = "ACW"
#: A ReasonInformation code starting with this, on an approval, means "approved with warnings".
WARNING_CODE_PREFIX = "WARN"

_NSMAP = {"rsm": RSM_SPS_ACKNOWLEDGEMENT, "ram": RAM, "udt": UDT}
_ROOT = f"{{{RSM_SPS_ACKNOWLEDGEMENT}}}SPSAcknowledgement"
_REASON = re.compile(r"^\s*\[([A-Za-z0-9_.:-]+)\]\s*(.*)$", re.DOTALL)


class AckStatus(str, Enum):
    """The UNCL 4405 status codes the protocol uses."""

    APPROVED = "39"
    REJECTED = "41"
    PENDING = "97"


def format_reason(code: str | None, text: str | None) -> str | None:
    """``[CODE] text`` (or just the text, or just ``[CODE]``); None when both are empty."""
    if not code and not text:
        return None
    if not code:
        return text
    return f"[{code}] {text}" if text else f"[{code}]"


def parse_reason(reason: str | None) -> tuple[str | None, str | None]:
    """Split ``[CODE] text`` into (code, text); a reason without a bracketed code is all text."""
    if reason is None or not reason.strip():
        return None, None
    found = _REASON.match(reason)
    if found is None:
        return None, reason.strip()
    return found.group(1), (found.group(2).strip() or None)


def build_acknowledgement(
    *,
    status: AckStatus | str | int,
    certificate_type_code: str,
    certificate_number: str,
    message_id: str,
    reason_code: str | None = None,
    reason_text: str | None = None,
    issued_at: datetime | None = None,
) -> bytes:
    """An unsigned ``SPSAcknowledgement`` about one message carrying one certificate (UTF-8, with declaration)."""
    status = status if isinstance(status, AckStatus) else AckStatus(str(status))
    issued_at = issued_at or datetime.now(timezone.utc)
    root = etree.Element(_ROOT, nsmap=_NSMAP)
    document = _sub(root, RSM_SPS_ACKNOWLEDGEMENT, "SPSAcknowledgementDocument")
    _sub(_sub(document, RAM, "IssueDateTime"), UDT, "DateTime", issued_at.isoformat(timespec="seconds"))
    _sub(document, RAM, "StatusCode", status.value)
    reason = format_reason(reason_code, reason_text)
    if reason is not None:
        _sub(document, RAM, "ReasonInformation", reason)
    certificate = _sub(document, RAM, "ReferenceSPSReferencedDocument")
    _sub(certificate, RAM, "TypeCode", certificate_type_code)
    _sub(certificate, RAM, "ID", certificate_number)
    message = _sub(document, RAM, "ReferenceSPSReferencedDocument")
    _sub(message, RAM, "TypeCode", certificate_type_code)
    _sub(message, RAM, "RelationshipTypeCode", PREVIOUS_MESSAGE_RELATIONSHIP)
    _sub(message, RAM, "ID", message_id)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def parse_acknowledgement(document: bytes | etree._Element) -> AckReport:
    """Read an acknowledgement into an :class:`AckReport` (the signature, if any, is not checked here).

    97 → ``ACCEPTED``, 39 → ``ACKNOWLEDGED`` (``ACKNOWLEDGED_WITH_WARNINGS`` when the reason code starts with
    ``WARN``), 41 → ``REJECTED``. Raises :class:`~hub.errors.UnknownDocumentError` for another root and
    :class:`~hub.errors.InputError` (naming the XPath) for a missing or unknown status.
    """
    root = document if isinstance(document, etree._Element) else parse_xml(document, source="acknowledgement")
    if root.tag != _ROOT:
        raise UnknownDocumentError(f"expected rsm:SPSAcknowledgement, found {root.tag}", where="/")
    ack = root.find("rsm:SPSAcknowledgementDocument", _NSMAP)
    if ack is None:
        raise InputError("no rsm:SPSAcknowledgementDocument", where="/rsm:SPSAcknowledgement")
    where = "/rsm:SPSAcknowledgement/rsm:SPSAcknowledgementDocument"
    status_text = ack.findtext("ram:StatusCode", namespaces=_NSMAP)
    try:
        status = AckStatus((status_text or "").strip())
    except ValueError:
        known = ", ".join(s.value for s in AckStatus)
        raise InputError(f"StatusCode {status_text!r} is not one of {known}", where=f"{where}/ram:StatusCode") from None
    reason_code, reason_text = parse_reason(ack.findtext("ram:ReasonInformation", namespaces=_NSMAP))
    certificate_number, message_id = None, None
    for reference in ack.iterfind("ram:ReferenceSPSReferencedDocument", _NSMAP):
        relationship = (reference.findtext("ram:RelationshipTypeCode", namespaces=_NSMAP) or "").strip()
        identifier = (reference.findtext("ram:ID", namespaces=_NSMAP) or "").strip() or None
        if relationship == PREVIOUS_MESSAGE_RELATIONSHIP:
            message_id = message_id or identifier
        elif not relationship:
            certificate_number = certificate_number or identifier
    if message_id is None and certificate_number is None:
        raise InputError("the acknowledgement references neither a message (ACW) nor a certificate", where=where)
    return AckReport(
        outcome=_outcome(status, reason_code),
        message_id=message_id,
        certificate_number=certificate_number,
        reason_code=reason_code,
        reason_text=reason_text,
        payload=document if isinstance(document, bytes) else etree.tostring(root, encoding="UTF-8"),
    )


def certificate_reference(root: etree._Element) -> tuple[str | None, str | None]:
    """(TypeCode, ID) of an ``rsm:SPSCertificate``'s exchanged document, or of a ``CITESEPermit``'s header document,
    as far as they can be read."""
    found = root.find("{*}SPSExchangedDocument")
    namespace = RAM
    if found is None:
        found, namespace = root.find(f"{{{CITES_EPERMIT}}}HeaderExchangedDocument"), CITES_RAM_DRAFT
    if found is None:
        return None, None
    type_code = (found.findtext(f"{{{namespace}}}TypeCode") or "").strip() or None
    number = (found.findtext(f"{{{namespace}}}ID") or "").strip() or None
    return type_code, number


def _outcome(status: AckStatus, reason_code: str | None) -> Outcome:
    if status is AckStatus.PENDING:
        return Outcome.ACCEPTED
    if status is AckStatus.REJECTED:
        return Outcome.REJECTED
    if reason_code and reason_code.upper().startswith(WARNING_CODE_PREFIX):
        return Outcome.ACKNOWLEDGED_WITH_WARNINGS
    return Outcome.ACKNOWLEDGED


def _sub(parent: etree._Element, namespace: str, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{namespace}}}{name}")
    if text is not None:
        element.text = text
    return element
