"""Public verification through the API, with no account, on both engines: a number and its code, a signed copy
uploaded; the same refusal for a wrong code and an unknown number; nothing commercial; attempts limited."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from hub.api import ratelimit
from hub.api.ratelimit import RateLimiter, client_key
from hub.api.verify_public import NOT_FOUND
from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml
from hub.signing.verification import verification_code
from tests.support.broker import PERMIT_NUMBER, example_record, permit_record, replacement_of

NUMBER = "FR-2026-PC-000123"
COMMERCIAL = ("Vergers du Languedoc", "chemin des Pommiers", "Frutas del Pac", "Guayaquil")
XML = {"Content-Type": "application/xml"}


@pytest.fixture
def public(api, broker):
    """The API with no credentials at all, attempts not limited (the limit has its own tests)."""
    ratelimit._LIMITERS[broker] = {"verification": RateLimiter(per_minute=10_000)}
    return TestClient(api.app)


def submit(api, record) -> dict:
    answer = api.post("/v1/documents", content=json.dumps(record), headers={"Content-Type": "application/json"})
    assert answer.status_code == 202, answer.text
    return answer.json()


def code_of(broker, number: str = NUMBER, country: str = "FR") -> str:
    return verification_code(broker.verification_secret, issuing_country=country, number=number)


def test_the_right_code_shows_an_authentic_certificate_and_nothing_commercial(api, broker, public):
    submit(api, example_record())
    answer = public.get("/v1/public/verify", params={"number": NUMBER, "code": code_of(broker)})
    assert answer.status_code == 200, answer.text
    stated = answer.json()
    assert (stated["authentic"], stated["number"], stated["family"], stated["kind"], stated["status"]) == (True, NUMBER, "sps", "phytosanitary", "issued")
    assert (stated["issuing_country"], stated["exporting_country"], stated["replaced_by"]) == ("FR", "FR", None)
    assert stated["products"][0]["scientific_name"] == "Malus domestica" and stated["products"][0]["hs_code"] == "080810"
    assert answer.headers["Cache-Control"] == "no-store"
    text = answer.text
    assert not [word for word in COMMERCIAL if word in text]
    assert "consignor" not in text and "consignee" not in text and "tenant" not in text and '"id"' not in text


def test_a_wrong_code_and_an_unknown_number_get_the_same_answer(api, broker, public):
    submit(api, example_record())
    wrong = public.get("/v1/public/verify", params={"number": NUMBER, "code": code_of(broker, "FR-2026-PC-000999")})
    unknown = public.get("/v1/public/verify", params={"number": "FR-2026-PC-000999", "code": code_of(broker, "FR-2026-PC-000999")})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json() == {"error": "NotFound", "message": NOT_FOUND, "where": "number"}
    # a code of the right number but made for another issuing country is just as wrong
    assert public.get("/v1/public/verify", params={"number": NUMBER, "code": code_of(broker, country="US")}).json() == wrong.json()


def test_the_code_is_read_as_typed_lower_case_with_spaces(api, broker, public):
    submit(api, example_record())
    typed = code_of(broker).lower().replace("-", " ")
    assert public.get("/v1/public/verify", params={"number": f" {NUMBER} ", "code": typed}).json()["authentic"] is True
    assert public.get("/v1/public/verify", params={"number": NUMBER.lower(), "code": typed}).json()["number"] == NUMBER


@pytest.mark.parametrize("params, where", [
    ({"number": "", "code": "K7QM-2XPA-9D4R"}, "number"),
    ({"number": "X" * 101, "code": "K7QM-2XPA-9D4R"}, "number"),
    ({"number": NUMBER, "code": "K7QM-2XPA"}, "code"),
    ({"number": NUMBER, "code": "K7QM-2XPA-9D4U"}, "code"),
    ({"number": NUMBER}, "code"),
])
def test_what_cannot_be_a_number_or_a_code_is_named(public, params, where):
    answer = public.get("/v1/public/verify", params=params)
    assert answer.status_code == 422 and answer.json()["where"] == where


def test_the_status_follows_replacement_and_withdrawal(api, broker, public):
    original = example_record()
    submit(api, original)
    submit(api, replacement_of(original, "FR-2026-PC-000124"))
    stated = public.get("/v1/public/verify", params={"number": NUMBER, "code": code_of(broker)}).json()
    assert (stated["status"], stated["replaced_by"]) == ("replaced", "FR-2026-PC-000124")
    replacement = public.get("/v1/public/verify", params={"number": "FR-2026-PC-000124", "code": code_of(broker, "FR-2026-PC-000124")}).json()
    assert (replacement["status"], replacement["replaces"]) == ("issued", NUMBER)
    submit(api, {**replacement_of(original, "FR-2026-PC-000124"), "status": "withdrawn"})
    withdrawn = public.get("/v1/public/verify", params={"number": "FR-2026-PC-000124", "code": code_of(broker, "FR-2026-PC-000124")}).json()
    assert withdrawn["status"] == "withdrawn"


def test_a_cites_permit_is_verified_by_code_and_by_its_signed_copy(permit_api, permit_broker):
    ratelimit._LIMITERS[permit_broker] = {"verification": RateLimiter(per_minute=10_000)}
    public = TestClient(permit_api.app)
    document = submit(permit_api, permit_record())
    stated = public.get("/v1/public/verify", params={"number": PERMIT_NUMBER, "code": code_of(permit_broker, PERMIT_NUMBER)}).json()
    assert (stated["family"], stated["kind"], stated["status"]) == ("cites", "cites_reexport", "issued")
    assert stated["valid_until"] and stated["products"][0]["scientific_name"]
    assert "Maroquinerie du Marais" not in json.dumps(stated)
    signed = permit_api.get(f"/v1/documents/{document['id']}/xml").content
    checked = public.post("/v1/public/verify", content=signed, headers=XML).json()
    assert (checked["authentic"], checked["entitled"], checked["issued_copy"], checked["status"]) == (True, True, True, "issued")
    assert checked["family"] == "cites" and "Maroquinerie du Marais" not in json.dumps(checked)


def test_an_uploaded_signed_copy_is_checked(api, broker, public):
    document = submit(api, example_record())
    signed = api.get(f"/v1/documents/{document['id']}/xml").content
    genuine = public.post("/v1/public/verify", content=signed, headers=XML)
    assert genuine.status_code == 200, genuine.text
    checked = genuine.json()
    assert (checked["authentic"], checked["signature"], checked["entitled"], checked["issued_copy"]) == (True, "valid", True, True)
    assert (checked["number"], checked["status"], checked["document"]["status"]) == (NUMBER, "issued", "issued")
    assert checked["signer"].endswith("C=FR") and not [word for word in COMMERCIAL if word in genuine.text]

    tampered = public.post("/v1/public/verify", content=signed.replace(b"18500", b"28500"), headers=XML).json()
    assert (tampered["authentic"], tampered["signature"]) == (False, "invalid") and "changed" in tampered["reason"]
    assert "status" not in tampered

    record = example_record()
    by_another = broker.signer_for("US").sign(to_xml(render_certificate(record_from_data(record), "full").root))
    not_entitled = public.post("/v1/public/verify", content=by_another, headers=XML).json()
    assert (not_entitled["authentic"], not_entitled["signature"], not_entitled["entitled"]) == (False, "valid", False)
    assert "C=US" in not_entitled["reason"] and "document" not in not_entitled  # FR's status is not told to the US key

    other = broker.signer_for("FR").sign(to_xml(render_certificate(record_from_data(example_record(description="another")), "full").root))
    earlier = public.post("/v1/public/verify", content=other, headers=XML).json()
    assert (earlier["authentic"], earlier["issued_copy"], earlier["status"]) == (True, False, "issued")

    never_issued = broker.signer_for("FR").sign(to_xml(render_certificate(record_from_data(example_record(certificate_number="FR-2026-PC-777777")), "full").root))
    unknown = public.post("/v1/public/verify", content=never_issued, headers=XML).json()
    assert (unknown["authentic"], unknown["held"], unknown["status"]) == (True, False, None)


@pytest.mark.parametrize("body, status, error", [
    (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>', 400, "HostileXMLError"),
    (b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>', 400, "HostileXMLError"),
    (b"<r><unclosed></r>", 400, "MalformedXMLError"),
    (b"\x00\xff not xml", 400, "MalformedXMLError"),
    (b"   ", 422, "InputError"),
])
def test_hostile_or_broken_uploads_are_refused_cleanly(public, body, status, error):
    answer = public.post("/v1/public/verify", content=body, headers=XML)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error and answer.json()["message"]


def test_an_upload_past_the_body_limit_is_refused_unread(public, broker):
    too_big = b"<r>" + b"x" * (1024 * 1024) + b"</r>"
    answer = public.post("/v1/public/verify", content=too_big, headers=XML)
    assert answer.status_code == 413 and answer.json()["error"] == "BodyTooLarge"


def test_attempts_past_the_limit_get_429_with_retry_after(api, broker):
    public = TestClient(api.app)
    answers = [public.get("/v1/public/verify", params={"number": f"FR-{i}", "code": "K7QM-2XPA-9D4R"}) for i in range(11)]
    assert [a.status_code for a in answers] == [404] * 10 + [429]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60 and answers[-1].json()["error"] == "TooManyAttempts"
    # the upload spends the same budget
    assert public.post("/v1/public/verify", content=b"<r/>", headers=XML).status_code == 429


def test_the_bucket_refills_and_forgets_the_oldest_addresses():
    now = [0.0]
    limiter = RateLimiter(per_minute=10, max_clients=2, clock=lambda: now[0])
    assert [limiter.attempt("a") for _ in range(10)] == [0] * 10
    assert limiter.attempt("a") == 6  # one attempt every 6 s
    now[0] += 6.0
    assert limiter.attempt("a") == 0 and limiter.attempt("a") == 6
    assert limiter.attempt("b") == 0 and limiter.attempt("c") == 0
    assert len(limiter._buckets) == 2 and "a" not in limiter._buckets


def test_ipv6_clients_are_counted_by_their_64_network():
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("testclient") == "testclient"
