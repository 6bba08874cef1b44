"""The ChedCertificateServiceV2 port of the TRACES-NT sandbox: ``getChedCertificateStatus``, ``getChedCertificate``
(the CHED as TRACES holds it) and ``getChedSignedXmlCertificate`` (the same, signed with XML-DSig by a key of the
development PKI, so that the hub's :class:`~hub.signing.Verifier` trusts it with the development trust store).

Faults are shaped as the saved ``GetChedCertificateResponse.PERMISSION_DENIED.xml`` (:func:`protocol.ched_fault`):
``ChedCertificateNotFoundException`` for an unknown CHED, ``ChedCertificatePermissionDeniedException`` ("Permission
denied", as captured) for a CHED another account submitted, ``SignedChedNotAvailableException`` for the signed CHED
of a CHED not decided yet.

Choices of the sandbox, where the stored material is silent:

* The CHED as held is the certificate received, with its ``SPSExchangedDocument/StatusCode`` set to the CHED's
  status, its empty ``ID`` (as in the saved submissions) filled with the CHED reference and, once decided, a
  ``SignatorySPSAuthentication`` appended whose ``IncludedSPSClause`` is ``ID schemeID="ched_decision_clause"``
  ``DECISION_CONCLUSION`` with the conclusion as ``Content`` (FACTS §5). Refusal reasons and measures are only in the
  status answer. A signature the submitter put on its certificate is not kept: what TRACES hands out is its own
  document.
* Decided means what :attr:`~connectors.traces_nt.protocol.ChedStatus.outcome` says: validated or authorised,
  partially rejected, rejected, deleted or cancelled.
* The status of another account's CHED is refused as its certificate is.
* Without a signing key the signed CHED is answered with a ``Server`` fault, which callers retry.
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from connectors.traces_nt import protocol
from connectors.traces_nt.wssecurity import answer_security
from hub.errors import InputError
from hub.namespaces import RAM, XMLDSIG
from hub.signing import Signer
from hub.xmlsafe import parse_xml

DECISION_CLAUSE_SCHEME = "ched_decision_clause"
DECISION_CONCLUSION = "DECISION_CONCLUSION"
#: The requests this port answers.
REQUESTS = frozenset({protocol.STATUS_REQUEST, protocol.CERTIFICATE_REQUEST, protocol.SIGNED_XML_REQUEST})


def held_certificate(certificate: bytes, status: protocol.ChedStatus) -> etree._Element:
    """The CHED as TRACES holds it: the ``rsm:SPSCertificate`` received (``certificate``) with its status and decision.

    See the module docstring for what changes; the result is a new tree.
    """
    root = parse_xml(certificate, source=f"CHED {status.reference}")
    for signature in root.findall(f"{{{XMLDSIG}}}Signature"):
        root.remove(signature)
    document = root.find("{*}SPSExchangedDocument")
    if document is None:
        return root
    _set(document, "ID", status.reference, after="Name", keep=True)
    _set(document, "StatusCode", status.status_code, after="TypeCode")
    if status.outcome is not None and status.decision:
        authentication = etree.SubElement(document, f"{{{RAM}}}SignatorySPSAuthentication")
        clause = etree.SubElement(authentication, f"{{{RAM}}}IncludedSPSClause")
        etree.SubElement(clause, f"{{{RAM}}}ID", schemeID=DECISION_CLAUSE_SCHEME).text = DECISION_CONCLUSION
        etree.SubElement(clause, f"{{{RAM}}}Content").text = status.decision
    return root


def _set(document: etree._Element, name: str, value: str, *, after: str, keep: bool = False) -> None:
    """Write ``value`` into ``ram:{name}``, made after ``ram:{after}`` (else first) when missing; ``keep`` leaves a
    non-empty one as it is."""
    element = document.find(f"{{{RAM}}}{name}")
    if element is None:
        element = etree.Element(f"{{{RAM}}}{name}")
        previous = document.find(f"{{{RAM}}}{after}")
        if previous is not None:
            previous.addnext(element)
        else:
            document.insert(0, element)
    if not (keep and (element.text or "").strip()):
        element.text = value


class ChedCertificatePort:
    """Answers ChedCertificateServiceV2 requests against the sandbox's CHEDs (``cheds`` maps a reference to an object
    with ``reference``, ``username``, ``certificate`` (bytes) and ``status`` (:class:`~protocol.ChedStatus`)), signing
    with ``signer`` when one is given. Not thread-safe: the sandbox answers on one event loop."""

    def __init__(self, cheds: Mapping[str, object], *, signer: Signer | None = None) -> None:
        self._cheds = cheds
        self._signer = signer

    def answer(self, username: str, element: etree._Element) -> tuple[int, bytes]:
        """(HTTP status, SOAP envelope) for one request (one of :data:`REQUESTS`) that ``username`` authenticated."""
        try:
            reference = protocol.read_reference_request(element)
        except InputError as exc:
            return 500, protocol.fault("Client", str(exc))
        ched = self._cheds.get(reference)
        if ched is None:
            return 500, protocol.ched_fault(protocol.NOT_FOUND, reference, "Certificate not found")
        if ched.username != username:
            return 500, protocol.ched_fault(protocol.PERMISSION_DENIED, reference, "Permission denied")
        if element.tag == protocol.STATUS_REQUEST:
            return _answer(protocol.status_response(ched.status))
        if element.tag == protocol.CERTIFICATE_REQUEST:
            return _answer(protocol.certificate_response(held_certificate(ched.certificate, ched.status)))
        return self._signed(ched)

    def _signed(self, ched) -> tuple[int, bytes]:
        status: protocol.ChedStatus = ched.status
        if status.outcome is None:
            return 500, protocol.ched_fault(protocol.SIGNED_CHED_NOT_AVAILABLE, ched.reference, "Signed CHED not available")
        if self._signer is None:
            return 500, protocol.fault("Server", "the sandbox has no signing key: no signed CHED can be made")
        signed = self._signer.sign(held_certificate(ched.certificate, status))
        return _answer(protocol.signed_xml_response(ched.reference, signed))


def _answer(element: etree._Element) -> tuple[int, bytes]:
    return 200, protocol.envelope([answer_security()], element)
