"""The single-window connector: each signed certificate sent as one SOAP 1.1 ``EnvioCertificadoFitosanitario``
over mutual TLS, the synchronous ``AcuseRecibo`` read into a :class:`~connectors.base.DeliveryResult`.

The envelope is built with lxml by :mod:`connectors.single_window.protocol` rather than by a zeep client: the request
must stay a pure function of the message (tests, traces), and the error mapping needs the raw HTTP status,
``Retry-After`` and body that zeep hides behind its own exceptions. Tests prove the envelope against the published
XSDs and drive the sandbox with a zeep client built from the published WSDL.
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import httpx
from lxml import etree

from connectors.base import ConnectorContext, DeliveryResult, OutboundMessage, Outcome
from connectors.p2p.protocol import certificate_reference, parse_retry_after
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
from hub.errors import ConfigurationError, DeliveryError, InputError, PermanentDeliveryError, TransientDeliveryError
from hub.namespaces import RAM
from hub.records.status import DocumentStatus
from hub.xmlsafe import parse_xml

_TRANSIENT_STATUSES = frozenset({408, 425, 429})
#: SOAP 1.1 faultcodes saying the request itself is at fault: sending it again cannot help.
_CLIENT_FAULTS = frozenset({"Client", "VersionMismatch", "MustUnderstand"})
_SNIPPET = 300


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
        self._certs_dir = Path(context.certs_dir)
        self._clients: dict[str | None, httpx.Client] = {}
        self._lock = threading.Lock()
        self._transactions: dict[str, str] = {}

    def open(self) -> None:
        """Check the key material; no request is sent."""
        if self._transport is None:
            for path, field in ((self._ca_bundle(), "ca_bundle"), (self.config.client_certificate, "client_certificate"),
                                (self.config.client_key, "client_key")):
                if path is not None and not Path(path).is_file():
                    raise ConfigurationError(f"connector {self.name!r}: {field} {path} is not a readable file")

    def close(self) -> None:
        """Close every HTTP client, and the transport the connector was handed (it owns it, as an httpx client does)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
        if self._transport is not None:
            self._transport.close()

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
        status, body = response.status_code, response.content
        said = f"{self.name}: {self.config.endpoint} answered {status}: {_snippet(body)}"
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return TransientDeliveryError(said, retry_after=retry_after, request=request, response=body)
        if status in _TRANSIENT_STATUSES or status >= 500 or status == 200:
            return TransientDeliveryError(said, request=request, response=body)
        if 300 <= status < 500:
            return PermanentDeliveryError(said, request=request, response=body)
        return TransientDeliveryError(f"{said} (an answer the protocol does not define)", request=request, response=body)

    def _transport_failure(self, exc: httpx.HTTPError, request: bytes) -> DeliveryError:
        url = self.config.endpoint
        if isinstance(exc, httpx.TimeoutException):
            return TransientDeliveryError(f"{self.name}: no answer from {url} within {self.config.timeout}s", request=request)
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
            return PermanentDeliveryError(f"{self.name}: cannot send to {url}: {exc}", request=request)
        if _caused_by(exc, ssl.SSLCertVerificationError):
            return PermanentDeliveryError(f"{self.name}: {url} presented an untrusted certificate: {exc}", request=request)
        return TransientDeliveryError(f"{self.name}: {url}: {type(exc).__name__}: {exc}", request=request)

    def _client_for(self, country: str) -> httpx.Client:
        key = None if (self._transport is not None or self.config.client_certificate is not None) else country
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._new_client(key)
            return client

    def _new_client(self, country: str | None) -> httpx.Client:
        timeout = httpx.Timeout(self.config.timeout)
        if self._transport is not None:
            return httpx.Client(transport=self._transport, timeout=timeout, follow_redirects=False)
        if self.config.client_certificate is not None:
            certificate, key = self.config.client_certificate, self.config.client_key
        else:
            certificate, key = (self._certs_dir / "tls" / f"client-{country}.{ext}" for ext in ("pem", "key"))
        if not Path(certificate).is_file() or not Path(key).is_file():
            raise PermanentDeliveryError(f"{self.name}: no TLS client certificate for country {country!r} ({certificate})")
        try:
            tls = ssl.create_default_context(cafile=str(self._ca_bundle()))
            tls.load_cert_chain(str(certificate), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise PermanentDeliveryError(f"{self.name}: TLS key material cannot be loaded ({certificate}): {exc}") from None
        return httpx.Client(verify=tls, timeout=timeout, follow_redirects=False)

    def _ca_bundle(self) -> Path:
        return self.config.ca_bundle or self._certs_dir / "ca.pem"


def _replaced_certificate(certificate: etree._Element) -> str | None:
    """The number in the certificate's ``ADRPN`` note (the certificate it replaces), if any."""
    for note in certificate.iter(f"{{{RAM}}}IncludedSPSNote"):
        if (note.findtext(f"{{{RAM}}}Subject") or "").strip() == "ADRPN":
            return (note.findtext(f"{{{RAM}}}Content") or "").strip() or None
    return None


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _snippet(body: bytes) -> str:
    text = body[:_SNIPPET].decode("utf-8", errors="replace").strip()
    return (text + "…") if len(body) > _SNIPPET else (text or "(empty body)")
