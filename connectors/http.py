"""HTTP pieces every connector shares: mutual-TLS clients, ``Retry-After``, and HTTP answers or failures → errors.

Each connector keeps its protocol's own reading of an answer; what is the same everywhere lives here:

- :class:`MutualTlsClients`: one ``httpx.Client`` per client certificate (the development PKI's
  ``tls/client-<CC>.pem``/``.key``, or the one configured), trusting only the CA bundle; or, when the connector was
  handed a transport, one client over that transport.
- :func:`status_error`: an HTTP status that is not the protocol's answer → Transient/Permanent delivery error; the
  statuses a protocol counts as "not now" are a parameter.
- :func:`transport_error`: timeouts, unusable URLs, untrusted server certificates, dropped connections → errors.
- :func:`parse_retry_after`, :func:`snippet`, :func:`caused_by`.
- :class:`BoundedTransport` (made by :func:`bounded_transport`, used by every client made here and by
  :func:`bounded_client`): the whole exchange (connect, send, the whole answer) within one deadline, not per read,
  and the answer read as a stream up to a size limit (:class:`AnswerTooLarge` past it). Over the network it can also
  check, at each connection, the address a name resolves to and connect to that very address (:func:`public_only`).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Callable, Iterator, Protocol

import httpcore
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
    in the dead letters. So is an answer the hub stopped reading (:class:`AnswerRefused`: too large, compressed),
    with only the start of it kept.
    """
    if isinstance(exc, AnswerRefused):
        return TransientDeliveryError(f"{name}: {url}: {exc}", request=request, response=exc.head or None)
    if isinstance(exc, httpx.TimeoutException):
        kind = f" ({type(exc).__name__})" if name_timeout else ""
        return TransientDeliveryError(f"{name}: no answer from {url} within {timeout}s{kind}", request=request)
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return PermanentDeliveryError(f"{name}: cannot send to {url}: {exc}", request=request)
    if untrusted_is_permanent and caused_by(exc, ssl.SSLCertVerificationError):
        return PermanentDeliveryError(f"{name}: {url} presented an untrusted certificate: {exc}", request=request)
    return TransientDeliveryError(f"{name}: {url}: {type(exc).__name__}: {exc}", request=request)


# --- bounded exchanges: one deadline for the whole answer, a size limit read as a stream ------------------------------

#: The answer size a connector reads at most unless its config says otherwise (``max_answer_bytes``).
DEFAULT_MAX_ANSWER_BYTES = 10 * 1024 * 1024
#: What is kept of an answer cut at the limit: enough to see what the counterpart sent, never the whole.
KEPT_ANSWER_BYTES = 64 * 1024
#: Resolves a host name to its addresses (``socket.getaddrinfo`` by default; tests hand their own).
Resolver = Callable[[str, int], list[str]]
#: Why an address may not be connected to (None: it may).
AddressPolicy = Callable[[str], "str | None"]


class AnswerRefused(httpx.TransportError):
    """An answer the hub stops reading: too large, or compressed (its size unknown until inflated)."""

    def __init__(self, message: str, *, request: httpx.Request, head: bytes = b"") -> None:
        super().__init__(message, request=request)
        self.head = head


class AnswerTooLarge(AnswerRefused):
    """An answer longer than the limit: reading stopped there; ``head`` is what was kept of its start."""

    def __init__(self, limit: int, *, request: httpx.Request, head: bytes = b"") -> None:
        super().__init__(f"answer larger than {limit} bytes", request=request, head=head)
        self.limit = limit


class AddressRefused(httpcore.ConnectError):
    """A target whose name resolves, at connection time, to an address the policy refuses (reaches httpx as a
    ``ConnectError`` carrying this message)."""


def non_public_reason(address: str) -> str | None:
    """Why the IP ``address`` is no public address (loopback, private, link-local, reserved, multicast,
    unspecified), or None."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for flag in ("is_loopback", "is_private", "is_link_local", "is_reserved", "is_multicast", "is_unspecified"):
        if getattr(ip, flag):
            return f"{address} is a {flag.removeprefix('is_').replace('_', '-')} address"
    return None


def public_only(address: str) -> str | None:
    """The address policy of targets the public may name (webhooks): only public addresses."""
    return non_public_reason(address)


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to now, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class _Deadlines:
    """The deadline of the exchange under way on each thread (sync httpx reads an answer on the calling thread)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def start(self, seconds: float) -> object:
        token = object()
        self._local.current = (token, time.monotonic() + seconds, seconds)
        return token

    def end(self, token: object) -> None:
        current = getattr(self._local, "current", None)
        if current is not None and current[0] is token:
            self._local.current = None

    def bound(self, timeout: float | None, late: type[Exception]) -> float | None:
        """``timeout`` cut to what is left of the deadline; ``late`` raised when nothing is left."""
        current = getattr(self._local, "current", None)
        if current is None:
            return timeout
        _, deadline, seconds = current
        left = deadline - time.monotonic()
        if left <= 0:
            raise late(f"no whole answer within {seconds}s")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read, write and TLS handshake waits no longer than the exchange has left."""

    def __init__(self, stream: httpcore.NetworkStream, deadlines: _Deadlines) -> None:
        self._stream = stream
        self._deadlines = deadlines

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadlines.bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadlines.bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(ssl_context, server_hostname, self._deadlines.bound(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(stream, self._deadlines)

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sockets under the exchange's deadline; with a ``policy``, each connection resolves the name, checks
    every address it resolves to, and connects to the first, checked one (so a name that changes its answer between
    the check and the connection cannot slip in another address). TLS keeps the name: SNI and the certificate check
    use the URL's host, not the address."""

    def __init__(self, deadlines: _Deadlines, *, policy: AddressPolicy | None, resolve: Resolver, network: httpcore.NetworkBackend) -> None:
        self._deadlines = deadlines
        self._policy = policy
        self._resolve = resolve
        self._network = network

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None, socket_options=None) -> httpcore.NetworkStream:
        address = self._checked(host, port) if self._policy is not None else host
        timeout = self._deadlines.bound(timeout, httpcore.ConnectTimeout)
        stream = self._network.connect_tcp(address, port, timeout=timeout, local_address=local_address, socket_options=socket_options)
        return _DeadlineStream(stream, self._deadlines)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options=None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("bounded exchanges go over TCP only")

    def sleep(self, seconds: float) -> None:
        self._network.sleep(seconds)

    def _checked(self, host: str, port: int) -> str:
        try:
            addresses = self._resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from None
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        for address in addresses:
            reason = self._policy(address)
            if reason is not None:
                shown = reason if address == host else f"{host} resolves to {address}: {reason}"
                raise AddressRefused(f"refused to connect: {shown}")
        return addresses[0]


class _NetworkTransport(httpx.HTTPTransport):
    """httpx's transport over an httpcore pool with the network backend given (httpx takes no backend parameter;
    httpcore's pool does)."""

    def __init__(self, *, ssl_context: ssl.SSLContext, backend: httpcore.NetworkBackend) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        limits = httpx.Limits()
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class _BoundedStream(httpx.SyncByteStream):
    """The answer's body as it arrives: at most ``limit`` bytes, and none after the deadline."""

    def __init__(self, stream: httpx.SyncByteStream, *, request: httpx.Request, limit: int, deadline: float, seconds: float, ended) -> None:
        self._stream = stream
        self._request = request
        self._limit = limit
        self._deadline = deadline
        self._seconds = seconds
        self._ended = ended

    def __iter__(self) -> Iterator[bytes]:
        received, head = 0, bytearray()
        for chunk in self._stream:
            received += len(chunk)
            if received > self._limit:
                raise AnswerTooLarge(self._limit, request=self._request, head=bytes(head))
            if len(head) < KEPT_ANSWER_BYTES:
                head += chunk[: KEPT_ANSWER_BYTES - len(head)]
            if time.monotonic() > self._deadline:
                raise httpx.ReadTimeout(f"no whole answer within {self._seconds}s", request=self._request)
            yield chunk

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._ended()


class BoundedTransport(httpx.BaseTransport):
    """A transport that bounds every exchange made through it: ``timeout`` seconds for the whole of it (connect,
    send, the whole answer: not per read), ``max_answer_bytes`` of answer read as a stream (past it
    :class:`AnswerTooLarge`, reading stops). It asks for answers uncompressed and refuses compressed ones (their size
    is unknown until inflated).

    Over the network (``inner`` made by :func:`bounded_transport`) the deadline reaches every socket operation, so an
    answer trickled a byte at a time ends at the deadline; over a handed transport (tests, in-process sandboxes) the
    size and the deadline are checked between the chunks it yields.
    """

    def __init__(self, inner: httpx.BaseTransport, *, timeout: float, max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES, deadlines: _Deadlines | None = None) -> None:
        self.inner = inner
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self._deadlines = deadlines or _Deadlines()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["Accept-Encoding"] = "identity"
        deadline = time.monotonic() + self.timeout
        token = self._deadlines.start(self.timeout)
        ended = lambda: self._deadlines.end(token)  # noqa: E731
        try:
            response = self.inner.handle_request(request)
        except BaseException:
            ended()
            raise
        try:
            self._check_head(response, request)
        except BaseException:
            response.close()
            ended()
            raise
        response.stream = _BoundedStream(response.stream, request=request, limit=self.max_answer_bytes, deadline=deadline, seconds=self.timeout, ended=ended)
        return response

    def _check_head(self, response: httpx.Response, request: httpx.Request) -> None:
        length = response.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > self.max_answer_bytes:
            raise AnswerTooLarge(self.max_answer_bytes, request=request)
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise AnswerRefused(f"answer compressed with {encoding!r} though asked uncompressed", request=request)

    def close(self) -> None:
        self.inner.close()


def bounded_transport(
    *,
    timeout: float,
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    verify: ssl.SSLContext | bool = True,
    policy: AddressPolicy | None = None,
    resolve: Resolver = system_resolver,
    network: httpcore.NetworkBackend | None = None,
) -> BoundedTransport:
    """A :class:`BoundedTransport` over the network: TLS per ``verify`` (a context, or True for the public CAs);
    with ``policy`` (e.g. :func:`public_only`) each connection goes only to an address it allows, checked when the
    connection is made (``resolve`` and ``network`` replace the resolver and the sockets in tests)."""
    deadlines = _Deadlines()
    context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify, trust_env=False)
    backend = _DeadlineBackend(deadlines, policy=policy, resolve=resolve, network=network or httpcore.SyncBackend())
    return BoundedTransport(_NetworkTransport(ssl_context=context, backend=backend), timeout=timeout, max_answer_bytes=max_answer_bytes, deadlines=deadlines)


def bounded_client(
    *,
    timeout: float,
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    transport: httpx.BaseTransport | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """An ``httpx.Client`` whose every exchange is bounded (see :class:`BoundedTransport`): over ``transport`` when
    one is handed, else over the network with TLS per ``verify``. Redirects are never followed."""
    if transport is None:
        bounded = bounded_transport(timeout=timeout, max_answer_bytes=max_answer_bytes, verify=verify)
    else:
        bounded = BoundedTransport(transport, timeout=timeout, max_answer_bytes=max_answer_bytes)
    return httpx.Client(transport=bounded, timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False)


class MutualTlsConfigLike(Protocol):
    """The config fields :class:`MutualTlsClients` reads (see :class:`connectors.config_checks.MutualTlsConfig`)."""

    client_certificate: Path | None
    client_key: Path | None
    ca_bundle: Path | None
    timeout: float
    max_answer_bytes: int


class MutualTlsClients:
    """The HTTPS clients of one connector, made on first use and kept until :meth:`close`.

    With ``transport`` given (tests, in-process sandboxes) one client goes through it. Otherwise a configured
    ``client_certificate`` serves every request, or else each country gets a client presenting the development PKI's
    ``tls/client-<CC>.pem``/``.key`` under ``certs_dir``; every client trusts only the CA bundle (the configured
    ``ca_bundle``, else ``certs_dir/ca.pem``). ``party`` names the country in errors ("issuing country", "NPPO"…).
    Every client is bounded (:func:`bounded_client`): the config's ``timeout`` for each whole exchange, its
    ``max_answer_bytes`` for each answer.
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
        bounds = {"timeout": self.config.timeout, "max_answer_bytes": self.config.max_answer_bytes}
        if self.transport is not None:
            return bounded_client(transport=self.transport, **bounds)
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
        return bounded_client(verify=tls, **bounds)

    def close(self) -> None:
        """Close every client made, and the transport handed in (the connector owns it, as an httpx client does)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
        if self.transport is not None:
            self.transport.close()
