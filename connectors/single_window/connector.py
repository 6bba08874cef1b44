"""The single-window connector: each signed certificate sent as one SOAP 1.1 ``EnvioCertificadoFitosanitario``
over mutual TLS, the synchronous ``AcuseRecibo`` read into a :class:`~hub.connector.DeliveryResult`.

The envelope is built with lxml by :mod:`connectors.single_window.protocol` rather than by a zeep client: the request
must stay a pure function of the message (tests, traces), and the error mapping needs the raw HTTP status,
``Retry-After`` and body that zeep hides behind its own exceptions. Tests prove the envelope against the published
XSDs and drive the sandbox with a zeep client built from the published WSDL.

Border tracking (our ``consultaEventosSeguimiento``, :mod:`connectors.single_window.tracking`) is read by
:meth:`SingleWindowConnector.poll_acks` when ``tracking_endpoint`` is configured.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import httpx

from hub.connector import AwaitingAck, AckReport, ConnectorContext, DeliveryResult, OutboundMessage, Outcome
from connectors.http import TRANSIENT_STATUSES, MutualTlsClients, status_error, transport_error
from connectors.p2p.protocol import certificate_reference
from connectors.polling import poll_each
from connectors.single_window.config import SingleWindowConfig, is_country
from connectors.single_window.protocol import (
    RECEIVED,
    SOAP_ACTION,
    SOAP_MEDIA_TYPE,
    AcuseRecibo,
    Cabecera,
    MensajeFalla,
    build_envio,
    parse_reason,
    parse_response,
    timestamp,
    transaction_id,
)
from connectors.single_window.tracking import (
    TRACKING_SOAP_ACTION,
    TrackingAnswer,
    TrackingHeader,
    TrackingQuery,
    ack_for_event,
    build_query,
    parse_answer,
)
from hub.errors import DeliveryError, InputError, PermanentDeliveryError, TransientDeliveryError
from hub.records.status import DocumentStatus
from hub.xmlsafe import parse_xml

log = logging.getLogger(__name__)

#: SOAP 1.1 faultcodes saying the request itself is at fault: sending it again cannot help.
_CLIENT_FAULTS = frozenset({"Client", "VersionMismatch", "MustUnderstand"})


class SingleWindowConnector:
    """A national single window speaking the IOP ``EnvioCertificadoFitosanitario`` service (see ``README.md``).

    ``IDdeTransaccion`` is the hub's message id, identical on every retry: the window de-duplicates on it. A
    replacement carries ``IDdeTransaccionOriginal``, the ``IDdeTransaccion`` of the message that took the certificate
    it replaces to this window (:attr:`~hub.connector.OutboundMessage.replaces`, from the store: kept across restarts).

    With ``tracking_endpoint`` set, :meth:`poll_acks` reads the border's tracking events after a cursor per sender
    country, kept in memory: it moves on only once the worker has recorded what was read (:meth:`answers_recorded`);
    after a restart the window's events are read again from the start (the hub keeps a repeated answer once), for
    the sender countries of every message still awaiting one (:meth:`resume`).
    """

    def __init__(
        self,
        name: str,
        config: SingleWindowConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        context: ConnectorContext,
    ) -> None:
        self.name = name
        self.config = config
        self._transport = transport
        self._clients = MutualTlsClients(name, config, certs_dir=context.certs_dir, transport=transport)
        self._lock = threading.Lock()
        self._senders: set[str] = set()  # countries this connector delivered for: it tracks their certificates
        self._messages: dict[str, str] = {}  # IDdeTransaccion → message id, where they differ
        self.cursors: dict[str, int] = {}  # sender country → last tracking event sequence recorded
        self._read: dict[str, int] = {}  # sender country → last sequence read, not yet recorded
        self._last_poll: float | None = None

    def open(self) -> None:
        """Check the key material; no request is sent."""
        self._clients.check_files()

    def close(self) -> None:
        """Close every HTTP client, and the transport the connector was handed (it owns it, as an httpx client does)."""
        self._clients.close()

    def deliver(self, message: OutboundMessage) -> DeliveryResult:
        """Send one signed certificate; ``RCB`` → ``ACKNOWLEDGED`` (or ``ACCEPTED``, see the config), ``ERR`` →
        ``REJECTED`` with the reason from ``GlosaAcuseRecibo``; faults and HTTP failures → typed errors."""
        cabecera = self.cabecera_for(message)
        try:
            request = build_envio(cabecera, message.payload)
        except InputError as exc:
            raise PermanentDeliveryError(f"{self.name}: {exc}", request=message.payload) from None
        headers = {"Content-Type": SOAP_MEDIA_TYPE, "SOAPAction": f'"{SOAP_ACTION}"'}
        try:
            response = self._client_for(cabecera.PaisdeRemitente).post(self.config.endpoint, content=request, headers=headers)
        except httpx.HTTPError as exc:
            raise self._transport_failure(exc, request) from None
        return self._result(cabecera, message, request, response)

    def cabecera_for(self, message: OutboundMessage) -> Cabecera:
        """The header this connector sends for ``message`` (stamped now). Raises
        :class:`~hub.errors.PermanentDeliveryError` when the message cannot fill it."""
        try:
            certificate = parse_xml(message.payload, source="signed certificate")
        except InputError as exc:
            raise PermanentDeliveryError(f"{self.name}: {exc}", request=message.payload) from None
        type_code, _ = certificate_reference(certificate)
        sender = self.config.sender_country or message.exporting_country or message.issuing_country
        recipient = self.config.recipient_country or message.importing_country
        try:
            state = DocumentStatus(message.status).code  # UNCL 4405, as the certificate itself carries it
        except ValueError:
            state = None
        problems = [text for bad, text in [
            (not type_code, "the certificate has no SPSExchangedDocument/TypeCode for TipodeDocumento"),
            (not is_country(sender), f"PaisdeRemitente {sender!r} is not a country code"),
            (not is_country(recipient), f"PaisdeDestinatario {recipient!r} is not a country code (set recipient_country)"),
            (state is None, f"status {message.status!r} has no UNCL 4405 code for EstadoTransaccion"),
        ] if bad]
        if problems:
            raise PermanentDeliveryError(f"{self.name}: " + "; ".join(problems), request=message.payload)
        return Cabecera(
            CodigoInteraccion=self.config.interaction_code, IDdeServicio=self.config.service_id,
            IDdeRemitente=self.config.sender_id, PaisdeRemitente=sender,
            IDdeDestinatario=self.config.recipient_id, PaisdeDestinatario=recipient,
            IDdeTransaccion=transaction_id(message.id), EstadoTransaccion=state, FechaHora=timestamp(),
            TipodeDocumento=type_code, IDdeDocumento=message.certificate_number,
            IDdeTransaccionOriginal=transaction_id(message.replaces) if message.replaces else None,
        )

    def _result(self, cabecera: Cabecera, message: OutboundMessage, request: bytes, response: httpx.Response) -> DeliveryResult:
        answer = self._answer(response, request, parse=parse_response, expected=AcuseRecibo, what="answer")
        body = response.content
        ours = cabecera.IDdeTransaccion
        if ours not in (answer.Cabecera.IDdeTransaccionOriginal, answer.Cabecera.IDdeTransaccion):
            raise TransientDeliveryError(
                f"{self.name}: inconsistent answer from {self.config.endpoint}: it acknowledges transaction "
                f"{answer.Cabecera.IDdeTransaccionOriginal or answer.Cabecera.IDdeTransaccion!r}, not {ours!r}",
                request=request, response=body,
            )
        if answer.CodigoAcuseRecibo == RECEIVED:
            with self._lock:
                self._senders.add(cabecera.PaisdeRemitente)
                if ours != message.id:
                    self._messages[ours] = message.id
            outcome = Outcome.ACKNOWLEDGED if self.config.receipt_outcome == "acknowledged" else Outcome.ACCEPTED
            return DeliveryResult(outcome=outcome, receipt_id=answer.Cabecera.IDdeTransaccion, request=request, response=body)
        code, text = parse_reason(answer.GlosaAcuseRecibo)
        return DeliveryResult(outcome=Outcome.REJECTED, receipt_id=answer.Cabecera.IDdeTransaccion, request=request,
                              response=body, reason_code=code or "ERR", reason_text=text or "rejected without explanation")

    def poll_acks(self) -> list[AckReport]:
        """The border's tracking events since the last poll, as :class:`~hub.connector.AckReport` in sequence order
        (see :func:`~connectors.single_window.tracking.ack_for_event`): intermediate steps are ``ACCEPTED`` of kind
        ``tracking``, a release ``ACKNOWLEDGED`` (``business_response``), a refusal ``REJECTED``
        (``border_refusal``).

        Asks once per sender country (``sender_country``, else ``tracking_countries`` and the countries delivered
        for since start), with that country's client certificate, at most once per ``tracking_poll_interval``; pages
        while the window says more follow. A cursor moves only past events returned here. A failed query raises its
        :class:`~hub.errors.DeliveryError` only when nothing was read: what was read is returned, the rest is asked
        again next time. Nothing is asked without ``tracking_endpoint``.
        """
        if self.config.tracking_endpoint is None or not self._poll_due():
            return []
        return poll_each(self.name, self._tracking_countries(), self._poll_country, what="tracking events for")

    def answers_recorded(self, reports: list[AckReport]) -> None:
        """What the last :meth:`poll_acks` read is recorded: the cursors move on past it."""
        with self._lock:
            self.cursors.update(self._read)
            self._read = {}

    def resume(self, awaiting: list[AwaitingAck]) -> None:
        """Follow the tracking of messages delivered before a restart, or by another worker: their sender countries
        are asked about, and their transaction ids (the receipts) name them."""
        with self._lock:
            for waiting in awaiting:
                self._senders.add(self.config.sender_country or waiting.issuing_country)
                if waiting.receipt_id != waiting.message_id:
                    self._messages[waiting.receipt_id] = waiting.message_id

    def tracking_header(self, country: str) -> TrackingHeader:
        """The header of a tracking query on behalf of ``country`` (a new transaction, stamped now)."""
        return TrackingHeader(
            interaction_code=self.config.interaction_code, service_id=self.config.service_id,
            sender_id=self.config.sender_id, sender_country=country, recipient_id=self.config.recipient_id,
            recipient_country=self.config.recipient_country, transaction_id=str(uuid.uuid4()), sent_at=timestamp(),
        )

    def _poll_due(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._last_poll is not None and now - self._last_poll < self.config.tracking_poll_interval:
                return False
            self._last_poll = now
            return True

    def _tracking_countries(self) -> list[str]:
        if self.config.sender_country:
            return [self.config.sender_country]
        with self._lock:
            return sorted(set(self.config.tracking_countries) | self._senders)

    def _poll_country(self, country: str) -> list[AckReport]:
        reports: list[AckReport] = []
        after = self.cursors.get(country, 0)
        while True:
            try:
                answer = self._query_events(country, after)
            except DeliveryError as exc:
                if not reports:
                    raise
                log.warning("%s: tracking events for %s after %d failed: %s", self.name, country, after, exc)
                return reports
            fresh = [event for event in answer.events if event.sequence > after]
            with self._lock:
                reports.extend(ack_for_event(event, message_id=self._messages.get(event.transaction_id)) for event in fresh)
                if fresh:
                    after = self._read[country] = fresh[-1].sequence
            if not (answer.more and fresh):
                return reports

    def _query_events(self, country: str, after: int) -> TrackingAnswer:
        url = self.config.tracking_endpoint
        header = self.tracking_header(country)
        request = build_query(TrackingQuery(header, after=after, limit=self.config.tracking_batch))
        headers = {"Content-Type": SOAP_MEDIA_TYPE, "SOAPAction": f'"{TRACKING_SOAP_ACTION}"'}
        try:
            response = self._client_for(country).post(url, content=request, headers=headers)
        except httpx.HTTPError as exc:
            raise self._transport_failure(exc, request, url=url) from None
        answer = self._answer(response, request, parse=parse_answer, expected=TrackingAnswer, what="tracking answer", url=url)
        body = response.content
        problem = _inconsistency(answer, header)
        if problem:
            raise TransientDeliveryError(f"{self.name}: inconsistent tracking answer from {url}: {problem}",
                                         request=request, response=body)
        return answer

    def _answer(self, response: httpx.Response, request: bytes, *, parse, expected: type, what: str, url: str | None = None):
        """The SOAP answer of type ``expected``; an IOP fault, another status or an unreadable 200 raise typed errors."""
        status, body = response.status_code, response.content
        answer = None
        if status == 200 or (status == 500 and body):
            try:
                answer = parse(body)
            except InputError as exc:
                if status == 200:
                    raise TransientDeliveryError(f"{self.name}: unreadable {what} from {url or self.config.endpoint}: {exc}",
                                                 request=request, response=body) from None
        if isinstance(answer, MensajeFalla):
            raise self._fault_failure(answer, request, body, url=url)
        if not isinstance(answer, expected) or status != 200:
            raise self._status_failure(response, request, url=url)
        return answer

    def _fault_failure(self, falla: MensajeFalla, request: bytes, body: bytes, *, url: str | None = None) -> DeliveryError:
        details = "; ".join(f"[{code}] {text}" for code, text in falla.DetallesError) or "no DetallesError"
        said = f"{self.name}: SOAP fault {falla.faultcode or '?'} from {url or self.config.endpoint}: {falla.faultstring} ({details})"
        if falla.faultcode in _CLIENT_FAULTS:
            return PermanentDeliveryError(said, request=request, response=body)
        # soap:Server, or a code SOAP 1.1 does not define: the window failed on its side; the retry budget bounds it.
        return TransientDeliveryError(said, request=request, response=body)

    def _status_failure(self, response: httpx.Response, request: bytes, *, url: str | None = None) -> DeliveryError:
        # A 200 that is not the operation's answer is the window failing on its side, not a wrong request.
        return status_error(self.name, url or self.config.endpoint, response, request=request,
                            transient_statuses=TRANSIENT_STATUSES | {200})

    def _transport_failure(self, exc: httpx.HTTPError, request: bytes, *, url: str | None = None) -> DeliveryError:
        return transport_error(self.name, url or self.config.endpoint, exc, timeout=self.config.timeout, request=request,
                               name_timeout=False)

    def _client_for(self, country: str) -> httpx.Client:
        return self._clients.client_for(country)


def _inconsistency(answer: TrackingAnswer, header: TrackingHeader) -> str | None:
    """What makes a tracking answer unfit to move the cursor on, if anything."""
    if answer.header.original_transaction_id != header.transaction_id:
        return f"it answers query {answer.header.original_transaction_id!r}, not {header.transaction_id!r}"
    sequences = [event.sequence for event in answer.events]
    if sequences != sorted(set(sequences)):
        return f"events out of sequence order: {sequences}"
    if sequences and answer.last_sequence != sequences[-1]:
        return f"UltimaSecuencia {answer.last_sequence} is not the last event's ({sequences[-1]})"
    return None
