"""The API's audit trail: every state-changing request and every read of audit or trace data is one entry of the
hash chain, with who, what, on what, the outcome, the request id and a digest of the body (never its secrets);
``/v1/audit`` lists the entries and ``/v1/audit/verify`` proves the chain."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import text

from hub.api.access import AUDITOR, ADMIN, POLICY, _roles
from hub.api.auth import create_client
from hub.store import audit
from tests.support.broker import example_record

AUDIT_ROUTES = (("GET", "/v1/audit"), ("GET", "/v1/audit/verify"))


@pytest.fixture(autouse=True)
def _audit_routes_in_the_policy(monkeypatch):
    """The access policy (hub.api.access, not this area's) lets auditors and administrators read the audit log; the
    entries are only added here when the policy does not list them yet."""
    for route in AUDIT_ROUTES:
        if route not in POLICY:
            monkeypatch.setitem(POLICY, route, _roles(AUDITOR, ADMIN))


def _entries(broker) -> list:
    with broker.database.sessions() as session:
        return list(audit.entries(session))


def test_a_submission_is_recorded_with_who_what_target_outcome_request_id_and_body_digest(api, broker):
    body = json.dumps(example_record()).encode()
    answer = api.post("/v1/documents", content=body, headers={"Content-Type": "application/json", "X-Request-ID": "req-from-caller-1"})
    assert answer.status_code == 202, answer.text
    assert answer.headers["X-Request-ID"] == "req-from-caller-1"
    [entry] = _entries(broker)
    assert (entry.actor, entry.action, entry.outcome) == ("api:fr-system", "POST /v1/documents", "202")
    assert entry.target == f"id={answer.json()['id']}"
    assert entry.request_id == "req-from-caller-1"
    assert entry.body_digest == hashlib.sha256(body).hexdigest()


def test_refused_and_unauthenticated_writes_are_recorded_too(api, broker):
    assert api.post("/v1/documents", content=b"{}", headers={"Content-Type": "application/json", "Authorization": ""}).status_code == 401
    assert api.post("/v1/messages/no-such-message/resend").status_code == 404
    assert api.post("/v1/documents", content=b"x" * (broker.settings.max_body_bytes + 1), headers={"Content-Type": "application/xml"}).status_code == 413
    first, second, third = _entries(broker)
    assert (first.actor, first.action, first.outcome) == ("anonymous", "POST /v1/documents", "401")
    assert (second.actor, second.action, second.target, second.outcome) == ("api:fr-system", "POST /v1/messages/{message_id}/resend", "message_id=no-such-message", "404")
    assert (third.action, third.outcome) == ("POST /v1/documents", "413")


def test_reads_of_trace_and_audit_data_are_recorded_plain_reads_are_not(api, broker):
    submitted = api.post("/v1/documents", json=example_record()).json()
    message_id = submitted["messages"][0]["id"]
    assert api.get(f"/v1/documents/{submitted['id']}").status_code == 200
    assert api.get("/v1/documents").status_code == 200
    assert len(_entries(broker)) == 1
    assert api.get(f"/v1/messages/{message_id}/trace").status_code == 200
    listed = api.get("/v1/audit", headers=api.headers_of("ops"))
    assert listed.status_code == 200, listed.text
    actions = [(e["actor"], e["action"], e["target"]) for e in listed.json()["entries"]]
    assert actions == [("api:fr-system", "POST /v1/documents", f"id={submitted['id']}"),
                       ("api:fr-system", "GET /v1/messages/{message_id}/trace", f"message_id={message_id}")]
    # the listing was written before it answered: the next one shows it
    latest = api.get("/v1/audit", params={"since": 2}, headers=api.headers_of("ops")).json()["entries"]
    assert [(e["seq"], e["actor"], e["action"], e["outcome"]) for e in latest] == [(3, "api:ops-system", "GET /v1/audit", "200")]


def test_secrets_in_a_body_never_reach_the_digest(api, broker):
    secret = "a-webhook-secret-of-the-caller-0123456789"
    body = json.dumps({"url": "https://receiver.example/hook", "secret": secret}).encode()
    answer = api.post("/v1/webhooks", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 201, answer.text
    [entry] = _entries(broker)
    masked = json.dumps({"secret": "***", "url": "https://receiver.example/hook"}, sort_keys=True, separators=(",", ":")).encode()
    assert entry.body_digest == hashlib.sha256(masked).hexdigest() != hashlib.sha256(body).hexdigest()
    assert entry.target == f"id={answer.json()['id']}"
    assert secret not in repr(api.get("/v1/audit", headers=api.headers_of("ops")).json())


def test_a_hostile_path_is_recorded_escaped_on_both_engines(api, broker):
    answer = api.post("/v1/messages/%00%0aforged/resend")
    assert answer.status_code in (404, 422), answer.text
    [entry] = _entries(broker)
    # refused before routing (the raw path is the action) or by the route (the id is the target): escaped either way
    assert "\\x00\\x0aforged" in f"{entry.action} {entry.target}"
    assert not any(c in f"{entry.action}{entry.target}" for c in "\x00\n")
    with broker.database.sessions() as session:
        assert audit.verify(session).intact


def test_a_malformed_request_id_is_replaced(api, broker):
    answer = api.post("/v1/messages/x/resend", headers={"X-Request-ID": "not ok\xe9".encode("latin-1") * 20})
    [entry] = _entries(broker)
    assert entry.request_id == answer.headers["X-Request-ID"]
    assert len(entry.request_id) == 32


def test_verify_proves_the_chain_and_finds_a_change(api, broker):
    for _ in range(3):
        api.post("/v1/messages/x/resend")
    ops = api.headers_of("ops")
    proof = api.get("/v1/audit/verify", headers=ops).json()
    assert (proof["intact"], proof["count"], proof["broken_at"]) == (True, 3, None)
    assert proof["anchor"] == f"3:{proof['head']['hash']}"
    assert api.get("/v1/audit/verify", params={"anchor": proof["anchor"]}, headers=ops).json()["intact"]
    with broker.database.engine.begin() as connection:
        if broker.database.dialect == "postgresql":
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
        connection.execute(text("UPDATE audit_log SET outcome = '202' WHERE seq = 2"))
    broken = api.get("/v1/audit/verify", headers=ops).json()
    assert (broken["intact"], broken["broken_at"]) == (False, 2)
    assert "changed" in broken["reason"]


def test_only_a_caller_who_sees_every_tenant_reads_the_log(api, broker):
    with broker.database.transaction() as session:
        everything = create_client(session, name="auditor-all", role="auditor", acts_for="*")[1]
        french = create_client(session, name="auditor-fr", role="auditor", acts_for="FR")[1]
    for path in ("/v1/audit", "/v1/audit/verify"):
        assert api.get(path).status_code == 403
        assert api.get(path, headers={"Authorization": f"Bearer {french}"}).status_code == 403
        assert api.get(path, headers={"Authorization": f"Bearer {everything}"}).status_code == 200
    bad = api.get("/v1/audit/verify", params={"anchor": "12:nothex"}, headers=api.headers_of("ops"))
    assert bad.status_code == 422
    assert bad.json()["where"] == "anchor"
    assert api.get("/v1/audit", params={"limit": 0}, headers=api.headers_of("ops")).status_code == 422
