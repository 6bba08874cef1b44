"""The point-to-point connector: signed certificates POSTed over mutual TLS, acknowledgements pushed or polled.

The wire protocol is in ``README.md`` beside this module. Every synchronous answer becomes a
:class:`~hub.connector.DeliveryResult` or a typed :class:`~hub.errors.DeliveryError`, always with the raw
request and response bytes; asynchronous acknowledgements are verified against the trust store before they are read.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import httpx
from cryptography import x509
from cryptography.x509.oid import NameOID

from hub.connector import AckReport, AwaitingAck, ConnectorContext, DeliveryResult, OutboundMessage, Outcome
from connectors.p2p.config import P2PConfig
from connectors.p2p.protocol import (
    CORRELATION_ID_HEADER,
    MESSAGE_ID_HEADER,
    RECEIPT_ID_HEADER,
    XML_MEDIA_TYPE,
    parse_acknowledgement,
)
from connectors.http import MutualTlsClients, status_error, transport_error
from connectors.polling import poll_each
from hub.errors import (
    DeliveryError,
    InputError,
    PermanentDeliveryError,
    SignatureError,
    TransientDeliveryError,
)
from hub.signing import TrustStore, Verifier

log = logging.getLogger(__name__)


class P2PConnector:
    """A foreign authority reached directly. See the module docstring and ``README.md`` for the protocol.

    With ``transport`` given (tests, in-process sandboxes) every request goes through it; otherwise each issuing
    country gets its own HTTPS client presenting that country's client certificate and trusting only the CA bundle.
    ``ack_cursors`` (endpoint → last sequence number recorded) is the polling position, kept in memory: it moves on
    only once the worker has recorded what was read (:meth:`answers_recorded`); after a restart the feed is read
    again from its start (an answer read twice is kept once). Every answer, synchronous or not, must be signed by the
    authority the message went to (``answered_by``).
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
        self._read_cursors: dict[str, int] = {}  # read, not yet recorded by the worker
        self._transport = transport
        self._context = context
        self._certs_dir = Path(context.certs_dir)
        self._clients = MutualTlsClients(name, config, certs_dir=context.certs_dir, transport=transport,
                                         party="issuing country")
        self._verifier: Verifier | None = None

    def open(self) -> None:
        """Check the key material and load the trust store; no request is sent."""
        trust = self._context.trust_store
        if self._transport is not None and not isinstance(trust, TrustStore):
            self._clients.require_file(self._clients.ca_bundle(), "ca_bundle")
        self._clients.check_files()
        if not isinstance(trust, TrustStore):
            trust = TrustStore.from_paths(ca_bundle=self._clients.ca_bundle())
        self._verifier = Verifier(trust)

    def close(self) -> None:
        """Close every HTTP client, and the transport the connector was handed (it owns it, as an httpx client does)."""
        self._clients.close()

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
        return poll_each(self.name, dict.fromkeys(self.config.endpoints.values()), self._poll, what="polling")

    def answers_recorded(self, reports: list[AckReport]) -> None:
        """What the last :meth:`poll_acks` read is recorded: its feeds' cursors move on."""
        self.ack_cursors.update(self._read_cursors)
        self._read_cursors = {}

    def answerer_for(self, importing_country: str | None, kind: str = "acknowledgement") -> str | None:
        """The country whose authority must sign the answers (of any kind) to a message for ``importing_country``."""
        return self.config.answerer_for(importing_country)

    def requery(self, overdue: list[AwaitingAck]) -> list[AckReport]:
        """Answers to ``overdue`` messages, read again from the start of their endpoints' ``/acks`` feeds (an answer
        pushed while the hub could not take it stays in the feed)."""
        self._ensure_open()
        wanted = {awaiting.message_id for awaiting in overdue}
        endpoints = dict.fromkeys(
            endpoint for endpoint in (self.config.endpoint_for(a.importing_country) for a in overdue) if endpoint)
        reports = poll_each(self.name, endpoints, lambda endpoint: self._read_feed(endpoint, 0)[0], what="asking again")
        return [report for report in reports if report.message_id in wanted]

    def parse_inbound(self, body: bytes, headers: Mapping[str, str]) -> list[AckReport]:
        """A pushed acknowledgement (``POST /v1/inbound/{name}``), verified then read.

        Raises :class:`~hub.errors.SignatureError` for an unsigned or untrusted one and
        :class:`~hub.errors.InputError` for bytes that are not a readable acknowledgement.
        """
        self._ensure_open()
        return [self._verified(body)]

    def _poll(self, endpoint: str) -> list[AckReport]:
        reports, following = self._read_feed(endpoint, self.ack_cursors.get(endpoint, 0))
        self._read_cursors[endpoint] = following
        return reports

    def _read_feed(self, endpoint: str, after: int) -> tuple[list[AckReport], int]:
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
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise TransientDeliveryError(
                f"{self.name}: unreadable acknowledgement feed from {url} ({exc})", response=response.content
            ) from None
        reports = []
        for sequence, xml in entries:
            try:
                reports.append(self._verified(xml.encode("utf-8")))
            except (SignatureError, InputError) as exc:
                log.warning("%s: acknowledgement %s from %s refused: %s", self.name, sequence, url, exc)
        return reports, max(after, following)

    def _verified(self, body: bytes) -> AckReport:
        verified = self._verifier.verify(body)
        report = parse_acknowledgement(verified.signed_root)
        signer = _country_of(verified.signer_certificate)
        return replace(report, payload=body, country=signer, answered_by=signer)

    def _receipt(self, message: OutboundMessage, endpoint: str, response: httpx.Response) -> DeliveryResult:
        status, body = response.status_code, response.content
        if status not in (200, 202, 422):
            raise self._status_failure(endpoint, response, request=message.payload)
        try:
            ack = self._verified(body)
        except SignatureError as exc:
            raise TransientDeliveryError(
                f"{self.name}: {status} answer from {endpoint} refused: {exc}", request=message.payload, response=body
            ) from None
        except InputError as exc:
            raise TransientDeliveryError(
                f"{self.name}: unreadable {status} answer from {endpoint}: {exc}", request=message.payload, response=body
            ) from None
        receipt_id = response.headers.get(RECEIPT_ID_HEADER)
        answerer = self.answerer_for(message.importing_country)
        problem = None
        if answerer is not None and ack.answered_by != answerer:
            problem = f"it is signed by {ack.answered_by or 'an unknown authority'}, not by {answerer}, whom the message went to"
        elif ack.message_id != message.id:
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
        return status_error(self.name, url, response, request=request)

    def _transport_failure(self, exc: httpx.HTTPError, url: str, *, request: bytes | None) -> DeliveryError:
        return transport_error(self.name, url, exc, timeout=self.config.timeout, request=request)

    def _client_for(self, country: str | None) -> httpx.Client:
        return self._clients.client_for(country)

    def _polling_country(self) -> str | None:
        if self._clients.shared:
            return None
        if self.config.client_country:
            return self.config.client_country
        found = sorted((self._certs_dir / "tls").glob("client-*.pem"))
        if not found:
            raise PermanentDeliveryError(f"{self.name}: no client certificate to poll with under {self._certs_dir / 'tls'}")
        return found[0].stem.removeprefix("client-")

    def _ensure_open(self) -> None:
        if self._verifier is None:
            self.open()


def _country_of(certificate: x509.Certificate) -> str | None:
    values = certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    return str(values[0].value) if values else None

