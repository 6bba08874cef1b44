"""The TRACES-NT connector: CHEDs submitted for decision, decisions polled with ``getChedCertificateStatus``, the
CHED read back (``getChedCertificate``, ``getChedSignedXmlCertificate``); and, with the separate customs account,
the CSW-CERTEX quantity calls customs makes (read, reserve, clear).

Every call carries the WS-Security header of :mod:`connectors.traces_nt.wssecurity`. A submission answered with a
CHED reference is ``ACCEPTED`` (the reference is the receipt); the border decision comes later through
:meth:`TracesNtConnector.poll_acks`, with TRACES's signed CHED as its evidence. Faults and HTTP failures become typed
:class:`~hub.errors.DeliveryError` s with the raw exchange kept.
"""

from __future__ import annotations

import logging
import ssl
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence, TypeVar

import httpx
from lxml import etree

from hub.connector import AckReport, AwaitingAck, ConnectorContext, DeliveryResult, InboundDocument, InboundVerdict, OutboundMessage, Outcome
from connectors.http import TRANSIENT_STATUSES, bounded_client, status_error, transport_error
from connectors.traces_nt import protocol
from connectors.traces_nt.config import TracesNtConfig
from connectors.traces_nt.wssecurity import traces_headers
from connectors.traces_nt import certex, euintra
from connectors.traces_nt.certex import (
    CertexHeader,
    ChedClearanceRequest,
    ChedClearanceResponse,
    ProcessedChedInformation,
    ProcessedChedRequest,
)
from hub.customs.ledger import Clearance, DeclaredItem
from hub.errors import ConfigurationError, DeliveryError, InputError, PermanentDeliveryError, SignatureError, TransientDeliveryError
from hub.signing import TrustStore, Verifier

log = logging.getLogger(__name__)
_Answer = TypeVar("_Answer")


@dataclass(frozen=True)
class AwaitingDecision:
    """A CHED TRACES accepted and has not decided yet, with the message that carried it."""

    message_id: str
    certificate_number: str


class TracesNtConnector:
    """EU TRACES-NT, reached with one web-service account. See the module docstring and ``README.md``.

    ``awaiting`` (CHED reference → :class:`AwaitingDecision`) is what :meth:`poll_acks` asks about; it is kept in
    memory, and the worker refills it with :meth:`resume` when it starts, from the messages still awaiting a decision.
    """

    def __init__(
        self, name: str, config: TracesNtConfig, *, transport: httpx.BaseTransport | None = None, context: ConnectorContext
    ) -> None:
        self.name = name
        self.config = config
        self.awaiting: dict[str, AwaitingDecision] = {}
        self._transport = transport
        self._context = context
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._intra_since = datetime.now(timezone.utc) - timedelta(hours=config.eu_intra_since_hours)

    def open(self) -> None:
        """Create the HTTP client; no request is sent."""
        with self._lock:
            if self._client is None:
                verify = ssl.create_default_context(cafile=str(self.config.ca_bundle)) if self.config.ca_bundle else True
                self._client = bounded_client(transport=self._transport, verify=verify, timeout=self.config.timeout,
                                              max_answer_bytes=self.config.max_answer_bytes)

    def close(self) -> None:
        """Close the HTTP client (and with it the transport it was handed)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def deliver(self, message: OutboundMessage) -> DeliveryResult:
        """Submit the CHED with ``CreateAndSubmitChedForDecision``; the CHED reference TRACES returns is the receipt."""
        try:
            body = protocol.submission_body(message.payload)
        except InputError as exc:
            raise PermanentDeliveryError(f"{self.name}: the payload is not a CHED: {exc}", request=message.payload) from None
        request = self._envelope(body)
        url = self.config.url(self.config.submission_service)
        response, answer = self._call(url, protocol.SUBMIT_OPERATION, request)
        try:
            reference = protocol.read_submission_response(response)
        except InputError as exc:
            raise TransientDeliveryError(f"{self.name}: unexpected answer from {url}: {exc}", request=request,
                                         response=answer) from None
        self.await_decision(reference, message_id=message.id, certificate_number=message.certificate_number)
        return DeliveryResult(outcome=Outcome.ACCEPTED, receipt_id=reference, request=request,
                              response=answer)

    def await_decision(self, reference: str, *, message_id: str, certificate_number: str) -> None:
        """Ask about CHED ``reference`` at the next :meth:`poll_acks`."""
        self.awaiting[reference] = AwaitingDecision(message_id, certificate_number)

    def resume(self, awaiting: list[AwaitingAck]) -> None:
        """Follow again the CHEDs submitted before a restart (their receipt id is the CHED reference)."""
        for waiting in awaiting:
            self.await_decision(waiting.receipt_id, message_id=waiting.message_id, certificate_number=waiting.certificate_number)

    def poll_acks(self) -> list[AckReport]:
        """Ask ``getChedCertificateStatus`` for every CHED awaiting a decision; one report per decision taken.

        The report's payload is TRACES's signed CHED (``getChedSignedXmlCertificate``) when ``fetch_signed_ched`` is
        set and it can be had, else the status answer. A CHED whose question fails stays awaiting; the first failure
        is raised only when no decision was read, so that decisions already taken off ``awaiting`` are not lost with
        the error.
        """
        reports: list[AckReport] = []
        failure: DeliveryError | None = None
        for reference, waiting in list(self.awaiting.items()):
            try:
                status, answer = self._ask(protocol.STATUS_OPERATION, protocol.status_body(reference),
                                           protocol.read_status_response)
            except DeliveryError as exc:
                log.warning("%s: status of %s: %s", self.name, reference, exc)
                failure = failure or exc
                continue
            if status.reference != reference:
                log.warning("%s: asked the status of CHED %s, TRACES answered about %s: ignored", self.name, reference, status.reference)
                failure = failure or TransientDeliveryError(f"{self.name}: the status answer names CHED {status.reference!r}, not {reference!r}", response=answer)
                continue
            outcome = status.outcome
            if outcome is None:
                continue
            evidence = self._signed_decision(reference, waiting.certificate_number) if self.config.fetch_signed_ched else None
            del self.awaiting[reference]
            reports.append(AckReport(
                outcome=outcome,
                kind="border_refusal" if outcome is not Outcome.ACKNOWLEDGED else "business_response",
                message_id=waiting.message_id,
                receipt_id=reference,
                certificate_number=waiting.certificate_number,
                reason_code=status.reason_code,
                reason_text=status.reason_text,
                payload=evidence or answer,
                media_type="application/xml",
            ))
        if failure is not None and not reports:
            raise failure
        return reports

    def _signed_decision(self, reference: str, certificate_number: str | None = None) -> bytes | None:
        """TRACES's signed CHED as evidence of its decision, once its signature verifies against the trust store and
        it is the CHED asked about; None (logged) when it cannot be had now or must not be trusted, so that the
        decision is reported with the status answer rather than lost, delayed, or vouched for by a forger."""
        try:
            signed = self.get_ched_signed_xml(reference)
        except DeliveryError as exc:
            log.warning("%s: the signed CHED %s could not be fetched, its status answer is kept as the evidence of the "
                        "decision instead: %s", self.name, reference, exc)
            return None
        verifier = self._verifier()
        try:
            if verifier is None:
                raise SignatureError("no trust store to check it against")
            verified = verifier.verify(signed)
            named = (verified.signed_root.findtext("{*}SPSExchangedDocument/{*}ID") or "").strip()
            if named not in (reference, certificate_number):
                raise InputError(f"it is CHED {named!r}, not {reference!r}")
        except (SignatureError, InputError) as exc:
            log.warning("%s: the signed CHED %s is not kept as evidence (%s); its status answer is", self.name, reference, exc)
            return None
        return signed

    def _verifier(self) -> Verifier | None:
        trust = self._context.trust_store
        if isinstance(trust, TrustStore):
            return Verifier(trust)
        return Verifier(TrustStore.from_paths(ca_bundle=self.config.ca_bundle)) if self.config.ca_bundle else None

    # --- the CHED as TRACES holds it ----------------------------------------------------------------------------------

    def get_ched_certificate(self, reference: str) -> etree._Element:
        """The CHED ``reference`` as TRACES holds it (``getChedCertificate``): its ``rsm:SPSCertificate``, with the
        decision once taken, as a tree of its own.

        Raises :class:`~hub.errors.PermanentDeliveryError` for an unknown CHED (``ChedCertificateNotFoundException``)
        or one this account may not see (``ChedCertificatePermissionDeniedException``), and
        :class:`~hub.errors.TransientDeliveryError` for network failures, 5xx and unreadable answers.
        """
        certificate, _ = self._ask(protocol.CERTIFICATE_OPERATION, protocol.certificate_body(reference),
                                   protocol.read_certificate_response)
        return certificate

    def get_ched_signed_xml(self, reference: str) -> bytes:
        """The CHED ``reference`` signed by TRACES (``getChedSignedXmlCertificate``, XML-DSig), byte for byte as
        signed: check it with :meth:`hub.signing.Verifier.verify`.

        Raises :class:`~hub.errors.TransientDeliveryError` while TRACES has no signed CHED yet
        (``SignedChedNotAvailableException``: not decided) and for network failures, 5xx and unreadable answers;
        :class:`~hub.errors.PermanentDeliveryError` for an unknown CHED or one this account may not see.
        """
        signed, _ = self._ask(protocol.SIGNED_XML_OPERATION, protocol.signed_xml_body(reference),
                              protocol.read_signed_xml_response)
        return signed

    def _ask(self, operation: str, body: etree._Element, read: Callable[[etree._Element], _Answer]) -> tuple[_Answer, bytes]:
        """One call to the CHED certificate service: (the answer read by ``read``, the raw answer)."""
        url = self.config.url(self.config.certificate_service)
        request = self._envelope(body)
        element, answer = self._call(url, operation, request)
        try:
            return read(element), answer
        except InputError as exc:
            raise TransientDeliveryError(f"{self.name}: unreadable answer to {operation} from {url}: {exc}",
                                         request=request, response=answer) from None

    # --- EU-Intra certificates -----------------------------------------------------------------------------------------

    def get_eu_intra_certificate(self, certificate_id: str) -> bytes:
        """The intra-EU health certificate ``certificate_id`` (``getEuIntraCertificate``) in TRACES's own
        ``SPSCertificate`` container, serialised on its own."""
        url = self.config.url(self.config.eu_intra_service)
        element, answer = self._call(url, euintra.GET_OPERATION, self._envelope(euintra.get_request(certificate_id)))
        return self._read(euintra.read_get_response, element, url, answer)

    def find_eu_intra_certificates(self, *, updated_from: datetime, updated_to: datetime, offset: int = 1, page_size: int = 100) -> list[euintra.EuIntraSummary]:
        """The intra-EU health certificates updated in the range, one page (``findEuIntraCertificate``)."""
        url = self.config.url(self.config.eu_intra_service)
        request = euintra.find_request(updated_from=updated_from, updated_to=updated_to, offset=offset, page_size=page_size)
        element, answer = self._call(url, euintra.FIND_OPERATION, self._envelope(request))
        return self._read(euintra.read_find_response, element, url, answer)

    def pull_documents(self) -> list[InboundDocument]:
        """The intra-EU health certificates destined to ``eu_intra_import`` countries updated since the last pull,
        vouched for by this authenticated TRACES-NT channel (TRACES signs no XML of them)."""
        wanted = {country.upper() for country in self.config.eu_intra_import}
        if not wanted:
            return []
        until, found, offset = datetime.now(timezone.utc), [], 1
        while True:
            page = self.find_eu_intra_certificates(updated_from=self._intra_since, updated_to=until, offset=offset)
            found.extend(s for s in page if (s.destined_to or "").upper() in wanted)
            if len(page) < 100:
                break
            offset += len(page)
        documents = [InboundDocument(self.get_eu_intra_certificate(s.id), s.id, sender_country=s.consignor_country, vouched_by=self.name) for s in found]
        self._intra_since = until  # a certificate read again later is recognised by the hub as the one it holds
        return documents

    def confirm_document(self, document: InboundDocument, verdict: InboundVerdict) -> None:
        """TRACES-NT takes no receipt for a certificate read: the verdict stays in the hub's trace."""
        log.info("%s: EU-Intra certificate %s %s", self.name, document.counterpart_reference, verdict.outcome.value)

    def _read(self, read: Callable[[etree._Element], _Answer], element: etree._Element, url: str, answer: bytes) -> _Answer:
        try:
            return read(element)
        except InputError as exc:
            raise TransientDeliveryError(f"{self.name}: unreadable answer from {url}: {exc}", response=answer) from None

    # --- customs (CSW-CERTEX) -----------------------------------------------------------------------------------------

    @property
    def keeps_ched_quantities(self) -> bool:
        """Whether this TRACES-NT account reaches CSW-CERTEX (a customs account is configured)."""
        return self.config.certex_enabled

    def certex_read(self, ched_id: str, *, office: str | None = None) -> ProcessedChedInformation:
        """The CHED's certificate and quantities (``ProcessedChedRequest``, ``QuantityManagementIndication`` 0)."""
        request = ProcessedChedRequest(ched_id=ched_id, office=self._office(office), language=self.config.language)
        return self._certex(certex.processed_ched_request(request), request.office,
                            certex.read_processed_ched_information_response)

    def certex_reserve(
        self, ched_id: str, *, declaration: str, items: Sequence[DeclaredItem], office: str | None = None
    ) -> ProcessedChedInformation:
        """Reserve ``items`` of declaration ``declaration`` (the MRN) against the CHED (``QuantityManagementIndication``
        1). A refused reservation is an answer, not an error: ``reservation_accepted`` False with ``failure``."""
        request = ProcessedChedRequest(ched_id=ched_id, office=self._office(office), declaration=declaration,
                                       items=tuple(items), quantity_management=True, language=self.config.language)
        return self._certex(certex.processed_ched_request(request), request.office,
                            certex.read_processed_ched_information_response)

    def certex_clear(
        self, ched_id: str, *, declaration: str, clearance: Clearance, office: str | None = None
    ) -> ChedClearanceResponse:
        """Tell TRACES what became of ``declaration``: goods released (write off) or declaration invalidated (release)."""
        request = ChedClearanceRequest(ched_id=ched_id, office=self._office(office), declaration=declaration,
                                       clearance=clearance)
        return self._certex(certex.ched_clearance_request(request), request.office, certex.read_ched_clearance_response)

    def _office(self, office: str | None) -> str:
        if not self.config.certex_enabled:
            raise ConfigurationError(f"{self.name}: no customs (CSW-CERTEX) account is configured: set certex_username "
                                     "and certex_authentication_key")
        office = office or self.config.customs_office
        if not office:
            raise ConfigurationError(f"{self.name}: no customs office: pass office= or set customs_office")
        return office

    def _certex(self, body: etree._Element, office: str, read: Callable[[etree._Element], _Answer]) -> _Answer:
        """One CSW-CERTEX call with a fresh ``MessageId``; the answer read by ``read``."""
        config = self.config
        header = CertexHeader(message_id=uuid.uuid4().hex, requester_prefix=config.certex_requester_prefix or office,
                              customs_office=office)
        headers = traces_headers(username=config.certex_username,
                                 authentication_key=config.certex_authentication_key.get_secret_value(),
                                 client_id=config.certex_client_id or config.client_id, language=config.language,
                                 ttl=timedelta(seconds=config.timestamp_ttl))
        headers[2:2] = certex.certex_headers(header)
        request = protocol.envelope(headers, body)
        url = config.certex_endpoint()
        # The captures do not show the SOAPAction; an empty one lets the service dispatch on the body element.
        element, answer = self._call(url, "", request)
        try:
            return read(element)
        except InputError as exc:
            raise PermanentDeliveryError(f"{self.name}: {url} answered what CSW-CERTEX v06 does not say: {exc}",
                                         request=request, response=answer) from None

    def _envelope(self, body: etree._Element) -> bytes:
        config = self.config
        headers = traces_headers(username=config.username, authentication_key=config.authentication_key.get_secret_value(),
                                 client_id=config.client_id, language=config.language,
                                 ttl=timedelta(seconds=config.timestamp_ttl))
        if config.authority_activity_access_identifier:
            headers.insert(1, protocol.body_identity(config.authority_activity_access_identifier))
        return protocol.envelope(headers, body)

    def _call(self, url: str, operation: str, request: bytes) -> tuple[etree._Element, bytes]:
        """POST one SOAP request; (the Body's first child, the raw answer) of a 200 answer, or the typed error."""
        if self._client is None:
            self.open()
        headers = {"Content-Type": protocol.SOAP_MEDIA_TYPE, "SOAPAction": f'"{operation}"'}
        try:
            response = self._client.post(url, content=request, headers=headers)
        except httpx.HTTPError as exc:
            # No TLS client certificate here (the account authenticates in WS-Security): every other failure is
            # retried, an untrusted server certificate included.
            raise transport_error(self.name, url, exc, timeout=self.config.timeout, request=request,
                                  untrusted_is_permanent=False) from None
        status, body = response.status_code, response.content
        try:
            _, element = protocol.read_envelope(body)
        except InputError:
            element = None
        found = protocol.read_fault(element) if element is not None else None
        if found is not None:
            raise self._fault_error(url, found, request, body, element)
        if status != 200 or element is None:
            raise self._status_error(url, response, request)
        return element, body

    def _fault_error(
        self, url: str, fault: protocol.SoapFault, request: bytes, body: bytes, element: etree._Element
    ) -> DeliveryError:
        said = f"{self.name}: {url} answered the SOAP fault {fault.code}/{fault.string}" + (f" ({fault.detail})" if fault.detail else "")
        if fault.certificate_identifier:
            said += f" for CHED {fault.certificate_identifier}"
        unique_info = certex.read_certex_fault(element)
        if unique_info is not None and unique_info.error_message and unique_info.error_message != fault.string:
            said += f": {unique_info.error_message}"
        if fault.unauthenticated:
            return PermanentDeliveryError(f"{said}: the username, authentication key or client id is refused",
                                          request=request, response=body)
        if fault.code == "Server" and fault.detail is None:
            return TransientDeliveryError(said, request=request, response=body)
        if fault.detail == protocol.SIGNED_CHED_NOT_AVAILABLE:
            return TransientDeliveryError(f"{said}: TRACES has not signed the CHED yet (no decision)", request=request,
                                          response=body)
        # Client faults and declared exceptions (not found, permission denied, illegal language…) recur on resend.
        return PermanentDeliveryError(said, request=request, response=body)

    def _status_error(self, url: str, response: httpx.Response, request: bytes) -> DeliveryError:
        # A 200 without a SOAP answer is the service failing; any other status outside 3xx-5xx is not retried.
        return status_error(self.name, url, response, request=request, transient_statuses=TRANSIENT_STATUSES | {200},
                            undefined_is_transient=False)
