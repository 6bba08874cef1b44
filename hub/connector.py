"""The connector interface every counterpart implements (see DESIGN.md).

A connector is built from its pydantic config model and handed its HTTP transport (tests and in-process sandboxes
plug in without sockets). The worker calls ``open()`` once, ``deliver(message)`` per message, ``close()`` at the end;
connectors whose counterpart answers later also implement ``poll_acks()`` (pull) and/or ``parse_inbound()`` (push,
for ``POST /v1/inbound/{connector}``). Errors are typed: :class:`~hub.errors.TransientDeliveryError` (try again,
honouring ``retry_after``) or :class:`~hub.errors.PermanentDeliveryError` (dead letter); a counterpart that answers
"rejected" is not an error but a :class:`DeliveryResult` with outcome ``REJECTED``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Callable, Iterable, Mapping, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, ConfigDict, Field


class Outcome(str, Enum):
    """What a counterpart said of a message (maps onto :class:`hub.store.states.MessageState`)."""

    ACCEPTED = "accepted"  # received, an acknowledgement will follow → AWAITING_ACK
    ACKNOWLEDGED = "acknowledged"
    ACKNOWLEDGED_WITH_WARNINGS = "acknowledged_with_warnings"
    REJECTED = "rejected"


@dataclass(frozen=True)
class OutboundMessage:
    """One document for one destination, as the worker hands it to a connector. ``id`` never changes on resend."""

    id: str
    correlation_id: str
    destination: str
    document_id: str
    document_kind: str
    certificate_number: str
    status: str
    issuing_country: str
    exporting_country: str | None
    importing_country: str | None
    payload: bytes
    media_type: str = "application/xml"
    attempt: int = 1
    #: When the message was queued: a protocol that timestamps its messages (AS4's eb:Timestamp) stamps every
    #: attempt with it, so that a retry is the very same message.
    created_at: datetime | None = None
    #: For a replacement certificate: the message that last took the certificate it replaces to this destination
    #: (None when none did). Read from the store at each claim, so that a protocol linking a replacement to the
    #: original's exchange (the single window's ``IDdeTransaccionOriginal``) keeps the link across restarts and workers.
    replaces: str | None = None


@dataclass(frozen=True)
class DeliveryResult:
    """The counterpart's synchronous answer, with the raw exchange kept for the trace."""

    outcome: Outcome
    receipt_id: str | None = None
    request: bytes | None = None
    response: bytes | None = None
    reason_code: str | None = None
    reason_text: str | None = None


@dataclass(frozen=True)
class AckReport:
    """An acknowledgement or business response that arrived later, to be correlated to its message.

    Correlation uses ``message_id`` first, then ``receipt_id``, then the certificate number (and its version, when
    the protocol gives it) on that counterpart; an identifier given that matches nothing of that counterpart is never
    passed over for a weaker one. ``kind`` is ``acknowledgement``, ``business_response`` or ``border_refusal``.
    ``answered_by`` is the authority the answer comes from as the connector established it (the country of a verified
    signer); a connector that :class:`BindsAnswerers` says whom it must be.
    """

    outcome: Outcome
    kind: str = "acknowledgement"
    message_id: str | None = None
    receipt_id: str | None = None
    certificate_number: str | None = None
    reason_code: str | None = None
    reason_text: str | None = None
    payload: bytes | None = None
    media_type: str = "application/xml"
    country: str | None = None
    products: tuple[str, ...] = field(default_factory=tuple)
    answered_by: str | None = None
    certificate_version: int | None = None


class ConnectorConfig(BaseModel):
    """Base of every connector's config model: checked at start-up, unknown keys refused."""

    model_config = ConfigDict(extra="forbid")

    type: str
    profile: str = "full"
    timeout: float = 30.0
    max_attempts: int = 8
    #: Seconds a message keeps being retried after transient failures, whatever ``max_attempts`` says: a counterpart
    #: down for hours keeps its backlog, which drains when it returns (0: ``max_attempts`` alone decides).
    retry_for: float = Field(default=86400.0, ge=0)
    #: Seconds an answer may be awaited after delivery: past it the hub asks the counterpart again where the protocol
    #: allows, then alerts (``message.answer_overdue``), and asks again every as many seconds.
    answer_deadline: float = Field(default=3600.0, gt=0)
    #: Delivery lanes (threads, each sending a batch one message after the other) sending to this counterpart at
    #: once, by every worker together: a slow counterpart holds at most this many, the others serve the rest.
    max_in_flight: int = Field(default=2, ge=1)
    #: Bytes of one answer read at most (as a stream); a longer answer is a transient failure, never read whole.
    max_answer_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)


@runtime_checkable
class Connector(Protocol):
    """What the worker needs of a counterpart."""

    name: str
    config: ConnectorConfig

    def open(self) -> None: ...

    def deliver(self, message: OutboundMessage) -> DeliveryResult: ...

    def close(self) -> None: ...


@runtime_checkable
class PollsAcks(Protocol):
    """A connector that can fetch acknowledgements (pull); ``isinstance(connector, PollsAcks)`` tells.

    The worker records what one call returns before it calls again, so a connector may acknowledge what it read to
    the counterpart at its next call (the ePhyto Hub's country responses): a crash in between loses nothing."""

    def poll_acks(self) -> Iterable[AckReport]: ...


@runtime_checkable
class ReceivesInbound(Protocol):
    """A connector that reads what its counterpart pushes to ``POST /v1/inbound/{connector}``.

    Raises :class:`~hub.errors.SignatureError` for a body that is unsigned or signed by someone untrusted, and
    :class:`~hub.errors.InputError` for one it cannot read (the API answers 403 / 400).
    """

    def parse_inbound(self, body: bytes, headers: Mapping[str, str]) -> list[AckReport]: ...


@runtime_checkable
class ConfirmsAnswers(Protocol):
    """A :class:`PollsAcks` connector whose read position (a feed cursor, answers to acknowledge to the counterpart)
    moves on only once the worker has recorded what ``poll_acks`` returned: told by ``answers_recorded``. An answer
    read while the store cannot take it is read again at the next poll, never dropped."""

    def answers_recorded(self, reports: list[AckReport]) -> None: ...


@runtime_checkable
class BindsAnswerers(Protocol):
    """A connector whose counterparts sign (or send over an authenticated channel) their answers: the authority that
    must have given an answer of ``kind`` to a message sent for ``importing_country`` (None: the channel's own word,
    e.g. the ePhyto Hub's tracking). An answer from anyone else is kept as unmatched, never applied."""

    def answerer_for(self, importing_country: str | None, kind: str) -> str | None: ...


@dataclass(frozen=True)
class AwaitingAck:
    """A message the counterpart has (its receipt id is known) and whose answer is still awaited."""

    message_id: str
    receipt_id: str
    certificate_number: str
    issuing_country: str
    importing_country: str | None


@runtime_checkable
class ResumesAwaiting(Protocol):
    """A connector that follows answers with state kept in memory (a Hub delivery number to track, a CHED reference
    whose decision is polled). The worker hands it, when it starts, every message of its destination still awaiting
    an answer, so a restart loses nothing."""

    def resume(self, awaiting: list[AwaitingAck]) -> None: ...


@runtime_checkable
class RequeriesAnswers(Protocol):
    """A connector that can ask its counterpart again about messages whose answer is overdue (the worker calls it
    past their deadline): the answers it finds are returned as reports, to be recorded like any other."""

    def requery(self, overdue: list[AwaitingAck]) -> list[AckReport]: ...


class InboundOutcome(str, Enum):
    """What the hub made of a document received from a counterpart (told back to it by ``confirm_document``)."""

    ACCEPTED = "accepted"
    ACCEPTED_WITH_WARNINGS = "accepted_with_warnings"
    FAILED = "failed"


@dataclass(frozen=True)
class InboundDocument:
    """A certificate or permit a counterpart holds for the hub: the signed XML as received, and the counterpart's
    reference for it (an ePhyto hub delivery number, a message id) used to confirm receipt."""

    payload: bytes
    counterpart_reference: str
    sender_country: str | None = None
    media_type: str = "application/xml"
    vouched_by: str | None = None  # a counterpart whose authenticated channel stands for a document it signs no XML of


@dataclass(frozen=True)
class InboundVerdict:
    """The hub's verdict on an :class:`InboundDocument`, once it is safely stored (or refused): ``reason`` says what
    was wrong or worth a warning, ``document_id`` is the stored document."""

    outcome: InboundOutcome
    reason: str | None = None
    document_id: str | None = None
    refusal: str | None = None  # the refusal code of a failed verdict (see hub.errors)


@dataclass(frozen=True)
class ProtocolReply:
    """The answer a protocol owes, on the same HTTP exchange, the counterpart that pushed a message (an AS4 receipt
    or error signal): the hub sends it as it is."""

    status: int
    media_type: str
    body: bytes


@dataclass(frozen=True)
class Offered:
    """What came of an outbound message a counterpart pulled: the receipt it sent back for it (a
    :class:`DeliveryResult`) or the error it signalled (a :class:`~hub.errors.DeliveryError`), recorded as the outcome of
    that delivery attempt (``attempt``, held by ``lane`` since ``started``)."""

    outbound: OutboundMessage
    attempt: int
    lane: str
    result: object
    started: datetime
    finished: datetime


@dataclass(frozen=True)
class InboundExchange:
    """What a counterpart pushed, as its connector read and authenticated it: answers to correlate and documents to
    receive; ``pull_mpc``, a pull request for what the hub holds for it on that channel; ``settled``, what came of
    messages it pulled earlier. ``state`` is the connector's own (what it needs to reply), opaque to the hub;
    ``repeated`` is the reply already given to the same message (duplicate elimination): the hub sends it again and
    records nothing."""

    answers: list[AckReport] = field(default_factory=list)
    documents: list[InboundDocument] = field(default_factory=list)
    state: object = None
    repeated: ProtocolReply | None = None
    pull_mpc: str | None = None
    settled: list[Offered] = field(default_factory=list)


@runtime_checkable
class RepliesInProtocol(Protocol):
    """A connector whose counterpart pushes messages to ``POST /v1/inbound/{connector}`` and must be answered in its
    own protocol (AS4: a signed receipt, or an ebMS error signal), once what it brought is stored.

    ``open_exchange`` authenticates and reads the message (raising :class:`~hub.errors.HubError` subclasses for what
    cannot be taken); ``reply`` answers it given what the hub made of it: ``verdicts`` (one per document) and
    ``unmatched`` (the reason an answer matched nothing, or None); ``refuse`` answers a message that could not be
    taken at all, naming the error.
    """

    def open_exchange(self, body: bytes, headers: Mapping[str, str]) -> InboundExchange: ...

    def reply(self, exchange: InboundExchange, verdicts: list["InboundVerdict"], unmatched: str | None) -> ProtocolReply: ...

    def refuse(self, body: bytes, headers: Mapping[str, str], error: Exception) -> ProtocolReply: ...


@runtime_checkable
class ServesPulls(Protocol):
    """A :class:`RepliesInProtocol` connector whose counterpart may pull what the hub holds for it (AS4 One-way/Pull,
    the hub responding): when ``waits_to_be_pulled()``, the delivery workers leave its messages alone; each pull
    request claims the next due one (a delivery attempt, leased for the connector's ``timeout``: not receipted by
    then, it is offered again), which ``offer`` answers with (``outbound`` None: nothing to pull)."""

    def waits_to_be_pulled(self) -> bool: ...

    def offer(self, exchange: InboundExchange, outbound: OutboundMessage | None, attempt: int, lane: str) -> ProtocolReply: ...


@runtime_checkable
class PullsDocuments(Protocol):
    """A connector that fetches documents addressed to the hub (import side).

    The broker calls ``pull_documents()``, verifies, validates and stores each document, then calls
    ``confirm_document()`` with its verdict: a document is confirmed to the counterpart only once it is stored, so a
    crash in between leaves it with the counterpart to be pulled again.
    """

    def pull_documents(self) -> Iterable[InboundDocument]: ...

    def confirm_document(self, document: InboundDocument, verdict: InboundVerdict) -> None: ...


@dataclass(frozen=True)
class ConnectorType:
    """A registry entry: how to build a connector of one ``type`` from its config, and the sandbox (a name in the
    sandbox registry) that plays its counterpart."""

    name: str
    config_model: type[ConnectorConfig]
    factory: "ConnectorFactory"
    description: str = ""
    sandbox: str | None = None


class ConnectorFactory(Protocol):
    def __call__(self, name: str, config: ConnectorConfig, *, transport: httpx.BaseTransport | None, context: "ConnectorContext") -> Connector: ...


@dataclass(frozen=True)
class ConnectorContext:
    """What the hub gives every connector: its key material and where counterparts can reach it back."""

    certs_dir: str
    public_url: str
    trust_store: object | None = None


@dataclass(frozen=True)
class SandboxContext:
    """What a sandbox is given when the hub hosts it (or ``hub sandbox`` runs it): the development PKI, where the hub
    is (to push answers to, or to call as customs does), the address to listen on, the ports of the other servers
    (a foreign CITES authority calls the hub's exchange), and a way to get an API key of the hub for sandboxes that
    call its API."""

    certs_dir: str
    hub_url: str
    host: str = "127.0.0.1"
    plain_http: bool = False
    ports: Mapping[str, int] = field(default_factory=dict)
    api_key: Callable[[], str] | None = None
    exchange_url: str | None = None  # the hub's CITES permit exchange, for a sandbox that fetches permits


class SandboxFactory(Protocol):
    def __call__(self, context: SandboxContext, *, port: int) -> Any: ...  # a uvicorn.Server


@dataclass(frozen=True)
class SandboxType:
    """A sandbox registry entry: a local stand-in for a counterpart, speaking its real protocol.

    ``calls_hub``: it plays a counterpart that calls the hub (customs, a foreign authority fetching permits), so the
    hub hosts it whatever connectors are configured; the others are hosted when a connector of their type is.
    """

    name: str
    default_port: int
    factory: SandboxFactory
    plays: str
    path: str
    scheme: str = "https"
    calls_hub: bool = False
