"""The AS4 connector: certificates and permits pushed to a counterpart access point as signed, encrypted, compressed
ebMS3 user messages; its receipts, error signals and later business responses; what it pushes to the hub.

Outbound (PMode[1], One-way/Push): one user message per hub message, ``eb:MessageId`` = ``<hub message id>@<host>``
so that every retry and every resend is the same AS4 message (the counterpart's duplicate detection makes a retry
harmless: ReceptionAwareness). The synchronous answer is a receipt whose non-repudiation information must quote what
we signed, or error signals (see :mod:`connectors.as4.outcomes` for what each code makes the hub do).

Inbound (``POST /v1/inbound/{name}``, :class:`~hub.connector.RepliesInProtocol`): user messages from the counterpart,
decrypted and authenticated against the P-Mode's certificate, are either business responses (Action
``business_response_action``: an acknowledgement of a message we sent, ``RefToMessageId`` naming it) or documents
(Actions ``document_actions``) for the hub's reception. Each is answered, once stored, by a signed receipt, or by an
error signal naming what could not be taken. A repeated ``eb:MessageId`` gets the same answer again and is not
processed twice.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

import httpx

from connectors.as4 import ns
from connectors.as4.config import DATA_ENCRYPTION_METHODS, DIGEST_METHODS, KEY_TRANSPORTS, MGFS, SIGNATURE_METHODS, As4Config
from connectors.as4.ebms import Error, MessageInfo, Party, PartyId, Property, UserMessage, utc_now
from connectors.as4.errors import As4Error, EbmsError
from connectors.as4.keys import load_certificates, load_key_pair
from connectors.as4.msh import (
    Counterpart,
    Outgoing,
    Payload,
    Received,
    Security,
    compose_user_message,
    error_signal,
    open_message,
    payloads_of,
    read_answer,
    receipt_for,
)
from connectors.as4.outcomes import Disposition, disposition, summary
from connectors.as4.pulling import Puller
from connectors.as4.receipts import check_receipt
from connectors.http import bounded_client, status_error, transport_error
from hub.connector import (
    AckReport,
    DeliveryResult,
    InboundDocument,
    InboundExchange,
    InboundOutcome,
    InboundVerdict,
    Offered,
    OutboundMessage,
    Outcome,
    ProtocolReply,
)
from hub.errors import ConfigurationError, DeliveryError, HubError, KeyMaterialError, PermanentDeliveryError, TransientDeliveryError

log = logging.getLogger(__name__)

#: MessageProperties of a business response (the counterpart's acceptance or refusal of a document we sent).
OUTCOME_PROPERTY, REASON_CODE_PROPERTY, REASON_TEXT_PROPERTY, NUMBER_PROPERTY = "outcome", "reasonCode", "reasonText", "certificateNumber"
_OUTCOMES = {"acknowledged": Outcome.ACKNOWLEDGED, "acknowledged_with_warnings": Outcome.ACKNOWLEDGED_WITH_WARNINGS,
             "rejected": Outcome.REJECTED}
_SOAP = "application/soap+xml"
#: Answers kept for duplicate elimination (by MessageId), besides the time window.
_REMEMBERED = 10_000


@dataclass(frozen=True)
class _Opened:
    """What the connector keeps of an exchange between reading it and answering it."""

    received: Received
    user_message: UserMessage | None


class As4Connector:
    """One counterpart access point; see the module docstring. With ``transport`` given (tests, in-process
    sandboxes), requests go through it; otherwise over HTTPS trusting ``tls_ca_bundle`` (the development CA by
    default, when there is one; the system's otherwise)."""

    def __init__(self, name: str, config: As4Config, *, transport: httpx.BaseTransport | None = None, context) -> None:
        self.name = name
        self.config = config
        self._context = context
        self._transport = transport
        self._certs_dir = Path(context.certs_dir)
        self._host = urlparse(context.public_url).hostname or "hub.localhost"
        self._security: Security | None = None
        self._counterpart: Counterpart | None = None
        self._client: httpx.Client | None = None
        self._answered: OrderedDict[str, tuple[float, ProtocolReply]] = OrderedDict()
        self._lock = threading.Lock()
        self._puller: Puller | None = None
        self._next_pull = 0.0
        self._pulled_answers: list[tuple[_Opened, AckReport]] = []
        self._pulled_documents: list[tuple[_Opened, InboundDocument]] = []
        self._to_receipt: list[_Opened] = []
        self._offered: OrderedDict[str, tuple] = OrderedDict()  # eb:MessageId → what was offered to a pull, until answered

    # --- life cycle -----------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Load our key and the counterpart's certificates (the P-Mode's Security), refusing what cannot work."""
        security = self.config.security
        key_path = security.key or self._development("key")
        certificate_path = security.certificate or (None if security.key else self._development("pem"))
        key_pair = load_key_pair(key_path, security.key_password, certificate_path=certificate_path)
        counterpart_path = security.counterpart_certificate or self._development("pem", country=self.config.responder.country)
        certificates = tuple(load_certificates(counterpart_path))
        if not certificates:
            raise KeyMaterialError(f"{self.name}: {counterpart_path} holds no certificate")
        anchors = tuple(certificate for path in security.trust for certificate in load_certificates(path))
        self._security = Security(
            key_pair=key_pair, signature_method=SIGNATURE_METHODS[security.signature_algorithm],
            digest_method=DIGEST_METHODS[security.digest_algorithm], key_reference=security.key_reference,
            encrypt=security.encrypt, data_encryption=DATA_ENCRYPTION_METHODS[security.data_encryption],
            key_transport=KEY_TRANSPORTS[security.key_transport], mgf=MGFS[security.mgf])
        self._counterpart = Counterpart(certificates, anchors)
        if self._client is None:
            self._client = bounded_client(timeout=self.config.timeout, max_answer_bytes=self.config.max_answer_bytes,
                                          transport=self._transport, verify=self._verify())
        if self.config.pull is not None:
            self._puller = Puller(self.name, self.config.pull, endpoint=self.config.pull.endpoint or self.config.endpoint,
                                  client=self._client, security=self._security, counterpart=self._counterpart, host=self._host,
                                  max_size=self.config.max_message_bytes)

    def close(self) -> None:
        """Close the HTTP client (and the transport it was handed)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- outbound ---------------------------------------------------------------------------------------------------

    def deliver(self, message: OutboundMessage) -> DeliveryResult:
        """Push one document as an AS4 user message; the receipt (or error signal) becomes the result."""
        self._ensure_open()
        if self.config.binding == "pull":
            raise PermanentDeliveryError(f"{self.name}: the P-Mode's binding is pull: the counterpart pulls its messages, none is pushed")
        outgoing = self._compose(message)
        endpoint = self.config.endpoint
        try:
            response = self._client.post(endpoint, content=outgoing.body, headers={
                "Content-Type": outgoing.content_type, "MIME-Version": "1.0", "SOAPAction": '""'})
        except httpx.HTTPError as exc:
            raise transport_error(self.name, endpoint, exc, timeout=self.config.timeout, request=outgoing.body) from None
        result = self._result(outgoing, endpoint, response)
        if isinstance(result, DeliveryError):
            raise result
        return result

    def _compose(self, message: OutboundMessage) -> Outgoing:
        return compose_user_message(self._user_message(message), [self._payload(message)], security=self._security,
                                    counterpart=self._counterpart, compressed=self.config.compress,
                                    ids=(f"messaging-{message.id}", f"body-{message.id}"))

    def _result(self, outgoing: Outgoing, endpoint: str, response: httpx.Response) -> DeliveryResult | DeliveryError:
        body = response.content
        content_type = response.headers.get("content-type")
        if not _looks_like_soap(content_type, body):
            return status_error(self.name, endpoint, response, request=outgoing.body) if response.status_code >= 300 else \
                TransientDeliveryError(f"{self.name}: {endpoint} answered {response.status_code} without an AS4 signal "
                                       f"(EBMS:0301 MissingReceipt)", request=outgoing.body, response=body or None)
        try:
            answer = read_answer(body, content_type, sent=outgoing, counterpart=self._counterpart,
                                 max_size=self.config.max_message_bytes, require_non_repudiation=self.config.receipt.non_repudiation)
        except As4Error as exc:
            # An answer we cannot take as a receipt: sending the same message again (same MessageId) gets a new one.
            return TransientDeliveryError(f"{self.name}: answer from {endpoint} refused: {exc.code} {exc}",
                                          request=outgoing.body, response=body)
        if answer.receipt_id is not None:
            return DeliveryResult(outcome=Outcome.ACCEPTED, receipt_id=answer.receipt_id, request=outgoing.body, response=body)
        return self._signalled(answer.errors, f"{endpoint} answered with an error signal", request=outgoing.body, response=body)

    def _signalled(self, errors, said: str, *, request: bytes, response: bytes) -> DeliveryResult | DeliveryError:
        """What error signals about a message we sent make of it (see :mod:`connectors.as4.outcomes`)."""
        verdict = disposition(errors)
        if verdict is Disposition.REJECTED:
            first = next(error for error in errors if error.severity != "warning")
            return DeliveryResult(outcome=Outcome.REJECTED, request=request, response=response, reason_code=first.error_code,
                                  reason_text=first.description or first.detail or first.short_description or first.error_code)
        error = TransientDeliveryError if verdict is Disposition.RETRY else PermanentDeliveryError
        return error(f"{self.name}: {said}: {summary(errors)}", request=request, response=response)

    # --- pulled from the hub (One-way/Pull, the hub responding) ------------------------------------------------------

    def waits_to_be_pulled(self) -> bool:
        """Whether the counterpart pulls its messages (the delivery workers then leave them alone)."""
        return self.config.binding == "pull"

    def offer(self, exchange: InboundExchange, outbound: OutboundMessage | None, attempt: int, lane: str) -> ProtocolReply:
        """The answer to a pull request: the user message claimed for it, or EBMS:0006 (nothing to pull)."""
        opened: _Opened = exchange.state
        request_id = opened.received.message_id
        if outbound is None:
            empty = Error.of(EbmsError.EMPTY_MPC, ref_to_message_in_error=request_id, severity="warning")
            body, content_type = error_signal([empty], ref_to_message_id=request_id, security=self._security, host=self._host)
            return ProtocolReply(200, content_type, body)
        outgoing = self._compose(outbound)
        with self._lock:
            self._offered[outgoing.message_id] = (outbound, attempt, lane, outgoing, datetime.now(timezone.utc))
            while len(self._offered) > _REMEMBERED:
                self._offered.popitem(last=False)
        return ProtocolReply(200, outgoing.content_type, outgoing.body)

    def _settled(self, received: Received, raw: bytes) -> list[Offered]:
        """Callback receipts and errors about messages the counterpart pulled: the outcome of each (a receipt that
        does not prove what was offered settles nothing: the message is offered again when its lease ends)."""
        settled = []
        for signal in received.messaging.signal_messages:
            referred = signal.info.ref_to_message_id or next((e.ref_to_message_in_error for e in signal.errors if e.ref_to_message_in_error), None)
            with self._lock:
                offered = self._offered.pop(referred or "", None)
            if offered is None:
                continue
            outbound, attempt, lane, outgoing, started = offered
            if signal.receipt is not None:
                try:
                    check_receipt(signal.receipt, sent=outgoing.signed, message_id=outgoing.message_id)
                except As4Error as exc:
                    log.warning("%s: receipt of pulled message %s refused: %s %s", self.name, outgoing.message_id, exc.code, exc)
                    continue
                result = DeliveryResult(outcome=Outcome.ACCEPTED, receipt_id=signal.info.message_id, request=outgoing.body, response=raw)
            else:
                result = self._signalled(signal.errors, "the pulled message was answered with an error signal", request=outgoing.body, response=raw)
            settled.append(Offered(outbound=outbound, attempt=attempt, lane=lane, result=result, started=started,
                                   finished=datetime.now(timezone.utc)))
        return settled

    def _user_message(self, message: OutboundMessage) -> UserMessage:
        config = self.config
        properties = {"originalSender": message.issuing_country, "finalRecipient": message.importing_country or "",
                      **config.properties}
        return UserMessage(
            mpc=None if config.mpc == ns.DEFAULT_MPC else config.mpc,
            info=MessageInfo(_utc(message.created_at) or utc_now(), self.message_id_of(message.id)),
            from_party=_party(config.initiator), to_party=_party(config.responder),
            agreement_ref=config.agreement.value if config.agreement else None,
            agreement_ref_type=config.agreement.type if config.agreement else None,
            agreement_pmode=config.pmode_id if config.send_pmode_attribute else None,
            service=config.service.value, service_type=config.service.type, action=config.action,
            conversation_id=message.correlation_id,
            properties=tuple(Property(name, value) for name, value in properties.items() if value),
        )

    def _payload(self, message: OutboundMessage) -> Payload:
        return Payload(f"document-{message.id}@{self._host}", message.payload, mime_type=message.media_type or "application/xml")

    def message_id_of(self, hub_message_id: str) -> str:
        """The ``eb:MessageId`` of a hub message: the same on every attempt and every resend."""
        return f"{hub_message_id}@{self._host}"

    def answerer_for(self, importing_country: str | None, kind: str = "acknowledgement") -> str | None:
        """The authority the counterpart speaks for: its answers count only from it (the responder's country)."""
        return self.config.answerer_for(importing_country)

    # --- inbound ----------------------------------------------------------------------------------------------------

    def open_exchange(self, body: bytes, headers: Mapping[str, str]) -> InboundExchange:
        """Read, decrypt and authenticate what the counterpart pushed; raises :class:`As4Error` for what cannot be
        taken (answered by :meth:`refuse`)."""
        self._ensure_open()
        received = open_message(body, _header(headers, "content-type"), security=self._security, counterpart=self._counterpart,
                                max_size=self.config.max_message_bytes)
        messaging = received.messaging
        if not messaging.user_messages:
            pulls = [signal.pull_request for signal in messaging.signal_messages if signal.pull_request is not None]
            if pulls:
                return InboundExchange(pull_mpc=self._authorised(pulls[0].mpc, received.message_id), state=_Opened(received, None))
            # Signals pushed on their own (callback receipts, errors about messages of ours): a signal is never
            # answered by a signal; those about messages the counterpart pulled settle them.
            settled = self._settled(received, body)
            if not settled:
                log.info("%s: signal(s) pushed by the counterpart: %s", self.name,
                         summary([error for signal in messaging.signal_messages for error in signal.errors]) or "receipt")
            return InboundExchange(settled=settled, state=_Opened(received, None))
        user_message = _single(received)
        repeated = self._repeated(user_message.info.message_id)
        if repeated is not None:
            return InboundExchange(state=_Opened(received, user_message), repeated=repeated)
        answers, documents = self._taken(received, user_message, body)
        return InboundExchange(answers=answers, documents=documents, state=_Opened(received, user_message))

    def reply(self, exchange: InboundExchange, verdicts: list[InboundVerdict], unmatched: str | None) -> ProtocolReply:
        """The receipt of what was stored, or an error signal naming what was refused (EBMS:0004)."""
        opened: _Opened = exchange.state
        if opened.user_message is None:
            return ProtocolReply(200, _SOAP, b"")
        body, content_type = self._answer_to(opened, verdicts, unmatched)
        reply = ProtocolReply(200, content_type, body)
        self._remember(opened.user_message.info.message_id, reply)
        return reply

    def refuse(self, body: bytes, headers: Mapping[str, str], error: Exception) -> ProtocolReply:
        """An error signal for a message that could not be taken: its EBMS code when the error has one, else
        EBMS:0004 Other with the reason."""
        body, content_type = self._error_about(error, None)
        return ProtocolReply(200, content_type, body)

    # --- pulled (One-way/Pull, the hub initiating) -------------------------------------------------------------------

    def poll_acks(self) -> list[AckReport]:
        """Business responses pulled from the counterpart's MPC (nothing when the P-Mode does not pull)."""
        self._pull_when_due()
        answers, self._pulled_answers = self._pulled_answers, []
        self._to_receipt.extend(opened for opened, _ in answers)
        return [report for _, report in answers]

    def answers_recorded(self, reports: list[AckReport]) -> None:
        """The answers pulled are stored: each is receipted to the counterpart (a callback receipt)."""
        waiting, self._to_receipt = self._to_receipt, []
        for opened in waiting:
            self._send_answer(opened, [], None)

    def pull_documents(self) -> list[InboundDocument]:
        """Certificates pulled from the counterpart's MPC, to be received by the hub (nothing when it does not pull)."""
        self._pull_when_due()
        held = [document for _, document in self._pulled_documents]
        return held

    def confirm_document(self, document: InboundDocument, verdict: InboundVerdict) -> None:
        """A pulled certificate is stored (or refused): its receipt (or error signal) goes to the counterpart."""
        for index, (opened, held) in enumerate(self._pulled_documents):
            if held is document:
                del self._pulled_documents[index]
                self._send_answer(opened, [verdict], None)
                return

    def _pull_when_due(self) -> None:
        if self.config.pull is None:
            return
        self._ensure_open()
        if time.monotonic() < self._next_pull:
            return
        self._next_pull = time.monotonic() + self.config.pull.interval
        for raw, received in self._puller.pull():
            try:
                user_message = _single(received)
                answers, documents = self._taken(received, user_message, raw)
            except As4Error as exc:
                log.warning("%s: pulled message refused: %s %s", self.name, exc.code, exc)
                self._puller.send(*self._error_about(exc, received.message_id))
                continue
            opened = _Opened(received, user_message)
            self._pulled_answers.extend((opened, report) for report in answers)
            self._pulled_documents.extend((opened, document) for document in documents)
            if not answers and not documents:  # a test message: receipted at once
                self._send_answer(opened, [], None)

    def _send_answer(self, opened: _Opened, verdicts: list[InboundVerdict], unmatched: str | None) -> None:
        try:
            self._puller.send(*self._answer_to(opened, verdicts, unmatched))
        except HubError as exc:
            # Not receipted: the counterpart offers the message again at a later pull (reception awareness).
            log.warning("%s: the receipt of %s was not sent: %s", self.name, opened.user_message.info.message_id, exc)

    # --- what a received user message is, and its answer -------------------------------------------------------------

    def _taken(self, received: Received, user_message: UserMessage, raw: bytes) -> tuple[list[AckReport], list[InboundDocument]]:
        """A user message from the counterpart as answers or documents for the hub (none for a test message)."""
        self._check_leg(user_message)
        if user_message.service == ns.TEST_SERVICE and user_message.action == ns.TEST_ACTION:
            payloads_of(received, user_message, limit=self.config.max_message_bytes)
            return [], []
        payloads = payloads_of(received, user_message, limit=self.config.max_message_bytes)  # every part named, signed, readable
        if user_message.action == self.config.business_response_action:
            return [self._answer(user_message, raw)], []
        documents = [InboundDocument(payload=data, counterpart_reference=user_message.info.message_id,
                                     sender_country=self.config.responder.country, media_type=info.mime_type or "application/xml")
                     for info, data in payloads]
        if not documents:
            raise As4Error(EbmsError.VALUE_INCONSISTENT, f"action {user_message.action!r} carries a document, and the message has no payload",
                           where="eb:UserMessage/eb:PayloadInfo", ref_to_message_id=user_message.info.message_id)
        return [], documents

    def _answer_to(self, opened: _Opened, verdicts: list[InboundVerdict], unmatched: str | None) -> tuple[bytes, str]:
        """The signed receipt of a user message the hub took, or the error signal naming why it did not."""
        message_id = opened.user_message.info.message_id
        refused = [verdict for verdict in verdicts if verdict.outcome is InboundOutcome.FAILED]
        if refused or unmatched:
            reasons = [f"[{verdict.refusal}] {verdict.reason}" for verdict in refused] + ([unmatched] if unmatched else [])
            errors = [Error.of(EbmsError.OTHER, ref_to_message_in_error=message_id, description=reason) for reason in reasons]
            return error_signal(errors, ref_to_message_id=message_id, security=self._security, host=self._host)
        _, body, content_type = receipt_for(opened.received, opened.user_message, security=self._security, host=self._host)
        return body, content_type

    def _authorised(self, mpc: str | None, request_id: str | None) -> str:
        """The MPC a pull request names, when the counterpart may pull from it (its X.509 signature, checked when the
        message was opened, is the authorisation: AS4 profile §2.1.1)."""
        wanted = mpc or ns.DEFAULT_MPC
        if self.config.binding != "pull" or wanted != self.config.mpc:
            raise As4Error(EbmsError.PROCESSING_MODE_MISMATCH, f"no message partition channel {wanted!r} is held here for this party",
                           where="eb:SignalMessage/eb:PullRequest/@mpc", ref_to_message_id=request_id)
        return wanted

    def _error_about(self, error: Exception, message_id: str | None) -> tuple[bytes, str]:
        if isinstance(error, As4Error):
            reported = error
        else:
            reported = As4Error(EbmsError.OTHER, str(error) if isinstance(error, HubError) else "the message could not be processed")
        return error_signal([reported], ref_to_message_id=reported.ref_to_message_id or message_id,
                            security=self._security, host=self._host)

    def _check_leg(self, user_message: UserMessage) -> None:
        """The message must be from the P-Mode's responder to its initiator (EBMS:0010 ProcessingModeMismatch)."""
        expected = ((self.config.responder, user_message.from_party, "From"), (self.config.initiator, user_message.to_party, "To"))
        for party, sent, side in expected:
            ids = {(party_id.value, party_id.type or None) for party_id in sent.party_ids}
            if (party.party_id, party.party_id_type or None) not in ids:
                raise As4Error(EbmsError.PROCESSING_MODE_MISMATCH,
                               f"{side} party {sorted(v for v, _ in ids)} is not {party.party_id!r} of P-Mode {self.config.pmode_id!r}",
                               where=f"eb:UserMessage/eb:PartyInfo/eb:{side}/eb:PartyId", ref_to_message_id=user_message.info.message_id)
        test = (user_message.service, user_message.action) == (ns.TEST_SERVICE, ns.TEST_ACTION)
        service = self.config.service
        if not test and (user_message.service, user_message.service_type or None) != (service.value, service.type or None):
            raise As4Error(EbmsError.PROCESSING_MODE_MISMATCH,
                           f"service {user_message.service!r} (type {user_message.service_type!r}) is not {service.value!r} of P-Mode {self.config.pmode_id!r}",
                           where="eb:UserMessage/eb:CollaborationInfo/eb:Service", ref_to_message_id=user_message.info.message_id)
        known = {self.config.business_response_action, *self.config.document_actions, ns.TEST_ACTION}
        if user_message.action not in known:
            raise As4Error(EbmsError.PROCESSING_MODE_MISMATCH, f"action {user_message.action!r} is not one of {sorted(known)}",
                           where="eb:UserMessage/eb:CollaborationInfo/eb:Action", ref_to_message_id=user_message.info.message_id)

    def _answer(self, user_message: UserMessage, body: bytes) -> AckReport:
        """A business response as the hub's acknowledgement of the message it refers to."""
        message_id = user_message.info.message_id
        referred = user_message.info.ref_to_message_id or ""
        hub_id, _, host = referred.rpartition("@")
        if not hub_id or host != self._host:
            raise As4Error(EbmsError.VALUE_INCONSISTENT, f"RefToMessageId {referred!r} names no message this hub sent",
                           where="eb:UserMessage/eb:MessageInfo/eb:RefToMessageId", ref_to_message_id=message_id)
        said = user_message.property_value(OUTCOME_PROPERTY)
        outcome = _OUTCOMES.get(said or "")
        if outcome is None:
            raise As4Error(EbmsError.VALUE_NOT_RECOGNIZED, f"property {OUTCOME_PROPERTY!r} is {said!r}, not one of {sorted(_OUTCOMES)}",
                           where="eb:UserMessage/eb:MessageProperties", ref_to_message_id=message_id)
        return AckReport(outcome=outcome, message_id=hub_id, certificate_number=user_message.property_value(NUMBER_PROPERTY),
                         reason_code=user_message.property_value(REASON_CODE_PROPERTY),
                         reason_text=user_message.property_value(REASON_TEXT_PROPERTY), payload=body, media_type=_SOAP,
                         country=self.config.responder.country, answered_by=self.config.responder.country)

    def _repeated(self, message_id: str) -> ProtocolReply | None:
        if not self.config.duplicate_detection.enabled:
            return None
        with self._lock:
            found = self._answered.get(message_id)
        return found[1] if found and found[0] > time.monotonic() else None

    def _remember(self, message_id: str, reply: ProtocolReply) -> None:
        if not self.config.duplicate_detection.enabled:
            return
        expires = time.monotonic() + self.config.duplicate_detection.window_days * 86400
        with self._lock:
            self._answered[message_id] = (expires, reply)
            self._answered.move_to_end(message_id)
            while len(self._answered) > _REMEMBERED:
                self._answered.popitem(last=False)

    # --- helpers ----------------------------------------------------------------------------------------------------

    def _development(self, suffix: str, *, country: str | None = None) -> Path:
        country = country or self.config.initiator.country
        if not country:
            raise ConfigurationError(f"connector {self.name!r}: security.key is not set and initiator.country names no "
                                     "development access point (certs_dir/as4/<CC>)")
        return self._certs_dir / "as4" / f"{country}.{suffix}"

    def _verify(self):
        bundle = self.config.tls_ca_bundle or (self._certs_dir / "ca.pem")
        if self.config.tls_ca_bundle is None and not bundle.is_file():
            return True
        return ssl.create_default_context(cafile=str(bundle))

    def _ensure_open(self) -> None:
        if self._security is None:
            self.open()


def _single(received: Received) -> UserMessage:
    """The one user message of ``received`` (ED115 §1.4.2.2: one per message)."""
    if len(received.messaging.user_messages) != 1:
        raise As4Error(EbmsError.FEATURE_NOT_SUPPORTED_INCONSISTENCY, "a message must carry exactly one UserMessage (ED115 §1.4.2.2)",
                       where="eb:Messaging", ref_to_message_id=received.message_id)
    return received.messaging.user_messages[0]


def _utc(moment: datetime | None) -> datetime | None:
    """A stored time as UTC (SQLite hands back naive datetimes, stored in UTC)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _party(config) -> Party:
    return Party((PartyId(config.party_id, config.party_id_type),), config.role)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _looks_like_soap(content_type: str | None, body: bytes) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return bool(body) and (media in ("application/soap+xml", "text/xml", "application/xml", "multipart/related")
                           or body.lstrip()[:1] == b"<")

