"""Hostile values the hub must take, but only as what they are: SQL metacharacters stored literally and searchable,
``%`` and ``_`` never wildcards, markup never reflected as HTML, CRLF never splitting a log line, comments and
processing instructions never cutting a value short (issue 12 #3), an operator's submission owned by its authority
(#4), forged content in ds:KeyInfo neither kept nor forwarded (#5). On SQLite and PostgreSQL."""

from __future__ import annotations

import logging

import pytest
from lxml import etree

from hub.api.auth import create_client
from hub.connector import InboundDocument
from hub.namespaces import XMLDSIG
from tests.hostile import payloads as p

ENGINES = pytest.mark.parametrize("kit", ["sqlite", "postgresql"], indirect=True)
SQL = "Robert'); DROP TABLE documents;-- \" OR 1=1 /* ;"
SCRIPT = "<script>alert('hub')</script><img src=x onerror=alert(1)>"


def submit(kit, data: dict, **headers):
    answer = kit.api.post("/v1/documents", json=data, headers=headers)
    assert answer.status_code == 202, answer.text
    return answer.json()


@ENGINES
def test_sql_metacharacters_are_stored_literally_and_found_by_what_they_say(kit):
    number = f"FR-2026-'OR'1'='1-{p.fresh_number('Q')}"
    data = p.record(certificate_number=number)
    data["consignment"]["consignor"]["name"] = SQL
    document = submit(kit, data)
    found = kit.api.get("/v1/documents", params={"number": number}).json()
    assert [item["id"] for item in found["items"]] == [document["id"]]
    assert kit.api.get(f"/v1/documents/{document['id']}").json()["record"]["consignment"]["consignor"]["name"] == SQL
    assert kit.api.get("/v1/documents", params={"number": "' OR '1'='1"}).json()["total"] == 0
    assert kit.api.get("/v1/documents", params={"number": "x' UNION SELECT id FROM api_clients --"}).json()["total"] == 0
    assert kit.stored()["documents"] >= 1  # the table is still there


@ENGINES
def test_percent_and_underscore_in_a_product_search_are_characters_not_wildcards(kit):
    submit(kit, p.record())  # HS 080810, Malus domestica
    def total(product):
        return kit.api.get("/v1/documents", params={"product": product}).json()["total"]
    assert total("0808") >= 1 and total("malus") >= 1
    for pattern in ("%", "0%", "_808", "08_8", "%domestica", "mal_s", "\\"):
        assert total(pattern) == 0, pattern


def test_markup_in_values_is_never_served_as_html(kit):
    data = p.record()
    data["consignment"]["consignor"]["name"] = SCRIPT
    data["consignment"]["consignee"]["address"]["line_one"] = SCRIPT
    document = submit(kit, data)
    pages = ["/docs", "/redoc", "/openapi.json", "/v1/documents", f"/v1/documents/{document['id']}", f"/v1/documents/{document['id']}/xml",
             f"/v1/documents/{SCRIPT}", f"/v1/verify/{SCRIPT}", "/v1/messages", "/v1/non-conformities", "/v1/connectors", "/metrics"]
    for page in pages:
        answer = kit.api.get(page)
        assert answer.status_code < 500, (page, answer.text[:300])
        media_type = answer.headers.get("content-type", "")
        if "html" in media_type:
            assert "alert('hub')" not in answer.text, f"{page} reflects the value as HTML"
        elif SCRIPT in answer.text:
            assert media_type.startswith(("application/json", "application/xml")), (page, media_type)
    xml = kit.api.get(f"/v1/documents/{document['id']}/xml").content
    assert b"<script>" not in xml and b"&lt;script&gt;" in xml


FORGED_LINE = "\r\n2026-01-01 00:00:00 W hub.security  ALL CLEAR: signature checks disabled"


def split_lines(records: list[logging.LogRecord]) -> list[str]:
    assert records, "nothing was logged: the test proves nothing"
    return [record.getMessage() for record in records if "\n" in record.getMessage() or "\r" in record.getMessage()]


def test_crlf_in_an_answer_or_a_submission_never_splits_a_log_line(kit, caplog):
    caplog.set_level(logging.DEBUG)
    ack = p.acknowledgement(message_id=None, certificate_number=f"FR-NONE{FORGED_LINE}", reason=f"[BAD] no{FORGED_LINE}")
    pushed = kit.api.post("/v1/inbound/foreign_authority", content=kit.signer("US").sign(ack), headers={"Content-Type": "application/xml", "Authorization": ""})
    assert pushed.status_code == 404, pushed.text
    data = p.record()
    data["consignment"]["consignor"]["name"] = f"Vergers{FORGED_LINE}"
    kit.api.post("/v1/documents", json=data)
    assert not split_lines(caplog.records)


def test_crlf_in_a_counterpart_reference_never_splits_a_log_line(kit, caplog):
    caplog.set_level(logging.DEBUG)
    kit.broker.receive_document("foreign_authority", InboundDocument(b"<not-a-certificate/>", f"HUB-1{FORGED_LINE}"))
    assert not split_lines(caplog.records)


@pytest.mark.parametrize("markup", ["<!--x-->", "<?pi x?>"], ids=["comment", "processing-instruction"])
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_a_comment_or_processing_instruction_in_a_value_never_cuts_it_short(kit, markup, signed):
    number = p.fresh_number("FR-2026-R3P")
    document = p.with_markup_in_number(p.unsigned_xml(number=number), number, markup)
    assert markup.encode() in document
    if signed:
        document = kit.signer("FR").sign(document)
    answer = kit.api.post("/v1/documents", content=document, headers={"Content-Type": "application/xml"})
    if answer.status_code >= 400:  # refused: fine, if it says where
        assert answer.status_code in (400, 422) and "Traceback" not in answer.text, answer.text
        return
    assert answer.status_code == 202, answer.text
    stored = kit.api.get(f"/v1/documents/{answer.json()['id']}").json()
    assert stored["certificate_number"] == number, f"read as {stored['certificate_number']!r}"
    assert kit.api.get("/v1/verify/" + number[:-2]).status_code == 404


@ENGINES
def test_an_operator_acts_for_its_authority_and_only_for_it(kit):
    with kit.broker.database.transaction() as session:
        key = create_client(session, name=f"operator-{p.fresh_number('op')}", role="operator", acts_for="FR")[1]
    operator = {"Authorization": f"Bearer {key}"}
    answer = kit.api.post("/v1/documents", json=p.record(), headers=operator)
    assert answer.status_code == 202, answer.text
    document_id = answer.json()["id"]
    assert kit.api.get(f"/v1/documents/{document_id}").status_code == 200  # FR's own key sees it: stored under FR, never '*'
    assert kit.api.get(f"/v1/documents/{document_id}", headers=kit.api.headers_of("NL")).status_code == 404
    before = kit.stored()
    other = p.record()
    other["consignment"].update(export_country={"id": "NL"})
    other.pop("issuer", None)
    refused = kit.api.post("/v1/documents", json=other, headers=operator)
    assert refused.status_code == 403 and refused.json()["error"] == "PermissionDenied", refused.text
    assert kit.stored() == before


def test_forged_content_in_key_info_is_neither_kept_nor_forwarded(kit):
    root = etree.fromstring(kit.signer("FR").sign(p.unsigned_xml()))
    key_info = root.find(f"{{{XMLDSIG}}}Signature/{{{XMLDSIG}}}KeyInfo")
    key_info.append(etree.fromstring(p.unsigned_xml(number="FR-2026-FORGED-IN-KEYINFO")))
    answer = kit.api.post("/v1/documents", content=etree.tostring(root), headers={"Content-Type": "application/xml"})
    assert answer.status_code == 202, answer.text
    assert b"FORGED" not in kit.api.get(f"/v1/documents/{answer.json()['id']}/xml").content
    for message in answer.json()["messages"]:
        digest = kit.api.get(f"/v1/messages/{message['id']}").json()["payload_digest"]
        assert b"FORGED" not in kit.api.get(f"/v1/payloads/{digest}").content


@pytest.mark.parametrize("where", ["/v1/documents", "/v1/verify"])
def test_a_remote_schema_location_is_never_fetched(kit, where):
    document = p.schema_location(kit.canary.url, p.unsigned_xml())
    if where == "/v1/verify":
        document = kit.signer("FR").sign(document)
    answer = kit.api.post(where, content=document, headers={"Content-Type": "application/xml"})
    assert answer.status_code in (200, 202, 400, 422) and "Traceback" not in answer.text, answer.text
    assert kit.canary.hits == [], "the hub fetched the schema a document named"
