"""``/v1/webhooks`` and the dispatcher that pushes events: order, signature, cursor, backoff, poison events, leases,
tenant isolation; on SQLite and PostgreSQL. The receiver is an ``httpx.MockTransport``: no sockets."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from hub.api import webhooks
from hub.notify.webhooks import WebhookDispatcher, sign, verify_signature
from hub.store.models import WebhookSubscription, utcnow
from tests.support.api import add_events, api_key, make_app


class Receiver:
    """Records every request; answers ``fail_first`` failures first, and always fails the events in ``poison``."""

    def __init__(self, *, fail_first: int = 0, poison: set[int] | None = None, status: int = 500, delay: float = 0.0, headers: dict | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.fail_first = fail_first
        self.poison = poison or set()
        self.status = status
        self.delay = delay
        self.headers = headers or {}
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.requests.append(request)
            failing = self.fail_first > 0 or int(request.headers["X-Hub-Event-Id"]) in self.poison
            self.fail_first -= 1 if self.fail_first > 0 else 0
        return httpx.Response(self.status, headers=self.headers, text="nope") if failing else httpx.Response(204)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def ids(self, url: str | None = None) -> list[int]:
        return [int(r.headers["X-Hub-Event-Id"]) for r in self.requests if url is None or str(r.url) == url]


@pytest.fixture
def webhooks_http(database):
    """A client of a minimal app over the webhooks router."""
    with TestClient(make_app(database, webhooks.router)) as client:
        yield client


def subscribe(http, headers, **body) -> dict:
    response = http.post("/v1/webhooks", json={"url": "https://receiver.example/hook", "from": "beginning", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def make_due(database, subscription_id: str) -> None:
    """As if the backoff had elapsed."""
    with database.transaction() as session:
        session.execute(update(WebhookSubscription).where(WebhookSubscription.id == subscription_id).values(next_attempt_at=utcnow() - timedelta(seconds=1)))


# --- the API --------------------------------------------------------------------------------------------------------


def test_create_list_get_delete(database, webhooks_http):
    headers = api_key(database)
    created = subscribe(webhooks_http, headers, filters={"event": "message.", "country": "de"})
    assert len(created["secret"]) >= 32 and created["filters"] == {"event": "message.", "country": "DE"}
    listed = webhooks_http.get("/v1/webhooks", headers=headers).json()["items"]
    assert [s["id"] for s in listed] == [created["id"]] and "secret" not in listed[0]
    one = webhooks_http.get(f"/v1/webhooks/{created['id']}", headers=headers).json()
    assert "secret" not in one
    assert one["delivery"] == {"last_event_id": 0, "failures": 0, "last_error": None, "next_attempt_at": one["delivery"]["next_attempt_at"]}
    assert webhooks_http.delete(f"/v1/webhooks/{created['id']}", headers=headers).status_code == 204
    assert webhooks_http.get(f"/v1/webhooks/{created['id']}", headers=headers).status_code == 404
    assert webhooks_http.get("/v1/webhooks", headers=headers).json()["items"] == []


def test_a_given_secret_is_kept_and_from_now_skips_the_past(database, webhooks_http):
    _, ids = add_events(database, [("document.received", None)] * 2)
    created = subscribe(webhooks_http, api_key(database), secret="s" * 20, **{"from": "now"})
    assert created["secret"] == "s" * 20
    assert created["delivery"]["last_event_id"] == ids[-1]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://receiver.example/x"}, "url"),
        ({"url": "receiver.example/hook"}, "url"),
        ({"url": "https://user:pw@receiver.example/hook"}, "url"),
        ({"url": "https://receiver.example/hook", "filters": {"colour": "red"}}, "filters"),
        ({"url": "https://receiver.example/hook", "filters": {"country": "France"}}, "filters"),
        ({"url": "https://receiver.example/hook", "secret": "short"}, "secret"),
        ({"url": "https://receiver.example/hook", "from": "yesterday"}, "from"),
    ],
)
def test_invalid_subscriptions_are_422_naming_the_field(database, webhooks_http, body, field):
    response = webhooks_http.post("/v1/webhooks", json=body, headers=api_key(database))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", field]


def test_subscriptions_of_another_tenant_are_invisible(database, webhooks_http):
    fr, de = api_key(database, "FR"), api_key(database, "DE")
    created = subscribe(webhooks_http, fr)
    assert webhooks_http.get(f"/v1/webhooks/{created['id']}", headers=de).status_code == 404
    assert webhooks_http.delete(f"/v1/webhooks/{created['id']}", headers=de).status_code == 404
    assert webhooks_http.get("/v1/webhooks", headers=de).json()["items"] == []
    assert [s["id"] for s in webhooks_http.get("/v1/webhooks", headers=api_key(database, "*", operator=True)).json()["items"]] == [created["id"]]
    assert webhooks_http.get("/v1/webhooks").status_code == 401


# --- the dispatcher -------------------------------------------------------------------------------------------------


def test_events_are_posted_in_order_signed_and_the_cursor_advances(database, webhooks_http):
    headers = api_key(database)
    created = subscribe(webhooks_http, headers, filters={"event": "message."})
    _, ids = add_events(database, [("document.received", None), ("message.queued", "ephyto_hub"), ("message.sending", "ephyto_hub"), ("message.acknowledged", "ephyto_hub")])
    receiver = Receiver()
    dispatcher = WebhookDispatcher(database, transport=receiver.transport)
    assert dispatcher.run_once() == 3
    assert receiver.ids() == ids[1:]
    for request, name in zip(receiver.requests, ["message.queued", "message.sending", "message.acknowledged"]):
        body = request.content
        assert verify_signature(created["secret"], request.headers["X-Hub-Timestamp"], body, request.headers["X-Hub-Signature-256"], max_age=60)
        assert not verify_signature("another secret!!", request.headers["X-Hub-Timestamp"], body, request.headers["X-Hub-Signature-256"])
        assert request.headers["X-Hub-Event"] == name and request.headers["Content-Type"] == "application/json"
        data = json.loads(body)
        assert data["event"] == name and data["id"] == int(request.headers["X-Hub-Event-Id"]) and data["counterpart"] == "ephyto_hub"
    assert webhooks_http.get(f"/v1/webhooks/{created['id']}", headers=headers).json()["delivery"]["last_event_id"] == ids[-1]
    assert dispatcher.run_once() == 0 and len(receiver.requests) == 3  # nothing new: nothing sent again
    _, more = add_events(database, [("message.rejected", "traces_nt")])
    assert dispatcher.run_once() == 1 and receiver.ids()[-1] == more[0]


def test_verify_signature():
    body = b'{"id":1}'
    header = sign("k" * 16, "1700000000", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature("k" * 16, "1700000000", body, header)
    assert verify_signature("k" * 16, "1700000000", body.decode(), header)
    assert not verify_signature("k" * 16, "1700000000", b'{"id":2}', header)
    assert not verify_signature("k" * 16, "1700000001", body, header)
    assert not verify_signature("k" * 16, "1700000000", body, header, max_age=300, now=1700000000 + 301)
    assert verify_signature("k" * 16, "1700000000", body, header, max_age=300, now=1700000000 + 299)


def test_a_failure_backs_off_and_nothing_is_sent_before_the_next_attempt(database, webhooks_http):
    headers = api_key(database)
    created = subscribe(webhooks_http, headers)
    _, ids = add_events(database, [("document.received", None)] * 3)
    receiver = Receiver(fail_first=2)
    dispatcher = WebhookDispatcher(database, transport=receiver.transport, retry_base=30, retry_max=600)
    before = utcnow()
    assert dispatcher.run_once() == 0
    status = webhooks_http.get(f"/v1/webhooks/{created['id']}", headers=headers).json()["delivery"]
    assert status["failures"] == 1 and status["last_event_id"] == 0 and "HTTP 500" in status["last_error"]
    wait = datetime.fromisoformat(status["next_attempt_at"]) - before
    assert timedelta(seconds=30 * 0.8 - 1) <= wait <= timedelta(seconds=30 * 1.2 + 1)
    assert dispatcher.run_once() == 0 and len(receiver.requests) == 1  # not due yet
    make_due(database, created["id"])
    assert dispatcher.run_once() == 0 and len(receiver.requests) == 2
    status = webhooks_http.get(f"/v1/webhooks/{created['id']}", headers=headers).json()["delivery"]
    wait = datetime.fromisoformat(status["next_attempt_at"]) - before
    assert status["failures"] == 2 and wait >= timedelta(seconds=60 * 0.8 - 1)  # exponential
    make_due(database, created["id"])
    assert dispatcher.run_once() == 3
    assert receiver.ids() == [ids[0], ids[0], *ids]
    status = webhooks_http.get(f"/v1/webhooks/{created['id']}", headers=headers).json()["delivery"]
    assert status["failures"] == 0 and status["last_error"] is None and status["last_event_id"] == ids[-1]


def test_connection_errors_and_retry_after_are_failures_too(database, webhooks_http):
    created = subscribe(webhooks_http, api_key(database))
    add_events(database, [("document.received", None)])

    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    dispatcher = WebhookDispatcher(database, transport=httpx.MockTransport(refuse), retry_base=1)
    assert dispatcher.run_once() == 0
    with database.sessions() as session:
        sub = session.get(WebhookSubscription, created["id"])
        assert sub.failures == 1 and sub.last_error.startswith("ConnectError")
    make_due(database, created["id"])
    throttled = WebhookDispatcher(database, transport=Receiver(fail_first=1, status=503, headers={"Retry-After": "120"}).transport, retry_base=1)
    before = utcnow()
    assert throttled.run_once() == 0
    with database.sessions() as session:
        assert session.get(WebhookSubscription, created["id"]).next_attempt_at >= before + timedelta(seconds=119)


def test_a_poison_event_is_skipped_after_max_failures(database, webhooks_http):
    headers = api_key(database)
    created = subscribe(webhooks_http, headers)
    _, ids = add_events(database, [("document.received", None)] * 3)
    receiver = Receiver(poison={ids[1]})
    dispatcher = WebhookDispatcher(database, transport=receiver.transport, retry_base=1, max_failures=3)
    assert dispatcher.run_once() == 1
    for _ in range(2):
        make_due(database, created["id"])
        assert dispatcher.run_once() == 0
    status = webhooks_http.get(f"/v1/webhooks/{created['id']}", headers=headers).json()["delivery"]
    assert status["last_event_id"] == ids[1] and status["failures"] == 0 and f"event {ids[1]} skipped after 3" in status["last_error"]
    assert dispatcher.run_once() == 1
    assert receiver.ids() == [ids[0], ids[1], ids[1], ids[1], ids[2]]
    assert webhooks_http.get(f"/v1/webhooks/{created['id']}", headers=headers).json()["delivery"]["last_event_id"] == ids[2]


def test_each_subscription_gets_only_its_tenants_matching_events(database, webhooks_http):
    fr = subscribe(webhooks_http, api_key(database, "FR"), url="https://fr.example/hook")
    de = subscribe(webhooks_http, api_key(database, "DE"), url="https://de.example/hook", filters={"product": "0603"})
    everything = subscribe(webhooks_http, api_key(database, "*", operator=True), url="https://ops.example/hook")
    _, fr_ids = add_events(database, [("document.received", None)], tenant="FR", products=["0603.11"])
    _, de_apples = add_events(database, [("document.received", None)], tenant="DE", products=["0808.10"])
    _, de_roses = add_events(database, [("document.received", None)], tenant="DE", products=["0603.11"])
    receiver = Receiver()
    WebhookDispatcher(database, transport=receiver.transport).run_once()
    assert receiver.ids("https://fr.example/hook") == fr_ids
    assert receiver.ids("https://de.example/hook") == de_roses
    assert receiver.ids("https://ops.example/hook") == fr_ids + de_apples + de_roses
    with database.sessions() as session:  # every cursor moved to the newest event, matching or not
        assert {session.get(WebhookSubscription, s["id"]).last_event_id for s in (fr, de, everything)} == {de_roses[0]}


def test_two_dispatchers_never_send_the_same_event_twice(database, webhooks_http):
    headers = api_key(database)
    urls = [f"https://r{n}.example/hook" for n in range(3)]
    for url in urls:
        subscribe(webhooks_http, headers, url=url)
    _, ids = add_events(database, [("document.received", None)] * 12)
    receiver = Receiver(delay=0.005)
    dispatchers = [WebhookDispatcher(database, transport=receiver.transport, name=f"d{n}", batch=4) for n in range(2)]
    errors: list[BaseException] = []

    def run(dispatcher):
        try:
            deadline = time.monotonic() + 30
            while len(receiver.requests) < len(urls) * len(ids) and time.monotonic() < deadline:
                dispatcher.run_once()
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for url in urls:
        assert receiver.ids(url) == ids  # each event once, in order
    assert {r.headers["X-Hub-Event-Id"] for r in receiver.requests} == {str(i) for i in ids}


def test_a_leased_subscription_is_not_taken_until_the_lease_expires(database, webhooks_http):
    created = subscribe(webhooks_http, api_key(database))
    add_events(database, [("document.received", None)])
    with database.transaction() as session:
        session.execute(update(WebhookSubscription).where(WebhookSubscription.id == created["id"]).values(lease_owner="dead-worker", lease_expires_at=utcnow() + timedelta(seconds=30)))
    receiver = Receiver()
    dispatcher = WebhookDispatcher(database, transport=receiver.transport)
    assert dispatcher.run_once() == 0 and receiver.requests == []
    with database.transaction() as session:
        session.execute(update(WebhookSubscription).where(WebhookSubscription.id == created["id"]).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert dispatcher.run_once() == 1


def test_a_run_out_of_time_sends_one_event_per_subscription_and_keeps_the_order(database, webhooks_http):
    headers = api_key(database)
    for url in ("https://a.example/hook", "https://b.example/hook"):
        subscribe(webhooks_http, headers, url=url)
    _, ids = add_events(database, [("document.received", None)] * 3)
    receiver = Receiver()
    dispatcher = WebhookDispatcher(database, transport=receiver.transport, max_run_seconds=0)
    assert [dispatcher.run_once() for _ in range(4)] == [2, 2, 2, 0]
    assert receiver.ids("https://a.example/hook") == ids
    assert receiver.ids("https://b.example/hook") == ids


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/hook", "http://[::1]/hook", "http://169.254.169.254/latest", "http://intranet/hook"])
def test_webhooks_may_not_target_this_hubs_own_network(webhooks_http, database, url):
    answer = webhooks_http.post("/v1/webhooks", json={"url": url}, headers=api_key(database, "FR"))
    assert answer.status_code == 422 and answer.json()["where"] == "url", answer.text
