"""The broker's tables (SQLAlchemy 2): the same models on SQLite and PostgreSQL; Alembic migrations must equal them.

::

    api_clients          a machine client: role, tenants, credentials (API key hash, TLS certificate, JWT key)
      oauth_assertions   client assertions already used (replay refused until they expire)
      oauth_tokens       short-lived access tokens (hashed) issued for client assertions
    payloads             raw bytes stored once, addressed by their SHA-256 digest
    documents            one submitted document version: business key, lifecycle, record, report
      document_products  its products (HS code, scientific name, certified quantity) for crisis search, statistics
                         and customs
        quantity_movements  what customs declarations reserved, wrote off or released on each product line
        customs_operations  reservations and clearances sent to TRACES-NT's CSW-CERTEX, recorded before the call
      messages           one per destination: transport state, lease, ordering predecessor
        delivery_attempts  every try, with the raw request and response
      acknowledgements   receipts, acknowledgements and business responses, correlated to a message
      non_conformities   rejections and border refusals linked to the certificate
        non_conformity_products
    trace_events         append-only: every hop, one correlation id per document
    webhook_subscriptions  who is told of events, and how far they have been told
    cites_approvals      approvals of the CITES simplified re-export procedure (PSSM), per tenant
    audit_log            append-only, hash-chained: every action by a person or client (see hub.store.audit)
    alerts               what an operator must act on, raised and cleared by the worker (see hub.notify.alerts)
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Quantities are exact decimals (certificates give them to the gram, customs writes off to the gram).
Quantity = Numeric(20, 6, asdecimal=True)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A moment in UTC on both engines: SQLite keeps no zone, so values go in as naive UTC and come back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    # Named constraints, so that a later migration can alter them the same way on SQLite and PostgreSQL.
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class ApiClient(Base):
    """A machine client: its role, the tenants it works for, and how it proves who it is (an API key, a TLS client
    certificate, signed JWT assertions; see :mod:`hub.api.auth`). Only hashes of keys are kept."""

    __tablename__ = "api_clients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(30), default="issuing_authority", server_default="issuing_authority")
    # its own country (issuing or foreign authority), * for an administrator, none for an operator or auditor
    tenant: Mapped[str | None] = mapped_column(String(20), index=True)
    # the authorities an operator acts for or an auditor reads (FR,NL; * for an auditor of every tenant)
    acts_for: Mapped[str | None] = mapped_column(String(300))
    key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    certificate_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    certificate_subject: Mapped[str | None] = mapped_column(String(500), unique=True)
    jwt_public_key: Mapped[str | None] = mapped_column(Text)
    password_hash: Mapped[str | None] = mapped_column(String(200))  # a person's console password (scrypt; hub.api.auth)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuthAssertion(Base):
    """A client assertion (signed JWT) already used at the token endpoint: its ``jti`` is refused until it expires."""

    __tablename__ = "oauth_assertions"

    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"), primary_key=True)
    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class OAuthToken(Base):
    """A short-lived access token issued by ``POST /v1/oauth/token``; only its SHA-256 is kept."""

    __tablename__ = "oauth_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def _referring(table: str, column: str) -> Index:
    """An index of the rows that refer to a payload (retention asks whether one still does), of those that do only:
    most rows refer to none, and an insert that refers to none costs nothing more."""
    where = text(f"{column} IS NOT NULL")
    return Index(f"ix_{table}_{column}", column, sqlite_where=where, postgresql_where=where)


class Payload(Base):
    __tablename__ = "payloads"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("issuing_country", "kind", "certificate_number", "status", "version", name="uq_documents_business_key"),
        UniqueConstraint("tenant", "idempotency_key", name="uq_documents_idempotency_key"),
        Index("ix_documents_search", "kind", "importing_country", "created_at"),
        # A certificate's earlier versions, statuses and the certificate it replaces, found from its number.
        Index("ix_documents_number", "issuing_country", "certificate_number"),
        Index("ix_documents_payload_digest", "payload_digest"),  # retention: is a payload still referred to?
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(20), index=True)
    correlation_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    # outbound: issued here and sent abroad; inbound: received from a counterpart for this tenant.
    direction: Mapped[str] = mapped_column(String(10), default="outbound", server_default="outbound")
    issuing_country: Mapped[str] = mapped_column(String(2))
    exporting_country: Mapped[str | None] = mapped_column(String(2))
    importing_country: Mapped[str | None] = mapped_column(String(2))
    certificate_number: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(30))
    version: Mapped[int] = mapped_column(Integer, default=1)
    lifecycle: Mapped[str] = mapped_column(String(30), default="issued")
    refers_to_number: Mapped[str | None] = mapped_column(String(100))
    product_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    source_format: Mapped[str] = mapped_column(String(10))
    # Deferred: the worker and the trace touch documents constantly and never need these (large) values.
    record: Mapped[dict[str, Any]] = mapped_column(JSON, deferred=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, deferred=True)
    payload_digest: Mapped[str] = mapped_column(ForeignKey("payloads.digest"))
    request_digest: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    issued_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    products: Mapped[list["DocumentProduct"]] = relationship(back_populates="document", cascade="all, delete-orphan")
    messages: Mapped[list["Message"]] = relationship(back_populates="document", order_by="Message.created_at")


class DocumentProduct(Base):
    __tablename__ = "document_products"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    hs_code: Mapped[str | None] = mapped_column(String(20), index=True)
    scientific_name: Mapped[str | None] = mapped_column(String(200), index=True)
    common_name: Mapped[str | None] = mapped_column(String(200))
    quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    unit: Mapped[str | None] = mapped_column(String(10))

    document: Mapped[Document] = relationship(back_populates="products")


class QuantityMovement(Base):
    """A quantity one customs declaration took from one product line: reserved, then written off when the goods
    are released, or released when the declaration is invalidated (see :mod:`hub.customs.ledger`). A reservation
    sent to a CHED authority (TRACES-NT) is ``pending`` until the authority's answer is known, and names the
    :class:`CustomsOperation` that sent it."""

    __tablename__ = "quantity_movements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    declaration: Mapped[str] = mapped_column(String(70), index=True)
    goods_item: Mapped[int] = mapped_column(Integer)
    document_code: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    unit: Mapped[str | None] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(20))
    office: Mapped[str | None] = mapped_column(String(20))
    operation_id: Mapped[str | None] = mapped_column(ForeignKey("customs_operations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CustomsOperation(Base):
    """One reservation or clearance sent to a CHED authority's ledger (TRACES-NT's CSW-CERTEX), recorded before the
    call: ``pending`` while in flight, ``unknown`` when the call ended without an answer, then ``done``, ``refused``,
    ``dropped`` (the authority never held it) or ``superseded`` (a later operation of the declaration replaced it).
    ``key`` is derived from (authority, CHED, kind, declaration, goods items or clearance): a repeated request finds
    the operation it repeats (see :mod:`hub.customs.operations`)."""

    __tablename__ = "customs_operations"
    __table_args__ = (Index("ix_customs_operations_state", "state", "updated_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    authority: Mapped[str] = mapped_column(String(60))
    ched_reference: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    declaration: Mapped[str] = mapped_column(String(70))
    clearance: Mapped[str | None] = mapped_column(String(2))
    items: Mapped[list[Any]] = mapped_column(JSON, default=list)
    office: Mapped[str | None] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_due", "state", "next_attempt_at"),
        Index("ix_messages_destination_state", "destination", "state"),
        Index("ix_messages_payload_digest", "payload_digest"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    destination: Mapped[str] = mapped_column(String(60))
    state: Mapped[str] = mapped_column(String(30))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    predecessor_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"), index=True)
    payload_digest: Mapped[str] = mapped_column(ForeignKey("payloads.digest"))
    receipt_id: Mapped[str | None] = mapped_column(String(200), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    # An answer awaited past its counterpart's deadline: asked for again at answer_due_at, alerted once (overdue_at).
    answer_due_at: Mapped[datetime | None] = mapped_column()
    overdue_at: Mapped[datetime | None] = mapped_column()
    repolls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    document: Mapped[Document] = relationship(back_populates="messages")


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"
    __table_args__ = (_referring("delivery_attempts", "request_digest"), _referring("delivery_attempts", "response_digest"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str] = mapped_column(String(30))
    request_digest: Mapped[str | None] = mapped_column(ForeignKey("payloads.digest"))
    response_digest: Mapped[str | None] = mapped_column(ForeignKey("payloads.digest"))
    error: Mapped[str | None] = mapped_column(Text)


class Acknowledgement(Base):
    __tablename__ = "acknowledgements"
    __table_args__ = (_referring("acknowledgements", "payload_digest"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"), index=True)
    document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"), index=True)
    counterpart: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(30))
    outcome: Mapped[str] = mapped_column(String(30))
    reason_code: Mapped[str | None] = mapped_column(String(60))
    reason_text: Mapped[str | None] = mapped_column(Text)
    counterpart_reference: Mapped[str | None] = mapped_column(String(200))
    payload_digest: Mapped[str | None] = mapped_column(ForeignKey("payloads.digest"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who the answer came from (the signer's or the authenticated channel's authority), and, for an answer matched
    # to no message of that counterpart, why: such an answer is kept and alerted, never applied.
    answered_by: Mapped[str | None] = mapped_column(String(100))
    unmatched: Mapped[str | None] = mapped_column(Text)


class NonConformity(Base):
    __tablename__ = "non_conformities"
    __table_args__ = (_referring("non_conformities", "evidence_digest"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"))
    acknowledgement_id: Mapped[int | None] = mapped_column(ForeignKey("acknowledgements.id"))
    tenant: Mapped[str] = mapped_column(String(20), index=True)
    source: Mapped[str] = mapped_column(String(30))
    counterpart: Mapped[str] = mapped_column(String(60), index=True)
    country: Mapped[str | None] = mapped_column(String(2), index=True)
    cause_code: Mapped[str] = mapped_column(String(60), index=True)
    cause_text: Mapped[str | None] = mapped_column(Text)
    evidence_digest: Mapped[str | None] = mapped_column(ForeignKey("payloads.digest"))
    replacement_document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"))
    state: Mapped[str] = mapped_column(String(20), default="open")
    opened_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    closed_at: Mapped[datetime | None] = mapped_column()

    products: Mapped[list["NonConformityProduct"]] = relationship(cascade="all, delete-orphan")


class NonConformityProduct(Base):
    __tablename__ = "non_conformity_products"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    non_conformity_id: Mapped[str] = mapped_column(ForeignKey("non_conformities.id"), index=True)
    hs_code: Mapped[str | None] = mapped_column(String(20), index=True)
    scientific_name: Mapped[str | None] = mapped_column(String(200))


class TraceEvent(Base):
    """One hop of one document. Rows are only ever inserted: the trace is the audit trail."""

    __tablename__ = "trace_events"
    __table_args__ = (_referring("trace_events", "payload_digest"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    correlation_id: Mapped[str] = mapped_column(String(64), index=True)
    tenant: Mapped[str] = mapped_column(String(20))
    document_id: Mapped[str | None] = mapped_column(String(36), index=True)
    message_id: Mapped[str | None] = mapped_column(String(36), index=True)
    event: Mapped[str] = mapped_column(String(60))
    actor: Mapped[str] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(30))
    destination: Mapped[str | None] = mapped_column(String(60))
    country: Mapped[str | None] = mapped_column(String(2))
    products: Mapped[list[Any]] = mapped_column(JSON, default=list)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    payload_digest: Mapped[str | None] = mapped_column(ForeignKey("payloads.digest"))


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(20), index=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(200))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CITESApproval(Base):
    """An approval of the CITES simplified re-export procedure (PSSM): one entity (an account, or one of its
    sub-accounts), one specimen code, a period (see :mod:`hub.cites.pssm`)."""

    __tablename__ = "cites_approvals"
    __table_args__ = (UniqueConstraint("tenant", "approval_number", name="uq_cites_approvals_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(20), index=True)
    approval_number: Mapped[str] = mapped_column(String(100))
    holder_account: Mapped[str] = mapped_column(String(100))
    holder_sub_account: Mapped[str | None] = mapped_column(String(100))
    specimen_code: Mapped[str] = mapped_column(String(100))
    valid_from: Mapped[datetime] = mapped_column()
    valid_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """One action by a person or client, chained to the entry before it by ``prev_hash`` (the SHA-256 of that
    entry's canonical form) and sealed by ``entry_hash`` (see :mod:`hub.store.audit`). Rows are only ever inserted."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(200))
    target: Mapped[str | None] = mapped_column(String(500))
    outcome: Mapped[str] = mapped_column(String(30))
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    body_digest: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


class Alert(Base):
    """An alert an operator must act on (see :mod:`hub.notify.alerts`): one row per identity ``key``, raised when its
    cause appears, cleared when it goes, raised again on the same row when it comes back (``occurrences``).
    ``notified`` says how far e-mail subscribers have been told (``none``, ``raised``, ``cleared``); ``email_next_at``
    is when the next try is due, and the lease of the mailer sending it (see :mod:`hub.notify.alerts_service`)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(250), unique=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    severity: Mapped[str] = mapped_column(String(10))
    # the tenant whose business it is; * for an alert of no one tenant (a counterpart failing)
    tenant: Mapped[str] = mapped_column(String(20), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    document_id: Mapped[str | None] = mapped_column(String(36), index=True)
    message_id: Mapped[str | None] = mapped_column(String(36))
    destination: Mapped[str | None] = mapped_column(String(60))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    since: Mapped[datetime | None] = mapped_column()
    raised_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    cleared_at: Mapped[datetime | None] = mapped_column(index=True)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    notified: Mapped[str] = mapped_column(String(10), default="none")
    email_attempts: Mapped[int] = mapped_column(Integer, default=0)
    email_next_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    email_error: Mapped[str | None] = mapped_column(Text)
