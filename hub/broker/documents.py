"""What issuing authorities and operators do to documents through the broker: submit, resend a message, move a
document through its lifecycle, report a non-conformity."""

from __future__ import annotations

import threading
from functools import partial
from typing import Callable

from sqlalchemy.orm import Session

from hub.acks.nonconformities import open_non_conformity
from hub.errors import ConflictError, InputError, NotFound
from hub.intake.submission import Prepared, Stored, earlier_of_batch, prepare, store
from hub.records.lifecycle import Lifecycle
from hub.routing.table import RoutingTable
from hub.scope import Scope
from hub.stages import stage
from hub.signing import Signer, SignerRegistry, Verifier
from hub.store.db import Database
from hub.store.group import GroupCommit
from hub.store.lifecycle import MANUAL, change_lifecycle, duplicate_request
from hub.store.models import Document, Message, NonConformity, utcnow
from hub.store.payloads import put_payload
from hub.store.states import MessageState, transition
from hub.store.wakeups import announce


class Documents:
    """Submission and the operations on stored documents and messages; ``wake`` tells the worker there is work."""

    def __init__(self, *, database: Database, routing: RoutingTable, profiles: dict[str, str], signer_for: Callable[[str], Signer], verifier: Verifier, signers: SignerRegistry, wake: threading.Event) -> None:
        self.database = database
        self.routing = routing
        self.profiles = profiles
        self.signer_for = signer_for
        self.verifier = verifier
        self.signers = signers
        self.wake = wake
        # Submissions arriving together are stored in one transaction, each answered once committed.
        self._stores = GroupCommit(database, _store_in, alone=partial(_store_alone, database), wrap=lambda: stage("store"), prepare=_read_earlier)

    def submit(self, body: bytes, media_type: str, *, tenant: str, actor: str, version: int = 1, idempotency_key: str | None = None, correlation_id: str | None = None) -> Stored:
        """Map, validate, sign, route and store a submission with its messages, in one transaction."""
        prepared = prepare(body, media_type, tenant=tenant, routing=self.routing, profiles=self.profiles, signer_for=self.signer_for, verifier=self.verifier, version=version, signers=self.signers)
        options = {"tenant": tenant, "actor": actor, "idempotency_key": idempotency_key, "correlation_id": correlation_id}
        stored = self._stores.run((prepared, options))
        if stored.created:
            self.wake.set()
        return stored

    def resend(self, message_id: str, *, tenant: str, actor: str) -> Message:
        """Queue a dead-lettered or rejected message again, keeping its identity (the counterpart de-duplicates)."""
        with self.database.transaction() as session:
            message = visible_message(session, message_id, tenant)
            if message.state not in (MessageState.DEAD_LETTER.value, MessageState.REJECTED.value):
                raise ConflictError(f"message {message_id} is {message.state}; only dead letters and rejected messages can be resent")
            message.attempts = 0
            message.next_attempt_at = utcnow()
            transition(session, message, MessageState.QUEUED, actor=actor, event="message.resend")
            announce(session)
            _ = message.document
        self.wake.set()
        return message

    def change_lifecycle(self, document_id: str, target: str, *, tenant: str, actor: str, reason: str | None = None) -> Document:
        """The issuing authority moves its document by hand (expired, cancellation requested, cancelled)."""
        try:
            wanted = Lifecycle(target)
        except ValueError:
            wanted = None
        if wanted not in MANUAL:
            manual = ", ".join(sorted(lifecycle.value for lifecycle in MANUAL))
            raise InputError(f"a document can be moved by hand to {manual}; the other lifecycles follow from what happens to it", where="lifecycle")
        with self.database.transaction() as session:
            document = own_document(session, document_id, tenant)
            change_lifecycle(session, document, wanted, actor=actor, reason=reason)
            _ = document.messages, document.products
            return document

    def duplicate_request(self, document_id: str, *, tenant: str) -> dict:
        """A new permit request from an expired permit (see :func:`hub.store.lifecycle.duplicate_request`)."""
        with self.database.sessions() as session:
            return duplicate_request(own_document(session, document_id, tenant))

    def report_non_conformity(self, *, document_id: str, tenant: str, actor: str, counterpart: str, cause_code: str, cause_text: str | None = None, country: str | None = None, products: list[str] | None = None, source: str = "border_refusal", evidence: bytes | None = None) -> NonConformity:
        """A refusal reported by the exporter or an operator (``POST /v1/non-conformities``)."""
        with self.database.transaction() as session:
            document = own_document(session, document_id, tenant)
            digest = put_payload(session, evidence, "application/octet-stream") if evidence else None
            nc = open_non_conformity(session, document=document, source=source, counterpart=counterpart, cause_code=cause_code, cause_text=cause_text, country=country, products=products, evidence_digest=digest, actor=actor)
            _ = nc.products
            return nc


def _read_earlier(session: Session, batch: list[tuple[Prepared, dict]]) -> None:
    """What the store holds of the batch's certificates, read at once for them all (see :func:`earlier_of_batch`)."""
    earlier = earlier_of_batch(session, [prepared for prepared, _options in batch])
    if earlier is not None:
        session.info[_EARLIER] = {id(prepared): found for (prepared, _options), found in zip(batch, earlier)}


_EARLIER = "hub.submissions.earlier"


def _store_in(session: Session, work: tuple[Prepared, dict]) -> Stored:
    prepared, options = work
    earlier = session.info.get(_EARLIER, {}).get(id(prepared))
    stored = store(session, prepared, savepoint=False, earlier=earlier, **options)  # no savepoint: two statements fewer
    _ = stored.document.messages, stored.document.report  # loaded before the session closes
    return stored


def _store_alone(database: Database, work: tuple[Prepared, dict]) -> Stored:
    """One submission in a transaction of its own: the same submission stored meanwhile by another request (the
    IntegrityError of the batch) is found, under a savepoint."""
    prepared, options = work
    with stage("store"), database.transaction() as session:
        stored = store(session, prepared, **options)
        _ = stored.document.messages, stored.document.report
    return stored


def own_document(session: Session, document_id: str, tenant: str) -> Document:
    """The document ``document_id`` if ``tenant``'s scope sees it, else :class:`NotFound` (nothing leaked)."""
    document = session.get(Document, document_id)
    if document is None or not Scope.of(tenant).sees(document.tenant):
        raise NotFound(f"no document {document_id}", where="document_id")
    return document


def visible_message(session: Session, message_id: str, tenant: str) -> Message:
    """The message ``message_id`` if ``tenant``'s scope sees its document, else :class:`NotFound`."""
    message = session.get(Message, message_id)
    if message is None or not Scope.of(tenant).sees(message.document.tenant):
        raise NotFound(f"no message {message_id}", where="message_id")
    return message
