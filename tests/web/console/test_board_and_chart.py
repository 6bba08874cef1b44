"""The counterparts' board against known figures, and the non-conformities chart: the most frequent problem first."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import update

from hub.acks.nonconformities import NonConformityFilter
from hub.scope import Scope
from hub.store.models import DeliveryAttempt, Message, NonConformity, NonConformityProduct, utcnow
from hub.web.chart import BAR_COLOUR, TOP_COLOUR
from hub.web.queries import board, percentile, problems_over_time
from tests.support.api import add_document
from tests.web.console.test_pages import shipped


def test_the_board_counts_backlog_answers_awaited_overdue_dead_letters_success_and_latency(person, broker):
    _, messages = shipped(broker)
    now = utcnow()
    with broker.database.transaction() as session:
        awaited = session.get(Message, messages["authority"])
        awaited.delivered_at, awaited.overdue_at = now - timedelta(hours=2), now - timedelta(minutes=5)
        session.execute(update(DeliveryAttempt).where(DeliveryAttempt.message_id == awaited.id).values(started_at=now - timedelta(hours=2), finished_at=now - timedelta(hours=2) + timedelta(milliseconds=100)))
        for number, ms in enumerate(range(200, 2001, 100), start=2):  # 19 more successes: 200 … 2000 ms
            start = now - timedelta(minutes=number)
            session.add(DeliveryAttempt(message_id=awaited.id, number=number, worker="w", started_at=start, finished_at=start + timedelta(milliseconds=ms), outcome="accepted"))
        session.add(DeliveryAttempt(message_id=awaited.id, number=30, worker="w", started_at=now - timedelta(hours=30), finished_at=now - timedelta(hours=30), outcome="transient_error", error="too old to count"))
    with broker.database.sessions() as session:
        rows = {r.destination: r for r in board(session, Scope.of("FR"), {"authority": "scripted", "customs": "scripted", "idle": "p2p"}, now=now)}
        other = {r.destination: r for r in board(session, Scope.of("NL"), {"authority": "scripted"}, now=now)}
    authority, customs = rows["authority"], rows["customs"]
    assert (authority.awaiting, authority.overdue, authority.dead_letters, authority.backlog) == (1, 1, 0, 0)
    assert 7190 <= authority.oldest_awaiting_seconds <= 7210
    assert (authority.attempts, authority.success_rate) == (20, 1.0)
    assert authority.mean_ms == sum(range(100, 2001, 100)) / 20 and authority.p95_ms == 1900
    assert (customs.dead_letters, customs.attempts, customs.success_rate, customs.last_error) == (1, 1, 0.0, "404 no such endpoint")
    assert rows["idle"].attempts == 0 and rows["idle"].success_rate is None
    assert authority.unmatched is None  # unmatched answers belong to no tenant: only for who sees every tenant
    assert other["authority"].awaiting == 0 and other["authority"].attempts == 0  # another tenant's messages are not counted
    page = person("administrator").get("/console/counterparts")
    row = re.search(r'<tr data-destination="authority">(.*?)</tr>', page.text, re.S).group(1)
    assert "1050 / 1900 ms" in row and "100 %" in row and "2 h" in row


def test_percentile_is_the_nearest_rank():
    assert percentile([1.0], 95) == 1.0
    assert percentile([float(n) for n in range(1, 101)], 95) == 95.0


def _non_conformity(session, document, *, country: str, product: str, cause: str, days_ago: int = 0):
    nc = NonConformity(id=str(uuid.uuid4()), document_id=document.id, tenant=document.tenant, source="border_refusal", counterpart="authority", country=country, cause_code=cause, opened_at=utcnow() - timedelta(days=days_ago))
    nc.products.append(NonConformityProduct(hs_code=product))
    session.add(nc)


def test_the_chart_puts_the_most_frequent_problem_first(person, broker):
    with broker.database.transaction() as session:
        fr, nl = add_document(session, tenant="FR"), add_document(session, tenant="NL")
        for days in (0, 0, 40, 70):
            _non_conformity(session, fr, country="DE", product="0808.10", cause="PEST-<FOUND>", days_ago=days)
        _non_conformity(session, fr, country="DE", product="0808.10", cause="LABEL")
        for _ in range(2):
            _non_conformity(session, fr, country="US", product="0806.10", cause="DOCS")
        for _ in range(9):
            _non_conformity(session, nl, country="US", product="0702", cause="NL-ONLY")
    with broker.database.sessions() as session:
        periods, problems = problems_over_time(session, NonConformityFilter(tenant="FR"), months=12)
    assert [(p.country, p.product, p.cause, p.total) for p in problems] == [("DE", "0808.10", "PEST-<FOUND>", 4), ("US", "0806.10", "DOCS", 2), ("DE", "0808.10", "LABEL", 1)]
    assert len(periods) == 12 and sum(problems[0].by_period) == 4 and problems[0].by_period[-1] >= 2
    console = person("issuing_authority", tenant="FR")
    svg = console.get("/console/non-conformities/chart.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    ranked = re.findall(r'<g class="problem" data-rank="(\d+)">\s*<text[^>]*>([^<]+)</text>\s*<rect[^>]*fill="(#[0-9a-f]{6})"', svg.text)
    assert [(rank, label, colour) for rank, label, colour in ranked] == [
        ("1", "DE × 0808.10 × PEST-&lt;FOUND&gt;", TOP_COLOUR), ("2", "US × 0806.10 × DOCS", BAR_COLOUR), ("3", "DE × 0808.10 × LABEL", BAR_COLOUR)]
    assert "NL-ONLY" not in svg.text and "<FOUND>" not in svg.text
    page = console.get("/console/non-conformities")
    assert page.status_code == 200 and page.text.index("PEST-&lt;FOUND&gt;") < page.text.index("DOCS") and "<svg" in page.text
    assert "NL-ONLY" not in page.text
    only_us = console.get("/console/non-conformities/chart.svg", params={"country": "us"}).text
    assert "DOCS" in only_us and "PEST" not in only_us


def test_a_non_conformity_shows_its_evidence_certificate_and_replacement(person, broker):
    from hub.store.payloads import put_payload

    with broker.database.transaction() as session:
        original, replacement = add_document(session, tenant="FR"), add_document(session, tenant="FR")
        nc = NonConformity(id=str(uuid.uuid4()), document_id=original.id, tenant="FR", source="business_response", counterpart="authority", country="DE", cause_code="PEST",
                           evidence_digest=put_payload(session, b"<refusal><why>&lt;script&gt;pest</why></refusal>", "application/xml"), replacement_document_id=replacement.id)
        session.add(nc)
        nc_id, numbers = nc.id, (original.certificate_number, replacement.certificate_number)
    page = person("operator", acts_for="FR").get(f"/console/non-conformities/{nc_id}")
    assert page.status_code == 200 and numbers[0] in page.text and numbers[1] in page.text
    assert "&lt;why&gt;&amp;lt;script&amp;gt;pest&lt;/why&gt;" in page.text and "<script>" not in page.text
    assert person("issuing_authority", tenant="NL").get(f"/console/non-conformities/{nc_id}").status_code == 404
