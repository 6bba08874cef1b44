"""Roles and their scopes, on both engines: operators act only for the authorities they name (never ``*``), auditors
read and never write, foreign authorities only verify, administrators see everything; clients made before roles keep
working (``*`` became administrator); mutual TLS authenticates a registered certificate and nothing else."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from hub.api.access import POLICY, AUDITOR, FOREIGN, OPERATOR
from hub.api.app import create_app
from hub.api.auth import Role, client_of, create_client
from hub.errors import InputError
from hub.scope import EVERYTHING
from hub.store.models import ApiClient
from tests.support.api import add_document
from tests.support.broker import example_record


def key_of(broker, **grant) -> dict[str, str]:
    with broker.database.transaction() as session:
        key = create_client(session, name=f"c-{len(str(grant))}-{abs(hash(str(grant))) % 10**8}", **grant)[1]
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def three_tenants(api, broker):
    """A document each of FR (submitted), NL and BE (stored)."""
    fr = api.post("/v1/documents", json=example_record()).json()["id"]
    with broker.database.transaction() as session:
        nl, be = add_document(session, tenant="NL").id, add_document(session, tenant="BE").id
    return {"FR": fr, "NL": nl, "BE": be}


def listed(api, headers) -> set[str]:
    answer = api.get("/v1/documents", headers=headers)
    assert answer.status_code == 200, answer.text
    return {item["id"] for item in answer.json()["items"]}


def test_an_operator_sees_only_the_authorities_it_acts_for(api, broker, three_tenants):
    operator = key_of(broker, role="operator", acts_for="FR,NL")
    assert listed(api, operator) == {three_tenants["FR"], three_tenants["NL"]}
    assert api.get(f"/v1/documents/{three_tenants['BE']}", headers=operator).status_code == 404
    # one request narrowed to one of its authorities
    assert listed(api, {**operator, "X-On-Behalf-Of": "nl"}) == {three_tenants["NL"]}
    assert api.get(f"/v1/documents/{three_tenants['FR']}", headers={**operator, "X-On-Behalf-Of": "NL"}).status_code == 404
    for other in ("BE", "*", "not a country"):
        refused = api.get("/v1/documents", headers={**operator, "X-On-Behalf-Of": other})
        assert refused.status_code == 403 and refused.json()["where"] == "X-On-Behalf-Of"
    # an issuing authority may name itself, nobody else
    assert api.get("/v1/documents", headers={"X-On-Behalf-Of": "FR"}).status_code == 200
    assert api.get("/v1/documents", headers={"X-On-Behalf-Of": "NL"}).status_code == 403


def test_an_operator_of_several_authorities_names_the_one_it_subscribes_for(api, broker):
    operator = key_of(broker, role="operator", acts_for="FR,NL")
    hook = {"url": "https://nl.example/hook"}
    refused = api.post("/v1/webhooks", json=hook, headers=operator)
    assert refused.status_code == 422 and "X-On-Behalf-Of" in refused.json()["message"]
    created = api.post("/v1/webhooks", json=hook, headers={**operator, "X-On-Behalf-Of": "NL"})
    assert created.status_code == 201, created.text
    assert api.get(f"/v1/webhooks/{created.json()['id']}", headers=api.headers_of("NL")).status_code == 200
    assert api.get(f"/v1/webhooks/{created.json()['id']}").status_code == 404  # FR's own key: not FR's


def test_an_auditor_reads_and_never_writes(api, broker, three_tenants):
    auditor = key_of(broker, role="auditor", acts_for="FR,BE")
    assert listed(api, auditor) == {three_tenants["FR"], three_tenants["BE"]}
    message_id = api.get(f"/v1/documents/{three_tenants['FR']}", headers=auditor).json()["messages"][0]["id"]
    assert api.get(f"/v1/messages/{message_id}/trace", headers=auditor).status_code == 200
    for method, url, body in [("POST", "/v1/documents", example_record(certificate_number="FR-2026-AUD-1")),
                              ("POST", f"/v1/messages/{message_id}/resend", None), ("POST", "/v1/webhooks", {"url": "https://a.example/h"})]:
        answer = api.request(method, url, json=body, headers=auditor)
        assert answer.status_code == 403 and answer.json()["error"] == "PermissionDenied", (url, answer.text)
    # the health of every destination spans every tenant: an auditor of every tenant only
    assert api.get("/v1/connectors", headers=auditor).status_code == 403
    assert api.get("/v1/connectors", headers=key_of(broker, role="auditor", acts_for="*")).status_code == 200


def test_a_foreign_authority_only_verifies(api, broker, three_tenants):
    foreign = key_of(broker, role="foreign_authority", tenant="US")
    assert api.get("/v1/verify/FR-2026-PC-000123", headers=foreign).status_code == 200
    for url in ("/v1/documents", f"/v1/documents/{three_tenants['FR']}", "/v1/events?once=true", "/v1/webhooks"):
        assert api.get(url, headers=foreign).status_code == 403, url
    assert api.get("/v1/verify/FR-2026-PC-000123", headers={**foreign, "X-On-Behalf-Of": "US"}).status_code == 403


def test_the_administrator_sees_everything_and_manages_but_does_not_issue(api, three_tenants):
    admin = api.headers_of("ops")  # made as before roles: --tenant '*'
    assert listed(api, admin) == set(three_tenants.values())
    assert api.get("/v1/connectors", headers=admin).status_code == 200
    assert api.post("/v1/documents", json=example_record(certificate_number="FR-2026-ADM-1"), headers=admin).status_code == 403


def test_the_policy_keeps_each_role_in_its_lane():
    for (method, path), rule in POLICY.items():
        if AUDITOR in rule.roles:
            assert method == "GET" or path == "/v1/verify", f"an auditor never writes: {method} {path}"  # POST /v1/verify only reads
        if FOREIGN in rule.roles:
            assert path.startswith("/v1/verify"), f"a foreign authority only verifies: {method} {path}"
        if OPERATOR in rule.roles:
            assert not rule.every_tenant, f"an operator never sees every tenant: {method} {path}"
    public = {f"{method} {path}" for (method, path), rule in POLICY.items() if rule.is_public()}
    assert public == {"GET /healthz", "GET /openapi.json", "GET /docs", "GET /docs/oauth2-redirect", "GET /redoc",
                      "POST /v1/oauth/token", "POST /v1/inbound/{connector}",
                      "GET /", "GET /console/login", "POST /console/login", "POST /console/logout",  # logging in
                      "GET /verify", "POST /verify", "GET /v1/public/verify", "POST /v1/public/verify"}  # for anyone


@pytest.mark.parametrize(("grant", "where"), [
    (dict(role="operator", acts_for="*"), "acts_for"),
    (dict(role="operator", acts_for="FR,*"), "acts_for"),
    (dict(role="operator"), "acts_for"),
    (dict(role="operator", acts_for="FR", tenant="FR"), "tenant"),
    (dict(role="auditor", acts_for="F1"), "acts_for"),
    (dict(role="foreign_authority"), "tenant"),
    (dict(role="issuing_authority", tenant="FR", acts_for="NL"), "acts_for"),
    (dict(role="administrator", tenant="FR"), "tenant"),
    (dict(role="superuser", tenant="FR"), "role"),
    (dict(tenant=""), "tenant"),
    (dict(tenant="not a country"), "tenant"),
])
def test_a_client_is_refused_a_grant_its_role_cannot_have(database, grant, where):
    with database.transaction() as session, pytest.raises(InputError) as refused:
        create_client(session, name="refused", **grant)
    assert refused.value.where == where
    with database.sessions() as session:
        assert session.query(ApiClient).count() == 0


def test_clients_made_before_roles_keep_working_and_stored_stars_give_an_operator_nothing(database):
    with database.transaction() as session:
        star = create_client(session, name="ops", tenant="*")[0]
        flagged = create_client(session, name="old-operator", tenant="FR", operator=True)[0]
        plain = create_client(session, name="fr", tenant="fr")[0]
        assert (star.role, star.tenant, flagged.role, plain.role, plain.tenant) == ("administrator", "*", "administrator", "issuing_authority", "FR")
        assert client_of(star).scope is EVERYTHING
        forged = ApiClient(id="x", name="forged-operator", role="operator", acts_for="*", key_hash="0" * 64)
        assert client_of(forged).scope.sees("FR") is False and not client_of(forged).scope.everything


def test_the_migration_makes_operator_keys_administrators(database_url):
    from hub.store.db import Database
    from hub.store.migrate import downgrade, upgrade

    downgrade(database_url, "0004")
    database = Database(database_url)
    try:
        with database.engine.begin() as connection:
            for name, tenant, operator in (("ops", "*", True), ("flagged", "FR", True), ("fr", "FR", False)):
                connection.execute(text("INSERT INTO api_clients (id, name, tenant, key_hash, operator, created_at) VALUES (:i, :n, :t, :k, :o, CURRENT_TIMESTAMP)"),
                                   {"i": name, "n": name, "t": tenant, "k": (name * 10)[:64], "o": operator})
        upgrade(database_url)
        with database.sessions() as session:
            rows = {row.name: (row.role, row.tenant, row.key_hash) for row in session.query(ApiClient)}
        assert rows == {"ops": ("administrator", "*", "ops" * 10), "flagged": ("administrator", "*", ("flagged" * 10)[:64]), "fr": ("issuing_authority", "FR", "fr" * 10)}
    finally:
        database.dispose()


# --- mutual TLS ---------------------------------------------------------------------------------------------------------


def with_client_certificate(app, pem: bytes | None):
    """The app as a TLS server that verified ``pem`` would call it (the ASGI TLS extension)."""

    async def served(scope, receive, send):
        if scope["type"] == "http" and pem is not None:
            scope = {**scope, "extensions": {**scope.get("extensions", {}), "tls": {"client_cert_chain": [pem.decode()]}}}
        await app(scope, receive, send)

    return served


def test_a_client_authenticates_by_its_registered_tls_certificate(broker, pki, stranger_pki, three_tenants):
    fr_pem = pki.client_certs["FR"].read_bytes()
    with broker.database.transaction() as session:
        made, key = create_client(session, name="fr-by-tls", tenant="FR", certificate=fr_pem)
        # any certificate the server's CA issues under this subject: here an auditor of NL's
        create_client(session, name="nl-auditor-by-subject", role="auditor", acts_for="NL", certificate_subject=_subject(pki.client_certs["JP"].read_bytes()))
    assert key is None and made.key_hash is None  # no API key lying around for a TLS client
    app = create_app(broker)

    def documents(pem: bytes | None, **headers):
        with TestClient(with_client_certificate(app, pem)) as client:
            return client.get("/v1/documents", headers=headers)

    fr = documents(fr_pem)
    assert fr.status_code == 200 and {i["id"] for i in fr.json()["items"]} == {three_tenants["FR"]}
    nl = documents(pki.client_certs["JP"].read_bytes())
    assert nl.status_code == 200 and {i["id"] for i in nl.json()["items"]} == {three_tenants["NL"]}
    # unregistered, and a look-alike of FR's (same subject, another CA): registered by fingerprint, it is not FR
    for pem in (pki.client_certs["US"].read_bytes(), stranger_pki.client_certs["FR"].read_bytes(), None):
        refused = documents(pem)
        assert refused.status_code == 401 and refused.json()["error"] == "Unauthenticated"
    assert documents(fr_pem, Authorization="Bearer hub_wrong").status_code == 401  # credentials given are the ones checked


def _subject(pem: bytes) -> str:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem).subject.rfc4514_string()


def test_a_certificate_registers_one_client_only(database, pki):
    pem = pki.client_certs["FR"].read_bytes()
    with database.transaction() as session:
        create_client(session, name="first", tenant="FR", certificate=pem)
    with database.transaction() as session, pytest.raises(InputError) as refused:
        create_client(session, name="second", tenant="FR", certificate=pem)
    assert refused.value.status == 409 and refused.value.where == "certificate"
    with database.transaction() as session, pytest.raises(InputError) as refused:
        create_client(session, name="third", tenant="FR", certificate=b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    assert refused.value.where == "certificate"
    assert Role("auditor") is Role.AUDITOR


def test_a_removed_client_stops_within_the_cache_life(api, broker, monkeypatch):
    from datetime import timedelta

    import hub.api.auth as auth

    headers = key_of(broker, role="auditor", acts_for="FR")
    assert api.get("/v1/documents", headers=headers).status_code == 200
    with broker.database.transaction() as session:
        session.query(ApiClient).filter(ApiClient.role == "auditor").delete()
    later = auth.utcnow() + timedelta(seconds=auth.CACHE_SECONDS + 1)
    monkeypatch.setattr(auth, "utcnow", lambda: later)
    assert api.get("/v1/documents", headers=headers).status_code == 401
