"""The broker: one hub assembled from its settings (the composition root), shared by the API, the worker and the
command line.

::

    __init__.py     Broker: settings → database, routing table, connectors, keys, services; the worker
    documents.py    submit, resend, lifecycle moves, non-conformities reported by hand
    inbound.py      answers pushed by counterparts, documents from abroad pulled and received
    permits.py      CITES: simplified-procedure approvals and completion, expiry, fetching a partner's permit

The operations are the services' own; the Broker's methods of the same names hand over to them, so that callers
need one object.
"""

from __future__ import annotations

import functools
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Mapping

import httpx

from connectors.http import bounded_transport, public_only
from connectors.registry import build_connector, load_connector_configs
from hub.broker.documents import Documents
from hub.broker.inbound import Inbound
from hub.broker.permits import EXPIRY_INTERVAL, Completed, Permits
from hub.cites import pssm
from hub.config import Settings
from hub.connector import Connector, ConnectorContext, InboundDocument, InboundVerdict, ProtocolReply
from hub.customs.reconcile import Reconciler
from hub.customs.registry import ChedQuantities, CustomsRegistry
from hub.delivery.retry import RetryStrategy
from hub.delivery.worker import Worker
from hub.errors import ConfigurationError
from hub.intake.submission import Stored
from hub.notify.alerts_service import AlertService
from hub.notify.webhooks import WEBHOOK_ANSWER_BYTES, WEBHOOK_TIMEOUT, WebhookDispatcher
from hub.routing.table import RoutingTable
from hub.signing import Signer, SignerRegistry, TrustStore, Verifier
from hub.signing.keyring import Keyring
from hub.signing.verification import SECRET_FILE, load_secret
from hub.store.db import Database
from hub.store.models import Acknowledgement, CITESApproval, Document, Message, NonConformity
from hub.store.retention import Pruner

__all__ = ["Broker", "Completed", "EXPIRY_INTERVAL"]

class Broker:
    """One hub: build it with :meth:`from_settings`; ``transports`` lets tests and in-process sandboxes stand in
    for the network, per destination."""

    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        routing: RoutingTable,
        connectors: Mapping[str, Connector],
        trust_store: TrustStore,
        retry: RetryStrategy | None = None,
    ) -> None:
        missing = sorted(routing.destinations - set(connectors))
        if missing:
            raise ConfigurationError(f"{settings.routes_file}: destinations {missing} have no connector in {settings.connectors_file}")
        self.settings = settings
        self.database = database
        self.routing = routing
        self.connectors = dict(connectors)
        self.trust_store = trust_store
        self.verifier = Verifier(trust_store)
        self.retry = retry or RetryStrategy()
        self.profiles = {name: c.config.profile for name, c in self.connectors.items()}
        self.keyring = Keyring(Path(settings.certs_dir) / "signing")
        self.signers = SignerRegistry.load(settings.signers_file)
        self.wake = threading.Event()
        self.customs = CustomsRegistry(database, ched_authorities={name: c for name, c in self.connectors.items() if isinstance(c, ChedQuantities) and c.keeps_ched_quantities})
        self.reconciler = Reconciler(self.customs)
        self.documents = Documents(database=database, routing=routing, profiles=self.profiles, signer_for=self.signer_for, verifier=self.verifier, signers=self.signers, wake=self.wake)
        self.inbound = Inbound(database=database, routing=routing, verifier=self.verifier, signers=self.signers, connectors=self.connectors, wake=self.wake)
        self.permits = Permits(documents=self.documents, inbound=self.inbound, certs_dir=str(settings.certs_dir))

    @classmethod
    def from_settings(cls, settings: Settings, *, transports: Mapping[str, httpx.BaseTransport] | None = None, retry: RetryStrategy | None = None) -> "Broker":
        """The hub the settings describe: its database, routing table, connectors and trust anchors."""
        certs = Path(settings.certs_dir)
        if not (certs / "ca.pem").is_file():
            raise ConfigurationError(f"no trust anchors in {certs} (ca.pem is missing): run `hub certs init` for the development PKI (make run does), or set HUB_CERTS_DIR")
        trust = TrustStore.from_paths(ca_bundle=certs / "ca.pem", crls=[certs / "crl.pem"])
        context = ConnectorContext(certs_dir=str(certs), public_url=settings.public_url, trust_store=trust)
        connectors = {
            name: build_connector(name, config, transport=(transports or {}).get(name), context=context)
            for name, config in load_connector_configs(settings.connectors_file).items()
        }
        return cls(settings=settings, database=Database(settings.database_url), routing=RoutingTable.load(settings.routes_file), connectors=connectors, trust_store=trust, retry=retry)

    @functools.cached_property
    def verification_secret(self) -> bytes:
        """The secret of verification codes (:mod:`hub.signing.verification`): ``certs_dir/verification.key``, made
        on first use (by one process only, whoever races), read once per broker."""
        try:
            return load_secret(Path(self.settings.certs_dir) / SECRET_FILE)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read or make the verification secret: {exc}") from None

    def signer_for(self, country: str) -> Signer:
        """The signer of the issuing authority of ``country`` (``certs_dir/signing/<CC>.key`` and ``.pem``)."""
        return self.keyring.signer_for(country)

    def make_worker(self, *, webhooks: bool = True, **options) -> Worker:
        """A delivery worker over this broker's outbox, pulling documents from abroad and expiring permits beside;
        with ``webhooks`` it also pushes events to subscribers."""
        settings = self.settings
        options.setdefault("concurrency", settings.worker_concurrency)
        options.setdefault("lease_seconds", settings.lease_seconds)
        options.setdefault("poll_interval", settings.poll_interval)
        worker = Worker(database=self.database, connectors=self.connectors, retry=self.retry, wake=self.wake, **options)
        if webhooks:
            # Each request bounded as a whole; the address a target resolves to is checked when its connection is
            # made (a name that resolved to a public address at subscription may point inside later).
            transport = bounded_transport(timeout=WEBHOOK_TIMEOUT, max_answer_bytes=WEBHOOK_ANSWER_BYTES,
                                          policy=None if settings.webhook_private_targets else public_only)
            dispatcher = WebhookDispatcher(self.database, transport=transport, timeout=WEBHOOK_TIMEOUT, name=f"{worker.name}:webhooks")
            # Starting is all the periodic loop does: the dispatcher serves subscribers on its own threads, so a slow
            # receiver never holds the loop that polls acknowledgements.
            worker.periodic.append(dispatcher.start)
            worker.on_stop.append(dispatcher.close)
        worker.polls.extend([self.inbound.pull_documents, self.permits.expire])
        AlertService.from_env(self.database, destinations={n: c.config.type for n, c in self.connectors.items()}, public_url=settings.public_url).attach(worker)
        if self.customs.ched_authorities:  # the quantity ledgers kept with TRACES-NT, settled and compared
            worker.polls.append(self.reconciler.run_periodically)
        if settings.retention_days:  # old history archived then pruned, once an hour, in a thread of its own
            pruner = Pruner(self.database, older_than=timedelta(days=settings.retention_days), archive_dir=settings.archive_dir)
            worker.periodic.append(pruner.tick)
            worker.on_stop.append(pruner.close)
        return worker

    def close(self) -> None:
        self.database.dispose()

    # --- the services' operations, under one name ------------------------------------------------------------------

    def submit(self, body: bytes, media_type: str, **options) -> Stored:
        """See :meth:`Documents.submit`."""
        return self.documents.submit(body, media_type, **options)

    def resend(self, message_id: str, *, tenant: str, actor: str) -> Message:
        """See :meth:`Documents.resend`."""
        return self.documents.resend(message_id, tenant=tenant, actor=actor)

    def change_lifecycle(self, document_id: str, target: str, *, tenant: str, actor: str, reason: str | None = None) -> Document:
        """See :meth:`Documents.change_lifecycle`."""
        return self.documents.change_lifecycle(document_id, target, tenant=tenant, actor=actor, reason=reason)

    def duplicate_request(self, document_id: str, *, tenant: str) -> dict:
        """See :meth:`Documents.duplicate_request`."""
        return self.documents.duplicate_request(document_id, tenant=tenant)

    def report_non_conformity(self, **report) -> NonConformity:
        """See :meth:`Documents.report_non_conformity`."""
        return self.documents.report_non_conformity(**report)

    def receive_inbound(self, connector_name: str, body: bytes, headers: Mapping[str, str]) -> list[Acknowledgement]:
        """See :meth:`Inbound.receive_answer`."""
        return self.inbound.receive_answer(connector_name, body, headers)

    def takes_exchanges(self, connector_name: str) -> bool:
        """See :meth:`Inbound.takes_exchanges`."""
        return self.inbound.takes_exchanges(connector_name)

    def exchange(self, connector_name: str, body: bytes, headers: Mapping[str, str]) -> ProtocolReply:
        """See :meth:`Inbound.exchange`."""
        return self.inbound.exchange(connector_name, body, headers)

    def receive_document(self, connector_name: str, document: InboundDocument) -> InboundVerdict:
        """See :meth:`Inbound.receive_document`."""
        return self.inbound.receive_document(connector_name, document)

    def pull_documents(self) -> int:
        """See :meth:`Inbound.pull_documents`."""
        return self.inbound.pull_documents()

    def create_approval(self, *, tenant: str, **approval) -> CITESApproval:
        """See :meth:`Permits.create_approval`."""
        return self.permits.create_approval(tenant=tenant, **approval)

    def list_approvals(self, *, tenant: str) -> list[CITESApproval]:
        """See :meth:`Permits.list_approvals`."""
        return self.permits.list_approvals(tenant=tenant)

    def complete_permit(self, document_id: str, completion: pssm.Completion, *, tenant: str, actor: str, now: datetime | None = None) -> Completed:
        """See :meth:`Permits.complete`."""
        return self.permits.complete(document_id, completion, tenant=tenant, actor=actor, now=now)

    def expire_permits(self, *, every: float = EXPIRY_INTERVAL) -> int:
        """See :meth:`Permits.expire`."""
        return self.permits.expire(every=every)

    def fetch_permit(self, url: str, number: str, *, country: str, callee: str | None = None, final: bool = True, version: str = "2") -> InboundVerdict:
        """See :meth:`Permits.fetch`."""
        return self.permits.fetch(url, number, country=country, callee=callee, final=final, version=version)
