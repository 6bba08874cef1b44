"""The public verification page (/verify) over the whole site, on both engines: a foreign officer opens a QR code's
link or types number and code, or uploads a signed XML; plain HTML forms, no JavaScript, nothing commercial shown."""

from __future__ import annotations

import json

import lxml.html
import pytest
from fastapi.testclient import TestClient

from hub.api import ratelimit
from hub.api.ratelimit import RateLimiter
from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml
from hub.signing.verification import verification_code, verification_url
from hub.store.payloads import get_payload
from tests.support.broker import PERMIT_NUMBER, example_record, permit_record, replacement_of

NUMBER = "FR-2026-PC-000123"
#: The worked certificate's consignor and consignee, names and addresses: never on the page.
COMMERCIAL = ("Vergers du Languedoc", "12 chemin des Pommiers", "34000 Montpellier", "Frutas del Pac", "Av. 9 de Octubre", "Guayaquil")


@pytest.fixture
def officer(site, broker):
    """The site as a foreign officer's browser, attempts not limited (the limit has its own test)."""
    ratelimit._LIMITERS[broker] = {"verification": RateLimiter(per_minute=10_000)}
    return site


def issue(broker, record: dict) -> str:
    """Submit ``record`` as France's system; the stored document's signed XML."""
    document = broker.submit(json.dumps(record).encode(), "application/json", tenant="FR", actor="test").document
    with broker.database.sessions() as session:
        return get_payload(session, document.payload_digest).content


def code_of(broker, number: str = NUMBER) -> str:
    return verification_code(broker.verification_secret, issuing_country="FR", number=number)


def html(response):
    return lxml.html.fromstring(response.text)


def verdict(response) -> str:
    """The result's heading, as a reader hears it."""
    return " ".join(html(response).xpath("//section[@class='result']//h3")[0].text_content().split())


def upload(client, content: bytes, name: str = "certificate.xml"):
    return client.post("/verify", files={"document": (name, content, "application/xml")})


def test_the_qr_code_link_shows_the_certificate_authentic_and_nothing_commercial(officer, broker):
    issue(broker, example_record())
    link = verification_url("http://testserver", number=NUMBER, code=code_of(broker))
    answer = officer.get(link)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert verdict(answer) == "Authentic — Issued, in force"
    page = html(answer)
    facts = {dt.text_content().strip(): dd.text_content().strip() for dt, dd in zip(page.xpath("//dl[@class='facts']/dt"), page.xpath("//dl[@class='facts']/dd"))}
    assert (facts["Number"], facts["Document"], facts["Importing country"]) == (NUMBER, "Phytosanitary certificate", "EC")
    assert "Malus domestica" in page.xpath("//table")[0].text_content()
    assert not [words for words in COMMERCIAL if words in answer.text]
    assert answer.headers["Cache-Control"] == "no-store" and answer.headers["Referrer-Policy"] == "no-referrer"


def test_a_wrong_code_and_an_unknown_number_show_the_same_refusal(officer, broker):
    issue(broker, example_record())
    wrong = officer.get("/verify", params={"number": NUMBER, "code": code_of(broker, "FR-2026-PC-000999")})
    unknown = officer.get("/verify", params={"number": "FR-2026-PC-000999", "code": code_of(broker, "FR-2026-PC-000999")})
    assert wrong.status_code == unknown.status_code == 404
    results = [html(a).xpath("//section[@class='result']")[0].text_content() for a in (wrong, unknown)]
    assert results[0] == results[1] and "Not found or code incorrect" in results[0]


def test_the_form_works_without_javascript_and_takes_the_code_in_lower_case_with_spaces(officer, broker):
    issue(broker, example_record())
    empty = officer.get("/verify")
    page = html(empty)
    assert empty.status_code == 200 and page.get("lang") == "en" and not page.xpath("//script")
    for field in page.xpath("//input[not(@type='hidden')]"):  # every input labelled
        assert page.xpath(f"//label[@for='{field.get('id')}']"), field.get("name")
    form = page.xpath("//form[@method='get']")[0]
    assert form.get("action") == "/verify"
    typed = {"number": NUMBER, "code": "  " + code_of(broker).lower().replace("-", " ") + " "}
    fields = {field.get("name"): typed.get(field.get("name"), field.get("value")) for field in form.xpath(".//input")}
    answer = officer.get(form.get("action"), params=fields)  # what the browser sends when the form is submitted
    assert answer.status_code == 200 and verdict(answer).startswith("Authentic")


def test_a_malformed_code_is_named_beside_its_field(officer):
    answer = officer.get("/verify", params={"number": NUMBER, "code": "12345"})
    page = html(answer)
    assert answer.status_code == 422
    assert page.xpath("//input[@id='verify-code']")[0].get("aria-invalid") == "true"
    assert "12 letters and digits" in page.xpath("//*[@id='verify-code-error']")[0].text_content()


def test_replacement_and_withdrawal_show_in_the_status_in_french(officer, broker):
    original = example_record()
    issue(broker, original)
    issue(broker, replacement_of(original, "FR-2026-PC-000124"))
    replaced = officer.get("/verify", params={"number": NUMBER, "code": code_of(broker), "lang": "fr"})
    assert html(replaced).get("lang") == "fr"
    assert verdict(replaced) == "Authentique — Remplacé" and "remplacé par FR-2026-PC-000124" in replaced.text
    issue(broker, {**replacement_of(original, "FR-2026-PC-000124"), "status": "withdrawn"})
    withdrawn = officer.get("/verify", params={"number": "FR-2026-PC-000124", "code": code_of(broker, "FR-2026-PC-000124")})
    # the language chosen is remembered (a cookie)
    assert verdict(withdrawn) == "Authentique — Retiré" and "ne peut plus être présenté" in withdrawn.text


def test_attempts_past_the_limit_get_a_429_page_with_retry_after(site, broker):
    assert all(site.get("/verify").status_code == 200 for _ in range(12))  # the empty form costs nothing
    answers = [site.get("/verify", params={"number": f"FR-{i}", "code": "K7QM-2XPA-9D4R"}) for i in range(11)]
    assert [a.status_code for a in answers] == [404] * 10 + [429]
    assert int(answers[-1].headers["Retry-After"]) >= 1 and verdict(answers[-1]) == "Too many attempts"
    assert site.get("/v1/public/verify", params={"number": NUMBER, "code": "K7QM-2XPA-9D4R"}).status_code == 429  # one budget


def test_an_uploaded_signed_certificate_is_checked(officer, broker):
    signed = issue(broker, example_record())
    genuine = upload(officer, signed)
    assert genuine.status_code == 200 and verdict(genuine) == "Authentic — Issued, in force"
    assert "the very document the hub issued" in genuine.text and not [words for words in COMMERCIAL if words in genuine.text]

    tampered = upload(officer, signed.replace(b"18500", b"28500"))
    assert verdict(tampered) == "Not authentic: the signature does not hold" and "Malus" not in tampered.text

    by_another = broker.signer_for("US").sign(to_xml(render_certificate(record_from_data(example_record()), "full").root))
    not_entitled = upload(officer, by_another)
    assert verdict(not_entitled) == "Not authentic: the signer may not sign for this authority" and "C=US" in not_entitled.text
    assert "Malus" not in not_entitled.text  # FR's document is not described to a key that does not sign for FR


@pytest.mark.parametrize("content, status", [
    (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>', 400),
    (b"<r><open></r>", 400),
])
def test_a_hostile_or_broken_upload_is_refused_with_a_page(officer, content, status):
    answer = upload(officer, content)
    assert answer.status_code == status and answer.headers["content-type"].startswith("text/html")
    assert verdict(answer) == "This file cannot be checked" and "Traceback" not in answer.text


def test_an_unsigned_file_is_not_authentic_and_a_signed_stranger_cannot_be_checked(officer, broker):
    unsigned = upload(officer, b"<r>well formed, but signed by nobody</r>")
    assert unsigned.status_code == 200 and verdict(unsigned) == "Not authentic: the signature does not hold"
    stranger = upload(officer, broker.signer_for("FR").sign(b"<r>signed, but no certificate or permit</r>"))
    assert stranger.status_code == 422 and verdict(stranger) == "This file cannot be checked"


def test_an_upload_form_without_a_file_names_the_field(officer):
    answer = officer.post("/verify", data={"nothing": "here"}, files={"document": ("", b"", "application/octet-stream")})
    assert answer.status_code == 422 and html(answer).xpath("//input[@id='verify-file']")[0].get("aria-invalid") == "true"


def test_a_cites_permit_is_verified_by_its_link_and_its_signed_xml(permit_broker):
    from hub.web.app import create_site

    ratelimit._LIMITERS[permit_broker] = {"verification": RateLimiter(per_minute=10_000)}
    with TestClient(create_site(permit_broker)) as officer:
        signed = issue(permit_broker, permit_record())
        code = code_of(permit_broker, PERMIT_NUMBER)
        answer = officer.get("/verify", params={"number": PERMIT_NUMBER, "code": code, "lang": "es"})
        assert verdict(answer) == "Auténtico — Emitido, vigente" and "Certificado de reexportación CITES" in answer.text
        assert "Válido hasta" in answer.text and "Maroquinerie du Marais" not in answer.text
        checked = upload(officer, signed)  # in Spanish still: the choice is remembered
        assert verdict(checked) == "Auténtico — Emitido, vigente" and "Certificado de reexportación CITES" in checked.text
