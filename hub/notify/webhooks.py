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

Delivery is **at least once**: a dispatcher that dies after the receiver answered but before it moved the cursor,
or whose lease expired during a slow answer, means the same event is sent again. Receivers de-duplicate on
``X-Hub-Event-Id`` (keeping the highest id processed is enough, since events arrive in id order).

Several dispatchers (one per worker process) share the subscriptions: each takes a subscription with a lease, by a
compare-and-set update, and moves its cursor only while it holds that lease.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_, select, update

from hub.store.events import EventFilters, event_data, latest_event_id, read_events
from hub.delivery.retry import RetryStrategy
from hub.store.db import Database
from hub.store.models import TraceEvent, WebhookSubscription, utcnow

log = logging.getLogger("hub.webhooks")
SIGNATURE_PREFIX = "sha256="


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
    id: str
    tenant: str
    url: str
    secret: str
    filters: EventFilters
    cursor: int
    failures: int


class WebhookDispatcher:
    """Sends due subscriptions their next events. ``run_once()`` is what the worker calls periodically."""

    def __init__(
        self,
        database: Database,
        *,
        transport: httpx.BaseTransport | None = None,
        name: str | None = None,
        batch: int = 50,
        timeout: float = 5.0,
        retry_base: float = 5.0,
        retry_max: float = 900.0,
        max_failures: int = 10,
        lease_seconds: float = 60.0,
        subscriptions_per_run: int = 20,
        max_run_seconds: float = 2.0,
    ) -> None:
        self.database = database
        self.name = name or f"webhooks:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.batch = batch
        self.retry = RetryStrategy(base=retry_base, max_delay=retry_max)
        self.max_failures = max_failures
        self.lease_seconds = lease_seconds
        self.subscriptions_per_run = subscriptions_per_run
        self.max_run_seconds = max_run_seconds
        self.client = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, headers={"User-Agent": "trade-document-hub-webhooks/1"})

    def run_once(self) -> int:
        """Serve the due subscriptions once: up to ``batch`` events each, and no more than one each once
        ``max_run_seconds`` have passed, so that the worker's other periodic tasks keep their pace. Return how many
        events receivers accepted."""
        deadline = time.monotonic() + self.max_run_seconds
        return sum(self._serve(taken, deadline) for taken in self._claim())

    def close(self) -> None:
        self.client.close()

    # --- claim and release --------------------------------------------------------------------------------------

    def _claim(self) -> list[_Taken]:
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
                .limit(self.subscriptions_per_run)
            ).all()
            won = [sid for sid in candidates if self._take(session, sid, now)]
            rows = session.scalars(select(WebhookSubscription).where(WebhookSubscription.id.in_(won))).all() if won else []
            return [_Taken(r.id, r.tenant, r.url, r.secret, EventFilters.model_validate(r.filters or {}), r.last_event_id, r.failures) for r in rows]

    def _take(self, session, subscription_id: str, now: datetime) -> bool:
        lease = now + timedelta(seconds=self.lease_seconds)
        taken = session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == subscription_id, WebhookSubscription.active.is_(True), _lease_free(now))
            .values(lease_owner=self.name, lease_expires_at=lease)
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
                .where(WebhookSubscription.id == taken.id, WebhookSubscription.lease_owner == self.name)
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
            delay = self.retry.delay(failures, retry_after)
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
