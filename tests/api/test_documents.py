"""The HTTP API over the broker, on both engines: status codes, authentication and tenants, the submission answer,
searches, messages and traces, resend, non-conformities and their statistics."""

from __future__ import annotations

import json

import pytest

from hub.connector import Outcome
from tests.support.broker import example_record, permanent, replacement_of


def post_record(api, record: dict, **headers):
    return api.post("/v1/documents", content=json.dumps(record), headers={"Content-Type": "application/json", **headers})


def test_every_call_needs_a_known_api_key(api):
    assert api.get("/v1/documents", headers={"Authorization": ""}).status_code == 401
    answer = api.get("/v1/documents", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401 and answer.json()["error"] == "Unauthenticated"
    assert api.get("/v1/documents", headers={"Authorization": "", "X-API-Key": api.headers["Authorization"][7:]}).status_code == 200


def test_submission_answers_202_with_report_and_messages_then_200_when_repeated(api):
    first = post_record(api, example_record())
    assert first.status_code == 202, first.text
    body = first.json()
    assert set(body) >= {"id", "status", "report", "messages"}
    assert body["report"]["findings"] is not None
    assert sorted((m["destination"], m["state"]) for m in body["messages"]) == [("authority", "queued"), ("customs", "queued")]
    again = post_record(api, example_record())
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert api.get("/v1/messages").json()["total"] == 2


def test_invalid_submission_answers_422_with_the_full_report_and_stores_nothing(api):
    bad = example_record(consignment={**example_record()["consignment"], "import_country": {"id": "FR"}})
    answer = post_record(api, bad)
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "ValidationFailed"
    assert any(f["severity"] == "SEVERE" and f["xpath"] for f in body["report"]["findings"])
    assert api.get("/v1/documents").json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status", "where"),
    [
        (b"{not json", "application/json", 422, "body"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', "application/xml", 400, None),
        (b"hello", "text/plain", 422, "Content-Type"),
        (json.dumps({"kind": "phytosanitary", "status": "issued", "bogus": 1}).encode(), "application/json", 422, None),
    ],
)
def test_bad_input_is_named_and_refused(api, body, content_type, status, where):
    answer = api.post("/v1/documents", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == status, answer.text
    if where:
        assert answer.json()["where"] == where
    assert api.get("/v1/documents").json()["total"] == 0


def test_a_reused_idempotency_key_with_other_content_is_409(api):
    assert post_record(api, example_record(), **{"Idempotency-Key": "abc"}).status_code == 202
    clash = post_record(api, example_record(certificate_number="FR-2026-PC-777"), **{"Idempotency-Key": "abc"})
    assert clash.status_code == 409 and "Idempotency-Key" in clash.json()["message"]


def test_signed_xml_is_accepted_and_forwarded_as_signed(api, broker):
    from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml

    signed = broker.signer_for("FR").sign(to_xml(render_certificate(record_from_data(example_record()), "full").root))
    answer = api.post("/v1/documents", content=signed, headers={"Content-Type": "application/xml"})
    assert answer.status_code == 202, answer.text
    assert api.get(f"/v1/documents/{answer.json()['id']}/xml").content == signed
    tampered = signed.replace(b"18500", b"28500")
    refused = api.post("/v1/documents", content=tampered, headers={"Content-Type": "application/xml"}, params={"version": 2})
    assert refused.status_code == 422 and refused.json()["error"].startswith("Signature")


def test_tenants_see_only_their_own_documents_and_operators_see_all(api):
    document_id = post_record(api, example_record()).json()["id"]
    nl = api.headers_of("NL")
    assert api.get(f"/v1/documents/{document_id}", headers=nl).status_code == 404
    assert api.get("/v1/documents", headers=nl).json()["total"] == 0
    assert post_record(api, example_record(), **nl).status_code == 403
    assert api.get(f"/v1/documents/{document_id}", headers=api.headers_of("ops")).status_code == 200
    digest = api.get(f"/v1/documents/{document_id}").json()["payload_digest"]
    assert api.get(f"/v1/payloads/{digest}").status_code == 200
    assert api.get(f"/v1/payloads/{digest}", headers=nl).status_code == 404


def test_crisis_search_by_country_product_and_period(api):
    post_record(api, example_record())
    other = example_record(certificate_number="FR-2026-PC-000200")
    other["consignment"]["items"][0]["line_items"][0]["classifications"][0]["class_code"] = "080820"
    other["consignment"]["items"][0]["line_items"][0]["scientific_names"] = ["Pyrus communis"]
    post_record(api, other)

    def numbers(**params):
        answer = api.get("/v1/documents", params=params)
        assert answer.status_code == 200, answer.text
        return sorted(d["certificate_number"] for d in answer.json()["items"])

    assert numbers(product="0808") == ["FR-2026-PC-000123", "FR-2026-PC-000200"]
    assert numbers(product="080810") == ["FR-2026-PC-000123"]
    assert numbers(product="pyrus") == ["FR-2026-PC-000200"]
    assert numbers(product="%") == [] and numbers(product="p_rus") == []  # a character, never a LIKE wildcard
    assert numbers(country="EC", kind="phytosanitary") == ["FR-2026-PC-000123", "FR-2026-PC-000200"]
    assert numbers(country="US") == []
    assert numbers(**{"from": "2000-01-01T00:00:00Z", "to": "2001-01-01T00:00:00Z"}) == []
    page = api.get("/v1/documents", params={"limit": 1}).json()
    assert (page["total"], len(page["items"])) == (2, 1)


def test_delivery_trace_dead_letter_and_resend_through_the_api(api, broker):
    broker.connectors["customs"].fail_next(permanent())
    document = post_record(api, example_record()).json()
    broker.make_worker().drain()
    dead = api.get("/v1/messages", params={"status": "dead_letter"}).json()["items"]
    assert [m["destination"] for m in dead] == ["customs"]
    message_id = dead[0]["id"]
    detail = api.get(f"/v1/messages/{message_id}").json()
    assert [a["outcome"] for a in detail["attempts"]] == ["permanent_error"]
    assert detail["attempts"][0]["request_digest"] is None or len(detail["attempts"][0]["request_digest"]) == 64
    assert api.post(f"/v1/messages/{message_id}/resend").json() == {"id": message_id, "destination": "customs", "state": "queued"}
    broker.make_worker().drain()
    trace = api.get(f"/v1/messages/{message_id}/trace").json()
    assert trace["correlation_id"] == document["correlation_id"]
    events = [e["event"] for e in trace["events"]]
    assert events[:4] == ["document.received", "document.validated", "document.signed", "document.routed"]
    assert events[4:] == ["message.queued", "message.sending", "message.dead_letter", "message.resend", "message.sending", "receipt.accepted"]
    assert api.post(f"/v1/messages/{message_id}/resend").status_code == 409
    response_digest = api.get(f"/v1/messages/{message_id}").json()["attempts"][-1]["response_digest"]
    assert api.get(f"/v1/payloads/{response_digest}").content == b"<receipt>accepted</receipt>"
    signed = next(e["payload_digest"] for e in trace["events"] if e["event"] == "document.signed")
    assert b"SPSCertificate" in api.get(f"/v1/payloads/{signed}").content


def test_non_conformities_from_rejections_and_exporters_with_statistics(api, broker):
    broker.connectors["authority"].fail_next(Outcome.REJECTED)
    first = post_record(api, example_record()).json()
    broker.make_worker().drain()
    second = post_record(api, example_record(certificate_number="FR-2026-PC-000300")).json()
    refusal = api.post("/v1/non-conformities", json={"document_id": second["id"], "counterpart": "EC border post Guayaquil", "cause_code": "PEST_FOUND", "cause_text": "Cydia pomonella larvae"})
    assert refusal.status_code == 201, refusal.text
    assert refusal.json()["country"] == "EC" and refusal.json()["products"][0]["hs_code"] == "080810"
    listed = api.get("/v1/non-conformities").json()
    assert listed["total"] == 2
    assert {nc["document_id"] for nc in listed["items"]} == {first["id"], second["id"]}
    stats = api.get("/v1/non-conformities/stats", params={"by": "country,product,cause"}).json()["items"]
    assert sorted((s["country"], s["product"], s["cause"], s["count"]) for s in stats) == [("EC", "080810", "BAD", 1), ("EC", "080810", "PEST_FOUND", 1)]
    by_country = api.get("/v1/non-conformities/stats", params={"by": "country"}).json()["items"]
    assert by_country == [{"country": "EC", "count": 2}]
    assert api.get("/v1/non-conformities/stats", params={"by": "colour"}).status_code == 422
    assert api.post("/v1/non-conformities", json={"document_id": "nope", "counterpart": "x", "cause_code": "Y"}).status_code == 404


def test_a_replacement_is_linked_to_the_non_conformity(api, broker):
    original = example_record()
    broker.connectors["authority"].fail_next(Outcome.REJECTED)
    post_record(api, original)
    broker.make_worker().drain()
    replacement = post_record(api, replacement_of(original, "FR-2026-PC-000124")).json()
    assert api.get("/v1/non-conformities").json()["items"][0]["replacement_document_id"] == replacement["id"]
    assert api.get("/v1/documents", params={"number": "FR-2026-PC-000123"}).json()["items"][0]["lifecycle"] == "replaced"


def test_health_and_openapi(api):
    assert api.get("/healthz").json()["status"] == "ok"
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/v1/documents", "/v1/messages/{message_id}/resend", "/v1/non-conformities/stats", "/v1/inbound/{connector}"} <= set(paths)


@pytest.mark.parametrize(("method", "path", "params"), [
    ("get", "/v1/documents", {"offset": str(2**70)}),
    ("get", "/v1/messages", {"offset": str(2**64)}),
    ("get", "/v1/non-conformities", {"offset": "1" + "0" * 30}),
    ("post", "/v1/documents", {"version": str(2**63)}),
])
def test_integers_beyond_their_range_are_a_clear_422_never_a_500(api, method, path, params):
    answer = getattr(api, method)(path, params=params) if method == "get" else api.post(path, params=params, json={})
    assert answer.status_code == 422, answer.text
    assert "less than or equal" in answer.text and "Traceback" not in answer.text


def test_a_body_too_large_is_refused_before_it_is_read_and_deep_json_is_a_422(api):
    from hub.api.limits import MAX_BODY_BYTES

    big = api.post("/v1/documents", content=b"x" * (MAX_BODY_BYTES + 1), headers={"Content-Type": "application/xml"})
    assert big.status_code == 413 and big.json()["error"] == "BodyTooLarge"
    deep = api.post("/v1/documents", content=b"[" * 5000 + b"]" * 5000, headers={"Content-Type": "application/json"})
    assert deep.status_code == 422 and "nests deeper" in deep.json()["message"]
    fine = api.post("/v1/documents", content=json.dumps({"note": "a [ in a string {{{{"}).encode(), headers={"Content-Type": "application/json"})
    assert fine.status_code in (400, 422) and "nests deeper" not in fine.text


def test_body_limits_are_per_route(api, broker):
    """Routes that take documents read up to HUB_MAX_BODY_BYTES; the others small JSON (1 MiB), unless
    HUB_BODY_LIMITS says otherwise for a path prefix."""
    from fastapi.testclient import TestClient

    from hub.api.app import create_app
    from hub.api.limits import MAX_CONTROL_BODY_BYTES

    two_mib = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    webhook = api.post("/v1/webhooks", content=two_mib, headers={"Content-Type": "application/json"})
    assert webhook.status_code == 413 and f"at most {MAX_CONTROL_BODY_BYTES}" in webhook.json()["message"]
    assert api.post("/v1/documents", content=two_mib, headers={"Content-Type": "application/json"}).status_code != 413
    broker.settings.body_limits = {"/v1/documents": 1000}
    with TestClient(create_app(broker), headers=dict(api.headers)) as tight:
        answer = tight.post("/v1/documents", content=b"{" + b" " * 2000 + b"}", headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "at most 1000" in answer.json()["message"]


def test_hub_body_limits_is_read_from_the_environment(monkeypatch):
    from hub.config import Settings
    from hub.errors import ConfigurationError

    monkeypatch.setenv("HUB_BODY_LIMITS", "/v1/webhooks=65536, /v1/documents=5242880")
    assert Settings.from_env().body_limits == {"/v1/webhooks": 65536, "/v1/documents": 5242880}
    monkeypatch.setenv("HUB_BODY_LIMITS", "webhooks=12")
    with pytest.raises(ConfigurationError, match="PATH_PREFIX=BYTES"):
        Settings.from_env()


def test_characters_no_xml_can_carry_are_a_422_naming_the_field(api):
    for bad in ("FR-2026\\u0000-NUL", "FR-\\u0001", "FR-\\ud800"):
        body = json.dumps(example_record()).replace('"FR-2026-PC-000123"', f'"{bad}"').encode()
        answer = api.post("/v1/documents", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 422, answer.text
        assert "certificate_number" in answer.text and "Traceback" not in answer.text
    long = example_record(certificate_number="F" * 1_000_000)
    answer = api.post("/v1/documents", json=long)
    assert answer.status_code == 422 and "at most 100 characters" in answer.text


def test_a_document_an_operator_submits_belongs_to_its_issuing_authority(api, broker):
    from hub.api.auth import create_client

    with broker.database.transaction() as session:
        key = create_client(session, name="fr-operator", role="operator", acts_for="FR,BE")[1]
    record = example_record(certificate_number="FR-2026-OPS-0001")
    # the administrator (the '*' client of before roles) manages, it does not issue
    assert api.post("/v1/documents", json=record, headers=api.headers_of("ops")).status_code == 403
    answer = api.post("/v1/documents", json=record, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 202, answer.text
    document_id = answer.json()["id"]
    mine = api.get(f"/v1/documents/{document_id}")  # the FR authority's own key
    assert mine.status_code == 200 and mine.json()["certificate_number"] == "FR-2026-OPS-0001"
    assert api.get(f"/v1/documents/{document_id}", headers=api.headers_of("NL")).status_code == 404
