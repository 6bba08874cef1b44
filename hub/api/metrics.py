"""``GET /metrics``: Prometheus text exposition of the hub's state, read from the database at scrape time, plus the
counters and histograms this process keeps.

From the database (so every API and worker process reports the same numbers)::

    hub_messages{destination,state}                  gauge: messages by destination and transport state
    hub_documents_total{kind,status}                 counter: documents stored by kind and status
    hub_non_conformities_open{counterpart,country}   gauge: open non-conformities
    hub_outbox_oldest_due_seconds{destination}       gauge: age of the oldest due queued/retry_wait message (0: none)
    hub_webhook_failures{subscription}               gauge: consecutive failed deliveries of a subscription
    hub_database_up                                  gauge: 1, or 0 when the database could not be read

In process (:class:`Metrics`, one per app, in ``app.state.metrics``): ``hub_submissions_total{outcome}``,
``hub_delivery_seconds{destination}``; and where this process's time goes (:mod:`hub.stages`)::

    hub_stage_seconds{stage}                         histogram: time per stage (validate, sign, verify, store,
                                                     claim, deliver, settle, ack, audit)
    hub_stage_cpu_seconds_total{stage}               counter: CPU of each stage's own code (a stage nested in another,
                                                     verify in deliver, counts for itself only)
    process_cpu_seconds_total                        counter: the process's CPU (with resident memory and the
                                                     other process_* metrics): what no stage took is the HTTP
                                                     stack, the audit log and the pages
    hub_sql_statements_total{stage}                  counter: SQL statements sent in each stage
    hub_sql_commits_total{stage}                     counter: commits in each stage
    hub_documents_stored_total                       counter: documents stored by this process
    hub_sql_statements_per_document                  gauge: statements of the document's stages over documents
                                                     stored (one process doing both API and delivery: ``hub serve``)

Access: the API key of an operator (``Authorization: Bearer …``), like every other call, since the numbers span all
tenants; when the environment has ``HUB_METRICS_PUBLIC=1`` the endpoint is open, for scrapers that send no
credentials (keep it on a network only the scraper reaches).
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime
from typing import Iterable, Iterator

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from hub.api.auth import Client, current_client
from hub.stages import BUCKETS, CLOCK, STAGES
from hub.store.states import MessageState
from hub.errors import PermissionDenied
from hub.store.db import Database
from hub.store.models import Document, Message, NonConformity, WebhookSubscription, utcnow

log = logging.getLogger("hub.metrics")
router = APIRouter(tags=["metrics"])
_bearer = HTTPBearer(auto_error=False)
_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_install_lock = threading.Lock()


class DatabaseCollector(Collector):
    """Gauges read from the database at each scrape. ``destinations`` get a 0 age even when nothing is due, so
    that an alert on the age sees them all."""

    def __init__(self, database: Database, *, destinations: Iterable[str] = ()) -> None:
        self.database = database
        self.destinations = sorted(destinations)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("hub_database_up", "1 when the database could be read for this scrape")
        try:
            families = self._read()
        except SQLAlchemyError:
            log.exception("metrics: the database could not be read")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[Metric]:
        now = utcnow()
        messages = GaugeMetricFamily("hub_messages", "Messages by destination and transport state", labels=["destination", "state"])
        documents = CounterMetricFamily("hub_documents", "Documents stored, by kind and status", labels=["kind", "status"])
        open_ncs = GaugeMetricFamily("hub_non_conformities_open", "Open non-conformities", labels=["counterpart", "country"])
        oldest = GaugeMetricFamily("hub_outbox_oldest_due_seconds", "Age of the oldest due queued or retry_wait message", labels=["destination"])
        webhooks = GaugeMetricFamily("hub_webhook_failures", "Consecutive failed deliveries of a webhook subscription", labels=["subscription"])
        with self.database.sessions() as session:
            for destination, state, count in session.execute(select(Message.destination, Message.state, func.count()).group_by(Message.destination, Message.state).order_by(Message.destination, Message.state)):
                messages.add_metric([destination, state], count)
            for kind, status, count in session.execute(select(Document.kind, Document.status, func.count()).group_by(Document.kind, Document.status).order_by(Document.kind, Document.status)):
                documents.add_metric([kind, status], count)
            ncs = select(NonConformity.counterpart, NonConformity.country, func.count()).where(NonConformity.state == "open")
            for counterpart, country, count in session.execute(ncs.group_by(NonConformity.counterpart, NonConformity.country).order_by(NonConformity.counterpart, NonConformity.country)):
                open_ncs.add_metric([counterpart, country or ""], count)
            due = (
                select(Message.destination, func.min(Message.next_attempt_at))
                .where(Message.state.in_([MessageState.QUEUED.value, MessageState.RETRY_WAIT.value]), Message.next_attempt_at <= now)
                .group_by(Message.destination)
            )
            ages = {destination: _age(now, since) for destination, since in session.execute(due)}
            for destination in sorted(set(ages) | set(self.destinations)):
                oldest.add_metric([destination], ages.get(destination, 0.0))
            for sid, failures in session.execute(select(WebhookSubscription.id, WebhookSubscription.failures).order_by(WebhookSubscription.id)):
                webhooks.add_metric([sid], failures)
        return [messages, documents, open_ncs, oldest, webhooks]


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since else 0.0


class StageCollector(Collector):
    """This process's stage figures (:data:`hub.stages.CLOCK`), read at each scrape."""

    def collect(self) -> Iterator[Metric]:
        documents, figures = CLOCK.snapshot()
        seconds = HistogramMetricFamily("hub_stage_seconds", "Time per stage of a document's way through the hub", labels=["stage"])
        statements = CounterMetricFamily("hub_sql_statements", "SQL statements sent, by stage", labels=["stage"])
        commits = CounterMetricFamily("hub_sql_commits", "Commits, by stage", labels=["stage"])
        cpu = CounterMetricFamily("hub_stage_cpu_seconds", "CPU of each stage's own code (stages nested in it not counted)", labels=["stage"])
        for name in sorted(figures):
            f = figures[name]
            cumulative, buckets = 0, []
            for bound, count in zip(BUCKETS, f.buckets):
                cumulative += count
                buckets.append((repr(bound), cumulative))
            buckets.append(("+Inf", f.count))
            seconds.add_metric([name], buckets, f.seconds)
            statements.add_metric([name], f.statements)
            commits.add_metric([name], f.commits)
            cpu.add_metric([name], f.cpu_seconds)
        stored = CounterMetricFamily("hub_documents_stored", "Documents stored by this process")
        stored.add_metric([], documents)
        per_document = GaugeMetricFamily("hub_sql_statements_per_document", "SQL statements of the document stages per document stored")
        hot = sum(figures[name].statements for name in STAGES if name in figures)
        per_document.add_metric([], hot / documents if documents else 0.0)
        yield from (seconds, cpu, statements, commits, stored, per_document)


class Metrics:
    """This process's counters and histograms, in ``registry`` (one per app, never the global default), and the
    database gauges when ``database`` is given."""

    def __init__(self, registry: CollectorRegistry | None = None, *, database: Database | None = None, destinations: Iterable[str] = ()) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.submissions = Counter("hub_submissions", "Document submissions, by outcome (created, duplicate, invalid, …)", ["outcome"], registry=self.registry)
        self.delivery_seconds = Histogram(
            "hub_delivery_seconds", "Time a connector took to deliver one message", ["destination"], registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.registry.register(StageCollector())
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, resident memory…: the stages' whole
        if database is not None:
            self.registry.register(DatabaseCollector(database, destinations=destinations))

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


def install_metrics(app: FastAPI) -> Metrics:
    """``app.state.metrics`` over the app's broker (its database and connector names), made once."""
    with _install_lock:
        metrics = getattr(app.state, "metrics", None)
        if metrics is None:
            broker = app.state.broker
            metrics = Metrics(database=broker.database, destinations=getattr(broker, "connectors", {}) or ())
            app.state.metrics = metrics
        return metrics


def scraper(request: Request, bearer: HTTPAuthorizationCredentials | None = Depends(_bearer), header_key: str | None = Depends(_header)) -> Client | None:
    """FastAPI dependency: None when ``HUB_METRICS_PUBLIC=1``, else the caller, who must hold an operator key."""
    if os.environ.get("HUB_METRICS_PUBLIC") == "1":
        return None
    client = current_client(request, bearer, header_key)
    if not client.scope.everything:
        raise PermissionDenied("metrics span every tenant: use an operator key (or set HUB_METRICS_PUBLIC=1)", where="metrics")
    return client


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics_endpoint(request: Request, _client: Client | None = Depends(scraper)) -> Response:
    """The Prometheus text exposition."""
    return Response(install_metrics(request.app).exposition(), media_type=CONTENT_TYPE_LATEST)
