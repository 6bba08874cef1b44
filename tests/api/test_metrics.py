"""``GET /metrics``: the gauges read from the database at scrape time, the in-process counters, and who may scrape;
on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from hub.api import metrics
from hub.api.metrics import Metrics, install_metrics
from hub.stages import CLOCK, stage
from hub.store.models import Message, NonConformity, WebhookSubscription, utcnow
from tests.support.api import add_document, api_key, make_app


@pytest.fixture
def metrics_app(database):
    """A minimal app over the metrics router, its broker configured with three destinations."""
    app = make_app(database, metrics.router)
    app.state.broker.connectors = {"ephyto_hub": object(), "traces_nt": object(), "delta": object()}
    return app


@pytest.fixture
def metrics_http(metrics_app):
    with TestClient(metrics_app) as client:
        yield client


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text) for s in family.samples}


def add_message(session, document, destination: str, state: str, *, due_seconds_ago: float = 0.0) -> None:
    session.add(Message(id=str(uuid.uuid4()), document_id=document.id, destination=destination, state=state, payload_digest=document.payload_digest, next_attempt_at=utcnow() - timedelta(seconds=due_seconds_ago)))


def test_gauges_count_what_the_database_holds(database, metrics_http):
    with database.transaction() as session:
        phyto = add_document(session, kind="phyto")
        add_document(session, kind="phyto")
        add_document(session, kind="phyto", status="replacement")
        vet = add_document(session, kind="veterinary", tenant="DE")
        add_message(session, phyto, "ephyto_hub", "acknowledged")
        add_message(session, phyto, "ephyto_hub", "acknowledged")
        add_message(session, phyto, "ephyto_hub", "queued", due_seconds_ago=120)
        add_message(session, vet, "ephyto_hub", "retry_wait", due_seconds_ago=30)
        add_message(session, vet, "traces_nt", "retry_wait", due_seconds_ago=-600)  # not due yet: no age
        add_message(session, vet, "traces_nt", "dead_letter", due_seconds_ago=9999)  # not waiting: no age
        for counterpart, country, state in [("traces_nt", "DE", "open"), ("traces_nt", "DE", "open"), ("ephyto_hub", "US", "open"), ("ephyto_hub", "US", "closed")]:
            session.add(NonConformity(id=str(uuid.uuid4()), document_id=phyto.id, tenant="FR", source="border_refusal", counterpart=counterpart, country=country, cause_code="PEST", state=state))
        session.add(WebhookSubscription(id="sub-1", tenant="FR", url="https://r.example/", secret="x" * 20, filters={}, failures=4))
    response = metrics_http.get("/metrics", headers=api_key(database, "*", operator=True))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    assert got[("hub_database_up", ())] == 1
    assert got[("hub_messages", (("destination", "ephyto_hub"), ("state", "acknowledged")))] == 2
    assert got[("hub_messages", (("destination", "ephyto_hub"), ("state", "queued")))] == 1
    assert got[("hub_messages", (("destination", "traces_nt"), ("state", "dead_letter")))] == 1
    assert sum(v for (name, _), v in got.items() if name == "hub_messages") == 6
    assert got[("hub_documents_total", (("kind", "phyto"), ("status", "original")))] == 2
    assert got[("hub_documents_total", (("kind", "phyto"), ("status", "replacement")))] == 1
    assert got[("hub_documents_total", (("kind", "veterinary"), ("status", "original")))] == 1
    assert got[("hub_non_conformities_open", (("counterpart", "traces_nt"), ("country", "DE")))] == 2
    assert got[("hub_non_conformities_open", (("counterpart", "ephyto_hub"), ("country", "US")))] == 1
    assert 119 <= got[("hub_outbox_oldest_due_seconds", (("destination", "ephyto_hub"),))] < 180
    assert got[("hub_outbox_oldest_due_seconds", (("destination", "traces_nt"),))] == 0
    assert got[("hub_outbox_oldest_due_seconds", (("destination", "delta"),))] == 0  # a connector with nothing queued
    assert got[("hub_webhook_failures", (("subscription", "sub-1"),))] == 4


def test_scrapes_read_the_database_each_time(database, metrics_http):
    headers = api_key(database, "*", operator=True)
    assert not [k for k in samples(metrics_http.get("/metrics", headers=headers).text) if k[0] == "hub_messages"]
    with database.transaction() as session:
        add_message(session, add_document(session), "delta", "awaiting_ack")
    assert samples(metrics_http.get("/metrics", headers=headers).text)[("hub_messages", (("destination", "delta"), ("state", "awaiting_ack")))] == 1


def test_in_process_counters_are_exposed_per_app(database, metrics_app, metrics_http):
    registry = install_metrics(metrics_app)
    assert metrics_app.state.metrics is registry and install_metrics(metrics_app) is registry
    metrics_app.state.metrics.submissions.labels(outcome="created").inc()
    metrics_app.state.metrics.submissions.labels(outcome="created").inc()
    metrics_app.state.metrics.delivery_seconds.labels(destination="traces_nt").observe(0.3)
    got = samples(metrics_http.get("/metrics", headers=api_key(database, "*", operator=True)).text)
    assert got[("hub_submissions_total", (("outcome", "created"),))] == 2
    assert got[("hub_delivery_seconds_count", (("destination", "traces_nt"),))] == 1
    assert got[("hub_delivery_seconds_bucket", (("destination", "traces_nt"), ("le", "0.5")))] == 1
    # Another app's registry is its own: creating it does not collide, and it starts at zero.
    other = Metrics(CollectorRegistry())
    assert samples(other.exposition().decode()).get(("hub_submissions_total", (("outcome", "created"),))) is None


def test_an_operator_key_is_required_unless_public(database, metrics_http, monkeypatch):
    monkeypatch.delenv("HUB_METRICS_PUBLIC", raising=False)
    assert metrics_http.get("/metrics").status_code == 401
    assert metrics_http.get("/metrics", headers={"Authorization": "Bearer hub_unknown"}).status_code == 401
    assert metrics_http.get("/metrics", headers=api_key(database, "FR")).status_code == 403
    assert metrics_http.get("/metrics", headers={"X-API-Key": api_key(database, "*", operator=True)["Authorization"][7:]}).status_code == 200
    monkeypatch.setenv("HUB_METRICS_PUBLIC", "1")
    assert metrics_http.get("/metrics").status_code == 200


def busy(seconds: float) -> None:
    """Spend ``seconds`` of this thread's CPU."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_each_stage_counts_the_cpu_of_its_own_code(database, metrics_http):
    CLOCK.reset()
    with stage("deliver"):
        busy(0.03)
        with stage("verify"):
            busy(0.05)
    time.sleep(0.05)  # waiting is no CPU
    other = threading.Thread(target=lambda: stage_in_thread(0.02))
    other.start()
    other.join()
    got = samples(metrics_http.get("/metrics", headers=api_key(database, "*", operator=True)).text)
    cpu = {stage_name: got.get(("hub_stage_cpu_seconds_total", (("stage", stage_name),)), 0.0) for stage_name in ("deliver", "verify", "claim")}
    assert 0.05 <= cpu["verify"] < 0.075
    assert 0.03 <= cpu["deliver"] < 0.05  # its own 30 ms, not the 50 ms of the verify nested in it
    assert 0.02 <= cpu["claim"] < 0.04  # counted in the thread that ran it
    assert got[("hub_stage_seconds_count", (("stage", "verify"),))] == 1
    assert got[("process_cpu_seconds_total", ())] >= cpu["verify"] + cpu["deliver"] + cpu["claim"]


def stage_in_thread(seconds: float) -> None:
    with stage("claim"):
        busy(seconds)
