"""``POST /v1/oauth/token``: OAuth2 client credentials with a signed JWT assertion (RFC 6749 §4.4, RFC 7523 §2.2).

The client posts, form-encoded, ``grant_type=client_credentials``,
``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and ``client_assertion``: a JWT it
signed (RS256, PS256 or ES256) with the key whose public half ``hub clients add --jwt-public-key`` registered. The hub
checks the signature and that ``iss`` and ``sub`` are the client's name, ``aud`` is this endpoint's URL
(``HUB_PUBLIC_URL`` + ``/v1/oauth/token``), ``exp`` is at most five minutes ahead, and ``jti`` was never used before;
it answers an opaque access token, valid five minutes, to send as ``Authorization: Bearer``. Only the token's SHA-256
is stored. Refusals follow RFC 6749 §5.2: ``{"error": "invalid_client" | "invalid_request" |
"unsupported_grant_type", "error_description": …}``, 401 for a client that did not prove who it is, 400 otherwise.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

import jwt
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from hub.api.auth import hash_key
from hub.store.models import ApiClient, OAuthAssertion, OAuthToken, utcnow

router = APIRouter(prefix="/v1/oauth", tags=["authentication"])

GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS256", "PS256", "ES256")
#: The longest an assertion may live (its ``exp`` past now), and the clock difference tolerated on ``exp`` and ``iat``.
MAX_ASSERTION_SECONDS = 300
CLOCK_SKEW_SECONDS = 30
#: How long an access token lives.
TOKEN_SECONDS = 300
TOKEN_PREFIX = "hat_"
_MAX_ASSERTION_CHARS = 16_384
_FORM = "application/x-www-form-urlencoded"


class OAuthRefusal(Exception):
    """A refused token request: its RFC 6749 error code, its description and HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def _invalid_client(description: str) -> OAuthRefusal:
    return OAuthRefusal("invalid_client", description, 401)


@router.post(
    "/token",
    responses={400: {"description": "invalid_request, unsupported_grant_type"}, 401: {"description": "invalid_client: the assertion proves nothing"}},
    openapi_extra={"requestBody": {"required": True, "content": {_FORM: {"schema": {"type": "object", "required": ["grant_type", "client_assertion_type", "client_assertion"], "properties": {
        "grant_type": {"type": "string", "enum": [GRANT_TYPE]},
        "client_assertion_type": {"type": "string", "enum": [ASSERTION_TYPE]},
        "client_assertion": {"type": "string", "description": "a JWT signed with the client's registered key"},
        "client_id": {"type": "string", "description": "optional; the client's name, as in iss"},
    }}}}}},
)
async def token(request: Request) -> JSONResponse:
    """An access token for a client that proves who it is with a signed JWT assertion."""
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    try:
        form = _form(request.headers.get("content-type", ""), await request.body())
        answer = await run_in_threadpool(issue_token, request.app.state.broker, form)
    except OAuthRefusal as refusal:
        body = {"error": refusal.error, "error_description": refusal.description, "message": refusal.description}
        if refusal.status == 401:
            headers["WWW-Authenticate"] = f'Bearer error="{refusal.error}"'
        return JSONResponse(body, status_code=refusal.status, headers=headers)
    return JSONResponse(answer, headers=headers)


def _form(content_type: str, body: bytes) -> dict[str, str]:
    if content_type.split(";")[0].strip().lower() != _FORM:
        raise OAuthRefusal("invalid_request", f"the request must be {_FORM}")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise OAuthRefusal("invalid_request", "the body is not a readable form (UTF-8, name=value&…, at most 20 fields)") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthRefusal("invalid_request", f"the parameter {name[:40]!r} is given more than once")
        form[name] = value
    return form


def token_endpoint(public_url: str) -> str:
    """The URL an assertion names in ``aud``: the hub's public URL and this endpoint's path."""
    return public_url.rstrip("/") + router.prefix + "/token"


def issue_token(broker, form: dict[str, str]) -> dict:
    """Check the token request ``form`` and store a new access token for its client; :class:`OAuthRefusal` else."""
    if form.get("grant_type") != GRANT_TYPE:
        raise OAuthRefusal("unsupported_grant_type" if form.get("grant_type") else "invalid_request", f"grant_type must be {GRANT_TYPE}")
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise OAuthRefusal("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = form.get("client_assertion") or ""
    if not assertion or len(assertion) > _MAX_ASSERTION_CHARS:
        raise OAuthRefusal("invalid_request", f"client_assertion: a signed JWT of at most {_MAX_ASSERTION_CHARS} characters is required")
    issuer = _claimed_issuer(assertion)
    if form.get("client_id") not in (None, issuer):
        raise _invalid_client("client_id and the assertion's iss name different clients")
    with broker.database.sessions() as session:
        row = session.scalars(select(ApiClient).where(ApiClient.name == issuer)).first()
        client_id, public_key = (row.id, row.jwt_public_key) if row is not None else (None, None)
    if client_id is None or not public_key:
        raise _invalid_client("no client of that name signs assertions here (hub clients add --jwt-public-key)")
    claims = _verified(assertion, public_key, issuer=issuer, audience=token_endpoint(broker.settings.public_url))
    now = utcnow()
    expires_at = datetime.fromtimestamp(claims["exp"], timezone.utc)
    access_token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with broker.database.transaction() as session:
            session.execute(delete(OAuthAssertion).where(OAuthAssertion.expires_at < now - timedelta(seconds=CLOCK_SKEW_SECONDS)))
            session.execute(delete(OAuthToken).where(OAuthToken.expires_at < now))
            session.add(OAuthAssertion(client_id=client_id, jti=claims["jti"], expires_at=expires_at))
            session.flush()
            session.add(OAuthToken(token_hash=hash_key(access_token), client_id=client_id, expires_at=now + timedelta(seconds=TOKEN_SECONDS), created_at=now))
    except IntegrityError:
        raise _invalid_client("this assertion was used already (its jti); sign a new one for each token") from None
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": TOKEN_SECONDS}


def _claimed_issuer(assertion: str) -> str:
    try:
        algorithm = jwt.get_unverified_header(assertion).get("alg")
        issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise _invalid_client("client_assertion is not a JWT") from None
    if algorithm not in ALGORITHMS:
        raise _invalid_client(f"the assertion is signed with {str(algorithm)[:20]!r}; accepted: {', '.join(ALGORITHMS)}")
    if not isinstance(issuer, str) or not issuer or len(issuer) > 100:
        raise _invalid_client("the assertion names no issuer (iss: the client's name)")
    return issuer


def _verified(assertion: str, public_key: str, *, issuer: str, audience: str) -> dict:
    try:
        claims = jwt.decode(
            assertion, public_key, algorithms=list(ALGORITHMS), audience=audience, issuer=issuer, leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.InvalidAudienceError:
        raise _invalid_client(f"the assertion's aud must be this token endpoint, {audience}") from None
    except jwt.ExpiredSignatureError:
        raise _invalid_client("the assertion expired") from None
    except jwt.PyJWTError as exc:
        raise _invalid_client(f"the assertion does not hold: {exc}") from None
    except (ValueError, TypeError):
        raise _invalid_client("the assertion does not hold: its signature does not fit the registered key") from None
    now = utcnow().timestamp()
    if claims["sub"] != issuer:
        raise _invalid_client("the assertion's sub must be its iss, the client's name")
    if not isinstance(claims["exp"], (int, float)) or claims["exp"] > now + MAX_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS:
        raise _invalid_client(f"the assertion's exp is more than {MAX_ASSERTION_SECONDS} seconds ahead")
    if isinstance(claims.get("iat"), (int, float)) and claims["iat"] > now + CLOCK_SKEW_SECONDS:
        raise _invalid_client("the assertion's iat is in the future")
    if not isinstance(claims["jti"], str) or not claims["jti"] or len(claims["jti"]) > 200:
        raise _invalid_client("the assertion's jti must be a string of 1 to 200 characters, new for each assertion")
    return claims
