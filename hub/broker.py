"""The broker: what the API, the worker and the command line share — settings, database, routing table, connectors,
signing keys, the customs registry — and the operations that change state (submit, resend, receive an answer,
receive a document from abroad, report a non-conformity).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping

import httpx

from hub.scope import Scope
from hub.connector import Connector, ConnectorContext, InboundDocument, InboundVerdict, PullsDocuments, ReceivesInbound
from hub.acks.correlation import apply_ack
from hub.acks.nonconformities import open_non_conformity
from hub.cites import pssm
from hub.config import Settings
from hub.customs.registry import ChedQuantities, CustomsRegistry
from hub.store.lifecycle import MANUAL, change_lifecycle, duplicate_request, expire_permits
from hub.store.states import transition
from hub.intake.reception import prepare_inbound, refusal, verdict_for
from hub.delivery.retry import RetryStrategy
from hub.store.states import MessageState
from hub.intake.submission import Stored, prepare, store
from hub.notify.webhooks import WebhookDispatcher
from hub.delivery.worker import Worker
from hub.errors import BoxesChanged, ConfigurationError, ConflictError, HubError, InputError, KeyMaterialError, NotFound, SignatureError, ValidationFailed
from hub.records.lifecycle import Lifecycle
from hub.routing.table import RoutingTable
from hub.signing import PemKeyProvider, Signer, TrustStore, Verifier
from hub.store.db import Database
from hub.store.models import Acknowledgement, CITESApproval, Document, Message, NonConformity, utcnow
from hub.store.payloads import put_payload
from hub.store.trace import add_event
from hub.report import Finding

log = logging.getLogger(__name__)
EXPIRY_INTERVAL = 60.0  # seconds between two looks for permits whose validity has ended


@dataclass
class Completed:
    """A simplified-procedure certificate completed: the new version stored, and the alerts of the completion."""

    stored: Stored
    warnings: list[Finding]


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
        self.customs = CustomsRegistry(database, ched_authorities={name: c for name, c in self.connectors.items() if _keeps_ched_quantities(c)})
        self.wake = threading.Event()
        self._signers: dict[str, Signer] = {}
        self._expired_at = float("-inf")
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, transports: Mapping[str, httpx.BaseTransport] | None = None, retry: RetryStrategy | None = None) -> "Broker":
        from connectors.registry import build_connector, load_connector_configs

        certs = Path(settings.certs_dir)
        trust = TrustStore.from_paths(ca_bundle=certs / "ca.pem")
        context = ConnectorContext(certs_dir=str(certs), public_url=settings.public_url, trust_store=trust)
        connectors = {
            name: build_connector(name, config, transport=(transports or {}).get(name), context=context)
            for name, config in load_connector_configs(settings.connectors_file).items()
        }
        return cls(
            settings=settings,
            database=Database(settings.database_url),
            routing=RoutingTable.load(settings.routes_file),
            connectors=connectors,
            trust_store=trust,
            retry=retry,
        )

    # --- keys ---------------------------------------------------------------------------------------------------

    def signer_for(self, country: str) -> Signer:
        """The signer of the issuing authority of ``country`` (``certs_dir/signing/<CC>.key`` and ``.pem``)."""
        with self._lock:
            if country not in self._signers:
                folder = Path(self.settings.certs_dir) / "signing"
                try:
                    self._signers[country] = Signer(PemKeyProvider(folder / f"{country}.key", folder / f"{country}.pem"))
                except KeyMaterialError as exc:
                    raise ConfigurationError(f"no signing key for the issuing authority of {country} in {folder}: {exc}") from exc
            return self._signers[country]

    # --- operations ---------------------------------------------------------------------------------------------

    def submit(self, body: bytes, media_type: str, *, tenant: str, actor: str, version: int = 1, idempotency_key: str | None = None, correlation_id: str | None = None) -> Stored:
        """Map, validate, sign, route and store a submission with its messages, in one transaction."""
        prepared = prepare(body, media_type, tenant=tenant, routing=self.routing, profiles=self.profiles, signer_for=self.signer_for, verifier=self.verifier, version=version)
        with self.database.transaction() as session:
            stored = store(session, prepared, tenant=tenant, actor=actor, idempotency_key=idempotency_key, correlation_id=correlation_id)
            _ = stored.document.messages, stored.document.report  # loaded before the session closes
        if stored.created:
            self.wake.set()
        return stored

    def resend(self, message_id: str, *, tenant: str, actor: str) -> Message:
        """Queue a dead-lettered or rejected message again, keeping its identity (the counterpart de-duplicates)."""
        with self.database.transaction() as session:
            message = _visible_message(session, message_id, tenant)
            if message.state not in (MessageState.DEAD_LETTER.value, MessageState.REJECTED.value):
                raise ConflictError(f"message {message_id} is {message.state}; only dead letters and rejected messages can be resent")
            message.attempts = 0
            message.next_attempt_at = utcnow()
            transition(session, message, MessageState.QUEUED, actor=actor, event="message.resend")
            _ = message.document
        self.wake.set()
        return message

    def receive_inbound(self, connector_name: str, body: bytes, headers: Mapping[str, str]) -> list[Acknowledgement]:
        """An answer pushed by a counterpart to ``POST /v1/inbound/{connector}``: parsed (and its signature checked)
        by the connector, then correlated. Nothing is stored if any part of it cannot be applied."""
        connector = self.connectors.get(connector_name)
        if not isinstance(connector, ReceivesInbound):
            raise NotFound(f"no connector {connector_name!r} takes pushed acknowledgements", where="connector")
        reports = connector.parse_inbound(body, headers)
        with self.database.transaction() as session:
            return [apply_ack(session, connector_name, report, actor=f"counterpart:{connector_name}") for report in reports]

    def receive_document(self, connector_name: str, document: InboundDocument) -> InboundVerdict:
        """A document a counterpart holds for the hub: verified, validated, stored for its importing country and
        handed on (``direction: inbound`` routes). A document the hub cannot take gets a failed verdict naming what
        is wrong; a failure of the store raises, so the counterpart is told nothing and offers it again."""
        origin = {"counterpart": connector_name, "counterpart_reference": document.counterpart_reference, "sender_country": document.sender_country}
        try:
            prepared = prepare_inbound(document.payload, routing=self.routing, verifier=self.verifier, origin=origin)
            with self.database.transaction() as session:
                stored = store(session, prepared, tenant=prepared.facts.importing_country, actor=f"counterpart:{connector_name}")
                verdict = verdict_for(prepared, stored.document.id)
                handed_on = stored.created and bool(stored.document.messages)
        except (InputError, SignatureError, ValidationFailed) as exc:
            log.warning("document %s from %s refused: %s", document.counterpart_reference, connector_name, exc)
            return refusal(exc)
        if handed_on:
            self.wake.set()
        return verdict

    def pull_documents(self) -> int:
        """Pull what every import-side connector holds for the hub, store each document, then confirm it to the
        counterpart. Returns how many documents were confirmed."""
        confirmed = 0
        for name, connector in self.connectors.items():
            if not isinstance(connector, PullsDocuments):
                continue
            try:
                documents = list(connector.pull_documents())
            except HubError as exc:
                log.warning("pulling documents from %s failed: %s", name, exc)
                continue
            for document in documents:
                verdict = self.receive_document(name, document)
                try:
                    connector.confirm_document(document, verdict)
                    confirmed += 1
                except HubError as exc:
                    # Stored but not confirmed: the counterpart offers it again and the repeat is recognised.
                    log.warning("confirming %s to %s failed: %s", document.counterpart_reference, name, exc)
        return confirmed

    def report_non_conformity(self, *, document_id: str, tenant: str, actor: str, counterpart: str, cause_code: str, cause_text: str | None = None, country: str | None = None, products: list[str] | None = None, source: str = "border_refusal", evidence: bytes | None = None) -> NonConformity:
        """A refusal reported by the exporter or an operator (``POST /v1/non-conformities``)."""
        with self.database.transaction() as session:
            document = session.get(Document, document_id)
            if document is None or not Scope.of(tenant).sees(document.tenant):
                raise NotFound(f"no document {document_id}", where="document_id")
            digest = put_payload(session, evidence, "application/octet-stream") if evidence else None
            nc = open_non_conformity(session, document=document, source=source, counterpart=counterpart, cause_code=cause_code, cause_text=cause_text, country=country, products=products, evidence_digest=digest, actor=actor)
            _ = nc.products
            return nc

    def expire_permits(self, *, every: float = EXPIRY_INTERVAL) -> int:
        """Expire the permits whose validity has ended; the worker calls this with its polls, and it looks at most
        once per ``every`` seconds."""
        if time.monotonic() - self._expired_at < every:
            return 0
        self._expired_at = time.monotonic()
        with self.database.transaction() as session:
            return len(expire_permits(session))

    def change_lifecycle(self, document_id: str, target: str, *, tenant: str, actor: str, reason: str | None = None) -> Document:
        """The issuing authority moves its document by hand (expired, cancellation requested, cancelled)."""
        try:
            target = Lifecycle(target)
        except ValueError:
            target = None
        if target not in MANUAL:
            manual = ", ".join(sorted(lifecycle.value for lifecycle in MANUAL))
            raise InputError(f"a document can be moved by hand to {manual}; the other lifecycles follow from what happens to it", where="lifecycle")
        with self.database.transaction() as session:
            document = _own_document(session, document_id, tenant)
            change_lifecycle(session, document, target, actor=actor, reason=reason)
            _ = document.messages, document.products
            return document

    def fetch_permit(self, url: str, number: str, *, country: str, callee: str | None = None, final: bool = True) -> InboundVerdict:
        """Fetch a partner authority's permit through its EPIX-style exchange at ``url`` (as ``country``, by that
        country's TLS client certificate) and receive it like any document from abroad: verified, validated, stored
        for its importing country. Raises :class:`~connectors.cites_p2p.epix.EpixFault` when the partner refuses."""
        from connectors.cites_p2p.client import CitesExchangeClient

        client = CitesExchangeClient(url, country=country, certs_dir=self.settings.certs_dir, callee=callee)
        try:
            answer = client.get_final(number) if final else client.get_non_final(number)
        finally:
            client.close()
        return self.receive_document(f"cites:{callee or 'partner'}", InboundDocument(answer.permit, number, sender_country=callee))

    # --- CITES simplified re-export procedure (PSSM) ---------------------------------------------------------------

    def create_approval(self, *, tenant: str, **approval) -> CITESApproval:
        """Record an approval of the simplified procedure for ``tenant`` (see :func:`hub.cites.pssm.create_approval`)."""
        with self.database.transaction() as session:
            return pssm.create_approval(session, tenant=tenant, **approval)

    def list_approvals(self, *, tenant: str) -> list[CITESApproval]:
        """The simplified-procedure approvals of ``tenant`` (every tenant's for ``*``)."""
        with self.database.sessions() as session:
            return list(pssm.list_approvals(session, tenant=tenant))

    def complete_permit(self, document_id: str, completion: pssm.Completion, *, tenant: str, actor: str, now: datetime | None = None) -> Completed:
        """The boxes of a simplified-procedure re-export certificate reported at the sale: the completed record is
        validated, signed, routed and stored as the permit's next version, and the permit becomes completed, in one
        transaction. A completion changing a box filled at issue is refused (:class:`~hub.errors.BoxesChanged`)
        and the attempt flagged as a possible fraud, the flag committed on its own; one reported more than 24 hours
        after the sale is accepted with a WARNING and a ``permit.completion_late`` event."""
        now = now or utcnow()
        with self.database.sessions() as session:
            document = _own_document(session, document_id, tenant)
            latest = pssm.latest_version(session, document)
            if latest.id != document.id:
                raise ConflictError(f"document {document_id} is version {document.version}; complete the latest, version {latest.version} ({latest.id})", where="document_id")
            issued = pssm.completable(document)
            owner, version = document.tenant, document.version
        completed = pssm.completed_record(issued, completion, now=now)
        changed = pssm.changed_boxes(issued, completed)
        if changed:
            with self.database.transaction() as session:
                pssm.flag_fraud(session, session.get(Document, document_id), changed, actor=actor, country=completed.importing_country())
            raise BoxesChanged(changed)
        body = json.dumps(completed.model_dump(mode="json", exclude_none=True)).encode()
        prepared = prepare(body, "application/json", tenant=owner, routing=self.routing, profiles=self.profiles, signer_for=self.signer_for, verifier=self.verifier, version=version + 1, now=now)
        late = pssm.late_finding(completed, now=now)
        if late is not None:
            prepared.report.extend([late])
        with self.database.transaction() as session:
            stored = store(session, prepared, tenant=owner, actor=actor)
            if stored.created:
                sale_date = completed.simplified_procedure.sale_date.value
                for done in (session.get(Document, document_id), stored.document):
                    change_lifecycle(session, done, Lifecycle.COMPLETED, actor=actor, reason=f"boxes reported for the sale of {sale_date} (version {version + 1})")
                if late is not None:
                    add_event(session, document=stored.document, event="permit.completion_late", actor="hub", detail={"sale_date": sale_date, "reported_at": now.isoformat(), "message": late.message_en})
            _ = stored.document.messages, stored.document.report
        if stored.created:
            self.wake.set()
        return Completed(stored=stored, warnings=[late] if late is not None else [])

    def duplicate_request(self, document_id: str, *, tenant: str) -> dict:
        """A new permit request from an expired permit (see :func:`hub.store.lifecycle.duplicate_request`)."""
        with self.database.sessions() as session:
            return duplicate_request(_own_document(session, document_id, tenant))

    def make_worker(self, *, webhooks: bool = True, **options) -> Worker:
        """A delivery worker over this broker's outbox; with ``webhooks`` it also pushes events to subscribers."""
        settings = self.settings
        options.setdefault("concurrency", settings.worker_concurrency)
        options.setdefault("lease_seconds", settings.lease_seconds)
        options.setdefault("poll_interval", settings.poll_interval)
        worker = Worker(database=self.database, connectors=self.connectors, retry=self.retry, wake=self.wake, **options)
        if webhooks:
            dispatcher = WebhookDispatcher(self.database, name=f"{worker.name}:webhooks")
            worker.periodic.append(dispatcher.run_once)
            worker.on_stop.append(dispatcher.close)
        worker.polls.extend([self.pull_documents, self.expire_permits])
        return worker

    def close(self) -> None:
        self.database.dispose()


def _keeps_ched_quantities(connector: Connector) -> bool:
    """A connector reaching a CHED authority's quantity ledger (TRACES-NT with a customs account)."""
    return isinstance(connector, ChedQuantities) and connector.keeps_ched_quantities


def _own_document(session, document_id: str, tenant: str) -> Document:
    document = session.get(Document, document_id)
    if document is None or not Scope.of(tenant).sees(document.tenant):
        raise NotFound(f"no document {document_id}", where="document_id")
    return document


def _visible_message(session, message_id: str, tenant: str) -> Message:
    message = session.get(Message, message_id)
    if message is None or not Scope.of(tenant).sees(message.document.tenant):
        raise NotFound(f"no message {message_id}", where="message_id")
    return message
