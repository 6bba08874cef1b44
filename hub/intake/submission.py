"""Submission: a record or an XML document in; mapped, validated, signed, routed, and stored with one outbound
message per destination, all in one transaction.

The CPU work (:func:`prepare`) runs before the transaction and touches no database; :func:`store` then writes the
document, its products, its messages and their first trace events at once, or nothing. A repeated submission (same
``Idempotency-Key``, or same business key: issuing country, kind, certificate number, status, version) returns the
first result; the same key with different content is a conflict.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime
from typing import Any

from lxml import etree
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.scope import Scope
from hub.stages import CLOCK, stage
from hub.cites.pssm import check_approval
from hub.store.states import MessageState
from hub.errors import ConflictError, FieldProblem, InputError, PermissionDenied, RecordError, ValidationFailed
from hub import jsonsafe
from hub.families import Described, DocumentFamily, RoutingFacts, for_data, for_document, for_record
from hub.mapping.sps_certificate import to_xml
from hub.namespaces import XMLDSIG
from hub.records.lifecycle import ALLOWED, Lifecycle
from hub.records.status import DocumentStatus
from hub.routing.table import RoutingTable
from hub.signing import SignerRegistry, Verifier
from hub.signing.verifier import without_unsigned
from hub.store.models import Document, DocumentProduct, Message, NonConformity, utcnow
from hub.store.appends import append_new
from hub.store.payloads import digest_of, put_payload
from hub.store.trace import add_event
from hub.store.wakeups import announce
from hub.report import INTEGRITY_AREAS, Severity, ValidationReport, graded_as_received
from hub.xmlsafe import parse_xml

JSON_TYPES = ("application/json",)
XML_TYPES = ("application/xml", "text/xml")


@dataclass
class Prepared:
    """A submission made ready to store: the record, its report, where it goes, and the signed bytes per destination."""

    record: Any
    report: ValidationReport
    facts: RoutingFacts
    destinations: list[str]
    matched_rules: list[str]
    source_format: str
    canonical: bytes
    payloads: dict[str, bytes]
    request_digest: str
    version: int
    signer_subject: str | None = None
    origin: dict[str, Any] = field(default_factory=dict)  # where a received document came from, for its trace
    dumped: dict[str, Any] | None = None  # the record as JSON data, when prepare() made it already

    @cached_property
    def record_data(self) -> dict[str, Any]:
        """The record as JSON data, as the store keeps it."""
        return self.dumped if self.dumped is not None else self.record.model_dump(mode="json", exclude_none=True)

    @cached_property
    def described(self) -> Described:
        return for_record(self.record).describe(self.record)

    @property
    def certificate_number(self) -> str:
        return self.described.number  # checked by prepare()

    @property
    def refers_to_number(self) -> str | None:
        return self.described.refers_to


def prepare(
    body: bytes,
    media_type: str,
    *,
    tenant: str,
    routing: RoutingTable,
    profiles: dict[str, str],
    signer_for,
    verifier: Verifier,
    version: int = 1,
    now: datetime | None = None,
    direction: str = "outbound",
    vouched_by: str | None = None,
    signers: SignerRegistry | None = None,
) -> Prepared:
    """Parse, validate, route and sign one submission (pure CPU work, no database).

    ``profiles`` maps each known destination to the mapping profile its counterpart takes; ``signer_for(country)``
    returns the :class:`Signer` of that issuing authority. Raises :class:`InputError` (bad body, no route),
    :class:`ValidationFailed` (SEVERE findings, with the report), :class:`~hub.errors.SignatureError` (a signed XML
    document whose signature does not hold, or whose signer may not sign for its issuing authority: ``signers``,
    by default each certificate for its own country) or :class:`PermissionDenied` (a document of another authority).
    """
    if version < 1:
        raise InputError("version must be 1 or more", where="version")
    kind = media_type.split(";")[0].strip().lower()
    if kind in JSON_TYPES or kind.endswith("+json"):
        return _prepare_record(body, tenant=tenant, routing=routing, profiles=profiles, signer_for=signer_for, version=version, now=now)
    if kind in XML_TYPES or kind.endswith("+xml"):
        return _prepare_xml(body, tenant=tenant, routing=routing, signer_for=signer_for, verifier=verifier, version=version, now=now, direction=direction,
                            vouched_by=vouched_by, signers=signers or SignerRegistry())
    raise InputError(f"Content-Type {media_type!r} is not accepted: send a record as application/json or a document as application/xml", where="Content-Type")


def _prepare_record(body: bytes, *, tenant, routing, profiles, signer_for, version, now) -> Prepared:
    reports: dict[str, tuple[etree._Element, ValidationReport]] = {}
    with stage("validate"):  # reading and routing the record count as validating it, as parsing a document does
        data = jsonsafe.loads(body, source="body")
        if not isinstance(data, dict):
            raise InputError("the body must be a JSON object (a certificate or permit record)", where="body")
        family = for_data(data)
        record = family.from_data(data)
        facts, destinations, matched, _strict = _route(record, family, tenant, routing)
        wanted = [family.default_profile, *(profiles.get(d, family.default_profile) for d in destinations)] if family.profiled else [family.default_profile]
        for profile in dict.fromkeys(wanted):
            reports[profile] = family.render(record, profile=profile, now=now)
            if not reports[profile][1].valid:
                raise ValidationFailed(reports[profile][1])
    signer = signer_for(facts.issuing_country)
    with stage("sign"):
        signed = {profile: signer.sign(to_xml(root)) for profile, (root, _report) in reports.items()}
    dumped = record.model_dump(mode="json", exclude_none=True)
    canonical_json = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    default = family.default_profile
    return Prepared(
        record=record,
        report=reports[default][1],
        facts=facts,
        destinations=destinations,
        matched_rules=matched,
        source_format="record",
        canonical=signed[default],
        payloads={d: signed[profiles.get(d, default) if family.profiled else default] for d in destinations},
        request_digest=digest_of(f"record:{version}:".encode() + canonical_json.encode()),
        version=version,
        signer_subject=signer.signer_subject,
        dumped=dumped,
    )


def _prepare_xml(body: bytes, *, tenant, routing, signer_for, verifier: Verifier, version, now, direction="outbound", vouched_by=None, signers: SignerRegistry) -> Prepared:
    root = parse_xml(body, source="body")
    signed_by, verified = None, None
    if root.find(f".//{{{XMLDSIG}}}Signature") is not None:
        verified = verifier.verify(body)
        signed_by = verified.signer_subject
        root = verified.signed_root
    family = for_document(root)
    with stage("validate"):
        validated = family.check_document(root, source="body", now=now)
    report = validated.report
    if validated.record is None or (direction == "outbound" and not report.valid):
        raise ValidationFailed(report)
    if direction == "inbound" and any(f.severity is Severity.SEVERE and f.area in INTEGRITY_AREAS for f in report.findings):
        raise ValidationFailed(report)
    record, element = validated.record, validated.element
    facts, destinations, matched, strict = _route(record, family, tenant, routing, direction=direction)
    if verified is not None:  # trusted is not enough: the signer must speak for this issuing authority
        signers.check(verified.signer_certificate, country=facts.issuing_country, family=family.name)
    if direction == "inbound":
        # Judged as received: what only the hub's own issuing rules object to is reported, unless a route refuses it.
        report = report if strict else graded_as_received(report)
        if not report.valid:
            raise ValidationFailed(report)
    if signed_by is None and vouched_by:
        payload, signed_by = body, f"unsigned, vouched for by the authenticated channel of {vouched_by}"
    elif signed_by is None:
        signer = signer_for(facts.issuing_country)
        with stage("sign"):
            payload = signer.sign(to_xml(element))
        signed_by = signer.signer_subject
    else:
        payload = without_unsigned(body)  # exactly the signed document: nothing outside the signature is kept or forwarded
    return Prepared(
        record=record,
        report=report,
        facts=facts,
        destinations=destinations,
        matched_rules=matched,
        source_format="xml",
        canonical=payload,
        payloads={d: payload for d in destinations},
        request_digest=digest_of(f"xml:{version}:".encode() + body),
        version=version,
        signer_subject=signed_by,
    )


#: What the store's columns hold: a document number (and the number it replaces) of at most this many characters.
MAX_NUMBER = 100


def _route(record, family: DocumentFamily, tenant: str, routing: RoutingTable, *, direction: str = "outbound") -> tuple[RoutingFacts, list[str], list[str], bool]:
    described = family.describe(record)
    if described.number is None:
        raise RecordError([FieldProblem(family.number_field, "a submitted document needs its number")])
    if len(described.number) > MAX_NUMBER or len(described.refers_to or "") > MAX_NUMBER:
        raise RecordError([FieldProblem(family.number_field, f"a document number has at most {MAX_NUMBER} characters")])
    facts = family.routing_facts(record, direction=direction)
    for name in ("issuing_country", "exporting_country", "importing_country"):
        code = getattr(facts, name)
        if code is not None and not (len(code) == 2 and code.isascii() and code.isalpha()):
            raise InputError(f"the {name.replace('_', ' ')} {code[:20]!r} is no ISO 3166-1 alpha-2 country code", where=name)
    if not facts.issuing_country:
        raise InputError("the issuing country cannot be told: give the issuer's address country or the export country", where="consignment.export_country.id")
    if not Scope.of(tenant).sees(facts.issuing_country):
        raise PermissionDenied(f"this API key belongs to the issuing authority of {tenant}; it cannot submit a certificate issued by {facts.issuing_country}")
    # A received document no rule hands on is still kept for its receiving authority, customs and verification; so
    # is a simplified-procedure certificate until its sale names the country it goes to.
    routed = routing.require_route(facts) if direction == "outbound" and not family.awaiting_sale(record) else routing.route(facts)
    return facts, list(routed.destinations), list(routed.matched), routed.refuses_business_findings


@dataclass
class Stored:
    """The stored document and whether this call created it (False: an earlier identical submission)."""

    document: Document
    created: bool


def find_existing(session: Session, *, tenant: str, idempotency_key: str | None, prepared: Prepared | None = None) -> Document | None:
    """The document an idempotency key or (with ``prepared``) a business key already names, if any."""
    if idempotency_key:
        found = session.scalars(select(Document).where(Document.tenant == tenant, Document.idempotency_key == idempotency_key)).first()
        if found is not None:
            return found
    if prepared is not None:
        return session.scalars(
            select(Document).where(
                Document.issuing_country == prepared.facts.issuing_country,
                Document.kind == prepared.facts.kind,
                Document.certificate_number == prepared.certificate_number,
                Document.status == prepared.facts.status,
                Document.version == prepared.version,
            )
        ).first()
    return None


def _same_or_conflict(existing: Document, request_digest: str, idempotency_key: str | None) -> Stored:
    if existing.request_digest != request_digest:
        if idempotency_key and existing.idempotency_key == idempotency_key:
            raise ConflictError(f"Idempotency-Key {idempotency_key!r} was already used for a different submission (document {existing.id})")
        raise ConflictError(
            f"{existing.kind} certificate {existing.certificate_number} ({existing.status}, version {existing.version}) of {existing.issuing_country} "
            f"was already submitted with other content (document {existing.id}); submit it as version {existing.version + 1}"
        )
    return Stored(existing, created=False)


def store(session: Session, prepared: Prepared, *, tenant: str, actor: str, idempotency_key: str | None = None, correlation_id: str | None = None,
          savepoint: bool = True, earlier: "_Earlier | None" = None) -> Stored:
    """Write the document, products and messages with their trace, in the caller's transaction (which must be
    fresh: on a concurrent identical submission it is rolled back to a savepoint and the first result returned).
    Without ``savepoint`` the caller handles that race: the :class:`IntegrityError` reaches it, and a new
    transaction calling :func:`store` again finds the first result.

    A document always belongs to an issuing authority: one an operator (every tenant's scope) submits belongs to
    the authority that issued it, never to ``*``, so that authority sees it."""
    tenant = Scope.of(tenant).owner_for(prepared.facts.issuing_country)
    if idempotency_key:
        existing = find_existing(session, tenant=tenant, idempotency_key=idempotency_key)
        if existing is not None:
            return _same_or_conflict(existing, prepared.request_digest, idempotency_key)
    earlier = earlier or _earlier(session, prepared)
    if earlier.same is not None:
        return _same_or_conflict(session.get(Document, earlier.same), prepared.request_digest, idempotency_key)
    # The simplified re-export procedure's approval is in the store: checked here, in the transaction.
    check_approval(session, prepared.record, tenant=tenant, report=prepared.report)
    if not savepoint:
        return Stored(_insert(session, prepared, earlier, tenant=tenant, actor=actor, idempotency_key=idempotency_key, correlation_id=correlation_id, rows=True), created=True)
    try:
        with session.begin_nested():
            document = _insert(session, prepared, earlier, tenant=tenant, actor=actor, idempotency_key=idempotency_key, correlation_id=correlation_id)
    except IntegrityError:
        existing = find_existing(session, tenant=tenant, idempotency_key=idempotency_key, prepared=prepared)
        if existing is None:
            raise
        return _same_or_conflict(existing, prepared.request_digest, idempotency_key)
    return Stored(document, created=True)


@dataclass
class _Earlier:
    """What the store holds of this certificate already: the document with the same business key, if any, and per
    destination the latest message of the certificate this one follows (same number, or the number it replaces)."""

    same: str | None
    predecessors: dict[str, str]


def _earlier(session: Session, prepared: Prepared) -> _Earlier:
    rows = session.execute(_EARLIER, {"country": prepared.facts.issuing_country, "numbers": _numbers(prepared)}).all()
    return _earlier_in(rows, prepared)


def earlier_of_batch(session: Session, batch: list[Prepared]) -> list[_Earlier] | None:
    """What the store holds already of each of ``batch``'s certificates (as :func:`store` reads it for one), read at
    once; None when two of them name the same certificate (the second must see the first, once written). Read
    before any of them is written, it spares each :func:`store` a read, and the flush of what the ones before it
    wrote that the read would make (:mod:`hub.store.appends`)."""
    named = [(prepared.facts.issuing_country, number) for prepared in batch for number in _numbers(prepared)]
    if len(set(named)) < len(named):
        return None
    by_certificate: dict[tuple[str, str], list] = {}
    for row in session.execute(_EARLIER_OF_MANY, {"countries": sorted({c for c, _ in named}), "numbers": sorted({n for _, n in named})}):
        by_certificate.setdefault((row.issuing_country, row.certificate_number), []).append(row)
    return [_earlier_in([row for number in _numbers(prepared) for row in by_certificate.get((prepared.facts.issuing_country, number), ())], prepared)
            for prepared in batch]


def _numbers(prepared: Prepared) -> list[str]:
    return [prepared.certificate_number] + ([prepared.refers_to_number] if prepared.refers_to_number else [])


def _earlier_in(rows, prepared: Prepared) -> _Earlier:
    """:class:`_Earlier` from the rows of ``_EARLIER`` about ``prepared``'s certificate numbers."""
    same = next((r.document_id for r in rows if (r.kind, r.certificate_number, r.status, r.version) == (prepared.facts.kind, prepared.certificate_number, prepared.facts.status, prepared.version)), None)
    latest: dict[str, tuple] = {}
    for row in rows:
        if row.message_id is None:
            continue
        rank = (row.created_at, row.version)
        if row.destination not in latest or rank > latest[row.destination][0]:
            latest[row.destination] = (rank, row.message_id)
    return _Earlier(same=same, predecessors={destination: message_id for destination, (_rank, message_id) in latest.items()})


# Built once: it runs for every submission. Driven from the certificate's number (ix_documents_number), so that
# its cost does not grow with the store; the few documents of that number bring their messages.
_EARLIER_ROWS = (
    select(Document.id.label("document_id"), Document.issuing_country, Document.kind, Document.certificate_number, Document.status,
           Document.version, Message.id.label("message_id"), Message.destination, Message.created_at)
    .outerjoin(Message, Message.document_id == Document.id)
)
_EARLIER = _EARLIER_ROWS.where(Document.issuing_country == bindparam("country"), Document.certificate_number.in_(bindparam("numbers", expanding=True)))
# The same for a batch of submissions (of distinct certificates); each picks its own rows out.
_EARLIER_OF_MANY = _EARLIER_ROWS.where(Document.issuing_country.in_(bindparam("countries", expanding=True)),
                                       Document.certificate_number.in_(bindparam("numbers", expanding=True)))


def _insert(session: Session, prepared: Prepared, earlier: _Earlier, *, tenant, actor, idempotency_key, correlation_id, rows: bool = False) -> Document:
    """The new document, its products and messages, with their first trace events. With ``rows``, they are written
    as rows with the transaction's other appended rows (:mod:`hub.store.appends`: half the CPU of the ORM's unit of
    work) and the document returned stays outside the session (what it holds is what was written); else the
    session holds them, flushed (an integrity error is raised here, under the caller's savepoint)."""
    now = utcnow()
    facts, described = prepared.facts, prepared.described
    document = Document(
        id=str(uuid.uuid4()),
        tenant=tenant,
        correlation_id=correlation_id or str(uuid.uuid4()),
        kind=facts.kind,
        direction=facts.direction,
        issuing_country=facts.issuing_country,
        exporting_country=facts.exporting_country,
        importing_country=facts.importing_country,
        certificate_number=prepared.certificate_number,
        status=facts.status,
        version=prepared.version,
        lifecycle=(Lifecycle.WITHDRAWN if described.withdrawn else Lifecycle.ISSUED).value,
        refers_to_number=prepared.refers_to_number,
        product_codes=described.product_codes,
        source_format=prepared.source_format,
        record=prepared.record_data,
        report=prepared.report.model_dump(mode="json"),
        payload_digest=put_payload(session, prepared.canonical),
        request_digest=prepared.request_digest,
        idempotency_key=idempotency_key,
        issued_at=described.issued_at,
        created_at=now,
        updated_at=now,
        messages=[],
    )
    for product in described.products:
        document.products.append(DocumentProduct(
            line=product.line, hs_code=product.hs_code, scientific_name=product.scientific_name,
            common_name=product.common_name, quantity=product.quantity, unit=product.unit,
        ))
    if rows:
        append_new(session, document)
        for product in document.products:
            product.document_id = document.id
            append_new(session, product)
    else:
        session.add(document)
    received = {"format": prepared.source_format, "version": prepared.version, "certificate_number": document.certificate_number, "status": document.status, "direction": facts.direction, **prepared.origin}
    add_event(session, document=document, event="document.received", actor=actor, state=document.lifecycle, detail=received)
    add_event(session, document=document, event="document.validated", actor="hub", detail={"summary": prepared.report.summary()})
    signature_event = "document.signed" if facts.direction == "outbound" else "document.verified"
    add_event(session, document=document, event=signature_event, actor="hub", detail={"signer": prepared.signer_subject}, payload_digest=document.payload_digest)
    add_event(session, document=document, event="document.routed", actor="hub", detail={"rules": prepared.matched_rules, "destinations": prepared.destinations})
    for destination in prepared.destinations:
        payload = prepared.payloads[destination]
        message = Message(
            id=str(uuid.uuid4()),
            destination=destination,
            state=MessageState.QUEUED.value,
            attempts=0,
            next_attempt_at=now,
            predecessor_id=earlier.predecessors.get(destination),
            payload_digest=put_payload(session, payload) if payload is not prepared.canonical else document.payload_digest,
            created_at=now,
            updated_at=now,
        )
        document.messages.append(message)
        if rows:
            message.document_id = document.id
            append_new(session, message)
        add_event(session, document=document, message_id=message.id, destination=destination, event="message.queued", actor="hub", state=MessageState.QUEUED.value, detail={"after": message.predecessor_id} if message.predecessor_id else {})
    if prepared.destinations:
        announce(session)
    _update_lifecycles(session, document, actor)
    if not rows:
        session.flush()
    CLOCK.document_stored()
    return document


def _update_lifecycles(session: Session, document: Document, actor: str) -> None:
    """A withdrawal withdraws the earlier versions; a replacement replaces the certificate it names, and becomes the
    replacement of that certificate's open non-conformities."""
    targets: list[tuple[str, Lifecycle]] = []
    if document.status == DocumentStatus.WITHDRAWN.value:
        targets.append((document.certificate_number, Lifecycle.WITHDRAWN))
    if document.refers_to_number:
        targets.append((document.refers_to_number, Lifecycle.REPLACED))
    for number, lifecycle in targets:
        earlier = session.scalars(
            select(Document).where(Document.issuing_country == document.issuing_country, Document.certificate_number == number, Document.id != document.id)
        ).all()
        for old in earlier:
            # A document already used, expired or cancelled keeps that lifecycle: the new version is traced on it.
            if lifecycle in ALLOWED[Lifecycle(old.lifecycle)]:
                old.lifecycle = lifecycle.value
                add_event(session, document=old, event=f"document.{lifecycle.value}", actor=actor, state=lifecycle.value, detail={"by": document.id, "certificate_number": document.certificate_number})
            if lifecycle is Lifecycle.REPLACED:
                for nc in session.scalars(select(NonConformity).where(NonConformity.document_id == old.id, NonConformity.replacement_document_id.is_(None))).all():
                    nc.replacement_document_id = document.id
                    add_event(session, document=old, event="non_conformity.replaced", actor=actor, detail={"non_conformity": nc.id, "replacement": document.id})


__all__ = ["Prepared", "Stored", "prepare", "store", "find_existing"]
