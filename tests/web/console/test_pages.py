"""The console's pages over real data, on both engines: the trace search and its filters, a message's timeline
hop by hop, the XML shown as text (escaped), the raw payloads, what each role sees, and the live page."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import select

from hub.api.auth import SESSION_PREFIX, create_client, hash_key
from hub.store.models import Document, DocumentProduct, Message, OAuthToken, utcnow
from hub.store.trace import add_event
from tests.support.api import add_document
from tests.support.broker import example_record, permanent

NUMBER = "FR-2026-PC-000123"


def shipped(broker, record: dict | None = None):
    """The worked phytosanitary certificate submitted and sent once: customs refuses it for good (a dead letter),
    the authority takes it (awaiting its answer). Returns the document id and its messages by destination."""
    stored = broker.submit(json.dumps(record or example_record()).encode(), "application/json", tenant="FR", actor="api:test")
    broker.connectors["customs"].fail_next(permanent())
    broker.make_worker().drain()
    with broker.database.sessions() as session:
        messages = {m.destination: m.id for m in session.scalars(select(Message).where(Message.document_id == stored.document.id))}
    return stored.document.id, messages


def numbers_listed(page) -> list[str]:
    return re.findall(r'href="/console/documents/[^"]+">([^<]+)</a>', page.text)


def test_the_trace_search_filters_by_number_counterpart_state_country_product_and_period(person, broker):
    document_id, _ = shipped(broker)
    with broker.database.transaction() as session:
        grapes = add_document(session, tenant="FR", country="US", products=("0806.10",))
        session.add(DocumentProduct(document_id=grapes.id, line=1, hs_code="0806.10", scientific_name="Vitis vinifera"))
        old = add_document(session, tenant="FR", country="JP")
        old.created_at = utcnow() - timedelta(days=400)
        grapes_number, old_number = grapes.certificate_number, old.certificate_number
    console = person("operator", acts_for="FR")
    assert set(numbers_listed(console.get("/console/traces"))) == {NUMBER, grapes_number, old_number}
    assert numbers_listed(console.get("/console/traces", params={"number": NUMBER})) == [NUMBER]
    assert numbers_listed(console.get("/console/traces", params={"number": "FR-2026-PC-*"})) == [NUMBER]
    assert numbers_listed(console.get("/console/traces", params={"counterpart": "customs"})) == [NUMBER]
    assert numbers_listed(console.get("/console/traces", params={"state": "dead_letter"})) == [NUMBER]
    assert numbers_listed(console.get("/console/traces", params={"state": "acknowledged"})) == []
    assert numbers_listed(console.get("/console/traces", params={"country": "us"})) == [grapes_number]
    assert numbers_listed(console.get("/console/traces", params={"product": "0806"})) == [grapes_number]
    assert numbers_listed(console.get("/console/traces", params={"product": "vitis"})) == [grapes_number]
    last_year = (utcnow() - timedelta(days=400)).date().isoformat()
    assert numbers_listed(console.get("/console/traces", params={"from": last_year, "to": last_year})) == [old_number]
    assert set(numbers_listed(console.get("/console/traces", params={"from": (utcnow() - timedelta(days=1)).date().isoformat()}))) == {NUMBER, grapes_number}
    bad = console.get("/console/traces", params={"from": "yesterday"})
    assert bad.status_code == 422 and "from" in bad.text and "YYYY-MM-DD" in bad.text and "Traceback" not in bad.text


def test_a_message_timeline_shows_every_hop_with_its_payloads(person, broker):
    document_id, messages = shipped(broker)
    console = person("operator", acts_for="FR")
    page = console.get(f"/console/messages/{messages['customs']}")
    assert page.status_code == 200
    text = page.text
    for hop in ("document.received", "document.validated", "document.signed", "message.dead_letter", "attempt 1", "permanent_error", "404 no such endpoint"):
        assert hop in text, hop
    assert text.index("document.received") < text.index("attempt 1") < text.index("message.dead_letter")
    payloads = re.findall(r'href="(/v1/payloads/[0-9a-f]{64})"', text)
    assert payloads and all(console.get(url).status_code == 200 for url in set(payloads))  # downloadable with the session
    answered = console.get(f"/console/messages/{messages['authority']}").text
    assert "attempt 1" in answered and "response" in answered and "awaiting_ack" in answered


def test_the_document_page_shows_its_xml_as_text_its_signature_and_its_report(person, broker):
    record = example_record()
    record["consignment"]["consignor"]["name"] = "<script>alert('consignor')</script> & Co"
    document_id, messages = shipped(broker, record)
    with broker.database.transaction() as session:
        add_event(session, document=session.get(Document, document_id), event="note.added", actor="api:<b>x</b>", detail={"note": "<img src=x onerror=alert(1)>"})
    console = person("operator", acts_for="FR")
    page = console.get(f"/console/documents/{document_id}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text and "<b>x</b>" not in page.text
    assert "&amp;lt;script&amp;gt;alert(" in page.text  # the XML's own escape, escaped again: shown as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text and "api:&lt;b&gt;x&lt;/b&gt;" in page.text
    assert "&lt;rsm:SPSCertificate xmlns" in page.text and "&lt;/rsm:SPSCertificate&gt;" in page.text  # the XML, as text
    assert "\n  &lt;rsm:SPSExchangedDocument" in page.text
    assert "Signature" in page.text and ">valid<" in page.text and "CN=" in page.text
    assert "Validation report" in page.text
    assert console.get(f"/v1/documents/{document_id}/xml").status_code == 200


def test_each_role_sees_its_own_tenant_only(person, broker, site_app):
    document_id, messages = shipped(broker)
    with broker.database.transaction() as session:
        dutch = add_document(session, tenant="NL", country="US")
        dutch_id, dutch_number = dutch.id, dutch.certificate_number
    netherlands = person("issuing_authority", tenant="NL")
    assert numbers_listed(netherlands.get("/console/traces")) == [dutch_number]
    assert netherlands.get(f"/console/documents/{document_id}").status_code == 404
    assert netherlands.get(f"/console/messages/{messages['customs']}").status_code == 404
    assert NUMBER not in netherlands.get("/console/dead-letters").text
    france = person("issuing_authority", tenant="FR")
    assert NUMBER in numbers_listed(france.get("/console/traces")) and dutch_number not in france.get("/console/traces").text
    assert france.get(f"/console/documents/{dutch_id}").status_code == 404
    administrator = person("administrator")
    assert {NUMBER, dutch_number} <= set(numbers_listed(administrator.get("/console/traces")))


def test_a_foreign_authority_with_a_session_is_refused_every_console_page(site, broker):
    with broker.database.transaction() as session:
        client, _ = create_client(session, name="usda", role="foreign_authority", tenant="US", password="a long password")
        token = SESSION_PREFIX + "forged-by-the-test"
        session.add(OAuthToken(token_hash=hash_key(token), client_id=client.id, expires_at=utcnow() + timedelta(hours=1), created_at=utcnow()))
    site.cookies.set("hub_session", token)
    for path in ("/console/traces", "/console/counterparts", "/console/dead-letters", "/console/non-conformities", "/console/live"):
        answer = site.get(path, follow_redirects=False)
        assert answer.status_code == 403 and "Not allowed" in answer.text and "foreign_authority" in answer.text, path


def test_the_live_page_lists_the_latest_events_and_reads_the_stream(person, broker):
    shipped(broker)
    console = person("operator", acts_for="FR")
    page = console.get("/console/live")
    assert page.status_code == 200 and "message.dead_letter" in page.text and 'src="/static/live.js"' in page.text
    after = int(re.search(r'data-after="(\d+)"', page.text).group(1))
    assert after > 0
    script = console.get("/static/live.js")
    assert script.status_code == 200 and "/v1/events?after=" in script.text and "textContent" in script.text and "innerHTML" not in script.text
    assert console.get("/static/htmx.min.js").status_code == 200
    stream = console.get(f"/v1/events?after={after - 1}&once=true")  # what the script reads: the session opens it
    assert stream.status_code == 200 and stream.text.startswith(f"id: {after}\n")


def test_every_page_is_labelled_and_in_its_language(person, broker):
    shipped(broker)
    console = person("administrator")
    for path in ("/console/traces", "/console/counterparts", "/console/dead-letters", "/console/non-conformities", "/console/live"):
        page = console.get(path + "?lang=fr")
        assert page.status_code == 200 and '<html lang="fr">' in page.text and 'class="skip" href="#content"' in page.text, path
        inputs = re.findall(r'<(?:input|select|textarea)\b[^>]*\bid="([^"]+)"', page.text)
        hidden = re.findall(r'<input\b[^>]*type="hidden"', page.text)
        labels = set(re.findall(r'<label for="([^"]+)"', page.text))
        assert set(inputs) <= labels, (path, set(inputs) - labels)
        assert len(re.findall(r"<(?:input|select|textarea)\b", page.text)) == len(inputs) + len(hidden), path
