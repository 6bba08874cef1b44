"""OAuth2 client credentials with a signed JWT assertion (RFC 7523), on both engines: a short-lived access token for
a client that proves who it is, and a clear RFC 6749 refusal (never a 500) for every assertion that proves nothing."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import hub.api.auth as auth
from hub.api.auth import create_client
from hub.api.oauth import ASSERTION_TYPE, token_endpoint
from hub.store.models import OAuthToken
from tests.support.broker import example_record


@pytest.fixture(scope="module")
def keys():
    """An RSA and an EC P-256 private key, and a stranger's RSA key."""
    return {"rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048), "ec": ec.generate_private_key(ec.SECP256R1()),
            "stranger": rsa.generate_private_key(public_exponent=65537, key_size=2048)}


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def clients(broker, keys):
    """``fr-rsa`` (FR issuing authority, RSA key) and ``op-ec`` (operator for FR, EC key)."""
    with broker.database.transaction() as session:
        assert create_client(session, name="fr-rsa", tenant="FR", jwt_key=public_pem(keys["rsa"]))[1] is None
        create_client(session, name="op-ec", role="operator", acts_for="FR", jwt_key=public_pem(keys["ec"]))
    return broker


def assertion(broker, key, *, algorithm="RS256", iss="fr-rsa", sub=None, aud=None, lifetime=120, jti=None, drop=(), **extra) -> str:
    now = int(time.time())
    claims = {"iss": iss, "sub": sub or iss, "aud": aud or token_endpoint(broker.settings.public_url), "iat": now, "exp": now + lifetime, "jti": jti or str(uuid.uuid4()), **extra}
    return jwt.encode({k: v for k, v in claims.items() if k not in drop}, key, algorithm=algorithm)


def ask(api, signed: str | None, **form):
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, **({"client_assertion": signed} if signed else {}), **form}
    return api.post("/v1/oauth/token", data=data, headers={"Authorization": ""})


@pytest.mark.parametrize(("algorithm", "key_name", "client"), [("RS256", "rsa", "fr-rsa"), ("PS256", "rsa", "fr-rsa"), ("ES256", "ec", "op-ec")])
def test_a_signed_assertion_buys_a_short_lived_token_that_acts_in_the_clients_role(api, clients, keys, algorithm, key_name, client):
    submitted = api.post("/v1/documents", json=example_record()).json()["id"]
    answer = ask(api, assertion(clients, keys[key_name], algorithm=algorithm, iss=client), client_id=client)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300 and answer.headers["Cache-Control"] == "no-store"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert [d["id"] for d in api.get("/v1/documents", headers=bearer).json()["items"]] == [submitted]
    with clients.database.sessions() as session:  # only the token's hash is kept
        assert session.get(OAuthToken, body["access_token"]) is None and session.get(OAuthToken, auth.hash_key(body["access_token"])) is not None


def test_an_assertion_is_good_once(api, clients, keys):
    signed = assertion(clients, keys["rsa"])
    assert ask(api, signed).status_code == 200
    replayed = ask(api, signed)
    assert replayed.status_code == 401 and replayed.json()["error"] == "invalid_client" and "jti" in replayed.json()["error_description"]


def test_the_token_expires(api, clients, keys, monkeypatch):
    token = ask(api, assertion(clients, keys["rsa"])).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.get("/v1/documents", headers=bearer).status_code == 200
    later = auth.utcnow() + timedelta(seconds=301)
    monkeypatch.setattr(auth, "utcnow", lambda: later)
    expired = api.get("/v1/documents", headers=bearer)
    assert expired.status_code == 401 and "expired" in expired.json()["message"]


@pytest.mark.parametrize(("case", "says"), [
    ("wrong audience", "aud"),
    ("no audience", "aud"),
    ("too long", "exp"),
    ("expired", "expired"),
    ("no expiry", "exp"),
    ("no jti", "jti"),
    ("sub differs", "sub"),
    ("future iat", "iat"),
    ("stranger's key", "does not hold"),
    ("key of another client", "does not hold"),
    ("HS256", "HS256"),
    ("none", "none"),
    ("unknown client", "no client"),
    ("client without key", "no client"),
    ("client_id differs", "client_id"),
    ("not a JWT", "not a JWT"),
])
def test_an_assertion_that_proves_nothing_is_refused_as_invalid_client(api, clients, keys, case, says):
    with clients.database.transaction() as session:
        create_client(session, name="keyless", tenant="FR")
    form = {}
    signed = {
        "wrong audience": lambda: assertion(clients, keys["rsa"], aud="https://elsewhere.example/v1/oauth/token"),
        "no audience": lambda: assertion(clients, keys["rsa"], drop=("aud",)),
        "too long": lambda: assertion(clients, keys["rsa"], lifetime=3600),
        "expired": lambda: assertion(clients, keys["rsa"], lifetime=-120),
        "no expiry": lambda: assertion(clients, keys["rsa"], drop=("exp",)),
        "no jti": lambda: assertion(clients, keys["rsa"], drop=("jti",)),
        "sub differs": lambda: assertion(clients, keys["rsa"], sub="op-ec"),
        "future iat": lambda: assertion(clients, keys["rsa"], iat=int(time.time()) + 600),
        "stranger's key": lambda: assertion(clients, keys["stranger"]),
        "key of another client": lambda: assertion(clients, keys["ec"], algorithm="ES256"),
        "HS256": lambda: assertion(clients, "a-shared-secret-of-32-bytes-long!", algorithm="HS256"),
        "none": lambda: assertion(clients, None, algorithm="none"),
        "unknown client": lambda: assertion(clients, keys["rsa"], iss="nobody"),
        "client without key": lambda: assertion(clients, keys["rsa"], iss="keyless"),
        "client_id differs": lambda: (form.update(client_id="op-ec"), assertion(clients, keys["rsa"]))[1],
        "not a JWT": lambda: "not.a.jwt",
    }[case]()
    answer = ask(api, signed, **form)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_client" and says in answer.json()["error_description"], answer.text
    assert answer.headers["WWW-Authenticate"].startswith("Bearer") and "Traceback" not in answer.text


@pytest.mark.parametrize(("send", "error"), [
    (dict(data={"grant_type": "password", "client_assertion_type": ASSERTION_TYPE, "client_assertion": "x"}), "unsupported_grant_type"),
    (dict(data={"client_assertion_type": ASSERTION_TYPE, "client_assertion": "x"}), "invalid_request"),
    (dict(data={"grant_type": "client_credentials", "client_assertion_type": "urn:other", "client_assertion": "x"}), "invalid_request"),
    (dict(data={"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}), "invalid_request"),
    (dict(json={"grant_type": "client_credentials"}), "invalid_request"),
    (dict(content=b"grant_type=client_credentials&grant_type=client_credentials", headers={"Content-Type": "application/x-www-form-urlencoded"}), "invalid_request"),
    (dict(content=b"\xff\xfe=1", headers={"Content-Type": "application/x-www-form-urlencoded"}), "invalid_request"),
    (dict(data={"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": "x" * 20_000}), "invalid_request"),
])
def test_a_malformed_token_request_is_a_clear_400(api, clients, send, error):
    answer = api.post("/v1/oauth/token", **send)
    assert answer.status_code == 400 and answer.json()["error"] == error, answer.text


def test_a_jwt_key_must_sign_what_the_endpoint_accepts(database):
    from hub.errors import InputError

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    other_curve = ec.generate_private_key(ec.SECP384R1())
    for key in (weak, other_curve):
        with database.transaction() as session, pytest.raises(InputError) as refused:
            create_client(session, name="weak", tenant="FR", jwt_key=public_pem(key))
        assert refused.value.where == "jwt_public_key"
