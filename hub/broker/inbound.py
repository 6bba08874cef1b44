"""What counterparts bring the hub: answers pushed to ``POST /v1/inbound/{connector}``, and documents from abroad,
pulled or fetched, verified, validated, stored for their importing country and handed on."""

from __future__ import annotations

import logging
import threading
from typing import Mapping

from hub.acks.correlation import take_answers_together
from hub.delivery.outbox import claim
from hub.delivery.worker import Worker
from hub.connector import (BindsAnswerers, Connector, InboundDocument, InboundVerdict, ProtocolReply, PullsDocuments, ReceivesInbound,
                           RepliesInProtocol, ServesPulls)
from hub.errors import HubError, InputError, NotFound, SignatureError, UnmatchedAnswer, ValidationFailed
from hub.intake.reception import prepare_inbound, refusal, verdict_for
from hub.intake.submission import store
from hub.routing.table import RoutingTable
from hub.signing import SignerRegistry, Verifier
from hub.store.db import Database
from hub.store.models import Acknowledgement

log = logging.getLogger(__name__)


class Inbound:
    """Reception of answers and documents from the counterparts in ``connectors``."""

    def __init__(self, *, database: Database, routing: RoutingTable, verifier: Verifier, signers: SignerRegistry, connectors: Mapping[str, Connector], wake: threading.Event) -> None:
        self.database = database
        self.routing = routing
        self.verifier = verifier
        self.signers = signers
        self.connectors = connectors
        self.wake = wake

    def receive_answer(self, connector_name: str, body: bytes, headers: Mapping[str, str]) -> list[Acknowledgement]:
        """An answer pushed by a counterpart: parsed (and its signature checked) by the connector, then correlated,
        each to the message it names on that counterpart, from the authority that message went to. Nothing is applied
        if any part of it cannot be: an answer that matches no message is kept as unmatched and its
        :class:`~hub.errors.UnmatchedAnswer` (404, or 403 for another authority's) raised."""
        connector = self.connectors.get(connector_name)
        if not isinstance(connector, ReceivesInbound):
            raise NotFound(f"no connector {connector_name!r} takes pushed acknowledgements", where="connector")
        reports = connector.parse_inbound(body, headers)
        answerer = connector.answerer_for if isinstance(connector, BindsAnswerers) else None
        return take_answers_together(self.database, connector_name, reports, actor=f"counterpart:{connector_name}", answerer=answerer)

    def takes_exchanges(self, connector_name: str) -> bool:
        """Whether ``connector_name``'s counterpart is answered in its own protocol (see :meth:`exchange`)."""
        return isinstance(self.connectors.get(connector_name), RepliesInProtocol)

    def exchange(self, connector_name: str, body: bytes, headers: Mapping[str, str]) -> ProtocolReply:
        """A message pushed by a counterpart that is answered in its own protocol (AS4): read and authenticated by the
        connector, its answers correlated and its documents received (verified, validated, stored, handed on), then
        answered, so a receipt is only ever given for what is stored. A message that cannot be taken is refused in
        the protocol (an ebMS error signal naming what is wrong); a failure of the store raises, so the counterpart
        gets no receipt and sends again."""
        connector = self.connectors.get(connector_name)
        if not isinstance(connector, RepliesInProtocol):
            raise NotFound(f"no connector {connector_name!r} takes pushed messages", where="connector")
        try:
            exchange = connector.open_exchange(body, headers)
        except HubError as exc:
            log.warning("message pushed to %s refused: %s", connector_name, exc)
            return connector.refuse(body, headers, exc)
        if exchange.repeated is not None:
            return exchange.repeated
        if exchange.pull_mpc is not None and isinstance(connector, ServesPulls):
            return self._offer(connector_name, connector, exchange)
        if exchange.settled:
            # Callback receipts (or errors) of messages the counterpart pulled: the outcome of those attempts.
            Worker(database=self.database, connectors=self.connectors).settle_pulled(exchange.settled)
            self.wake.set()
        unmatched = None
        if exchange.answers:
            answerer = connector.answerer_for if isinstance(connector, BindsAnswerers) else None
            try:
                take_answers_together(self.database, connector_name, exchange.answers, actor=f"counterpart:{connector_name}", answerer=answerer)
            except UnmatchedAnswer as exc:
                unmatched = str(exc)  # kept as unmatched by the store; the counterpart is told
        verdicts = [self.receive_document(connector_name, document) for document in exchange.documents]
        return connector.reply(exchange, verdicts, unmatched)

    def _offer(self, connector_name: str, connector: ServesPulls, exchange) -> ProtocolReply:
        """The next message the hub holds for ``connector_name``'s counterpart, claimed as a delivery attempt leased
        for the connector's ``timeout``: not receipted by then, it is offered again."""
        lane = f"pull:{connector_name}"
        with self.database.transaction() as session:
            claims = claim(session, worker=lane, lease_seconds=connector.config.timeout, limit=1, destinations=[connector_name])
        taken = claims[0] if claims else None
        return connector.offer(exchange, taken.outbound if taken else None, taken.attempt if taken else 0, lane)

    def receive_document(self, connector_name: str, document: InboundDocument) -> InboundVerdict:
        """A document a counterpart holds for the hub: verified, validated, stored for its importing country and
        handed on (``direction: inbound`` routes). A document the hub cannot take gets a failed verdict naming what
        is wrong; a failure of the store raises, so the counterpart is told nothing and offers it again."""
        origin = {"counterpart": connector_name, "counterpart_reference": document.counterpart_reference, "sender_country": document.sender_country}
        if document.vouched_by:
            origin["vouched_by"] = document.vouched_by
        try:
            prepared = prepare_inbound(document.payload, routing=self.routing, verifier=self.verifier, origin=origin, vouched_by=document.vouched_by, signers=self.signers)
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
