"""The single-window connector: each signed certificate sent as one SOAP 1.1 ``EnvioCertificadoFitosanitario``
over mutual TLS, the synchronous ``AcuseRecibo`` read into a :class:`~connectors.base.DeliveryResult`.

The envelope is built with lxml by :mod:`connectors.single_window.protocol` rather than by a zeep client: the request
must stay a pure function of the message (tests, traces), and the error mapping needs the raw HTTP status,
``Retry-After`` and body that zeep hides behind its own exceptions. Tests prove the envelope against the published
XSDs and drive the sandbox with a zeep client built from the published WSDL.
"""

from __future__ import annotations

import httpx
from lxml import etree

from connectors.base import ConnectorContext, DeliveryResult, OutboundMessage, Outcome
from connectors.http import TRANSIENT_STATUSES, MutualTlsClients, status_error, transport_error
from connectors.p2p.protocol import certificate_reference
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
from hub.errors import DeliveryError, InputError, PermanentDeliveryError, TransientDeliveryError
from hub.namespaces import RAM
from hub.records.status import DocumentStatus
from hub.xmlsafe import parse_xml

#: SOAP 1.1 faultcodes saying the request itself is at fault: sending it again cannot help.
_CLIENT_FAULTS = frozenset({"Client", "VersionMismatch", "MustUnderstand"})


class SingleWindowConnector:
    """A national single window speaking the IOP ``EnvioCertificadoFitosanitario`` service (see ``README.md``).

    ``IDdeTransaccion`` is the hub's message id, identical on every retry: the window de-duplicates on it. A
    replacement carries ``IDdeTransaccionOriginal`` when this connector delivered the certificate it replaces
    (remembered in memory only, by certificate number).
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
        self._transactions: dict[str, str] = {}

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
        replaced = _replaced_certificate(certificate)
        return Cabecera(
            CodigoInteraccion=self.config.interaction_code, IDdeServicio=self.config.service_id,
            IDdeRemitente=self.config.sender_id, PaisdeRemitente=sender,
            IDdeDestinatario=self.config.recipient_id, PaisdeDestinatario=recipient,
            IDdeTransaccion=transaction_id(message.id), EstadoTransaccion=state, FechaHora=timestamp(),
            TipodeDocumento=type_code, IDdeDocumento=message.certificate_number,
            IDdeTransaccionOriginal=self._transactions.get(replaced) if replaced else None,
        )

    def _result(self, cabecera: Cabecera, message: OutboundMessage, request: bytes, response: httpx.Response) -> DeliveryResult:
        status, body = response.status_code, response.content
        answer = None
        if status == 200 or (status == 500 and body):
            try:
                answer = parse_response(body)
            except InputError as exc:
                if status == 200:
                    raise TransientDeliveryError(f"{self.name}: unreadable answer from {self.config.endpoint}: {exc}",
                                                 request=request, response=body) from None
        if isinstance(answer, MensajeFalla):
            raise self._fault_failure(answer, request, body)
        if not isinstance(answer, AcuseRecibo) or status != 200:
            raise self._status_failure(response, request)
        ours = cabecera.IDdeTransaccion
        if ours not in (answer.Cabecera.IDdeTransaccionOriginal, answer.Cabecera.IDdeTransaccion):
            raise TransientDeliveryError(
                f"{self.name}: inconsistent answer from {self.config.endpoint}: it acknowledges transaction "
                f"{answer.Cabecera.IDdeTransaccionOriginal or answer.Cabecera.IDdeTransaccion!r}, not {ours!r}",
                request=request, response=body,
            )
        if answer.CodigoAcuseRecibo == RECEIVED:
            self._transactions[message.certificate_number] = ours
            outcome = Outcome.ACKNOWLEDGED if self.config.receipt_outcome == "acknowledged" else Outcome.ACCEPTED
            return DeliveryResult(outcome=outcome, receipt_id=answer.Cabecera.IDdeTransaccion, request=request, response=body)
        code, text = parse_reason(answer.GlosaAcuseRecibo)
        return DeliveryResult(outcome=Outcome.REJECTED, receipt_id=answer.Cabecera.IDdeTransaccion, request=request,
                              response=body, reason_code=code or "ERR", reason_text=text or "rejected without explanation")

    def _fault_failure(self, falla: MensajeFalla, request: bytes, body: bytes) -> DeliveryError:
        details = "; ".join(f"[{code}] {text}" for code, text in falla.DetallesError) or "no DetallesError"
        said = f"{self.name}: SOAP fault {falla.faultcode or '?'} from {self.config.endpoint}: {falla.faultstring} ({details})"
        if falla.faultcode in _CLIENT_FAULTS:
            return PermanentDeliveryError(said, request=request, response=body)
        # soap:Server, or a code SOAP 1.1 does not define: the window failed on its side; the retry budget bounds it.
        return TransientDeliveryError(said, request=request, response=body)

    def _status_failure(self, response: httpx.Response, request: bytes) -> DeliveryError:
        # A 200 that is no AcuseRecibo is the window failing on its side, not a wrong request.
        return status_error(self.name, self.config.endpoint, response, request=request,
                            transient_statuses=TRANSIENT_STATUSES | {200})

    def _transport_failure(self, exc: httpx.HTTPError, request: bytes) -> DeliveryError:
        return transport_error(self.name, self.config.endpoint, exc, timeout=self.config.timeout, request=request,
                               name_timeout=False)

    def _client_for(self, country: str) -> httpx.Client:
        return self._clients.client_for(country)


def _replaced_certificate(certificate: etree._Element) -> str | None:
    """The number in the certificate's ``ADRPN`` note (the certificate it replaces), if any."""
    for note in certificate.iter(f"{{{RAM}}}IncludedSPSNote"):
        if (note.findtext(f"{{{RAM}}}Subject") or "").strip() == "ADRPN":
            return (note.findtext(f"{{{RAM}}}Content") or "").strip() or None
    return None

