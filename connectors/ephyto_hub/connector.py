"""The IPPC ePhyto Hub connector: ``DeliverEnvelope`` out, ``GetEnvelopeTrackingInfo`` for what became of it, and
the import side (``GetImportEnvelopeHeaders`` → ``PULLSingleImportEnvelope`` → ``Acknowledge*EnvelopeReceipt``).

The Hub is a SOAP 1.1 document/literal service (FACTS.md §3). zeep builds the requests from our own WSDL
(``wsdl/DeliveryService.wsdl``) and reads the answers; the HTTP goes through httpx (see :mod:`.transport`). Each
delivered envelope's ``hubDeliveryNumber`` is the receipt and is remembered in memory until its tracking info
reaches a final value, which :meth:`EphytoHubConnector.poll_acks` turns into an :class:`~hub.connector.AckReport`.
Envelopes addressed to the NPPOs in ``import_nppos`` are certificates (:meth:`EphytoHubConnector.pull_documents`)
or country responses (reports of :meth:`EphytoHubConnector.poll_acks`); see :mod:`.importing`.
"""

from __future__ import annotations

import functools
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Iterator

import httpx
import zeep
import zeep.exceptions
from lxml import etree
from zeep.wsdl import Document

from hub.connector import (
    AckReport, AwaitingAck, ConnectorContext, DeliveryResult, InboundDocument, InboundVerdict, OutboundMessage, Outcome,
)
from connectors.ephyto_hub.config import EphytoHubConfig
from connectors.ephyto_hub.importing import EnvelopeImporter
from connectors.ephyto_hub.transport import Exchange, HttpxTransport
from connectors.http import BUSY_STATUSES, RETRY_AFTER_HEADER, TRANSIENT_STATUSES, MutualTlsClients, caused_by, parse_retry_after, snippet
from hub.errors import DeliveryError, InputError, PermanentDeliveryError, TransientDeliveryError
from hub.xmlsafe import parse_xml

log = logging.getLogger(__name__)

WSDL_PATH = Path(__file__).resolve().parent / "wsdl" / "DeliveryService.wsdl"
HUB_NS = "http://ephyto.ippc.int/"
ENTITIES_NS = "http://ephyto.ippc.int/HUB.Entities"
_BINDING = f"{{{HUB_NS}}}DeliveryServiceSoapBinding"
_SETTINGS = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)


class HUBTrackingInfo(str, Enum):
    """What the Hub says of a delivered envelope (FACTS.md §3.2), spelled as the Hub spells it."""

    PendingDelivery = "PendingDelivery"
    Delivered = "Delivered"
    FailedDelivery = "FailedDelivery"
    EnvelopeNotExists = "EnvelopeNotExists"
    DeliveredWithWarnings = "DeliveredWithWarnings"
    DeliveredNotReadable = "DeliveredNotReadable"


@dataclass
class Awaiting:
    """An envelope this connector delivered whose tracking info is not final yet."""

    message_id: str
    certificate_number: str
    importing_country: str
    sender: str | None
    checked_at: float | None = None


def ack_from_tracking(
    number: str, tracking: str | None, message: str | None, awaiting: Awaiting, *, payload: bytes | None = None
) -> AckReport | None:
    """The acknowledgement a ``HUBTrackingInfo`` value means for the envelope ``number``; None while pending."""
    try:
        info = HUBTrackingInfo(tracking) if tracking else HUBTrackingInfo.PendingDelivery
    except ValueError:
        log.warning("envelope %s: unknown HUBTrackingInfo %r, still waiting", number, tracking)
        return None
    if info is HUBTrackingInfo.PendingDelivery:
        return None
    outcome, code, text = {
        HUBTrackingInfo.Delivered: (Outcome.ACKNOWLEDGED, None, message),
        HUBTrackingInfo.DeliveredWithWarnings: (Outcome.ACKNOWLEDGED_WITH_WARNINGS, info.value, message),
        HUBTrackingInfo.DeliveredNotReadable: (Outcome.REJECTED, info.value, message),
        HUBTrackingInfo.FailedDelivery: (Outcome.REJECTED, info.value, message),
        HUBTrackingInfo.EnvelopeNotExists: (
            Outcome.REJECTED, "ENVELOPE_NOT_EXISTS", message or f"the Hub has no envelope {number}",
        ),
    }[info]
    return AckReport(
        outcome=outcome,
        message_id=awaiting.message_id,
        receipt_id=number,
        certificate_number=awaiting.certificate_number,
        reason_code=code,
        reason_text=text,
        payload=payload,
        media_type="text/xml",
        country=awaiting.importing_country,
    )


class EphytoHubConnector:
    """Export to and import from the IPPC ePhyto Hub. See the module docstring and ``README.md``.

    With ``transport`` given (tests, in-process sandboxes) every request goes through it; otherwise each sending or
    importing NPPO gets its own HTTPS client presenting its client certificate and trusting only the CA bundle.
    ``awaiting`` maps hubDeliveryNumber → :class:`Awaiting`, in memory; the worker refills it with :meth:`resume`
    when it starts, from the messages still awaiting their tracking.
    """

    def __init__(
        self,
        name: str,
        config: EphytoHubConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        context: ConnectorContext,
    ) -> None:
        self.name = name
        self.config = config
        self.awaiting: dict[str, Awaiting] = {}
        self._transport = transport
        self._tls = MutualTlsClients(name, config, certs_dir=context.certs_dir, transport=transport, party="NPPO")
        self._services: dict[str | None, tuple[object, HttpxTransport]] = {}
        self._lock = threading.Lock()
        self._importer = EnvelopeImporter(name, config.import_nppos, self._result)

    def open(self) -> None:
        """Load the WSDL and check the key material; no request is sent."""
        _wsdl_document()
        self._tls.check_files()

    def close(self) -> None:
        """Acknowledge the country responses already handed over, then close every HTTP client and the transport
        the connector was handed."""
        self._importer.acknowledge_handed_over()
        with self._lock:
            services, self._services = list(self._services.values()), {}
        for _, transport in services:
            transport.client.close()
        if self._transport is not None:
            self._transport.close()

    def deliver(self, message: OutboundMessage) -> DeliveryResult:
        """``DeliverEnvelope`` with the signed certificate as ``Content``; the receipt is the hubDeliveryNumber."""
        envelope = self._envelope(message)
        sender = self.config.from_nppo or message.issuing_country
        header, exchange = self._call(sender, "DeliverEnvelope", env=envelope)
        response = exchange.response.content if exchange.response is not None else None
        number = getattr(header, "hubDeliveryNumber", None) if header is not None else None
        if not number:
            raise TransientDeliveryError(
                f"{self.name}: the Hub accepted the envelope without a hubDeliveryNumber",
                request=exchange.request, response=response,
            )
        for field in ("NPPOCertificateNumber", "From", "To"):
            answered = getattr(header, field, None)
            if answered and str(answered).strip() != str(envelope[field]):
                raise TransientDeliveryError(
                    f"{self.name}: the Hub's receipt names {field} {answered!r}, not the envelope's {envelope[field]!r}",
                    request=exchange.request, response=response,
                )
        with self._lock:
            self.awaiting[number] = Awaiting(message.id, envelope["NPPOCertificateNumber"], envelope["To"], sender)
        return DeliveryResult(outcome=Outcome.ACCEPTED, receipt_id=number, request=exchange.request, response=response)

    def resume(self, awaiting: list[AwaitingAck]) -> None:
        """Follow again the envelopes delivered before a restart (their receipt id is the hubDeliveryNumber)."""
        with self._lock:
            for waiting in awaiting:
                sender = self.config.from_nppo or waiting.issuing_country
                self.awaiting.setdefault(waiting.receipt_id, Awaiting(waiting.message_id, waiting.certificate_number, waiting.importing_country or "", sender))

    def answers_recorded(self, reports: list[AckReport]) -> None:
        """The worker recorded ``reports``: the country responses among them may be acknowledged to the Hub (at the
        next :meth:`poll_acks`)."""
        self._importer.recorded(reports)

    def answerer_for(self, importing_country: str | None, kind: str) -> str | None:
        """A country response must come from the NPPO the certificate went to; the Hub's tracking is its own word."""
        return importing_country if kind == "business_response" else None

    def poll_acks(self) -> list[AckReport]:
        """What became of our envelopes, and what importing NPPOs answered.

        First the country responses the worker recorded since the previous call are acknowledged to the Hub. Then
        ``GetEnvelopeTrackingInfo`` for every envelope awaiting an answer (at most once per ``tracking_poll_interval``):
        final values become reports and leave :attr:`awaiting`. Then, for each NPPO in ``import_nppos``, the country
        responses the Hub holds become ``business_response`` reports. A call that fails raises its
        :class:`~hub.errors.DeliveryError` only when nothing else gave a report.
        """
        self._importer.acknowledge_handed_over()
        reports, failure = self._tracking_reports()
        responses, import_failure = self._importer.responses()
        reports.extend(responses)
        failure = failure or import_failure
        if failure is not None and not reports:
            raise failure
        return reports

    def pull_documents(self) -> Iterator[InboundDocument]:
        """The certificates the Hub holds for the NPPOs in ``import_nppos``, pulled one by one: ``payload`` is the
        envelope's Content (the SPSCertificate XML), ``counterpart_reference`` its hubDeliveryNumber,
        ``sender_country`` its ``From``. Nothing is acknowledged here: a document not confirmed comes again at the
        next call. Country responses are not offered (see :meth:`poll_acks`). Raises the first
        :class:`~hub.errors.DeliveryError` met when no document could be offered."""
        return self._importer.documents()

    def confirm_document(self, document: InboundDocument, verdict: InboundVerdict) -> None:
        """Tell the Hub the hub's verdict on a pulled document: ``AcknowledgeEnvelopeReceipt`` (accepted),
        ``AdvancedAcknowledgeEnvelopeReceipt`` with the reason as ``warningMessage`` (accepted with warnings),
        ``AcknowledgeFailedEnvelopeReceipt`` with the reason as ``message`` (failed). Raises
        :class:`~hub.errors.DeliveryError` when the Hub cannot be told."""
        self._importer.confirm(document, verdict)

    def _tracking_reports(self) -> tuple[list[AckReport], DeliveryError | None]:
        now = time.monotonic()
        with self._lock:
            due = [
                (number, awaiting) for number, awaiting in self.awaiting.items()
                if awaiting.checked_at is None or now - awaiting.checked_at >= self.config.tracking_poll_interval
            ]
        reports: list[AckReport] = []
        failure: DeliveryError | None = None
        for number, awaiting in due:
            try:
                header, exchange = self._call(awaiting.sender, "GetEnvelopeTrackingInfo", hubTrackingNumber=number)
            except DeliveryError as exc:
                log.warning("%s: tracking envelope %s failed: %s", self.name, number, exc)
                failure = failure or exc
                continue
            awaiting.checked_at = now
            tracking = getattr(header, "HUBTrackingInfo", None) if header is not None else None
            text = getattr(header, "hubDeliveryErrorMessage", None) if header is not None else None
            report = ack_from_tracking(number, tracking, text, awaiting, payload=exchange.response.content)
            if report is not None:
                reports.append(report)
                with self._lock:
                    self.awaiting.pop(number, None)
        return reports, failure

    def _envelope(self, message: OutboundMessage) -> dict:
        if not message.importing_country:
            raise PermanentDeliveryError(f"{self.name}: message {message.id} has no importing country for the envelope's To")
        try:
            content = message.payload.decode("utf-8")
            document = parse_xml(message.payload, source=f"message {message.id}").find("{*}SPSExchangedDocument")
        except (UnicodeDecodeError, InputError) as exc:
            raise PermanentDeliveryError(f"{self.name}: message {message.id} is not a readable certificate: {exc}") from None
        if document is None:
            raise PermanentDeliveryError(f"{self.name}: message {message.id} carries no SPSExchangedDocument")
        codes = {}
        for field, tag in (("CertificateType", "TypeCode"), ("CertificateStatus", "StatusCode")):
            value = (document.findtext(f"{{*}}{tag}") or "").strip()
            if not value.isdigit():
                raise PermanentDeliveryError(f"{self.name}: message {message.id}: {tag} {value!r} cannot be the envelope's {field}")
            codes[field] = int(value)
        return {
            "From": self.config.from_nppo or message.issuing_country,
            "To": message.importing_country,
            **codes,
            "NPPOCertificateNumber": (document.findtext("{*}ID") or "").strip() or message.certificate_number,
            "Content": content,
        }

    def _call(self, country: str | None, operation: str, **arguments) -> tuple[object, Exchange]:
        service, transport = self._service_for(country)
        try:
            result = getattr(service, operation)(**arguments)
        except httpx.HTTPError as exc:
            raise self._network_failure(exc, operation, transport.last) from None
        except zeep.exceptions.Fault as fault:
            raise self._fault(fault, operation, transport.last) from None
        except (zeep.exceptions.Error, etree.LxmlError, ValueError) as exc:
            raise self._unreadable(exc, operation, transport.last) from None
        return result, transport.last

    def _result(self, country: str | None, operation: str, **arguments) -> object:
        return self._call(country, operation, **arguments)[0]

    def _fault(self, fault: zeep.exceptions.Fault, operation: str, exchange: Exchange) -> DeliveryError:
        said = f"{self.name}: {operation}: the Hub answered a SOAP fault: {fault.message}"
        request, status, response = _raw(exchange)
        busy = self._busy(exchange)
        if busy is not None:
            return busy
        detail = fault.detail if isinstance(fault.detail, etree._Element) else None
        refused = detail is not None and detail.find(f"{{{HUB_NS}}}HubWebException") is not None
        client_status = status is not None and 300 <= status < 500 and status not in TRANSIENT_STATUSES
        if refused or client_status or (fault.code or "").endswith("Client"):
            # The Hub's one declared fault (validation, unknown NPPO, forbidden document): the same envelope fails again.
            return PermanentDeliveryError(said, request=request, response=response)
        return TransientDeliveryError(f"{said} (HTTP {status})", request=request, response=response)

    def _unreadable(self, exc: Exception, operation: str, exchange: Exchange) -> DeliveryError:
        request, status, response = _raw(exchange)
        busy = self._busy(exchange)
        if busy is not None:
            return busy
        said = f"{self.name}: {operation}: unreadable answer (HTTP {status}): {snippet(response)}"
        if status is not None and 300 <= status < 500 and status not in TRANSIENT_STATUSES:
            return PermanentDeliveryError(said, request=request, response=response)
        return TransientDeliveryError(f"{said} ({type(exc).__name__})", request=request, response=response)

    def _busy(self, exchange: Exchange) -> TransientDeliveryError | None:
        request, status, response = _raw(exchange)
        if status in BUSY_STATUSES:
            retry_after = parse_retry_after(exchange.response.headers.get(RETRY_AFTER_HEADER))
            return TransientDeliveryError(
                f"{self.name}: the Hub is busy (HTTP {status})", retry_after=retry_after, request=request, response=response
            )
        return None

    def _network_failure(self, exc: httpx.HTTPError, operation: str, exchange: Exchange) -> DeliveryError:
        request = exchange.request
        if isinstance(exc, httpx.TimeoutException):
            return TransientDeliveryError(f"{self.name}: {operation}: no answer within {self.config.timeout}s", request=request)
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)) or caused_by(exc, ssl.SSLCertVerificationError):
            # A wrong URL or a server our CA bundle does not vouch for: sending again will not change either.
            return PermanentDeliveryError(f"{self.name}: {operation}: cannot talk to {self.config.endpoint}: {exc}", request=request)
        return TransientDeliveryError(f"{self.name}: {operation}: {type(exc).__name__}: {exc}", request=request)

    def _service_for(self, country: str | None) -> tuple[object, HttpxTransport]:
        key = self._tls.key_for(country)
        with self._lock:
            if key not in self._services:
                transport = HttpxTransport(self._tls.new_client(key))
                client = zeep.Client(_wsdl_document(), transport=transport, settings=_SETTINGS)
                self._services[key] = (client.create_service(_BINDING, self.config.endpoint), transport)
            return self._services[key]


@functools.cache
def _wsdl_document() -> Document:
    # Parsed once per process: zeep clients share it, each with its own transport for the calls.
    return Document(str(WSDL_PATH), HttpxTransport(), settings=_SETTINGS)


def _raw(exchange: Exchange) -> tuple[bytes | None, int | None, bytes | None]:
    if exchange.response is None:
        return exchange.request, None, None
    return exchange.request, exchange.response.status_code, exchange.response.content

