"""The journeys of issue 13 in a real browser (Chromium, driven by Playwright) against the hub served on loopback:
a person logs in, follows a certificate, watches the live page, acts on dead letters, reads the non-conformity chart
and the alerts; a foreign officer opens the verification link printed on the facsimile (its QR code's); the facsimile opens as a PDF.
Each page visited is checked for the basics of accessibility (tests/browser/pages.py) and, with HUB_SCREENSHOTS set,
saved as a picture."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import httpx
import pytest
from playwright.sync_api import Error as PlaywrightError

from hub.signing.verification import verification_code, verification_url
from hub.web.chart import TOP_COLOUR
from tests.browser.hub_data import NUMBER, PASSWORD, PEOPLE, TO_ABANDON, TO_RESEND, TOP_PROBLEM
from tests.browser.pages import accessibility_problems, assert_accessible, focused, log_in, screenshots_dir, shoot
from tests.support.broker import example_record

pytestmark = pytest.mark.slow

#: The worked certificate's consignor and consignee: never shown to a foreign officer.
COMMERCIAL = ("Vergers du Languedoc", "Frutas del Pac")


def test_a_person_logs_in_by_keyboard_after_a_wrong_password(page):
    page.goto("/console/traces")
    assert re.search(r"/console/login\?next=%2Fconsole%2Ftraces$", page.url)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert_accessible(page)
    shoot(page, "console-login.png")

    # from the top of the page, Tab reaches the name, the password and the button in that order, each with a
    # visible focus ring (the name field has the focus on arrival: start again from the first link, the skip link)
    assert focused(page)["id"] == "name"
    page.locator("a.skip").focus()
    reached = []
    for _ in range(20):
        page.keyboard.press("Tab")
        now = focused(page)
        assert now["outline"] != "none" and now["width"] >= 1, f"no visible focus on {now}"
        reached.append(now["id"] or f"{now['tag']}:{now['text']}")
        if now["tag"] == "button" and now["text"] == "Log in":
            break
    assert [r for r in reached if r in ("name", "password", "button:Log in")] == ["name", "password", "button:Log in"], reached

    page.get_by_label("Name").fill(PEOPLE["operator"])
    page.get_by_label("Password").fill("not the password")
    page.get_by_label("Password").press("Enter")
    assert page.get_by_role("alert").inner_text() == "Wrong name or password."
    assert "/console/login" in page.url and not page.context.cookies()

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/console/traces")
    assert page.get_by_role("heading", level=1).inner_text() == "Traces"
    cookie = next(c for c in page.context.cookies() if c["name"] == "hub_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert PEOPLE["operator"] in page.locator("header").inner_text()


def test_search_a_trace_open_the_document_its_xml_and_a_message_timeline(page, live_hub):
    log_in(page, "operator")
    rows = page.locator("main table tbody tr")
    assert rows.count() >= 5
    assert_accessible(page)
    shoot(page, "console-traces.png")
    page.get_by_label("Certificate or permit number").fill(NUMBER)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"**number={NUMBER}**")
    assert rows.count() == 1 and NUMBER in rows.inner_text()

    page.get_by_role("link", name=NUMBER, exact=True).click()
    page.wait_for_url(f"**/console/documents/{live_hub.documents[NUMBER]}")
    assert NUMBER in page.get_by_role("heading", level=1).inner_text()
    signature = page.locator("h2:has-text('Signature') + p")
    assert "valid" in signature.inner_text() and "CN=" in signature.inner_text()
    xml = page.locator("pre.xml")
    shown = xml.inner_text()
    assert shown.lstrip().startswith("<") and "SPSCertificate" in shown and NUMBER in shown
    assert xml.evaluate("pre => pre.children.length") == 0, "the XML must be shown as text, not markup"
    assert "&lt;" in xml.evaluate("pre => pre.innerHTML")
    assert_accessible(page)
    shoot(page, "console-document.png")

    page.locator("main table a", has_text="customs").click()
    page.wait_for_url(f"**/console/messages/{live_hub.messages[NUMBER]['customs']}")
    hops = page.locator("ol.timeline > li")
    texts = hops.all_inner_texts()
    assert [t for t in texts if t.startswith("attempt")] and sum(t.startswith("attempt ") for t in texts) == 3, texts
    assert any("message.dead_letter" in t for t in texts) and any("404 no such endpoint" in t for t in texts)
    assert page.locator("ol.timeline > li.bad").count() >= 3  # the failures stand out
    assert page.get_by_role("button", name="Resend").is_visible()
    assert_accessible(page)
    shoot(page, "console-message.png")


def test_the_live_page_shows_a_new_event_without_reloading(page, live_hub):
    log_in(page, "operator", then="/console/live")
    status = page.locator("#live-status")
    page.wait_for_function("s => s.textContent === s.dataset.live", arg=status.element_handle())
    page.evaluate("window.notReloaded = true")
    before = page.locator("#live-events tr").count()

    record = example_record(certificate_number="FR-2026-PC-LIVE-01")
    with httpx.Client(base_url=live_hub.url, timeout=10) as api:
        answer = api.post("/v1/documents", json=record, headers={"Authorization": f"Bearer {live_hub.api_key}"})
    assert answer.status_code == 202, answer.text
    document = answer.json()["id"]

    received = page.locator("#live-events tr", has_text="document.received").filter(has=page.locator(f"a[href='/console/documents/{document}']"))
    received.wait_for()
    assert page.evaluate("window.notReloaded") is True
    assert "api:fr-system" in received.inner_text()
    rows = page.locator("#live-events tr")
    added = rows.count() - before
    assert added >= 1 and received.evaluate("row => row.sectionRowIndex") < added, "new events go on top"
    assert_accessible(page)
    shoot(page, "console-live.png", full_page=False)


def test_resend_a_dead_letter_and_abandon_another_with_a_reason(page, live_hub):
    name = log_in(page, "operator", then="/console/dead-letters")
    listed = page.locator("main table tbody tr")
    assert {NUMBER, TO_RESEND, TO_ABANDON} <= {row.split("\t")[0].strip() for row in listed.all_inner_texts()}
    assert_accessible(page)
    shoot(page, "console-dead-letters.png")

    page.locator("main table tbody tr", has_text=TO_RESEND).get_by_role("link", name="Inspect").click()
    page.wait_for_url(f"**/console/messages/{live_hub.messages[TO_RESEND]['customs']}")
    page.get_by_role("button", name="Resend").click()
    page.wait_for_url("**?done=resent")
    assert page.get_by_role("status").inner_text() == "The message is queued again."
    assert page.locator("dl.facts .state").first.inner_text() == "queued"
    resent = page.locator("ol.timeline > li", has_text="message.resend")
    assert resent.count() == 1 and f"console:{name}" in resent.inner_text()

    page.goto(f"/console/messages/{live_hub.messages[TO_ABANDON]['customs']}")
    page.get_by_label(re.compile("Why is this message given up")).fill("sent by post instead")
    page.get_by_role("button", name="Abandon").click()
    page.wait_for_url("**?done=abandoned")
    assert page.locator("dl.facts .state").first.inner_text() == "abandoned"
    abandoned = page.locator("ol.timeline > li", has_text="message.abandoned")
    assert f"console:{name}" in abandoned.inner_text() and "sent by post instead" in abandoned.inner_text()
    assert not page.get_by_role("button", name="Abandon").count()  # a final state: nothing more to do

    # an auditor reads, but may not act
    page.context.clear_cookies()
    log_in(page, "auditor", then=f"/console/messages/{live_hub.messages[NUMBER]['customs']}")
    assert page.get_by_role("heading", name="Every hop").is_visible()
    assert not page.get_by_role("button", name="Resend").count()


def test_the_counterparts_board_counts_the_dead_letters(page):
    log_in(page, "operator", then="/console/counterparts")
    customs = page.locator("tr[data-destination='customs']")
    assert customs.is_visible() and "404 no such endpoint" in customs.inner_text()
    assert_accessible(page)
    shoot(page, "console-counterparts.png")


def test_the_non_conformity_chart_shows_the_top_cause_first(page):
    log_in(page, "issuing_authority", then="/console/non-conformities")
    chart = page.locator("figure.chart svg")
    first = chart.locator("g.problem[data-rank='1']")
    assert first.locator("text").first.text_content() == TOP_PROBLEM
    assert first.locator("rect").first.get_attribute("fill") == TOP_COLOUR
    boxes = [chart.locator(f"g.problem[data-rank='{rank}'] text").first.bounding_box() for rank in (1, 2, 3, 4)]
    assert [b["y"] for b in boxes] == sorted(b["y"] for b in boxes), "the most frequent problem must be drawn on top"
    assert page.locator("main ol li").first.inner_text().startswith(f"{TOP_PROBLEM}: 6")
    assert page.locator("main ol li.top strong").count() == 1
    assert_accessible(page)
    shoot(page, "console-nonconformities.png")


def test_a_dead_letter_raises_an_alert_that_leads_to_its_message(page, live_hub):
    log_in(page, "operator", then="/console/alerts")
    dead = live_hub.messages[NUMBER]["customs"]
    row = page.locator(f"tr[data-key='dead_letter:{dead}']")
    assert "Dead letter" in row.inner_text() and "404 no such endpoint" in row.inner_text()
    assert_accessible(page)
    shoot(page, "console-alerts.png")
    row.get_by_role("link").click()
    page.wait_for_url(f"**/console/messages/{dead}")


def test_a_foreign_officer_verifies_the_certificate_from_its_facsimile(page, live_hub, tmp_path):
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is missing: run `make tools`")
    # the facsimile, as printed: the verification code beside the QR code, and the link the QR code carries at the foot
    with httpx.Client(base_url=live_hub.url, timeout=30) as api:
        pdf = api.get(f"/v1/documents/{live_hub.documents[NUMBER]}/pdf", headers={"Authorization": f"Bearer {live_hub.api_key}"})
    assert pdf.status_code == 200, pdf.text
    (tmp_path / "facsimile.pdf").write_bytes(pdf.content)
    text = subprocess.run(["pdftotext", str(tmp_path / "facsimile.pdf"), "-"], capture_output=True, text=True, timeout=30, check=True).stdout
    printed = re.findall(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b", text)
    code = verification_code(live_hub.broker.verification_secret, issuing_country="FR", number=NUMBER)
    link = verification_url(live_hub.url, number=NUMBER, code=code)
    assert code in printed and link in text.split()

    page.goto(link)  # what the phone's camera opens
    verdict = page.locator("section.result h3")
    assert " ".join(verdict.inner_text().split()) == "Authentic — Issued, in force"
    facts = page.locator("dl.facts").inner_text()
    assert NUMBER in facts and "Phytosanitary certificate" in facts
    assert not [words for words in COMMERCIAL if words in page.content()]
    assert_accessible(page)
    shoot(page, "verify-authentic.png")

    page.goto(verification_url(live_hub.url, number=NUMBER, code="AAAA-AAAA-AAAA"))
    assert page.locator("section.result h3").inner_text() == "Not found or code incorrect"
    assert page.get_by_role("alert").is_visible() and NUMBER not in page.locator("section.result").inner_text()
    assert_accessible(page)
    shoot(page, "verify-refused.png")


def test_the_facsimile_opens_as_a_pdf(page, live_hub, tmp_path):
    log_in(page, "operator", then=f"/console/documents/{live_hub.documents[NUMBER]}")
    url = f"/v1/documents/{live_hub.documents[NUMBER]}/pdf"
    # what Chromium receives, with the person's session (headless Chromium downloads a PDF rather than show it)
    received = page.evaluate("""async url => {
        const r = await fetch(url, {credentials: "same-origin"});
        const bytes = new Uint8Array(await r.arrayBuffer());
        let binary = ""; for (const b of bytes) binary += String.fromCharCode(b);
        return {status: r.status, type: r.headers.get("content-type"), disposition: r.headers.get("content-disposition"), body: btoa(binary)};
    }""", url)
    assert (received["status"], received["type"]) == (200, "application/pdf")
    assert received["disposition"].startswith("inline")
    pdf = base64.b64decode(received["body"])
    assert pdf.startswith(b"%PDF-") and b"/ByteRange" in pdf  # signed
    # opened as a person would: headless Chromium may show it or download it; either way it receives a PDF
    with page.expect_response(lambda response: response.url.endswith(url)) as opened:
        try:
            page.goto(url)
        except PlaywrightError as exc:
            assert "Download is starting" in str(exc), exc
    assert (opened.value.status, opened.value.headers["content-type"]) == (200, "application/pdf")

    if not shutil.which("pdftoppm"):
        pytest.skip("pdftoppm (poppler-utils) is missing: run `make tools`")
    (tmp_path / "facsimile.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(tmp_path / "facsimile.pdf"), str(tmp_path / "page")], check=True, timeout=60)
    picture = tmp_path / "page.png"
    assert picture.read_bytes().startswith(b"\x89PNG") and picture.stat().st_size > 10_000
    folder = screenshots_dir()
    if folder is not None and not (folder / "facsimile-ephyto.png").exists():
        shutil.copyfile(picture, folder / "facsimile-ephyto.png")


def test_the_accessibility_checks_catch_what_they_look_for(chromium):
    page = chromium.new_page()
    page.set_content("""<html><body><h1>Title</h1><h3>Skipped a level</h3><h1>Another h1</h1>
        <input name="unlabelled"><label for="named">Named</label><input id="named"><button></button>
        <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><svg width="10" height="10"></svg>
        <p style="color: #999">pale grey</p><p style="color: #fff; background: #0b5cad">white on blue</p></body></html>""")
    problems = "\n".join(accessibility_problems(page))
    for expected in ("no lang attribute", 'a form control without a label: <input name="unlabelled">', "a button without a name", "an image without alt",
                     "a drawing (svg) without a title", "headings must start with the one h1", "heading h3 follows h1", 'contrast 2.85:1 for "pale grey"'):
        assert expected in problems, problems
    assert "Named" not in problems and "white on blue" not in problems
    page.close()
