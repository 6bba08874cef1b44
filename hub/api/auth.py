"""Who is calling: machine clients, their role and the tenants they work for.

A client proves who it is in one of three ways:

- an **API key**: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; only its SHA-256 is stored;
- **mutual TLS**: the client certificate of the connection, registered by its SHA-256 fingerprint (that certificate
  only) or by its subject (any certificate the server's CA issues under that name);
- **OAuth2 client credentials**: a signed JWT assertion exchanged at ``POST /v1/oauth/token`` (:mod:`hub.api.oauth`)
  for a short-lived access token, sent as ``Authorization: Bearer``; only its SHA-256 is stored;
- a **console session** (a person): a name and password (scrypt, ``hub clients add NAME --password``) exchanged at
  ``/console/login`` (:mod:`hub.web.session`) for an opaque token in the ``hub_session`` cookie, stored hashed like
  an access token. A request it authenticates that changes something (not GET/HEAD/OPTIONS) must come from the hub's
  own pages: its ``Origin`` (else ``Referer``) must be the hub's, or 403 (no cross-site request forgery).

Its **role** says what it may do (:mod:`hub.api.access` maps every route to the roles allowed) and its **scope**
which tenants' objects it sees (:class:`hub.scope.Scope`):

==================  ===========================================================================================
issuing_authority   its tenant (its country): submits and reads its own
operator            acts on behalf of the authorities its record names (never ``*``); sees only theirs
auditor             reads (never writes) the tenants it is granted (``*``: every tenant), traces included
foreign_authority   verification only (``/v1/verify``); sees no tenant's objects
administrator       manages clients, webhooks, connectors and dead letters; sees every tenant
==================  ===========================================================================================

A client whose scope holds several tenants may narrow one request to one of them with ``X-On-Behalf-Of: FR``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from typing import Iterator
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from sqlalchemy import select

from hub.errors import ConflictError, InputError, PermissionDenied, Unauthenticated
from hub.scope import ALL_TENANTS, EVERYTHING, NOTHING, SEPARATOR, Scope
from hub.store.models import ApiClient, OAuthToken, utcnow
from hub.tls_peer import client_certificate

KEY_PREFIX = "hub_"
ON_BEHALF_OF = "X-On-Behalf-Of"
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key or access token>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or the key in X-API-Key")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CACHE_LIMIT = 10_000
#: How long a running hub remembers who a key or certificate belongs to (``hub clients remove`` takes effect within it).
CACHE_SECONDS = 60
#: The cookie holding a person's console session (:mod:`hub.web.session`), and the prefix of its opaque token.
SESSION_COOKIE = "hub_session"
SESSION_PREFIX = "hss_"
#: scrypt's cost (n = 2^14, r = 8, p = 1: 16 MiB and some 50 ms a try) and a password's bounds.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD, MAX_PASSWORD = 10, 200
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Role(StrEnum):
    """What a client is, and so what it may do (see :mod:`hub.api.access`)."""

    ISSUING_AUTHORITY = "issuing_authority"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    FOREIGN_AUTHORITY = "foreign_authority"
    ADMINISTRATOR = "administrator"


@dataclass(frozen=True)
class Client:
    """The authenticated caller of one request: its role and the scope it acts in (its grant, or the one tenant it
    named in ``X-On-Behalf-Of``)."""

    id: str
    name: str
    role: Role
    scope: Scope
    grant: Scope

    @property
    def actor(self) -> str:
        return f"api:{self.name}"

    @property
    def tenant(self) -> str:
        """The scope as written: the one tenant it acts for (``FR``), several (``FR,NL``), or ``*``."""
        return self.scope.name

    @property
    def sees_every_tenant(self) -> bool:
        """Whether the caller sees every tenant (an administrator, or an auditor of every tenant)."""
        return self.scope.everything


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64) of a person's password; :class:`InputError` for one too short or long."""
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InputError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters", where="password")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(("scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), base64.b64encode(salt).decode(), base64.b64encode(digest).decode()))


def password_matches(stored: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made of (False for no stored password or a malformed one)."""
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt" or len(password) > MAX_PASSWORD:
            return False
        expected = base64.b64decode(digest)
        given = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(given, expected)


# --- registering a client ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """A checked role with what it is bound to: ``tenant`` (own country, or ``*``) and ``acts_for`` (``FR,NL``)."""

    role: Role
    tenant: str | None
    acts_for: str | None


def grant_for(*, role: str | None, tenant: str | None, acts_for: str | None = None, operator: bool = False) -> Grant:
    """Check a role against what it is bound to, or :class:`InputError` naming the option at fault.

    The migration path of the clients made before roles: no role with tenant ``*`` (or ``operator``) is an
    administrator; no role with a country is that country's issuing authority."""
    tenant = tenant.strip().upper() if tenant is not None else None
    countries = _countries(acts_for) if acts_for is not None else None
    if role is None and operator:
        tenant = None  # before roles, a key of any tenant with the operator flag read every tenant
    if role is None:
        role = Role.ADMINISTRATOR if tenant == ALL_TENANTS or operator else Role.OPERATOR if countries and tenant is None else Role.ISSUING_AUTHORITY
    try:
        role = Role(role.strip().lower().replace("-", "_"))
    except ValueError:
        raise InputError(f"role {role!r}: one of {', '.join(r.value for r in Role)}", where="role") from None
    if role in (Role.ISSUING_AUTHORITY, Role.FOREIGN_AUTHORITY):
        if tenant is None or not _COUNTRY.match(tenant):
            raise InputError(f"tenant {tenant or ''!r}: {_a(role)} is bound to its country, an ISO 3166 code of two letters (e.g. FR)", where="tenant")
        if countries is not None:
            raise InputError(f"acts-for: {_a(role)} acts for its own country only (its tenant)", where="acts_for")
        return Grant(role, tenant, None)
    if role is Role.ADMINISTRATOR:
        if tenant not in (None, ALL_TENANTS) or countries is not None:
            raise InputError("an administrator sees every tenant: give it no tenant and no acts-for", where="tenant")
        return Grant(role, ALL_TENANTS, None)
    if tenant is not None:
        raise InputError(f"tenant: {_a(role)} has no tenant of its own; name the authorities with acts-for", where="tenant")
    if not countries:
        raise InputError(f"acts-for: {_a(role)} names the authorities it works for (e.g. FR or FR,NL)", where="acts_for")
    if role is Role.OPERATOR and ALL_TENANTS in countries:
        raise InputError("acts-for: an operator acts for named authorities, never for every tenant (*); an administrator sees every tenant", where="acts_for")
    if ALL_TENANTS in countries and len(countries) > 1:
        raise InputError("acts-for: * (every tenant) stands alone", where="acts_for")
    return Grant(role, None, SEPARATOR.join(countries))


def _a(role: Role) -> str:
    words = role.value.replace("_", " ")
    return ("an " if words[0] in "aeiou" else "a ") + words


def _countries(acts_for: str) -> list[str]:
    countries = sorted({c.strip().upper() for c in acts_for.split(SEPARATOR)})
    bad = [c for c in countries if c != ALL_TENANTS and not _COUNTRY.match(c)]
    if bad or not countries or len(",".join(countries)) > 300:
        raise InputError(f"acts-for {acts_for!r}: ISO 3166 country codes of two letters separated by commas (e.g. FR,NL)", where="acts_for")
    return countries


def certificate_identity(pem: bytes) -> tuple[str, str]:
    """The SHA-256 fingerprint (hex, of the DER) and the RFC 4514 subject of a PEM certificate, or InputError."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise InputError(f"not a PEM X.509 certificate ({exc})", where="certificate") from None
    return fingerprint(certificate), certificate.subject.rfc4514_string()


def fingerprint(certificate: x509.Certificate) -> str:
    """The SHA-256 of the certificate's DER, in hex: how a TLS client is registered."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def jwt_public_key(pem: bytes) -> str:
    """The PEM public key (RSA of 2048 bits or more, or EC P-256) a client signs its assertions with; a certificate's
    key is taken from it. InputError for anything else."""
    try:
        key = x509.load_pem_x509_certificate(pem).public_key() if b"CERTIFICATE" in pem else serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise InputError(f"not a PEM public key or certificate ({exc})", where="jwt_public_key") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        pass
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        pass
    else:
        raise InputError("the key signs RS256, PS256 (RSA, 2048 bits or more) or ES256 (EC P-256) assertions; this one cannot", where="jwt_public_key")
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def create_client(
    session,
    *,
    name: str,
    tenant: str | None = None,
    role: str | None = None,
    acts_for: str | None = None,
    operator: bool = False,
    key: str | None = None,
    certificate: bytes | None = None,
    certificate_subject: str | None = None,
    jwt_key: bytes | None = None,
    password: str | None = None,
) -> tuple[ApiClient, str | None]:
    """Create a client and return it with its API key (shown once; only its hash is kept). A client registered with a
    TLS certificate, a certificate subject, a JWT key or a password (a person, who logs into the console)
    authenticates by it and gets no API key (None)."""
    grant = grant_for(role=role, tenant=tenant, acts_for=acts_for, operator=operator)
    password_hash = hash_password(password) if password is not None else None
    if session.scalars(select(ApiClient).where(ApiClient.name == name)).first() is not None:
        raise ConflictError(f"a client named {name!r} exists already; choose another name", where="name")
    sha256 = certificate_identity(certificate)[0] if certificate is not None else None
    subject = _subject(certificate_subject) if certificate_subject is not None else None
    if sha256 and session.scalar(select(ApiClient.name).where(ApiClient.certificate_sha256 == sha256)):
        raise ConflictError("this certificate is registered for another client already", where="certificate")
    if subject and session.scalar(select(ApiClient.name).where(ApiClient.certificate_subject == subject)):
        raise ConflictError(f"the subject {subject!r} is registered for another client already", where="certificate_subject")
    public_key = jwt_public_key(jwt_key) if jwt_key is not None else None
    if key is None and not (sha256 or subject or public_key or password_hash):
        key = KEY_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(
        id=str(uuid.uuid4()), name=name, role=grant.role.value, tenant=grant.tenant, acts_for=grant.acts_for,
        key_hash=hash_key(key) if key else None, certificate_sha256=sha256, certificate_subject=subject,
        jwt_public_key=public_key, password_hash=password_hash,
    )
    session.add(client)
    session.flush()
    return client, key


def _subject(value: str) -> str:
    try:
        return x509.Name.from_rfc4514_string(value.strip()).rfc4514_string()
    except ValueError as exc:
        raise InputError(f"certificate subject {value!r}: an RFC 4514 name such as 'CN=border-system,O=DGAL,C=FR'" + (f" ({exc})" if str(exc) else ""), where="certificate_subject") from None


# --- who is calling -----------------------------------------------------------------------------------------------------


def client_of(row: ApiClient) -> Client:
    """The caller a stored client is, in its whole grant."""
    role = Role(row.role)
    if role is Role.ADMINISTRATOR:
        grant = EVERYTHING
    elif role is Role.ISSUING_AUTHORITY:
        grant = Scope.of_tenants([row.tenant]) if row.tenant and row.tenant != ALL_TENANTS else NOTHING
    elif role is Role.FOREIGN_AUTHORITY:
        grant = NOTHING
    elif role is Role.OPERATOR and (not row.acts_for or ALL_TENANTS in row.acts_for):
        grant = NOTHING  # never every tenant, whatever was stored
    else:
        grant = Scope.of(row.acts_for or "")
    return Client(id=row.id, name=row.name, role=role, scope=grant, grant=grant)


def find_client(session, key: str) -> tuple[Client, datetime | None] | None:
    """The client of an API key or of an access token, with the token's expiry (None for a key): the caller refuses
    an expired one."""
    digest = hash_key(key)
    row = session.scalars(select(ApiClient).where(ApiClient.key_hash == digest)).first()
    if row is not None:
        return client_of(row), None
    token = session.get(OAuthToken, digest)
    if token is None:
        return None
    row = session.get(ApiClient, token.client_id)
    return (client_of(row), token.expires_at) if row is not None else None


def find_tls_client(session, certificate: x509.Certificate) -> Client | None:
    """The client registered with this TLS certificate (its fingerprint first, else its subject)."""
    row = session.scalars(select(ApiClient).where(ApiClient.certificate_sha256 == fingerprint(certificate))).first()
    if row is None:
        row = session.scalars(select(ApiClient).where(ApiClient.certificate_subject == certificate.subject.rfc4514_string())).first()
    return client_of(row) if row is not None else None


def current_client(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header_key: str | None = Depends(_header),
) -> Client:
    """FastAPI dependency: the caller (API key, access token, else TLS client certificate) in the scope of this
    request, or 401; 403 for an ``X-On-Behalf-Of`` it may not act for. Found once per request (by
    :func:`hub.api.access.authorize`) and kept on ``request.state``."""
    known = getattr(request.state, "client", None)
    if isinstance(known, Client):
        return known
    key = (bearer.credentials if bearer else None) or header_key
    session_token = request.cookies.get(SESSION_COOKIE) if not key else None
    if key:
        client = _by_key(request, key)
    elif session_token:
        client = _by_session(request, session_token)
    else:
        client = _by_certificate(request)
    return _on_behalf_of(client, request.headers.get(ON_BEHALF_OF))


async def caller(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header_key: str | None = Depends(_header),
) -> Client:
    """FastAPI dependency: :func:`current_client` on the event loop when the caller is known already (the app's
    :func:`hub.api.access.authorize` found it) or remembered; in a worker thread only when the store must be asked."""
    known = getattr(request.state, "client", None)
    if isinstance(known, Client):
        return known
    try:
        with _remembered_only():
            return current_client(request, bearer, header_key)
    except _MustAsk:
        return await run_in_threadpool(current_client, request, bearer, header_key)


class _MustAsk(Exception):
    """Raised by :func:`_cached` under :func:`_remembered_only` instead of reading the store."""


_REMEMBERED_ONLY: ContextVar[bool] = ContextVar("hub_auth_remembered_only", default=False)


@contextmanager
def _remembered_only() -> Iterator[None]:
    token = _REMEMBERED_ONLY.set(True)
    try:
        yield
    finally:
        _REMEMBERED_ONLY.reset(token)


def _by_session(request: Request, token: str) -> Client:
    found = _cached(request, hash_key(token), lambda session: find_client(session, token)) if token.startswith(SESSION_PREFIX) else None
    if found is None or found[1] is None:
        raise Unauthenticated("no console session: log in at /console/login")
    if found[1] <= utcnow():
        raise Unauthenticated("the console session expired: log in again at /console/login")
    if request.method not in _SAFE_METHODS and not same_origin(request):
        raise PermissionDenied("a change made with a console session must come from the hub's own pages (the Origin or Referer header is missing or another site's)", where="Origin")
    return found[0]


def same_origin(request: Request) -> bool:
    """Whether the request's ``Origin`` (else ``Referer``) is the hub itself: the host it was sent to, or the hub's
    public URL (behind a proxy)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    host = (request.headers.get("host") or "").lower()
    if parts.netloc.lower() == host and parts.scheme in ("http", "https"):
        return True
    public = urlsplit(getattr(getattr(request.app.state.broker, "settings", None), "public_url", "") or "")
    return bool(public.netloc) and (parts.scheme, parts.netloc.lower()) == (public.scheme, public.netloc.lower())


def _cached(request: Request, name: str, find) -> tuple[Client, datetime | None] | None:
    """What ``find()`` says of credentials ``name``, remembered for :data:`CACHE_SECONDS` (so a removed client stops
    within that time) and never past an access token's expiry."""
    cache: dict = request.app.state.client_cache
    now = utcnow()
    entry = cache.get(name)
    if entry is None or entry[1] <= now:
        if _REMEMBERED_ONLY.get():
            raise _MustAsk(name)
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        with request.app.state.broker.database.transaction() as session:
            found = find(session)
        if found is None:
            cache.pop(name, None)
            return None
        entry = (found, now + timedelta(seconds=CACHE_SECONDS))
        cache[name] = entry
    return entry[0]


def _by_key(request: Request, key: str) -> Client:
    found = _cached(request, hash_key(key), lambda session: find_client(session, key))
    if found is None:
        raise Unauthenticated("unknown API key or access token (an access token lives a few minutes: ask POST /v1/oauth/token for another)")
    client, expires_at = found
    if expires_at is not None and expires_at <= utcnow():
        raise Unauthenticated("the access token expired: ask POST /v1/oauth/token for another")
    return client


def _by_certificate(request: Request) -> Client:
    try:
        certificate = client_certificate(request)
    except ValueError:
        certificate = None
    if certificate is None:
        raise Unauthenticated("credentials are required: 'Authorization: Bearer <API key or access token>' or a registered TLS client certificate (hub clients add)")
    found = _cached(request, "tls:" + fingerprint(certificate), lambda session: _with_no_expiry(find_tls_client(session, certificate)))
    if found is None:
        raise Unauthenticated("this TLS client certificate is registered for no client (hub clients add --certificate)")
    return found[0]


def _with_no_expiry(client: Client | None) -> tuple[Client, None] | None:
    return (client, None) if client is not None else None


def _on_behalf_of(client: Client, tenant: str | None) -> Client:
    if tenant is None or not tenant.strip():
        return client
    wanted = tenant.strip().upper()
    narrowed = client.grant.narrowed_to(wanted) if _COUNTRY.match(wanted) else None
    if narrowed is None:
        raise PermissionDenied(f"this client does not act for {tenant.strip()[:20]!r}", where=ON_BEHALF_OF)
    return replace(client, scope=narrowed)
