"""WS-Security for TRACES-NT as pure functions: the SOAP headers a client sends, and their check on the server side.

TRACES-NT authenticates every call with a ``wsse:Security`` header (SOAP 1.1) holding a live ``wsu:Timestamp`` and a
``wsse:UsernameToken`` whose password is a digest, beside two TRACES headers (``v3`` is
``http://ec.europa.eu/sanco/tracesnt/base/v3``)::

    v3:LanguageCode          en
    v3:WebServiceClientId    the client id TRACES issued with the account
    wsse:Security
        wsu:Timestamp        wsu:Created, wsu:Expires
        wsse:UsernameToken   wsse:Username, wsse:Password Type="…#PasswordDigest", wsse:Nonce EncodingType="…#Base64Binary",
                             wsu:Created

``PasswordDigest = Base64(SHA1(nonce + created + authenticationKey))`` with the nonce as raw bytes (it travels Base64
encoded). A failed check is answered with the SOAP fault ``env:Client`` / ``UnauthenticatedException``. No I/O here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from lxml import etree

from hub.namespaces import SOAP11_ENV

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TRACES_BASE_V3 = "http://ec.europa.eu/sanco/tracesnt/base/v3"
PASSWORD_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
BASE64_BINARY = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
UNAUTHENTICATED = "UnauthenticatedException"

#: Lifetime of the client's timestamp: TRACES answers use 5 s, one client 3 min; a minute leaves room for slow links.
DEFAULT_TTL = timedelta(seconds=60)
#: How far a client clock may run ahead of the server's, and how old a token may be, before it is refused.
DEFAULT_SKEW = timedelta(seconds=30)
DEFAULT_MAX_AGE = timedelta(minutes=5)
_NONCE_BYTES = 16


class Unauthenticated(Exception):
    """A request whose WS-Security header does not authenticate; ``str()`` says why (for logs, never for the caller)."""


def password_digest(nonce: bytes, created: str, authentication_key: str) -> str:
    """``Base64(SHA1(nonce + created + authenticationKey))``: nonce raw bytes, the other two UTF-8."""
    digest = hashlib.sha1(nonce + created.encode("utf-8") + authentication_key.encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def format_instant(instant: datetime) -> str:
    """``2026-09-29T14:12:02.966Z``: UTC with milliseconds, as WS-Security timestamps are usually written."""
    return instant.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def security_header(
    *,
    username: str,
    authentication_key: str,
    now: datetime | None = None,
    nonce: bytes | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> etree._Element:
    """A fresh ``wsse:Security`` element: timestamp from ``now`` to ``now + ttl``, and a digest username token."""
    now = now or datetime.now(timezone.utc)
    nonce = os.urandom(_NONCE_BYTES) if nonce is None else nonce
    created = format_instant(now)
    security = etree.Element(f"{{{WSSE}}}Security", nsmap={"wsse": WSSE, "wsu": WSU})
    timestamp = etree.SubElement(security, f"{{{WSU}}}Timestamp")
    etree.SubElement(timestamp, f"{{{WSU}}}Created").text = created
    etree.SubElement(timestamp, f"{{{WSU}}}Expires").text = format_instant(now + ttl)
    token = etree.SubElement(security, f"{{{WSSE}}}UsernameToken")
    token.set(f"{{{WSU}}}Id", f"UsernameToken-{uuid.uuid4().hex.upper()}")
    etree.SubElement(token, f"{{{WSSE}}}Username").text = username
    password = etree.SubElement(token, f"{{{WSSE}}}Password", Type=PASSWORD_DIGEST)
    password.text = password_digest(nonce, created, authentication_key)
    encoded = etree.SubElement(token, f"{{{WSSE}}}Nonce", EncodingType=BASE64_BINARY)
    encoded.text = base64.b64encode(nonce).decode("ascii")
    etree.SubElement(token, f"{{{WSU}}}Created").text = created
    return security


def traces_headers(
    *,
    username: str,
    authentication_key: str,
    client_id: str,
    language: str = "en",
    now: datetime | None = None,
    nonce: bytes | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> list[etree._Element]:
    """Every SOAP header a TRACES-NT call carries, in the order of the saved requests: ``v3:LanguageCode``,
    ``v3:WebServiceClientId``, ``wsse:Security``."""
    language_code = etree.Element(f"{{{TRACES_BASE_V3}}}LanguageCode", nsmap={"v3": TRACES_BASE_V3})
    language_code.text = language
    client = etree.Element(f"{{{TRACES_BASE_V3}}}WebServiceClientId", nsmap={"v3": TRACES_BASE_V3})
    client.text = client_id
    security = security_header(username=username, authentication_key=authentication_key, now=now, nonce=nonce, ttl=ttl)
    return [language_code, client, security]


def answer_security(*, now: datetime | None = None, ttl: timedelta = timedelta(seconds=5)) -> etree._Element:
    """The ``wsse:Security`` of a TRACES-NT answer: only a ``wsu:Timestamp``, 5 seconds long as in the saved answers."""
    now = now or datetime.now(timezone.utc)
    security = etree.Element(f"{{{WSSE}}}Security", nsmap={"wsse": WSSE, "wsu": WSU})
    timestamp = etree.SubElement(security, f"{{{WSU}}}Timestamp")
    etree.SubElement(timestamp, f"{{{WSU}}}Created").text = format_instant(now)
    etree.SubElement(timestamp, f"{{{WSU}}}Expires").text = format_instant(now + ttl)
    return security


class NonceCache:
    """Nonces seen recently, each forgotten once no token carrying it could still be accepted. Thread-safe."""

    def __init__(self, *, keep_for: timedelta = DEFAULT_MAX_AGE + DEFAULT_SKEW, limit: int = 100_000) -> None:
        self._keep_for = keep_for
        self._limit = limit
        self._seen: OrderedDict[tuple[str, str], datetime] = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, username: str, nonce: str, now: datetime) -> bool:
        """Record ``nonce`` for ``username``; False when it was already used within the window (a replay)."""
        with self._lock:
            while self._seen and (next(iter(self._seen.values())) < now - self._keep_for or len(self._seen) > self._limit):
                self._seen.popitem(last=False)
            key = (username, nonce)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


def verify_security(
    header: etree._Element | None,
    *,
    accounts: Mapping[str, str],
    nonces: NonceCache,
    now: datetime | None = None,
    skew: timedelta = DEFAULT_SKEW,
    max_age: timedelta = DEFAULT_MAX_AGE,
) -> str:
    """Check the ``wsse:Security`` of a request (``header`` is the ``soap:Header`` element) and return the username.

    ``accounts`` maps usernames to their authentication keys. Raises :class:`Unauthenticated` for a missing token, an
    unknown user, a wrong digest, a timestamp that is not live, or a nonce already used.
    """
    now = now or datetime.now(timezone.utc)
    security = header.find(f"{{{WSSE}}}Security") if header is not None else None
    if security is None:
        raise Unauthenticated("no wsse:Security header")
    timestamp = security.find(f"{{{WSU}}}Timestamp")
    if timestamp is None:
        raise Unauthenticated("no wsu:Timestamp")
    stamp_created = _instant(timestamp.findtext(f"{{{WSU}}}Created"), "wsu:Timestamp/wsu:Created")
    expires = _instant(timestamp.findtext(f"{{{WSU}}}Expires"), "wsu:Timestamp/wsu:Expires")
    if stamp_created > now + skew:
        raise Unauthenticated(f"timestamp created in the future ({format_instant(stamp_created)})")
    if expires <= now:
        raise Unauthenticated(f"timestamp expired at {format_instant(expires)}")
    token = security.find(f"{{{WSSE}}}UsernameToken")
    if token is None:
        raise Unauthenticated("no wsse:UsernameToken")
    username = (token.findtext(f"{{{WSSE}}}Username") or "").strip()
    password = token.find(f"{{{WSSE}}}Password")
    nonce_text = (token.findtext(f"{{{WSSE}}}Nonce") or "").strip()
    created = (token.findtext(f"{{{WSU}}}Created") or "").strip()
    if password is None or password.get("Type") != PASSWORD_DIGEST:
        raise Unauthenticated("the password is not a PasswordDigest")
    if username not in accounts:
        raise Unauthenticated(f"unknown username {username!r}")
    token_created = _instant(created, "wsse:UsernameToken/wsu:Created")
    if token_created > now + skew or token_created < now - max_age:
        raise Unauthenticated(f"username token created at {created}, outside the accepted window")
    try:
        nonce = base64.b64decode(nonce_text, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthenticated("the nonce is not Base64") from None
    if not nonce:
        raise Unauthenticated("no nonce")
    expected = password_digest(nonce, created, accounts[username])
    if not hmac.compare_digest(expected, (password.text or "").strip()):
        raise Unauthenticated(f"wrong password digest for {username!r}")
    # Recorded only once the digest is right: an attacker must not be able to burn a client's nonces.
    if not nonces.first_use(username, nonce_text, now):
        raise Unauthenticated(f"nonce already used by {username!r} (replay)")
    return username


def unauthenticated_fault() -> bytes:
    """The fault TRACES-NT answers to a call that does not authenticate, shaped as the saved capture."""
    return (
        b"<?xml version='1.0' encoding='UTF-8'?>"
        b'<env:Envelope xmlns:env="' + SOAP11_ENV.encode() + b'"><env:Header/><env:Body><env:Fault>'
        b"<faultcode>env:Client</faultcode><faultstring>" + UNAUTHENTICATED.encode() + b"</faultstring>"
        b"</env:Fault></env:Body></env:Envelope>"
    )


def _instant(text: str | None, what: str) -> datetime:
    try:
        instant = datetime.fromisoformat((text or "").strip().replace("Z", "+00:00"))
    except ValueError:
        raise Unauthenticated(f"{what} is not a date-time: {text!r}") from None
    if instant.tzinfo is None:
        raise Unauthenticated(f"{what} has no time zone: {text!r}")
    return instant
