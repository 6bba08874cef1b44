"""The alerts page (``/console/alerts``, hub/web/alerts.py): the alerts of the person's scope, linked to what they are
about, in English and French, refreshed by htmx as a fragment; closed to whoever is not logged in. On SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from hub.notify.alerts_config import AlertSettings, AlertsConfig
from hub.notify.alerts_service import AlertService
from hub.store.models import Message
from hub.store.states import MessageState
from tests.support.broker import example_record, permanent


def raise_alerts(broker) -> Message:
    """Six of FR's messages to ``authority`` in the dead letters (so ``authority`` fails too), the alerts raised."""
    broker.connectors["authority"].fail_next(*[permanent() for _ in range(6)])
    for index in range(6):
        broker.submit(json.dumps(example_record(certificate_number=f"FR-2026-PAGE-{index:04d}")).encode(), "application/json", tenant="FR", actor="api:test")
    broker.make_worker(webhooks=False).drain()
    destinations = {name: connector.config.type for name, connector in broker.connectors.items()}
    AlertService(broker.database, destinations=destinations, settings=AlertSettings(config=AlertsConfig())).sync()
    with broker.database.sessions() as session:
        return session.scalars(select(Message).where(Message.state == MessageState.DEAD_LETTER.value).order_by(Message.created_at)).first()


def rows(page: str) -> list[str]:
    return re.findall(r'data-key="([^"]+)"', page)


def test_an_operator_sees_the_alerts_of_the_authorities_it_acts_for(person, broker):
    dead = raise_alerts(broker)
    page = person("operator", acts_for="FR").get("/console/alerts")
    assert page.status_code == 200, page.text
    assert len(rows(page.text)) == 6 and all(key.startswith("dead_letter:") for key in rows(page.text))
    assert f'href="/console/messages/{dead.id}"' in page.text and "Dead letter" in page.text and "404 no such endpoint" in page.text
    assert '<html lang="en">' in page.text and 'hx-trigger="every 30s"' in page.text
    assert '<label for="alerts-state">' in page.text and '<label for="alerts-kind">' in page.text
    french = person("operator", acts_for="FR").get("/console/alerts", params={"lang": "fr"})
    assert '<html lang="fr">' in french.text and "Lettre morte" in french.text and "Erreur" in french.text


def test_another_authority_sees_none_and_the_administrator_sees_the_counterpart_too(person, broker):
    raise_alerts(broker)
    others = person("operator", acts_for="NL").get("/console/alerts")
    assert others.status_code == 200 and rows(others.text) == [] and "No alert" in others.text
    everything = person("administrator").get("/console/alerts")
    assert "counterpart_failing:authority" in rows(everything.text) and len(rows(everything.text)) == 7
    assert "every authority" in everything.text and 'href="/console/counterparts"' in everything.text
    failing = person("administrator").get("/console/alerts", params={"kind": "counterpart_failing"})
    assert rows(failing.text) == ["counterpart_failing:authority"]


def test_htmx_asks_for_the_list_alone(person, broker):
    raise_alerts(broker)
    fragment = person("auditor", acts_for="FR").get("/console/alerts", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and len(rows(fragment.text)) == 6


def test_cleared_alerts_are_listed_apart(person, broker):
    dead = raise_alerts(broker)
    broker.resend(dead.id, tenant="FR", actor="api:test")
    broker.make_worker(webhooks=False).drain()  # delivered this time
    destinations = {name: connector.config.type for name, connector in broker.connectors.items()}
    AlertService(broker.database, destinations=destinations, settings=AlertSettings(config=AlertsConfig())).sync()
    operator = person("operator", acts_for="FR")
    assert f"dead_letter:{dead.id}" not in rows(operator.get("/console/alerts").text)
    assert rows(operator.get("/console/alerts", params={"state": "cleared"}).text) == [f"dead_letter:{dead.id}"]


def test_the_page_needs_a_login_and_refuses_bad_filters_with_a_page(site, person):
    answer = site.get("/console/alerts", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login?next=%2Fconsole%2Falerts"
    operator = person("operator", acts_for="FR")
    bad = operator.get("/console/alerts", params={"state": "closed"})
    assert bad.status_code == 422 and "<html" in bad.text and "state must be one of open, cleared, all" in bad.text
    assert operator.get("/console/alerts", params={"kind": "nonsense"}).status_code == 422
