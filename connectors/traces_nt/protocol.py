"""The TRACES-NT messages the connector exchanges, built and read with lxml. No I/O.

Submission (``v01`` = ``http://ec.europa.eu/tracesnt/certificate/ched/submission/v01``), as the saved
``CreateAndSubmitChedForDecision-*.xml`` requests: ``v01:CreateAndSubmitChedForDecisionRequest/rsm:SPSCertificate``
(CHED: TypeCode 636, StatusCode 70). ChedCertificateServiceV2 (``v2`` = ``http://ec.europa.eu/tracesnt/certificate/ched/v2``,
SOAPAction = operation name): ``getChedCertificateStatus``, ``getChedCertificate`` (the CHED as TRACES holds it) and
``getChedSignedXmlCertificate`` (the same, signed with XML-DSig).

The stored material has neither the submission *response* nor these requests and responses, so those shapes are
ours (see README.md): the CHED reference travels in ``CertificateIdentifier`` (the name TRACES uses for it in
``ChedCertificatePermissionDeniedException``), the state in ``StatusCode`` (``status_code.json``), the decision in
``DecisionConclusion`` (``ched_decision_clause.json``), ``RefusalReason`` (``refusal_reason.json``),
``NotAcceptableMeasure`` (``ched_not_acceptable_measure.json``) and free-text ``Remarks``. ``GetChedCertificateResponse``
holding ``SPSCertificate`` is named by the saved ``traces-message-config.json``; the signed CHED travels Base64
encoded in ``SignedXmlCertificate`` so that its bytes, and with them its signature, arrive unchanged. Faults of the
service are shaped as the saved ``GetChedCertificateResponse.PERMISSION_DENIED.xml`` (:func:`ched_fault`).
"""

from __future__ import annotations

import base64
import binascii
import copy
from dataclasses import dataclass, field

from lxml import etree

from hub.connector import Outcome
from hub.errors import InputError, UnknownDocumentError
from hub.mapping.envelopes import unwrap
from hub.namespaces import RSM_SPS_CERTIFICATE, SOAP11_ENV, TRACES_CHED_SUBMISSION, XMLDSIG
from hub.xmlsafe import parse_xml

CHED_V2 = "http://ec.europa.eu/tracesnt/certificate/ched/v2"
BODY_V3 = "http://ec.europa.eu/tracesnt/body/v3"
SUBMIT_OPERATION = "createAndSubmitChedForDecision"
STATUS_OPERATION = "getChedCertificateStatus"
CERTIFICATE_OPERATION = "getChedCertificate"
SIGNED_XML_OPERATION = "getChedSignedXmlCertificate"
STATUS_REQUEST = f"{{{CHED_V2}}}GetChedCertificateStatusRequest"
CERTIFICATE_REQUEST = f"{{{CHED_V2}}}GetChedCertificateRequest"
SIGNED_XML_REQUEST = f"{{{CHED_V2}}}GetChedSignedXmlCertificateRequest"
#: Faults of ChedCertificateServiceV2 (FACTS §5), each with ``CertificateIdentifier`` in its detail.
NOT_FOUND = "ChedCertificateNotFoundException"
PERMISSION_DENIED = "ChedCertificatePermissionDeniedException"
SIGNED_CHED_NOT_AVAILABLE = "SignedChedNotAvailableException"
SOAP_MEDIA_TYPE = "text/xml; charset=utf-8"

#: status_code.json: decided favourably (validated, or authorised for onward movement of some kind).
ACCEPTED_STATUSES = frozenset({"70", "97", "146", "124", "35", "99"})
#: Rejected outright, deleted or cancelled: the consignment does not enter.
REJECTED_STATUSES = frozenset({"41", "55", "64"})
#: Part of the consignment refused, the rest let in.
PARTIAL_STATUSES = frozenset({"122"})
STATUS_ALIASES = {
    "47": "DRAFT", "1": "NEW", "42": "IN_PROGRESS", "97": "AUTHORIZED_FOR_ONWARD_TRANSPORTATION",
    "146": "AUTHORIZED_FOR_TRANSHIPMENT", "124": "AUTHORIZED_FOR_TRANSFER", "35": "AUTHORIZED_FOR_ONWARD_TRAVEL",
    "99": "AUTHORIZED_FOR_TRANSIT", "41": "REJECTED", "122": "PARTIALLY_REJECTED", "70": "VALIDATED",
    "55": "DELETED", "64": "CANCELLED", "44": "REPLACED",
}

_SPS = f"{{{RSM_SPS_CERTIFICATE}}}SPSCertificate"


@dataclass(frozen=True)
class SoapFault:
    """A SOAP 1.1 fault: ``faultcode`` without its prefix (``Client``/``Server``), ``faultstring``, and the local name
    of the first ``detail`` child (e.g. ``ChedCertificatePermissionDeniedException``), if any, and the
    ``CertificateIdentifier`` that child names."""

    code: str
    string: str
    detail: str | None = None
    certificate_identifier: str | None = None

    @property
    def unauthenticated(self) -> bool:
        return self.string.strip() == "UnauthenticatedException"


@dataclass(frozen=True)
class ChedStatus:
    """What ``getChedCertificateStatus`` says of one CHED."""

    reference: str
    status_code: str
    decision: str | None = None
    refusal_reasons: tuple[str, ...] = field(default_factory=tuple)
    measure: str | None = None
    remarks: str | None = None

    @property
    def outcome(self) -> Outcome | None:
        """The decision as an acknowledgement outcome; None while the CHED awaits its decision."""
        if self.status_code in ACCEPTED_STATUSES:
            return Outcome.ACKNOWLEDGED
        if self.status_code in PARTIAL_STATUSES:
            return Outcome.ACKNOWLEDGED_WITH_WARNINGS
        if self.status_code in REJECTED_STATUSES:
            return Outcome.REJECTED
        return None

    @property
    def reason_code(self) -> str | None:
        """The first refusal reason, else the measure, else (for a deletion or cancellation) the status alias."""
        if self.refusal_reasons:
            return self.refusal_reasons[0]
        if self.measure:
            return self.measure
        if self.status_code in REJECTED_STATUSES and self.status_code != "41":
            return STATUS_ALIASES[self.status_code]
        return None

    @property
    def reason_text(self) -> str | None:
        parts = [self.remarks] if self.remarks else []
        if len(self.refusal_reasons) > 1:
            parts.append("other refusal reasons: " + ", ".join(self.refusal_reasons[1:]))
        if self.measure and self.refusal_reasons:
            parts.append(f"measure: {self.measure}")
        return "; ".join(parts) or None


def envelope(headers: list[etree._Element], body: etree._Element) -> bytes:
    """A SOAP 1.1 envelope with ``headers`` and one body element, serialised (UTF-8, with declaration)."""
    root = etree.Element(f"{{{SOAP11_ENV}}}Envelope", nsmap={"soapenv": SOAP11_ENV})
    header = etree.SubElement(root, f"{{{SOAP11_ENV}}}Header")
    header.extend(headers)
    etree.SubElement(root, f"{{{SOAP11_ENV}}}Body").append(body)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def body_identity(authority_activity_access_identifier: str) -> etree._Element:
    """``v31:BodyIdentity/AuthorityActivityAccessIdentifier`` (unqualified child), as in the saved submissions."""
    identity = etree.Element(f"{{{BODY_V3}}}BodyIdentity", nsmap={"v31": BODY_V3})
    etree.SubElement(identity, "AuthorityActivityAccessIdentifier").text = authority_activity_access_identifier
    return identity


def submission_body(certificate: bytes | etree._Element) -> etree._Element:
    """``v01:CreateAndSubmitChedForDecisionRequest`` around the ``rsm:SPSCertificate`` found in ``certificate``."""
    root = certificate if isinstance(certificate, etree._Element) else parse_xml(certificate, source="CHED")
    document = unwrap(root, _SPS, source="CHED").document
    request = etree.Element(f"{{{TRACES_CHED_SUBMISSION}}}CreateAndSubmitChedForDecisionRequest",
                            nsmap={"v01": TRACES_CHED_SUBMISSION})
    request.append(document)
    return request


def status_body(reference: str) -> etree._Element:
    """``v2:GetChedCertificateStatusRequest`` for one CHED reference."""
    return _reference_request(STATUS_REQUEST, reference)


def certificate_body(reference: str) -> etree._Element:
    """``v2:GetChedCertificateRequest`` for one CHED reference."""
    return _reference_request(CERTIFICATE_REQUEST, reference)


def signed_xml_body(reference: str) -> etree._Element:
    """``v2:GetChedSignedXmlCertificateRequest`` for one CHED reference."""
    return _reference_request(SIGNED_XML_REQUEST, reference)


def _reference_request(tag: str, reference: str) -> etree._Element:
    request = etree.Element(tag, nsmap={"v2": CHED_V2})
    etree.SubElement(request, f"{{{CHED_V2}}}CertificateIdentifier").text = reference
    return request


def read_reference_request(element: etree._Element) -> str:
    """The CHED reference a ChedCertificateServiceV2 request asks about (``CertificateIdentifier``)."""
    reference = (element.findtext(f"{{{CHED_V2}}}CertificateIdentifier") or "").strip()
    if not reference:
        raise InputError("no CertificateIdentifier", where=f"/Envelope/Body/{etree.QName(element).localname}")
    return reference


def read_envelope(data: bytes) -> tuple[etree._Element | None, etree._Element]:
    """(``Header`` or None, first ``Body`` child) of a SOAP 1.1 envelope; :class:`InputError` for anything else."""
    root = parse_xml(data, source="SOAP message")
    if root.tag != f"{{{SOAP11_ENV}}}Envelope":
        raise UnknownDocumentError(f"expected a SOAP 1.1 Envelope, found {root.tag}", where="/")
    body = root.find(f"{{{SOAP11_ENV}}}Body")
    if body is None or len(body) == 0:
        raise InputError("the SOAP Body is missing or empty", where="/Envelope")
    return root.find(f"{{{SOAP11_ENV}}}Header"), body[0]


def read_fault(element: etree._Element) -> SoapFault | None:
    """The fault if ``element`` (a Body child) is a ``soap:Fault``, else None."""
    if element.tag != f"{{{SOAP11_ENV}}}Fault":
        return None
    code = (element.findtext("faultcode") or "").strip()
    detail = element.find("detail")
    first = next(iter(detail.iterchildren(etree.Element)), None) if detail is not None else None
    identifier = (first.findtext("{*}CertificateIdentifier") or "").strip() if first is not None else ""
    return SoapFault(
        code=code.rpartition(":")[2],
        string=(element.findtext("faultstring") or "").strip(),
        detail=etree.QName(first).localname if first is not None else None,
        certificate_identifier=identifier or None,
    )


def read_submission_response(element: etree._Element) -> str:
    """The CHED reference TRACES gave the submitted CHED."""
    if element.tag != f"{{{TRACES_CHED_SUBMISSION}}}CreateAndSubmitChedForDecisionResponse":
        raise UnknownDocumentError(f"expected CreateAndSubmitChedForDecisionResponse, found {element.tag}", where="/Envelope/Body")
    reference = (element.findtext(f"{{{TRACES_CHED_SUBMISSION}}}CertificateIdentifier") or "").strip()
    if not reference:
        raise InputError("no CertificateIdentifier", where="/Envelope/Body/CreateAndSubmitChedForDecisionResponse")
    return reference


def read_status_response(element: etree._Element) -> ChedStatus:
    """The state and decision of one CHED."""
    where = "/Envelope/Body/GetChedCertificateStatusResponse"
    if element.tag != f"{{{CHED_V2}}}GetChedCertificateStatusResponse":
        raise UnknownDocumentError(f"expected GetChedCertificateStatusResponse, found {element.tag}", where="/Envelope/Body")

    def text(name: str) -> str | None:
        return (element.findtext(f"{{{CHED_V2}}}{name}") or "").strip() or None

    reference, status = text("CertificateIdentifier"), text("StatusCode")
    if not reference or not status:
        raise InputError("CertificateIdentifier and StatusCode are required", where=where)
    reasons = tuple(r.text.strip() for r in element.iterfind(f"{{{CHED_V2}}}RefusalReason") if (r.text or "").strip())
    return ChedStatus(reference=reference, status_code=status, decision=text("DecisionConclusion"),
                      refusal_reasons=reasons, measure=text("NotAcceptableMeasure"), remarks=text("Remarks"))


def read_certificate_response(element: etree._Element) -> etree._Element:
    """The ``rsm:SPSCertificate`` of a ``GetChedCertificateResponse``, as a tree of its own."""
    where = "/Envelope/Body/GetChedCertificateResponse"
    if element.tag != f"{{{CHED_V2}}}GetChedCertificateResponse":
        raise UnknownDocumentError(f"expected GetChedCertificateResponse, found {element.tag}", where="/Envelope/Body")
    certificate = element.find(_SPS)
    if certificate is None:
        raise InputError("no rsm:SPSCertificate", where=where)
    return copy.deepcopy(certificate)


def read_signed_xml_response(element: etree._Element) -> bytes:
    """The signed CHED of a ``GetChedSignedXmlCertificateResponse``, byte for byte as TRACES signed it.

    Checked to be a safely parsable ``rsm:SPSCertificate`` carrying a ``ds:Signature``; whether that signature is
    good is for the caller's :class:`~hub.signing.Verifier` to say.
    """
    where = "/Envelope/Body/GetChedSignedXmlCertificateResponse/SignedXmlCertificate"
    if element.tag != f"{{{CHED_V2}}}GetChedSignedXmlCertificateResponse":
        raise UnknownDocumentError(f"expected GetChedSignedXmlCertificateResponse, found {element.tag}", where="/Envelope/Body")
    try:
        signed = base64.b64decode("".join((element.findtext(f"{{{CHED_V2}}}SignedXmlCertificate") or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("SignedXmlCertificate is not Base64", where=where) from None
    if not signed:
        raise InputError("no SignedXmlCertificate", where=where)
    root = parse_xml(signed, source="signed CHED")
    if root.tag != _SPS:
        raise UnknownDocumentError(f"the signed CHED is not an rsm:SPSCertificate but {root.tag}", where=where)
    if root.find(f"{{{XMLDSIG}}}Signature") is None:
        raise InputError("the CHED carries no ds:Signature", where=where)
    return signed


def submission_response(reference: str) -> etree._Element:
    """The sandbox's answer to a submission."""
    response = etree.Element(f"{{{TRACES_CHED_SUBMISSION}}}CreateAndSubmitChedForDecisionResponse",
                             nsmap={"v01": TRACES_CHED_SUBMISSION})
    etree.SubElement(response, f"{{{TRACES_CHED_SUBMISSION}}}CertificateIdentifier").text = reference
    return response


def status_response(status: ChedStatus) -> etree._Element:
    """The sandbox's answer to ``getChedCertificateStatus``."""
    response = etree.Element(f"{{{CHED_V2}}}GetChedCertificateStatusResponse", nsmap={"v2": CHED_V2})
    values = [("CertificateIdentifier", status.reference), ("StatusCode", status.status_code),
              ("DecisionConclusion", status.decision), *[("RefusalReason", r) for r in status.refusal_reasons],
              ("NotAcceptableMeasure", status.measure), ("Remarks", status.remarks)]
    for name, value in values:
        if value is not None:
            etree.SubElement(response, f"{{{CHED_V2}}}{name}").text = value
    return response


def certificate_response(certificate: etree._Element) -> etree._Element:
    """The sandbox's answer to ``getChedCertificate``: a copy of ``certificate`` (an ``rsm:SPSCertificate``)."""
    response = etree.Element(f"{{{CHED_V2}}}GetChedCertificateResponse", nsmap={"v2": CHED_V2})
    response.append(copy.deepcopy(certificate))
    return response


def signed_xml_response(reference: str, signed: bytes) -> etree._Element:
    """The sandbox's answer to ``getChedSignedXmlCertificate``: the signed CHED's bytes, Base64 encoded."""
    response = etree.Element(f"{{{CHED_V2}}}GetChedSignedXmlCertificateResponse", nsmap={"v2": CHED_V2})
    etree.SubElement(response, f"{{{CHED_V2}}}CertificateIdentifier").text = reference
    etree.SubElement(response, f"{{{CHED_V2}}}SignedXmlCertificate").text = base64.b64encode(signed).decode("ascii")
    return response


def fault(code: str, string: str, *, detail: etree._Element | None = None) -> bytes:
    """A SOAP 1.1 fault envelope (``code`` is ``Client`` or ``Server``)."""
    root = etree.Element(f"{{{SOAP11_ENV}}}Envelope", nsmap={"env": SOAP11_ENV})
    etree.SubElement(root, f"{{{SOAP11_ENV}}}Header")
    element = etree.SubElement(etree.SubElement(root, f"{{{SOAP11_ENV}}}Body"), f"{{{SOAP11_ENV}}}Fault")
    etree.SubElement(element, "faultcode").text = f"env:{code}"
    etree.SubElement(element, "faultstring").text = string
    if detail is not None:
        etree.SubElement(element, "detail").append(detail)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def ched_fault(exception: str, reference: str, string: str) -> bytes:
    """A fault of ChedCertificateServiceV2, shaped exactly as the saved ``GetChedCertificateResponse.PERMISSION_DENIED``
    capture: no Header, ``s:Client``, ``faultstring``, ``detail/{exception}/CertificateIdentifier`` in the ``v2``
    namespace. ``exception`` is :data:`NOT_FOUND`, :data:`PERMISSION_DENIED` (whose capture says
    "Permission denied") or :data:`SIGNED_CHED_NOT_AVAILABLE`."""
    root = etree.Element(f"{{{SOAP11_ENV}}}Envelope", nsmap={"s": SOAP11_ENV})
    element = etree.SubElement(etree.SubElement(root, f"{{{SOAP11_ENV}}}Body"), f"{{{SOAP11_ENV}}}Fault")
    etree.SubElement(element, "faultcode").text = "s:Client"
    etree.SubElement(element, "faultstring").text = string
    detail = etree.SubElement(etree.SubElement(element, "detail"), f"{{{CHED_V2}}}{exception}", nsmap={None: CHED_V2})
    etree.SubElement(detail, f"{{{CHED_V2}}}CertificateIdentifier").text = reference
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")
