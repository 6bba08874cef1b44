"""Alerts raised from what the store shows and cleared when their cause goes, one kind at a time, each raised once
(hub/notify/alerts.py, hub/notify/alerts_store.py); listed by ``GET /v1/alerts`` in each caller's scope. On SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.acks.correlation import take_answers
from hub.connector import AckReport, Outcome
from hub.notify.alerts import Thresholds
from hub.notify.alerts_config import AlertSettings, AlertsConfig
from hub.notify.alerts_service import AlertService
from hub.store.lifecycle import change_lifecycle, expire_permits
from hub.store.models import Alert, Document, Message, TraceEvent, utcnow
from hub.store.states import MessageState
from tests.support.broker import example_record, permanent, permit_record, transient

S = MessageState


def service(broker, **options) -> AlertService:
    """An alert service over ``broker`` with no e-mail (the notices are this module's concern only as state)."""
    destinations = {name: connector.config.type for name, connector in broker.connectors.items()}
    return AlertService(broker.database, destinations=destinations, settings=AlertSettings(config=AlertsConfig()), **options)


def submit(broker, record: dict | None = None, *, tenant: str = "FR"):
    return broker.submit(json.dumps(record or example_record()).encode(), "application/json", tenant=tenant, actor="api:test").document


def message_to(broker, document_id: str, destination: str) -> Message:
    with broker.database.sessions() as session:
        return session.scalars(select(Message).where(Message.document_id == document_id, Message.destination == destination)).one()


def open_alerts(broker) -> dict[str, Alert]:
    with broker.database.sessions() as session:
        return {row.key: row for row in session.scalars(select(Alert).where(Alert.cleared_at.is_(None)))}


def alert_events(broker, key: str) -> list[str]:
    with broker.database.sessions() as session:
        rows = session.scalars(select(TraceEvent).where(TraceEvent.event.like("alert.%")).order_by(TraceEvent.id)).all()
        return [row.event for row in rows if row.detail.get("key") == key]


# --- each kind, raised once and cleared ------------------------------------------------------------------------------


def test_a_dead_letter_is_raised_once_and_cleared_when_resent(broker):
    document = submit(broker)
    broker.connectors["authority"].fail_next(permanent())
    broker.make_worker(webhooks=False).drain()
    dead = message_to(broker, document.id, "authority")
    assert dead.state == S.DEAD_LETTER.value
    alerts = service(broker)
    assert alerts.sync().raised and alerts.sync().raised == []  # the second look raises nothing again
    key = f"dead_letter:{dead.id}"
    [alert] = open_alerts(broker).values()
    assert (alert.key, alert.kind, alert.severity, alert.tenant, alert.subject) == (key, "dead_letter", "error", "FR", document.certificate_number)
    assert (alert.message_id, alert.document_id, alert.destination) == (dead.id, document.id, "authority")
    assert "404" in alert.detail["last_error"]
    with broker.database.sessions() as session:
        [raised] = session.scalars(select(TraceEvent).where(TraceEvent.event == "alert.raised")).all()
    # the event joins the message's trace: its document's correlation id and tenant, the message and the counterpart
    assert (raised.correlation_id, raised.tenant, raised.message_id, raised.destination) == (document.correlation_id, "FR", dead.id, "authority")
    broker.resend(dead.id, tenant="FR", actor="api:test")
    assert alerts.sync().cleared == [alert.id]
    assert open_alerts(broker) == {} and alert_events(broker, key) == ["alert.raised", "alert.cleared"]
    broker.make_worker(webhooks=False).drain()
    assert alerts.sync().raised == [] and alert_events(broker, key) == ["alert.raised", "alert.cleared"]


def test_a_cause_that_comes_back_raises_the_same_alert_again(broker):
    document = submit(broker)
    broker.connectors["authority"].fail_next(permanent(), permanent())
    worker = broker.make_worker(webhooks=False)
    worker.drain()
    dead = message_to(broker, document.id, "authority")
    alerts = service(broker)
    alerts.sync()
    broker.resend(dead.id, tenant="FR", actor="api:test")
    alerts.sync()
    worker.drain()  # dead again
    assert len(alerts.sync().raised) == 1
    [alert] = open_alerts(broker).values()
    assert (alert.occurrences, alert.notified) == (2, "none")
    assert alert_events(broker, f"dead_letter:{dead.id}") == ["alert.raised", "alert.cleared", "alert.raised"]


def test_an_answer_overdue_is_raised_and_cleared_by_the_answer(broker):
    document = submit(broker)
    worker = broker.make_worker(webhooks=False)
    worker.drain()
    awaiting = message_to(broker, document.id, "authority")
    assert awaiting.state == S.AWAITING_ACK.value
    alerts = service(broker)
    assert alerts.sync().raised == []  # awaiting, within its deadline
    deadline = broker.connectors["authority"].config.answer_deadline
    assert worker.chase_overdue(now=utcnow() + timedelta(seconds=deadline + 60)) >= 1
    alerts.sync()
    overdue = open_alerts(broker)[f"answer_overdue:{awaiting.id}"]
    assert (overdue.severity, overdue.tenant, overdue.since is not None) == ("warning", "FR", True)
    take_answers(broker.database, "authority", [AckReport(outcome=Outcome.ACKNOWLEDGED, message_id=awaiting.id)], actor="connector:authority")
    assert alerts.sync().cleared == [overdue.id]
    assert f"answer_overdue:{awaiting.id}" not in open_alerts(broker)


def test_a_counterpart_erring_over_the_last_hour_is_failing_until_the_errors_age_out(broker):
    broker.connectors["authority"].fail_next(*[transient() for _ in range(6)])
    for number in ("FR-2026-ALR-000001", "FR-2026-ALR-000002"):
        submit(broker, example_record(certificate_number=number))
    broker.make_worker(webhooks=False).drain()  # 3 attempts each, every one failed: 6 of 6
    alerts = service(broker)
    alerts.sync()
    failing = open_alerts(broker)["counterpart_failing:authority"]
    assert (failing.tenant, failing.severity, failing.destination) == ("*", "error", "authority")
    assert failing.detail["attempts"] == 6 and failing.detail["error_rate"] == 1.0 and "100% of 6 attempts" in failing.detail["reasons"][0]
    assert "counterpart_failing:customs" not in open_alerts(broker)  # it took every message
    assert alerts.sync(now=utcnow() + timedelta(hours=2)).cleared == [failing.id]


def test_few_failures_are_no_failing_counterpart(broker):
    broker.connectors["authority"].fail_next(transient(), transient())
    submit(broker)
    broker.make_worker(webhooks=False).drain()
    service(broker).sync()
    assert not [key for key in open_alerts(broker) if key.startswith("counterpart_failing")]


def test_a_counterpart_with_an_old_backlog_and_no_success_is_failing_until_it_delivers(broker):
    submit(broker)
    alerts = service(broker)
    later = utcnow() + timedelta(minutes=31)
    alerts.sync(now=later)
    assert {"counterpart_failing:authority", "counterpart_failing:customs"} <= set(open_alerts(broker))
    assert "no success for 30 min" in open_alerts(broker)["counterpart_failing:authority"].detail["reasons"][0]
    broker.make_worker(webhooks=False).drain()
    assert len(alerts.sync(now=later).cleared) == 2


def permit(broker, *, ends_in: timedelta, number: str = "FR2607512399-R") -> Document:
    start = datetime.now(timezone.utc) - timedelta(days=10)
    end = datetime.now(timezone.utc) + ends_in
    record = permit_record(permit_number=number, validity={"start": start.isoformat(timespec="seconds"), "end": end.isoformat(timespec="seconds")})
    return submit(broker, record)


def permit_alerts(broker) -> dict[str, Alert]:
    return {key: row for key, row in open_alerts(broker).items() if key.startswith("permit_")}


def test_a_permit_nearing_expiry_then_expired_is_alerted_until_it_is_managed(permit_broker):
    near = permit(permit_broker, ends_in=timedelta(days=3))
    permit(permit_broker, ends_in=timedelta(days=60), number="FR2607512398-R")  # far from its end: no alert
    alerts = service(permit_broker)
    alerts.sync()
    key = f"permit_expiring:FR:cites_reexport:{near.certificate_number}"
    assert set(permit_alerts(permit_broker)) == {key}
    expiring = permit_alerts(permit_broker)[key]
    assert (expiring.tenant, expiring.document_id, expiring.detail["days_left"]) == ("FR", near.id, 2)
    after_end = utcnow() + timedelta(days=4)
    with permit_broker.database.transaction() as session:
        assert [d.id for d in expire_permits(session, now=after_end)] == [near.id]
    synced = alerts.sync(now=after_end)
    expired_key = f"permit_expired:FR:cites_reexport:{near.certificate_number}"
    assert synced.cleared == [expiring.id] and set(permit_alerts(permit_broker)) == {expired_key}
    assert not permit_alerts_raised(alerts, after_end + timedelta(days=30))  # still unmanaged, still the one alert
    with permit_broker.database.transaction() as session:
        change_lifecycle(session, session.get(Document, near.id), "cancellation_requested", actor="api:test")
    assert alerts.sync(now=after_end).cleared and permit_alerts(permit_broker) == {}


def test_a_used_permit_raises_nothing_even_past_its_validity(permit_broker):
    used = permit(permit_broker, ends_in=timedelta(days=2))
    with permit_broker.database.transaction() as session:
        change_lifecycle(session, session.get(Document, used.id), "used", actor="customs")
    assert not permit_alerts_raised(service(permit_broker), utcnow() + timedelta(days=5))


def permit_alerts_raised(alerts: AlertService, now: datetime) -> list[int]:
    """The permit alerts one sync at ``now`` raised (the messages left queued make their counterparts fail too)."""
    raised = alerts.sync(now=now).raised
    with alerts.database.sessions() as session:
        return [alert_id for alert_id in raised if session.get(Alert, alert_id).kind.startswith("permit_")]


def test_a_late_pssm_completion_is_alerted_for_the_late_window(permit_broker):
    from tests.cites.test_pssm import ACCOUNT, APPROVAL, SPECIMEN, completion, hours_ago, pssm

    permit_broker.create_approval(tenant="FR", approval_number=APPROVAL, holder_account=ACCOUNT, specimen_code=SPECIMEN, valid_from=datetime(2026, 1, 1, tzinfo=timezone.utc))
    on_time = submit(permit_broker, pssm())
    late = submit(permit_broker, pssm(permit_number="FR2607512346-R"))
    from hub.cites.pssm import Completion

    for document, hours in ((on_time, 2), (late, 30)):
        body = completion(sale_date=hours_ago(hours))
        permit_broker.complete_permit(document.id, Completion(**body), tenant="FR", actor="api:test")
    alerts = service(permit_broker)
    alerts.sync()
    [alert] = [a for a in open_alerts(permit_broker).values() if a.kind == "pssm_completion_late"]
    assert (alert.subject, alert.tenant, alert.severity) == ("FR2607512346-R", "FR", "warning")
    assert "24 hours" in alert.detail["message"] and alert.detail["sale_date"]
    window = Thresholds().late_window
    assert alerts.sync(now=utcnow() + window - timedelta(hours=1)).cleared == []
    assert alerts.sync(now=utcnow() + window + timedelta(hours=1)).cleared == [alert.id]


# --- two workers at once ---------------------------------------------------------------------------------------------


def test_two_services_syncing_at_once_raise_an_alert_once(broker):
    document = submit(broker)
    broker.connectors["authority"].fail_next(permanent())
    broker.make_worker(webhooks=False).drain()
    start = threading.Barrier(2)
    outcomes = []

    def sync() -> None:
        start.wait()
        try:
            outcomes.append(len(service(broker).sync().raised))
        except IntegrityError:
            outcomes.append("lost the race")

    threads = [threading.Thread(target=sync) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(map(str, outcomes)) in (["0", "1"], ["1", "lost the race"])
    key = f"dead_letter:{message_to(broker, document.id, 'authority').id}"
    assert alert_events(broker, key) == ["alert.raised"]


# --- the API, in each caller's scope ---------------------------------------------------------------------------------


def test_the_api_lists_alerts_in_the_callers_scope(api, broker):
    broker.connectors["authority"].fail_next(*[permanent() for _ in range(6)])
    for number in ("FR-2026-ALR-000010", "FR-2026-ALR-000011", "FR-2026-ALR-000012", "FR-2026-ALR-000013", "FR-2026-ALR-000014", "FR-2026-ALR-000015"):
        submit(broker, example_record(certificate_number=number))
    broker.make_worker(webhooks=False).drain()
    service(broker).sync()
    mine = api.get("/v1/alerts")
    assert mine.status_code == 200, mine.text
    kinds = {item["kind"] for item in mine.json()["items"]}
    assert kinds == {"dead_letter"} and mine.json()["total"] == 6 and all(item["tenant"] == "FR" for item in mine.json()["items"])
    everything = api.get("/v1/alerts", headers=api.headers_of("ops")).json()
    assert everything["total"] == 7 and any(item["key"] == "counterpart_failing:authority" for item in everything["items"])
    assert api.get("/v1/alerts", headers=api.headers_of("NL")).json() == {"total": 0, "limit": 100, "offset": 0, "items": []}
    assert api.get("/v1/alerts", params={"kind": "counterpart_failing"}, headers=api.headers_of("ops")).json()["total"] == 1
    assert api.get("/v1/alerts", params={"state": "cleared"}).json()["total"] == 0
    refused = api.get("/v1/alerts", params={"state": "closed"})
    assert refused.status_code == 422 and "state" in refused.text
    assert api.get("/v1/alerts", params={"kind": "nonsense"}).status_code == 422
    assert api.get("/v1/alerts", headers={"Authorization": "Bearer nope"}).status_code == 401
