"""Webhooks: trace events pushed to subscribers' URLs, in order, at least once, signed.

Each event is one ``POST`` of a JSON body (the same object as the SSE stream's ``data``) with the headers::

    Content-Type: application/json
    X-Hub-Event-Id: 1234                   the trace event id; increasing, the subscription's cursor
    X-Hub-Event: message.acknowledged
    X-Hub-Timestamp: 1717171717            Unix seconds when this attempt was signed
    X-Hub-Signature-256: sha256=<hex>      HMAC-SHA256 over f"{timestamp}.{body}" with the subscription's secret

To verify, a receiver recomputes ``hmac(secret, timestamp + "." + raw body, sha256)`` over the raw bytes it received,
compares it in constant time with the header (:func:`verify_signature` does both), and rejects timestamps too old
to be fresh (a replayed request). Any 2xx answer acknowledges the event; anything else, a timeout or a connection
error is a failure: the subscription waits (exponential backoff with jitter) and the same event goes again. After
``max_failures`` consecutive failures the event is skipped, and ``last_error`` says so, so that one event the
receiver cannot take does not block the subscription forever.

Each subscriber is served on its own: its queue is the trace after its cursor; each request has a whole-answer
deadline (the transport the dispatcher is handed bounds connect, send and the whole answer, and the answer's size);
consecutive failures open its circuit (:mod:`hub.notify.breaker`) for a cool-down, then one event tries it again.
The dispatcher runs on its own threads (:meth:`WebhookDispatcher.start`), outside the worker's loops that deliver
and poll: a receiver that trickles its answer holds one dispatcher thread for at most its deadline, never the
delivery of messages, the polling of acknowledgements, nor the other subscribers beyond that thread.

Delivery is **at least once**: a dispatcher that dies after the receiver answered but before it moved the cursor,
or whose lease expired during a slow answer, means the same event is sent again. Receivers de-duplicate on
``X-Hub-Event-Id`` (keeping the highest id processed is enough, since events arrive in id order).

Several dispatchers (one per worker process, each with a few threads) share the subscriptions: each thread takes a
subscription with a lease, by a compare-and-set update, and moves its cursor only while it holds that lease, so one
subscription's events go out one at a time, in order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_, select, update

from hub.store.events import EventFilters, event_data, latest_event_id, read_events
from hub.delivery.retry import RetryStrategy
from hub.notify.breaker import CircuitBreaker
from hub.store.db import Database
from hub.store.models import TraceEvent, WebhookSubscription, utcnow

log = logging.getLogger("hub.webhooks")
SIGNATURE_PREFIX = "sha256="
#: Seconds a receiver has for its whole answer (the transport handed to the dispatcher enforces it).
WEBHOOK_TIMEOUT = 5.0
#: Bytes of a receiver's answer read at most: only its status matters, and the start of its text for the error.
WEBHOOK_ANSWER_BYTES = 64 * 1024


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes | str, header: str, *, max_age: float | None = None, now: float | None = None) -> bool:
    """True when ``header`` (``X-Hub-Signature-256``) signs ``body`` at ``timestamp`` (``X-Hub-Timestamp``) with
    ``secret``; with ``max_age`` (seconds), also refuse a timestamp that far from ``now`` (a replay)."""
    raw = body.encode() if isinstance(body, str) else body
    if max_age is not None:
        try:
            if abs((now if now is not None else time.time()) - int(timestamp)) > max_age:
                return False
        except ValueError:
            return False
    return hmac.compare_digest(sign(secret, timestamp, raw), header or "")


@dataclass(frozen=True)
class _Taken:
    owner: str
    id: str
    tenant: str
    url: str
    secret: str
    filters: EventFilters
    cursor: int
    failures: int


class WebhookDispatcher:
    """Sends due subscriptions their next events: on ``threads`` threads of its own once :meth:`start` ed, or one
    pass at a time with :meth:`run_once` (tests).

    The dispatcher opens no connection of its own: it posts through the ``transport`` it is handed, which bounds
    each exchange (the composition root hands it ``connectors.http.bounded_transport``: ``timeout`` for the whole
    answer, ``WEBHOOK_ANSWER_BYTES`` at most, and, unless private targets are allowed, only public addresses, checked
    when each connection is made).
    """

    def __init__(
        self,
        database: Database,
        *,
        transport: httpx.BaseTransport,
        name: str | None = None,
        batch: int = 50,
        timeout: float = 5.0,
        retry_base: float = 5.0,
        retry_max: float = 900.0,
        max_failures: int = 10,
        lease_seconds: float = 60.0,
        subscriptions_per_run: int = 20,
        max_run_seconds: float = 2.0,
        breaker: CircuitBreaker | None = None,
        threads: int = 4,
        idle_interval: float = 0.5,
    ) -> None:
        self.database = database
        self.name = name or f"webhooks:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.batch = batch
        self.retry = RetryStrategy(base=retry_base, max_delay=retry_max)
        self.max_failures = max_failures
        self.lease_seconds = lease_seconds
        self.subscriptions_per_run = subscriptions_per_run
        self.max_run_seconds = max_run_seconds
        self.breaker = breaker or CircuitBreaker()
        self.threads = threads
        self.idle_interval = idle_interval
        self.client = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, headers={"User-Agent": "trade-document-hub-webhooks/1"})
        self._stop = threading.Event()
        self._running: list[threading.Thread] = []
        self._starting = threading.Lock()

    def run_once(self) -> int:
        """Serve the due subscriptions once: up to ``batch`` events each, and no more than one each once
        ``max_run_seconds`` have passed. Return how many events receivers accepted."""
        deadline = time.monotonic() + self.max_run_seconds
        return sum(self._serve(taken, deadline) for taken in self._claim(self.name, self.subscriptions_per_run))

    def start(self) -> None:
        """Serve the subscriptions on the dispatcher's own threads until :meth:`close`; calling it again does nothing
        (the worker's periodic loop calls it, so the dispatcher runs from the worker's start to its stop)."""
        with self._starting:
            if self._running or self._stop.is_set():
                return
            for index in range(self.threads):
                thread = threading.Thread(target=self._loop, args=(f"{self.name}#{index}",), name=f"hub-webhooks-{index}", daemon=True)
                thread.start()
                self._running.append(thread)

    def close(self) -> None:
        """Stop the threads (each finishes the request under way, bounded by its deadline), then the client."""
        self._stop.set()
        with self._starting:
            running, self._running = self._running, []
        for thread in running:
            thread.join((self.client.timeout.read or 10.0) + 5.0)
        self.client.close()

    def _loop(self, owner: str) -> None:
        while not self._stop.is_set():
            try:
                taken = self._claim(owner, 1)
                for subscription in taken:
                    self._serve(subscription, time.monotonic() + self.max_run_seconds)
            except Exception:  # a failing pass (the database away, say) must not end the thread
                log.exception("webhook dispatcher %s: a pass failed", owner)
                taken = []
            if not taken:
                self._stop.wait(self.idle_interval)

    # --- claim and release --------------------------------------------------------------------------------------

    def _claim(self, owner: str, limit: int) -> list[_Taken]:
        now = utcnow()
        with self.database.transaction() as session:
            newest = latest_event_id(session)
            candidates = session.scalars(
                select(WebhookSubscription.id)
                .where(
                    WebhookSubscription.active.is_(True),
                    WebhookSubscription.next_attempt_at <= now,
                    WebhookSubscription.last_event_id < newest,
                    _lease_free(now),
                )
                .order_by(WebhookSubscription.next_attempt_at)
                .limit(limit)
            ).all()
            won = [sid for sid in candidates if self._take(session, sid, now, owner)]
            rows = session.scalars(select(WebhookSubscription).where(WebhookSubscription.id.in_(won))).all() if won else []
            return [_Taken(owner, r.id, r.tenant, r.url, r.secret, EventFilters.model_validate(r.filters or {}), r.last_event_id, r.failures) for r in rows]

    def _take(self, session, subscription_id: str, now: datetime, owner: str) -> bool:
        lease = now + timedelta(seconds=self.lease_seconds)
        taken = session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == subscription_id, WebhookSubscription.active.is_(True), _lease_free(now))
            .values(lease_owner=owner, lease_expires_at=lease)
            .execution_options(synchronize_session=False)
        ).rowcount
        return taken == 1

    def _settle(self, taken: _Taken, *, cursor: int | None = None, **values) -> bool:
        """Update the subscription if this dispatcher still holds it (and, with ``cursor``, move it there and renew
        the lease); False when the lease was lost, to another dispatcher or to a deletion."""
        now = utcnow()
        if cursor is not None:
            values["last_event_id"] = cursor
            values.setdefault("lease_expires_at", now + timedelta(seconds=self.lease_seconds))
        with self.database.transaction() as session:
            done = session.execute(
                update(WebhookSubscription)
                .where(WebhookSubscription.id == taken.id, WebhookSubscription.lease_owner == taken.owner)
                .values(**values)
                .execution_options(synchronize_session=False)
            ).rowcount
        return done == 1

    # --- sending ------------------------------------------------------------------------------------------------

    def _serve(self, taken: _Taken, deadline: float) -> int:
        with self.database.sessions() as session:
            page = read_events(session, taken.filters, tenant=taken.tenant, after=taken.cursor, limit=self.batch)
        accepted, failures = 0, taken.failures
        for event in page.events:
            if accepted and time.monotonic() > deadline:
                # Out of time: the rest goes next run, after the other subscriptions have had their turn.
                self._settle(taken, next_attempt_at=utcnow(), lease_owner=None, lease_expires_at=None)
                return accepted
            error, retry_after = self._post(taken, event)
            if error is None:
                if not self._settle(taken, cursor=event.id, failures=0, last_error=None):
                    return accepted
                accepted, failures = accepted + 1, 0
                continue
            failures += 1
            if failures >= self.max_failures:
                log.warning("webhook %s: event %s skipped after %d failures: %s", taken.id, event.id, failures, error)
                note = f"event {event.id} skipped after {failures} failed attempts; last: {error}"
                self._settle(taken, cursor=event.id, failures=0, last_error=note, next_attempt_at=utcnow(), lease_owner=None, lease_expires_at=None)
                return accepted
            delay = self.breaker.wait_after(failures, self.retry.delay(failures, retry_after))
            if self.breaker.is_open_after(failures):
                if failures == self.breaker.threshold:
                    log.warning("webhook %s: circuit open after %d consecutive failures; next try in %.0fs: %s", taken.id, failures, delay, error)
                error = f"{error} (circuit open after {failures} consecutive failures; next try in {delay:.0f}s)"
            self._settle(taken, failures=failures, last_error=error, next_attempt_at=utcnow() + timedelta(seconds=delay), lease_owner=None, lease_expires_at=None)
            return accepted
        # Past the events that did not match, and to the back of the queue so that every subscription gets its turn.
        self._settle(taken, cursor=page.cursor, next_attempt_at=utcnow(), lease_owner=None, lease_expires_at=None)
        return accepted

    def _post(self, taken: _Taken, event: TraceEvent) -> tuple[str | None, float | None]:
        """Send one event; (None, None) when the receiver accepted it, else (the error, its Retry-After)."""
        body = json.dumps(event_data(event), ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Event-Id": str(event.id),
            "X-Hub-Event": event.event,
            "X-Hub-Timestamp": timestamp,
            "X-Hub-Signature-256": sign(taken.secret, timestamp, body),
        }
        try:
            response = self.client.post(taken.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}", None
        if response.is_success:
            return None, None
        return f"HTTP {response.status_code}: {response.text[:200]}", _retry_after(response)


def _lease_free(now: datetime):
    return or_(WebhookSubscription.lease_expires_at.is_(None), WebhookSubscription.lease_expires_at < now)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None
