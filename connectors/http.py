"""HTTP pieces every connector shares: mutual-TLS clients, ``Retry-After``, and HTTP answers or failures → errors.

Each connector keeps its protocol's own reading of an answer; what is the same everywhere lives here:

- :class:`MutualTlsClients`: one ``httpx.Client`` per client certificate (the development PKI's
  ``tls/client-<CC>.pem``/``.key``, or the one configured), trusting only the CA bundle; or, when the connector was
  handed a transport, one client over that transport.
- :func:`status_error`: an HTTP status that is not the protocol's answer → Transient/Permanent delivery error; the
  statuses a protocol counts as "not now" are a parameter.
- :func:`transport_error`: timeouts, unusable URLs, untrusted server certificates, dropped connections → errors.
- :func:`parse_retry_after`, :func:`snippet`, :func:`caused_by`.
"""

from __future__ import annotations

import ssl
import threading
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol

import httpx

from hub.errors import ConfigurationError, DeliveryError, PermanentDeliveryError, TransientDeliveryError

RETRY_AFTER_HEADER = "Retry-After"
#: Answers that say "not now": the counterpart is busy, rate-limiting, or failed inside.
TRANSIENT_STATUSES = frozenset({408, 425, 429})
#: Answers that say "not now" and may say when to come back (``Retry-After``).
BUSY_STATUSES = frozenset({429, 503})
SNIPPET_LENGTH = 300


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def snippet(body: bytes | None) -> str:
    """The start of an answer's body, for an error message (``(empty body)`` when there is none)."""
    body = body or b""
    text = body[:SNIPPET_LENGTH].decode("utf-8", errors="replace").strip()
    return (text + "…") if len(body) > SNIPPET_LENGTH else (text or "(empty body)")


def caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    """Whether ``exc`` or any exception in its cause/context chain is a ``kind``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def status_error(
    name: str,
    url: str,
    response: httpx.Response,
    *,
    request: bytes | None,
    transient_statuses: frozenset[int] = TRANSIENT_STATUSES,
    undefined_is_transient: bool = True,
) -> DeliveryError:
    """The error for an HTTP answer the protocol does not accept as its answer.

    429 and 503 are transient and carry ``Retry-After``; ``transient_statuses`` and 5xx are transient; 3xx and 4xx
    are permanent (the request itself is wrong, or the endpoint moved: neither heals by sending the same again). Any
    other status (1xx, 2xx outside ``transient_statuses``) is transient when ``undefined_is_transient``, with a note
    that the protocol does not define it, else permanent.
    """
    status, body = response.status_code, response.content
    said = f"{name}: {url} answered {status}: {snippet(body)}"
    if status in BUSY_STATUSES:
        retry_after = parse_retry_after(response.headers.get(RETRY_AFTER_HEADER))
        return TransientDeliveryError(said, retry_after=retry_after, request=request, response=body)
    if status in transient_statuses or status >= 500:
        return TransientDeliveryError(said, request=request, response=body)
    if 300 <= status < 500 or not undefined_is_transient:
        return PermanentDeliveryError(said, request=request, response=body)
    return TransientDeliveryError(f"{said} (an answer the protocol does not define)", request=request, response=body)


def transport_error(
    name: str,
    url: str,
    exc: httpx.HTTPError,
    *,
    timeout: float,
    request: bytes | None,
    name_timeout: bool = True,
    untrusted_is_permanent: bool = True,
) -> DeliveryError:
    """The error for a request that got no HTTP answer.

    A timeout is transient (``name_timeout`` adds the httpx exception's name to the message); a URL httpx cannot send
    to is permanent; so is a server certificate the CA bundle does not vouch for, when ``untrusted_is_permanent``
    (talking to it again will not change who it is). Anything else (connection refused or reset, TLS alerts, a peer
    closing mid-answer) is transient. A counterpart refusing our client certificate also lands there: under TLS 1.3
    the client only sees the connection close, which cannot be told from a transient drop; the retry budget ends it
    in the dead letters.
    """
    if isinstance(exc, httpx.TimeoutException):
        kind = f" ({type(exc).__name__})" if name_timeout else ""
        return TransientDeliveryError(f"{name}: no answer from {url} within {timeout}s{kind}", request=request)
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return PermanentDeliveryError(f"{name}: cannot send to {url}: {exc}", request=request)
    if untrusted_is_permanent and caused_by(exc, ssl.SSLCertVerificationError):
        return PermanentDeliveryError(f"{name}: {url} presented an untrusted certificate: {exc}", request=request)
    return TransientDeliveryError(f"{name}: {url}: {type(exc).__name__}: {exc}", request=request)


class MutualTlsConfigLike(Protocol):
    """The config fields :class:`MutualTlsClients` reads (see :class:`connectors.config_checks.MutualTlsConfig`)."""

    client_certificate: Path | None
    client_key: Path | None
    ca_bundle: Path | None
    timeout: float


class MutualTlsClients:
    """The HTTPS clients of one connector, made on first use and kept until :meth:`close`.

    With ``transport`` given (tests, in-process sandboxes) one client goes through it. Otherwise a configured
    ``client_certificate`` serves every request, or else each country gets a client presenting the development PKI's
    ``tls/client-<CC>.pem``/``.key`` under ``certs_dir``; every client trusts only the CA bundle (the configured
    ``ca_bundle``, else ``certs_dir/ca.pem``). ``party`` names the country in errors ("issuing country", "NPPO"…).
    """

    def __init__(
        self,
        name: str,
        config: MutualTlsConfigLike,
        *,
        certs_dir: Path | str,
        transport: httpx.BaseTransport | None = None,
        party: str = "country",
    ) -> None:
        self.name = name
        self.config = config
        self.certs_dir = Path(certs_dir)
        self.transport = transport
        self.party = party
        self._clients: dict[str | None, httpx.Client] = {}
        self._lock = threading.Lock()

    @property
    def shared(self) -> bool:
        """Whether one client serves every country (a handed transport, or one configured client certificate)."""
        return self.transport is not None or self.config.client_certificate is not None

    def key_for(self, country: str | None) -> str | None:
        """The client key ``country``'s requests use: None when one client serves every country."""
        return None if self.shared else country

    def ca_bundle(self) -> Path:
        """The CA bundle the clients trust."""
        return self.config.ca_bundle or self.certs_dir / "ca.pem"

    def require_file(self, path: Path | None, field: str) -> None:
        """Raise :class:`~hub.errors.ConfigurationError` unless ``path`` is a readable file."""
        if path is None or not Path(path).is_file():
            raise ConfigurationError(f"connector {self.name!r}: {field} {path} is not a readable file")

    def check_files(self) -> None:
        """Check the configured key material (nothing to check over a handed transport)."""
        if self.transport is None:
            self.require_file(self.ca_bundle(), "ca_bundle")
            if self.config.client_certificate is not None:
                self.require_file(self.config.client_certificate, "client_certificate")
                self.require_file(self.config.client_key, "client_key")

    def client_for(self, country: str | None) -> httpx.Client:
        """The (cached) client for requests on behalf of ``country``."""
        key = self.key_for(country)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self.new_client(key)
            return client

    def new_client(self, country: str | None) -> httpx.Client:
        """A new client for ``country`` (not cached). Raises :class:`~hub.errors.PermanentDeliveryError` when its key
        material is missing or cannot be loaded."""
        timeout = httpx.Timeout(self.config.timeout)
        if self.transport is not None:
            return httpx.Client(transport=self.transport, timeout=timeout, follow_redirects=False)
        if self.config.client_certificate is not None:
            certificate, key = Path(self.config.client_certificate), Path(self.config.client_key)
        else:
            tls_dir = self.certs_dir / "tls"
            certificate, key = tls_dir / f"client-{country}.pem", tls_dir / f"client-{country}.key"
        if not certificate.is_file() or not key.is_file():
            raise PermanentDeliveryError(f"{self.name}: no TLS client certificate for {self.party} {country!r} ({certificate})")
        try:
            tls = ssl.create_default_context(cafile=str(self.ca_bundle()))
            tls.load_cert_chain(str(certificate), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise PermanentDeliveryError(f"{self.name}: TLS key material cannot be loaded ({certificate}): {exc}") from None
        return httpx.Client(verify=tls, timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        """Close every client made, and the transport handed in (the connector owns it, as an httpx client does)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
        if self.transport is not None:
            self.transport.close()
