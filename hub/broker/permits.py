"""CITES permits through the broker: the simplified re-export procedure (approvals, completion at the sale), permits
expiring at the end of their validity, and fetching a partner authority's permit through its EPIX-style exchange."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime

from hub.broker.documents import Documents, own_document
from hub.broker.inbound import Inbound
from hub.cites import pssm
from hub.connector import InboundDocument, InboundVerdict
from hub.errors import BoxesChanged, ConflictError
from hub.intake.submission import Stored, prepare, store
from hub.records.lifecycle import Lifecycle
from hub.report import Finding
from hub.store.lifecycle import change_lifecycle, expire_permits
from hub.store.models import CITESApproval, Document, utcnow
from hub.store.trace import add_event

EXPIRY_INTERVAL = 60.0  # seconds between two looks for permits whose validity has ended


@dataclass
class Completed:
    """A simplified-procedure certificate completed: the new version stored, and the alerts of the completion."""

    stored: Stored
    warnings: list[Finding]


class Permits:
    """The CITES operations, over the broker's documents and reception."""

    def __init__(self, *, documents: Documents, inbound: Inbound, certs_dir: str) -> None:
        self.documents = documents
        self.database = documents.database
        self.inbound = inbound
        self.certs_dir = certs_dir
        self._expired_at = float("-inf")

    def create_approval(self, *, tenant: str, **approval) -> CITESApproval:
        """Record an approval of the simplified procedure for ``tenant`` (see :func:`hub.cites.pssm.create_approval`)."""
        with self.database.transaction() as session:
            return pssm.create_approval(session, tenant=tenant, **approval)

    def list_approvals(self, *, tenant: str) -> list[CITESApproval]:
        """The simplified-procedure approvals of ``tenant`` (every tenant's for ``*``)."""
        with self.database.sessions() as session:
            return list(pssm.list_approvals(session, tenant=tenant))

    def expire(self, *, every: float = EXPIRY_INTERVAL) -> int:
        """Expire the permits whose validity has ended; the worker calls this with its polls, and it looks at most
        once per ``every`` seconds."""
        if time.monotonic() - self._expired_at < every:
            return 0
        self._expired_at = time.monotonic()
        with self.database.transaction() as session:
            return len(expire_permits(session))

    def complete(self, document_id: str, completion: pssm.Completion, *, tenant: str, actor: str, now: datetime | None = None) -> Completed:
        """The boxes of a simplified-procedure re-export certificate reported at the sale: the completed record is
        validated, signed, routed and stored as the permit's next version, and the permit becomes completed, in one
        transaction. A completion changing a box filled at issue is refused (:class:`~hub.errors.BoxesChanged`) and
        the attempt flagged as a possible fraud, the flag committed on its own; one reported more than 24 hours
        after the sale is accepted with a WARNING and a ``permit.completion_late`` event."""
        now = now or utcnow()
        with self.database.sessions() as session:
            document = own_document(session, document_id, tenant)
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
        docs = self.documents
        prepared = prepare(body, "application/json", tenant=owner, routing=docs.routing, profiles=docs.profiles, signer_for=docs.signer_for, verifier=docs.verifier, version=version + 1, now=now, signers=docs.signers)
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
            docs.wake.set()
        return Completed(stored=stored, warnings=[late] if late is not None else [])

    def fetch(self, url: str, number: str, *, country: str, callee: str | None = None, final: bool = True, version: str = "2") -> InboundVerdict:
        """Fetch a partner authority's permit through its EPIX-style exchange at ``url`` (as ``country``, by that
        country's TLS client certificate), in the toolkit ``version`` the partner speaks, and receive it like any
        document from abroad. Raises
        :class:`~connectors.cites_p2p.epix.EpixFault` when the partner refuses."""
        from connectors.cites_p2p.client import CitesExchangeClient

        client = CitesExchangeClient(url, country=country, certs_dir=self.certs_dir, callee=callee, version=version)
        try:
            answer = client.get_final(number) if final else client.get_non_final(number)
        finally:
            client.close()
        return self.inbound.receive_document(f"cites:{callee or 'partner'}", InboundDocument(answer.permit, number, sender_country=callee))
