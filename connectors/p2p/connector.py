"""The point-to-point connector: signed certificates POSTed over mutual TLS, acknowledgements pushed or polled.

The wire protocol is in ``README.md`` beside this module. Every synchronous answer becomes a
:class:`~connectors.base.DeliveryResult` or a typed :class:`~hub.errors.DeliveryError`, always with the raw
request and response bytes; asynchronous acknowledgements are verified against the trust store before they are read.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import httpx
from cryptography import x509
from cryptography.x509.oid import NameOID

from connectors.base import AckReport, ConnectorContext, DeliveryResult, OutboundMessage, Outcome
from connectors.p2p.config import P2PConfig
from connectors.p2p.protocol import (
    CORRELATION_ID_HEADER,
    MESSAGE_ID_HEADER,
    RECEIPT_ID_HEADER,
    RETRY_AFTER_HEADER,
    XML_MEDIA_TYPE,
    parse_acknowledgement,
    parse_retry_after,
)
from hub.errors import (
    ConfigurationError,
    DeliveryError,
    InputError,
    PermanentDeliveryError,
    SignatureError,
    TransientDeliveryError,
)
from hub.signing import TrustStore, Verifier

log = logging.getLogger(__name__)

#: Answers that say "not now": the counterpart is busy, rate-limiting, or failed inside.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})
_SNIPPET = 300


class P2PConnector:
    """A foreign authority reached directly. See the module docstring and ``README.md`` for the protocol.

    With ``transport`` given (tests, in-process sandboxes) every request goes through it; otherwise each issuing
    country gets its own HTTPS client presenting that country's client certificate and trusting only the CA bundle.
    ``ack_cursors`` (endpoint → last sequence number read) is the polling position, kept in memory.
    """

    def __init__(
        self,
        name: str,
        config: P2PConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        context: ConnectorContext,
    ) -> None:
        self.name = name
        self.config = config
        self.ack_cursors: dict[str, int] = {}
        self._transport = transport
        self._context = context
        self._certs_dir = Path(context.certs_dir)
        self._clients: dict[str | None, httpx.Client] = {}
        self._lock = threading.Lock()
        self._verifier: Verifier | None = None

    def open(self) -> None:
        """Check the key material and load the trust store; no request is sent."""
        trust = self._context.trust_store
        if self._transport is None or not isinstance(trust, TrustStore):
            self._require_file(self._ca_bundle(), "ca_bundle")
        if self._transport is None and self.config.client_certificate is not None:
            self._require_file(self.config.client_certificate, "client_certificate")
            self._require_file(self.config.client_key, "client_key")
        if not isinstance(trust, TrustStore):
            trust = TrustStore.from_paths(ca_bundle=self._ca_bundle())
        self._verifier = Verifier(trust)

    def close(self) -> None:
        """Close every HTTP client, and the transport the connector was handed (it owns it, as an httpx client does)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
        if self._transport is not None:
            self._transport.close()

    def deliver(self, message: OutboundMessage) -> DeliveryResult:
        """POST one signed document; the receipt (202/200), or a signed rejection (422), becomes the result."""
        self._ensure_open()
        endpoint = self.config.endpoint_for(message.importing_country)
        if endpoint is None:
            served = ", ".join(sorted(self.config.endpoints))
            raise PermanentDeliveryError(
                f"{self.name}: no endpoint for importing country {message.importing_country!r} and no '*' default "
                f"(endpoints configured for: {served})"
            )
        headers = {
            "Content-Type": message.media_type or XML_MEDIA_TYPE,
            "Accept": XML_MEDIA_TYPE,
            MESSAGE_ID_HEADER: message.id,
            CORRELATION_ID_HEADER: message.correlation_id,
        }
        client = self._client_for(message.issuing_country)
        try:
            response = client.post(endpoint, content=message.payload, headers=headers)
        except httpx.HTTPError as exc:
            raise self._transport_failure(exc, endpoint, request=message.payload) from None
        return self._receipt(message, endpoint, response)

    def poll_acks(self) -> list[AckReport]:
        """Read new acknowledgements from every endpoint's ``/acks`` feed, verified; advance the cursors (nothing
        when this counterpart is configured to push them).

        An entry whose signature does not verify is logged and skipped (it must not be trusted, and it must not
        block the feed behind it). A feed that fails raises its :class:`~hub.errors.DeliveryError` only when no other
        feed gave anything: acknowledgements already read (their cursor moved) must not be lost with the error.
        """
        if self.config.acks != "poll":
            return []  # the counterpart pushes its acknowledgements to the hub
        self._ensure_open()
        reports: list[AckReport] = []
        failure: DeliveryError | None = None
        for endpoint in dict.fromkeys(self.config.endpoints.values()):
            try:
                reports.extend(self._poll(endpoint))
            except DeliveryError as exc:
                log.warning("%s: polling %s failed: %s", self.name, endpoint, exc)
                failure = failure or exc
        if failure is not None and not reports:
            raise failure
        return reports

    def parse_inbound(self, body: bytes, headers: Mapping[str, str]) -> list[AckReport]:
        """A pushed acknowledgement (``POST /v1/inbound/{name}``), verified then read.

        Raises :class:`~hub.errors.SignatureError` for an unsigned or untrusted one and
        :class:`~hub.errors.InputError` for bytes that are not a readable acknowledgement.
        """
        self._ensure_open()
        return [self._verified(body)]

    def _poll(self, endpoint: str) -> list[AckReport]:
        after = self.ack_cursors.get(endpoint, 0)
        url = f"{endpoint}/acks"
        try:
            response = self._client_for(self._polling_country()).get(url, params={"after": after})
        except httpx.HTTPError as exc:
            raise self._transport_failure(exc, url, request=None) from None
        if response.status_code != 200:
            raise self._status_failure(url, response, request=None)
        try:
            feed = response.json()
            entries = [(int(entry["seq"]), str(entry["xml"])) for entry in feed["acks"]]
            following = int(feed["next"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientDeliveryError(
                f"{self.name}: unreadable acknowledgement feed from {url} ({exc})", response=response.content
            ) from None
        reports = []
        for sequence, xml in entries:
            try:
                reports.append(self._verified(xml.encode("utf-8")))
            except (SignatureError, InputError) as exc:
                log.warning("%s: acknowledgement %s from %s refused: %s", self.name, sequence, url, exc)
        self.ack_cursors[endpoint] = max(after, following)
        return reports

    def _verified(self, body: bytes) -> AckReport:
        verified = self._verifier.verify(body)
        report = parse_acknowledgement(verified.signed_root)
        return replace(report, payload=body, country=_country_of(verified.signer_certificate))

    def _receipt(self, message: OutboundMessage, endpoint: str, response: httpx.Response) -> DeliveryResult:
        status, body = response.status_code, response.content
        if status not in (200, 202, 422):
            raise self._status_failure(endpoint, response, request=message.payload)
        try:
            ack = parse_acknowledgement(body)
        except InputError as exc:
            raise TransientDeliveryError(
                f"{self.name}: unreadable {status} answer from {endpoint}: {exc}", request=message.payload, response=body
            ) from None
        receipt_id = response.headers.get(RECEIPT_ID_HEADER)
        problem = None
        if ack.message_id != message.id:
            problem = f"it acknowledges message {ack.message_id!r}, not {message.id!r}"
        elif status == 422 and ack.outcome is not Outcome.REJECTED:
            problem = f"a 422 whose acknowledgement says {ack.outcome.value}"
        elif status != 422 and ack.outcome is Outcome.ACCEPTED and not receipt_id:
            problem = f"a receipt without a {RECEIPT_ID_HEADER} header"
        if problem:
            raise TransientDeliveryError(
                f"{self.name}: inconsistent answer from {endpoint}: {problem}", request=message.payload, response=body
            )
        return DeliveryResult(
            outcome=ack.outcome,
            receipt_id=receipt_id,
            request=message.payload,
            response=body,
            reason_code=ack.reason_code,
            reason_text=ack.reason_text,
        )

    def _status_failure(self, url: str, response: httpx.Response, *, request: bytes | None) -> DeliveryError:
        status, body = response.status_code, response.content
        said = f"{self.name}: {url} answered {status}: {_snippet(body)}"
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get(RETRY_AFTER_HEADER))
            return TransientDeliveryError(said, retry_after=retry_after, request=request, response=body)
        if status in _TRANSIENT_STATUSES or status >= 500:
            return TransientDeliveryError(said, request=request, response=body)
        if 300 <= status < 500:
            # 4xx: the request itself is wrong; 3xx: the endpoint moved. Neither heals by sending the same again.
            return PermanentDeliveryError(said, request=request, response=body)
        return TransientDeliveryError(f"{said} (an answer the protocol does not define)", request=request, response=body)

    def _transport_failure(self, exc: httpx.HTTPError, url: str, *, request: bytes | None) -> DeliveryError:
        if isinstance(exc, httpx.TimeoutException):
            return TransientDeliveryError(
                f"{self.name}: no answer from {url} within {self.config.timeout}s ({type(exc).__name__})", request=request
            )
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
            return PermanentDeliveryError(f"{self.name}: cannot send to {url}: {exc}", request=request)
        if _caused_by(exc, ssl.SSLCertVerificationError):
            # The server is not the one our CA bundle vouches for; talking to it again will not change who it is.
            return PermanentDeliveryError(f"{self.name}: {url} presented an untrusted certificate: {exc}", request=request)
        # Connection refused or reset, TLS alerts, a peer closing mid-answer. A counterpart refusing our client
        # certificate also lands here: under TLS 1.3 the client only sees the connection close, which cannot be
        # told from a transient drop; the retry budget ends it in the dead letters.
        return TransientDeliveryError(f"{self.name}: {url}: {type(exc).__name__}: {exc}", request=request)

    def _client_for(self, country: str | None) -> httpx.Client:
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
            tls_dir = self._certs_dir / "tls"
            certificate, key = tls_dir / f"client-{country}.pem", tls_dir / f"client-{country}.key"
        if not certificate.is_file() or not key.is_file():
            raise PermanentDeliveryError(
                f"{self.name}: no TLS client certificate for issuing country {country!r} ({certificate})"
            )
        try:
            tls = ssl.create_default_context(cafile=str(self._ca_bundle()))
            tls.load_cert_chain(str(certificate), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise PermanentDeliveryError(f"{self.name}: TLS key material cannot be loaded ({certificate}): {exc}") from None
        return httpx.Client(verify=tls, timeout=timeout, follow_redirects=False)

    def _polling_country(self) -> str | None:
        if self._transport is not None or self.config.client_certificate is not None:
            return None
        if self.config.client_country:
            return self.config.client_country
        found = sorted((self._certs_dir / "tls").glob("client-*.pem"))
        if not found:
            raise PermanentDeliveryError(f"{self.name}: no client certificate to poll with under {self._certs_dir / 'tls'}")
        return found[0].stem.removeprefix("client-")

    def _ca_bundle(self) -> Path:
        return self.config.ca_bundle or self._certs_dir / "ca.pem"

    def _require_file(self, path: Path | None, field: str) -> None:
        if path is None or not Path(path).is_file():
            raise ConfigurationError(f"connector {self.name!r}: {field} {path} is not a readable file")

    def _ensure_open(self) -> None:
        if self._verifier is None:
            self.open()


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _country_of(certificate: x509.Certificate) -> str | None:
    values = certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    return str(values[0].value) if values else None


def _snippet(body: bytes) -> str:
    text = body[:_SNIPPET].decode("utf-8", errors="replace").strip()
    return (text + "…") if len(body) > _SNIPPET else (text or "(empty body)")
