"""The access matrix: every route of the app (walked from ``app.routes``, so a new route without a policy fails here)
against every role, FR's and another tenant's, on both engines.

For each route and caller: 401 without or with unknown credentials; 403 for a role the policy does not allow; 404 for
another tenant's object, answered exactly as for an object that does not exist (existence is not leaked); and no
answer to a caller outside FR (another tenant, a foreign authority) carries an identifier of FR's objects it did not
send itself, nor any error a stack trace.
"""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.routing import iter_route_contexts

from hub.api.access import POLICY, rule_for
from hub.api.auth import Role, create_client
from hub.store.models import Document, Message, WebhookSubscription
from tests.support.broker import example_record

#: Who calls: (role, tenant or acts-for). The FR side may see FR's objects; the others must not.
FR_SIDE = {
    "fr-issuer": dict(tenant="FR"),
    "fr-operator": dict(role="operator", acts_for="FR"),
    "fr-auditor": dict(role="auditor", acts_for="FR"),
    "every-auditor": dict(role="auditor", acts_for="*"),
    "administrator": dict(role="administrator"),
}
OTHERS = {
    "nl-issuer": dict(tenant="NL"),
    "nl-operator": dict(role="operator", acts_for="NL,BE"),
    "nl-auditor": dict(role="auditor", acts_for="NL"),
    "us-foreign": dict(role="foreign_authority", tenant="US"),
}
#: Path parameters naming one object of a tenant: another tenant asking gets what a made-up one gets.
OBJECT_PARAMETERS = ("document_id", "message_id", "digest", "webhook_id", "number")
_PARAMETER = re.compile(r"{([a-z_]+)(?::path)?}")
_ITEMS = [{"goods_item": 1, "line": 1, "quantity": "1"}]
#: Bodies that get another tenant's call past validation to the object it names (the FR side sends {}: the policy
#: lets it through, validation answers).
BODIES = {
    ("POST", "/v1/documents/{document_id}/lifecycle"): lambda v: {"lifecycle": "cancelled"},
    ("POST", "/v1/cites/permits/{document_id}/completion"): lambda v: {"sale_date": "2026-01-01"},
    ("POST", "/v1/customs/documents/{code}/{number:path}/write-offs"): lambda v: {"purchase_date": "2026-01-01", "items": _ITEMS},
    ("POST", "/v1/customs/declarations/{declaration}/reservations"): lambda v: {"code": "C640", "number": v["number"], "items": _ITEMS},
    ("POST", "/v1/customs/declarations/{declaration}/clearance"): lambda v: {"code": "C640", "number": v["number"], "clearance": "released"},
    ("POST", "/v1/non-conformities"): lambda v: {"document_id": v["document_id"], "counterpart": "authority", "cause_code": "X"},
    ("POST", "/v1/messages/{message_id}/abandon"): lambda v: {"reason": "given up"},
}


def app_routes(app) -> list[tuple[str, str]]:
    """Every (method, path template) the app serves, HEAD aside, included routers walked through."""
    return sorted({(method, route.path) for route in iter_route_contexts(app.routes) for method in (route.methods or ()) if method != "HEAD"})


def test_every_route_has_a_policy_and_every_policy_a_route(broker):
    from hub.web.app import create_site

    served = app_routes(create_site(broker))  # the API and the pages (tests/web check the pages' answers by role)
    missing = [f"{method} {path}" for method, path in served if rule_for(method, path) is None]
    assert not missing, f"routes without an access policy in hub/api/access.py: {missing}"
    stale = [f"{method} {path}" for method, path in POLICY if (method, path) not in served]
    assert not stale, f"policies of routes the app does not serve: {stale}"


@pytest.fixture
def world(api, broker, monkeypatch):
    """FR's objects (a document, its message and payload, a webhook) and a key per caller."""
    monkeypatch.delenv("HUB_METRICS_PUBLIC", raising=False)
    submitted = api.post("/v1/documents", json=example_record())
    assert submitted.status_code == 202, submitted.text
    keys = {}
    with broker.database.transaction() as session:
        for name, grant in {**FR_SIDE, **OTHERS}.items():
            keys[name] = create_client(session, name=f"matrix-{name}", **grant)[1]
        document = session.get(Document, submitted.json()["id"])
        message = session.query(Message).filter_by(document_id=document.id).first()
        values = {"document_id": document.id, "message_id": message.id, "digest": document.payload_digest, "webhook_id": _webhook(session),
                  "certificate_number": document.certificate_number, "number": document.certificate_number, "code": "C640",
                  "declaration": "26FR0006900000001", "connector": "authority"}
        secrets_of_fr = {document.id, message.id, document.correlation_id, document.payload_digest, values["webhook_id"]}
    return {"keys": keys, "values": values, "fr": secrets_of_fr}


def _webhook(session) -> str:
    sub = WebhookSubscription(id=str(uuid.uuid4()), tenant="FR", url="https://fr.example/hook", secret="s" * 32, filters={}, active=True, last_event_id=0, failures=0)
    session.add(sub)
    session.flush()
    return sub.id


def call(api, method: str, path: str, values: dict, key: str | None, *, full_body: bool = False):
    url = _PARAMETER.sub(lambda m: values[m.group(1)], path) + ("?once=true" if path == "/v1/events" else "")
    headers = {"Authorization": f"Bearer {key}" if key else ""}
    shaped = BODIES.get((method, path)) if full_body else None
    body = {"json": shaped(values) if shaped else {}} if method in ("POST", "PUT", "PATCH") else {}
    return url, api.request(method, url, headers=headers, **body)


def test_every_route_refuses_every_role_and_tenant_it_must(api, broker, world):
    problems: list[str] = []
    keys, values = world["keys"], world["values"]

    def expect(condition: bool, what: str) -> None:
        if not condition:
            problems.append(what)

    for method, path in app_routes(api.app):
        rule = rule_for(method, path)
        public = rule.is_public()
        for key in (None, "hub_not-a-key"):
            url, answer = call(api, method, path, values, key)
            expect(answer.status_code < 500, f"{method} {url} as {key}: {answer.status_code}")
            expect(public or answer.status_code == 401, f"{method} {url} without valid credentials: {answer.status_code}, not 401")
            expect(public or "WWW-Authenticate" in answer.headers, f"{method} {url}: 401 without WWW-Authenticate")
            _no_leak(expect, world, method, url, path, answer)
        if public:
            continue
        for name, grant in {**FR_SIDE, **OTHERS}.items():
            role = Role(grant.get("role", "issuing_authority"))
            mine = name in FR_SIDE
            here = dict(values)
            if method == "DELETE" and mine and role in rule.roles:
                with broker.database.transaction() as session:
                    here["webhook_id"] = _webhook(session)  # each allowed caller deletes its own
            names_an_object = any(f"{{{p}" in path for p in OBJECT_PARAMETERS) or (method, path) in BODIES
            url, answer = call(api, method, path, here, keys[name], full_body=not mine)
            seen = f"{method} {url} as {name}: {answer.status_code} {answer.text[:200]}"
            expect(answer.status_code < 500, seen)
            if role not in rule.roles or (rule.every_tenant and grant.get("acts_for") != "*" and role is not Role.ADMINISTRATOR):
                expect(answer.status_code == 403 and answer.json()["error"] == "PermissionDenied", f"{seen} (role or scope not allowed: 403)")
            elif mine:
                expect(answer.status_code not in (401, 403), f"{seen} (allowed)")
                if method == "GET" and any(f"{{{p}}}" in path for p in ("document_id", "message_id", "digest", "webhook_id")):
                    expect(answer.status_code == 200, f"{seen} (its own tenant's object)")
            elif names_an_object:
                expect(answer.status_code == 404, f"{seen} (another tenant's object: 404)")
                made_up = {p: ("0" * 64 if p == "digest" else f"X-{uuid.uuid4()}") for p in OBJECT_PARAMETERS}
                other_url, other = call(api, method, path, {**here, **made_up}, keys[name], full_body=True)
                expect(_masked(answer.text, here) == _masked(other.text, made_up) and answer.status_code == other.status_code,
                       f"{method} {path} as {name}: another tenant's object answers {answer.text[:200]}, a made-up one {other.text[:200]}")
            if not mine:
                _no_leak(expect, world, method, url, path, answer)
    # the webhook the other tenants tried to delete is still there
    assert api.get(f"/v1/webhooks/{values['webhook_id']}").status_code == 200
    assert not problems, f"{len(problems)} wrong answers:\n" + "\n".join(problems)


def _masked(text: str, values: dict) -> str:
    for name in OBJECT_PARAMETERS:
        text = text.replace(values[name], f"<{name}>")
    return text


def _no_leak(expect, world, method: str, url: str, path: str, answer) -> None:
    text = answer.text
    expect("Traceback" not in text and 'File "/' not in text, f"{method} {url}: a stack trace in the answer")
    sent = url + answer.request.content.decode(errors="replace")
    for value in world["fr"]:
        if value in sent:
            continue  # the caller's own words echoed back
        # verification states the digests of the signed documents, by design; nothing else of FR's
        if path.startswith("/v1/verify") and value == world["values"]["digest"]:
            continue
        expect(value not in text, f"{method} {url}: FR's identifier {value[:12]}… in an answer to a caller outside FR")
