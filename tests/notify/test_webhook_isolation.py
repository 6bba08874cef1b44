"""No webhook subscriber can stall another, nor the worker (hub/notify/webhooks.py, hub/notify/breaker.py): each
subscriber is served on the dispatcher's own threads with a whole-answer deadline and a circuit breaker; the address
a target resolves to is checked when each connection is made (DNS rebinding). Over loopback sockets; on SQLite and
PostgreSQL."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore
import httpx
import pytest
from sqlalchemy import update

from connectors.http import bounded_transport, public_only
from hub.notify.breaker import Circuit, CircuitBreaker
from hub.notify.webhooks import WebhookDispatcher
from hub.store.models import WebhookSubscription, utcnow
from tests.support.api import add_events
from tests.support.loopback import LoopbackServer

TRICKLE_INTERVAL = 0.5
TRICKLE_BYTES = 40


class Receiver(ThreadingHTTPServer):
    """A loopback receiver recording the event ids (and Host headers) it was sent; closes each connection."""

    daemon_threads = True

    def __init__(self) -> None:
        self.events: list[int] = []
        self.hosts: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N805
                handler.rfile.read(int(handler.headers["Content-Length"]))
                self.events.append(int(handler.headers["X-Hub-Event-Id"]))
                self.hosts.append(handler.headers["Host"])
                handler.send_response(204)
                handler.send_header("Connection", "close")
                handler.end_headers()
                handler.close_connection = True

            def log_message(handler, *args) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class Trickler(LoopbackServer):
    """A loopback receiver that answers one byte every TRICKLE_INTERVAL."""

    def answer(self, connection: socket.socket) -> None:
        answer = b"HTTP/1.1 204 No Content\r\nX-Padding: " + b"p" * TRICKLE_BYTES + b"\r\n\r\n"
        connection.recv(65536)
        for index in range(len(answer)):
            if self.stopped.is_set():
                return
            connection.sendall(answer[index:index + 1])
            time.sleep(TRICKLE_INTERVAL)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def trickler():
    server = Trickler()
    yield server
    server.close()


def subscribe(database, url: str) -> str:
    subscription_id = str(uuid.uuid4())
    with database.transaction() as session:
        session.add(WebhookSubscription(id=subscription_id, tenant="FR", url=url, secret="s" * 32, filters={}))
    return subscription_id


def subscription(database, subscription_id: str) -> WebhookSubscription:
    with database.sessions() as session:
        return session.get(WebhookSubscription, subscription_id)


def make_due(database, subscription_id: str) -> None:
    with database.transaction() as session:
        session.execute(update(WebhookSubscription).where(WebhookSubscription.id == subscription_id).values(next_attempt_at=utcnow() - timedelta(seconds=1)))


def wait_until(condition, *, timeout: float) -> bool:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# --- a trickling subscriber delays nobody -------------------------------------------------------------------------

def test_a_trickling_subscriber_does_not_delay_another_subscribers_events(database, receiver, trickler):
    slow = subscribe(database, f"http://127.0.0.1:{trickler.port}/hook")
    fast = subscribe(database, f"http://127.0.0.1:{receiver.port}/hook")
    _, ids = add_events(database, [("document.received", None)] * 3)
    deadline = 2.0
    dispatcher = WebhookDispatcher(database, transport=bounded_transport(timeout=deadline), timeout=deadline, threads=2, idle_interval=0.05)
    trickle_total = TRICKLE_INTERVAL * (TRICKLE_BYTES + 40)
    started = time.monotonic()
    dispatcher.start()
    try:
        assert wait_until(lambda: receiver.events == ids, timeout=trickle_total)
        fast_took = time.monotonic() - started
        assert wait_until(lambda: subscription(database, slow).failures >= 1, timeout=trickle_total)
        slow_took = time.monotonic() - started
    finally:
        dispatcher.close()
    assert fast_took < slow_took  # the other subscriber did not wait for the trickle
    assert slow_took < trickle_total / 4  # and the trickle ended at its deadline, not after its last byte
    failed = subscription(database, slow)
    assert failed.last_event_id == 0 and "Timeout" in failed.last_error
    assert subscription(database, fast).last_event_id == ids[-1]


def test_the_worker_periodic_loop_only_starts_the_dispatcher(database, trickler):
    subscribe(database, f"http://127.0.0.1:{trickler.port}/hook")
    add_events(database, [("document.received", None)])
    dispatcher = WebhookDispatcher(database, transport=bounded_transport(timeout=3.0), timeout=3.0, threads=1, idle_interval=0.05)
    try:
        started = time.monotonic()
        dispatcher.start()
        dispatcher.start()  # what the worker's periodic loop does at each turn: returns at once
        took = time.monotonic() - started
        assert sum(thread.name.startswith("hub-webhooks-") for thread in threading.enumerate()) == 1
    finally:
        dispatcher.close()
    assert took < TRICKLE_INTERVAL  # not even one byte of the trickle was waited for


# --- the circuit breaker --------------------------------------------------------------------------------------------

class Flaky:
    def __init__(self, failing: int) -> None:
        self.failing, self.requests = failing, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(int(request.headers["X-Hub-Event-Id"]))
        if self.failing > 0:
            self.failing -= 1
            return httpx.Response(503, text="down")
        return httpx.Response(204)


def test_the_circuit_opens_after_consecutive_failures_then_a_trial_closes_it(database):
    created = subscribe(database, "https://receiver.example/hook")
    _, ids = add_events(database, [("document.received", None)] * 2)
    flaky = Flaky(failing=3)
    breaker = CircuitBreaker(threshold=3, cooldown=300)
    dispatcher = WebhookDispatcher(database, transport=httpx.MockTransport(flaky), retry_base=1, retry_max=4, breaker=breaker)
    for failures in (1, 2):
        assert dispatcher.run_once() == 0
        waited = subscription(database, created).next_attempt_at - utcnow()
        assert waited < timedelta(seconds=10) and breaker.state(failures, due=False) is Circuit.CLOSED
        make_due(database, created)
    before = utcnow()
    assert dispatcher.run_once() == 0  # the third failure in a row opens the circuit
    opened = subscription(database, created)
    assert opened.failures == 3 and "circuit open after 3 consecutive failures" in opened.last_error
    assert opened.next_attempt_at - before >= timedelta(seconds=299)  # the cool-down, not the 4 s backoff
    assert breaker.state(opened.failures, due=False) is Circuit.OPEN
    assert dispatcher.run_once() == 0 and len(flaky.requests) == 3  # open: nothing sent
    make_due(database, created)  # the cool-down is over: half-open, the next event is the trial
    assert breaker.state(opened.failures, due=True) is Circuit.HALF_OPEN
    assert dispatcher.run_once() == 2  # the trial succeeded: closed, the rest follows at once
    closed = subscription(database, created)
    assert closed.failures == 0 and closed.last_error is None and closed.last_event_id == ids[-1]
    assert flaky.requests == [ids[0]] * 4 + [ids[1]]


def test_a_failed_trial_opens_the_circuit_again(database):
    created = subscribe(database, "https://receiver.example/hook")
    add_events(database, [("document.received", None)])
    flaky = Flaky(failing=10)
    dispatcher = WebhookDispatcher(database, transport=httpx.MockTransport(flaky), retry_base=1, retry_max=2,
                                   breaker=CircuitBreaker(threshold=2, cooldown=200))
    for _ in range(3):
        dispatcher.run_once()
        make_due(database, created)
    before = utcnow()
    assert dispatcher.run_once() == 0
    again = subscription(database, created)
    assert again.failures == 4 and again.next_attempt_at - before >= timedelta(seconds=199)


# --- DNS rebinding ----------------------------------------------------------------------------------------------------

class ToLoopback(httpcore.NetworkBackend):
    """Sockets that record the address asked for and reach the local receiver whatever it was."""

    def __init__(self, port: int) -> None:
        self.port, self.asked, self._network = port, [], httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.asked.append(host)
        return self._network.connect_tcp("127.0.0.1", self.port, timeout=timeout)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise NotImplementedError

    def sleep(self, seconds):
        time.sleep(seconds)


def test_a_name_that_resolves_inside_at_send_time_is_refused(database, receiver):
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # public when first asked, then rebound to loopback
    network = ToLoopback(receiver.port)
    transport = bounded_transport(timeout=5, policy=public_only, resolve=lambda host, port: next(answers), network=network)
    created = subscribe(database, "http://hooks.example/hook")
    _, ids = add_events(database, [("document.received", None)])
    dispatcher = WebhookDispatcher(database, transport=transport)
    try:
        assert dispatcher.run_once() == 1
        assert network.asked == ["93.184.216.34"] and receiver.hosts == ["hooks.example"]  # pinned; Host kept
        add_events(database, [("document.received", None)])
        assert dispatcher.run_once() == 0
    finally:
        dispatcher.close()
    refused = subscription(database, created)
    assert network.asked == ["93.184.216.34"]  # no connection was even tried to the rebound address
    assert receiver.events == ids and refused.failures == 1
    assert "hooks.example resolves to 127.0.0.1: 127.0.0.1 is a loopback address" in refused.last_error


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://[::ffff:10.0.0.1]:9/hook", "http://169.254.169.254/latest"])
def test_an_address_outside_public_ranges_is_refused_before_connecting(url):
    network = ToLoopback(9)
    transport = bounded_transport(timeout=5, policy=public_only, network=network)
    with httpx.Client(transport=transport) as client:
        with pytest.raises(httpx.ConnectError, match="refused to connect"):
            client.post(url, content=b"{}")
    assert network.asked == []


def test_private_targets_allowed_go_straight_to_the_name(receiver):
    network = ToLoopback(receiver.port)
    with httpx.Client(transport=bounded_transport(timeout=5, network=network)) as client:
        client.post("http://hooks.example/hook", content=b"{}", headers={"X-Hub-Event-Id": "7"})
    assert network.asked == ["hooks.example"] and receiver.events == [7]
