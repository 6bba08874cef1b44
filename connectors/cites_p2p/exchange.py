"""The permit exchange with foreign CITES management authorities, EPIX style, over the hub's store: a partner asks
for a permit by number, or confirms the quantities it inspected at import.

Decisions (ours, where EPIX leaves them to each national system):

* **Who may see a permit**: the management authority of its importing country (Box 3a), the issuing country itself,
  and for an import permit also the exporting country (the partner that needs it). Anyone else, like a number the
  hub does not hold, gets the same ``CertificateMissing``: a permit's existence is not revealed.
* **Which permit**: the latest stored version (highest version) of the permits issued here (outbound) by an
  authority this hub signs for; ``IsoCountryCode``, when given, names that authority (else ``CalleeNotFound``).
* **Final or not**: EPIX's final certificate is one that is issued and can no longer change. ``final`` answers the
  latest version only while its lifecycle is issued, completed or used (a permit replaced, withdrawn, expired or
  cancelled has no final certificate to give: ``CertificateMissing``); non-final answers the latest version whatever
  its lifecycle, so a partner can see the permit the hub holds.
* **The EPIX form**: the hub signed and stored the permit with its namespaced root; EPIX carries it with an
  unqualified root. The permit served is the stored one with its root renamed, signed again with the issuing
  authority's key (the identity that signed it at issue). A stored permit already in that form is served as stored.
* **ConfirmQuantities**: from the importing country's authority only, on a final permit. A position names a line by
  the line's ``ID`` (e.g. ``A``), or by its line number (1, 2…) when the line has none; each must name a line once,
  in the line's unit, and not exceed the permitted quantity (Box 11), else the whole request is refused
  (``Invalid Request`` naming every bad position) and nothing is recorded. Each confirmation is recorded on its own.
* **Every request is traced**: on the permit's trace when it names a permit the hub holds (refusals too), else as
  an event without a document (tenant: the authority asked, else ``*``, which only operators read).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Callable, Iterable

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.cites_p2p.epix import (
    EPIX_PERMIT_ROOT,
    CertificateRequest,
    CertificateResponse,
    CitesPosition,
    ConfirmQuantitiesRequest,
    ConfirmQuantitiesResponse,
    EpixError,
    EpixFault,
    Operation,
    Request,
    Response,
    ServiceStateResponse,
    build_request,
)
from hub.scope import ALL_TENANTS
from hub.errors import ConfigurationError, KeyMaterialError
from hub.mapping.cites_permit import permit_from_data, render_permit, to_xml
from hub.namespaces import XMLDSIG
from hub.records.cites import CITESPermit, PermitKind
from hub.records.lifecycle import Lifecycle
from hub.signing import Signer
from hub.store.db import Database
from hub.store.models import Acknowledgement, Document, Payload, TraceEvent, utcnow
from hub.store.payloads import put_payload
from hub.store.trace import add_event
from hub.xmlsafe import parse_xml

PERMIT_KINDS = tuple(kind.value for kind in PermitKind)
FINAL_LIFECYCLES = frozenset({Lifecycle.ISSUED.value, Lifecycle.COMPLETED.value, Lifecycle.USED.value})
#: The Acknowledgement kind a confirmation of quantities is recorded as.
QUANTITIES_CONFIRMED = "quantities_confirmed"
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def counterpart(country: str | None) -> str:
    """How a partner authority is named as a counterpart and actor: ``cites:<country>``."""
    return f"cites:{country or 'unknown'}"


@dataclass(frozen=True)
class ServedPermit:
    """A permit handed to a partner: the signed permit in EPIX form, and which stored version it is."""

    permit: bytes
    document_id: str
    certificate_number: str
    issuing_country: str
    version: int
    lifecycle: str


class PermitExchange:
    """The exchange's service logic. ``signer_for(country)`` gives the issuing authority's :class:`Signer`;
    ``authorities`` are the countries this hub answers for (the callees)."""

    def __init__(self, database: Database, *, signer_for: Callable[[str], Signer], authorities: Iterable[str]) -> None:
        self.database = database
        self.signer_for = signer_for
        self.authorities = frozenset(authorities)

    def handle(self, caller_country: str | None, request: Request, *, raw: bytes | None = None) -> Response:
        """Answer one decoded request of ``caller_country`` (None: unauthenticated); ``raw`` is the request as
        received, kept as the evidence of a confirmation. Refusals raise :class:`EpixFault`."""
        if isinstance(request, CertificateRequest):
            served = self.permit_for(caller_country, request.certificate_number, final=request.final, callee=request.iso_country_code, token_id=request.token_id, version=request.version)
            return CertificateResponse(final=request.final, permit=served.permit)
        if isinstance(request, ConfirmQuantitiesRequest):
            recorded = self.confirm_quantities(caller_country, request.certificate_number, request.positions, callee=request.iso_country_code, request=raw)
            return ConfirmQuantitiesResponse(request.certificate_number, recorded)
        return self.service_state(caller_country, callee=request.iso_country_code)

    # --- operations ---------------------------------------------------------------------------------------------

    def permit_for(self, caller_country: str | None, number: str, *, final: bool, callee: str | None = None, token_id: str | None = None, version: str = "2") -> ServedPermit:
        """The signed permit ``number`` in EPIX form of the toolkit ``version`` the caller asked in (``"1"``: a
        ``CBFShip``), for a caller entitled to it (see the module's decisions)."""
        operation = Operation.GET_FINAL if final else Operation.GET_NON_FINAL
        self._check_parties(caller_country, callee, operation, number)
        with self.database.sessions() as session:
            document = self._latest(session, number, callee)
            reason = _refusal(document, caller_country, final=final, parties=_parties(document) if document else set())
            stored = session.get(Payload, document.payload_digest).content if reason is None else b""
            record = dict(document.record or {}) if reason is None else {}
        if reason is not None:
            raise self._refused(document, caller_country, callee, operation, number, EpixFault(EpixError.CERTIFICATE_MISSING, f"no permit {number} for {caller_country}"), reason)
        try:
            signer = self.signer_for(document.issuing_country)
            permit = epix_form(stored, signer) if version == "2" else epix_v1_form(record, signer)
        except (ConfigurationError, KeyMaterialError) as exc:
            fault = EpixFault(EpixError.ADAPTER_NOT_AVAILABLE, f"the permits of {document.issuing_country} cannot be served now", http_status=503)
            raise self._refused(document, caller_country, callee, operation, number, fault, str(exc)) from exc
        detail = {"operation": operation.value, "caller": caller_country, "version": document.version, "lifecycle": document.lifecycle, "toolkit": version}
        if token_id:
            detail["token_id"] = token_id
        with self.database.transaction() as session:
            digest = put_payload(session, permit)
            self._trace(session, document, "permit.served", caller_country, callee, detail, payload_digest=digest)
        return ServedPermit(permit, document.id, document.certificate_number, document.issuing_country, document.version, document.lifecycle)

    def confirm_quantities(
        self, caller_country: str | None, number: str, positions: Iterable[CitesPosition], *, callee: str | None = None, request: bytes | None = None
    ) -> tuple[CitesPosition, ...]:
        """Record the quantities the importing side inspected on permit ``number``: an :class:`Acknowledgement`
        (``quantities_confirmed``, counterpart ``cites:<country>``, payload ``request``) and a trace event. Returns
        the positions recorded, each with its line's unit."""
        operation, positions = Operation.CONFIRM_QUANTITIES, tuple(positions)
        self._check_parties(caller_country, callee, operation, number)
        with self.database.sessions() as session:
            document = self._latest(session, number, callee)
            importing = {document.importing_country} if document is not None else set()
            reason = _refusal(document, caller_country, final=True, parties=importing)
            record = permit_from_data(document.record) if reason is None else None
        missing = EpixFault(EpixError.CERTIFICATE_MISSING, f"no permit {number} for {caller_country}")
        if reason is not None:
            raise self._refused(document, caller_country, callee, operation, number, missing, reason)
        recorded, problems = _match(positions, record)
        if problems:
            fault = EpixFault(EpixError.INVALID_REQUEST, "; ".join(problems))
            raise self._refused(document, caller_country, callee, operation, number, fault, fault.detail, event="permit.quantities_refused")
        payload = request or build_request(ConfirmQuantitiesRequest(number, positions, iso_country_code=callee))
        lines = {p.id: {"line": line, "quantity": format(p.quantity, "f"), "unit": p.unit} for p, line in recorded}
        with self.database.transaction() as session:
            digest = put_payload(session, payload)
            session.add(Acknowledgement(
                document_id=document.id, counterpart=counterpart(caller_country), kind=QUANTITIES_CONFIRMED, outcome="confirmed",
                payload_digest=digest, received_at=utcnow(),
            ))
            self._trace(session, document, "permit.quantities_confirmed", caller_country, callee, {"caller": caller_country, "positions": lines}, payload_digest=digest)
        return tuple(p for p, _line in recorded)

    def service_state(self, caller_country: str | None, *, callee: str | None = None) -> ServiceStateResponse:
        """``Available`` when the store answers (the trace is written to it); :class:`EpixFault` otherwise."""
        self._check_parties(caller_country, callee, Operation.SERVICE_STATE, None)
        with self.database.transaction() as session:
            self._trace(session, None, "exchange.service_state", caller_country, callee, {"caller": caller_country, "iso_country_code": callee})
        return ServiceStateResponse(iso_country_code=callee)

    def record_refusal(
        self, caller_country: str | None, fault: EpixFault, *, operation: Operation | None = None, number: str | None = None, callee: str | None = None, reason: str | None = None
    ) -> None:
        """Trace a request refused without a permit to trace it on (no usable caller, an unreadable request, a
        number the hub does not hold); ``reason`` says more than the fault does, for operators."""
        detail = {"operation": operation.value if operation else None, "caller": caller_country, "certificate_number": number, "error": fault.error, "reason": reason or fault.detail}
        with self.database.transaction() as session:
            self._trace(session, None, "exchange.request_refused", caller_country, callee, detail)

    # --- helpers ------------------------------------------------------------------------------------------------

    def _check_parties(self, caller: str | None, callee: str | None, operation: Operation, number: str | None) -> None:
        fault = None
        if caller is None:
            fault = EpixFault(EpixError.CERTIFICATE_MISSING, "no TLS client certificate: the caller is not known", http_status=403)
        elif not _COUNTRY.match(caller):
            fault = EpixFault(EpixError.CALLER_NOT_FOUND, f"the caller's country {caller!r} is not an ISO 3166-1 alpha-2 code", http_status=403)
        elif callee is not None and callee not in self.authorities:
            fault = EpixFault(EpixError.CALLEE_NOT_FOUND, f"{callee} is not a management authority this service answers for")
        if fault is not None:
            self.record_refusal(caller, fault, operation=operation, number=number, callee=callee)
            raise fault

    def _latest(self, session: Session, number: str, callee: str | None) -> Document | None:
        issuers = [callee] if callee else sorted(self.authorities)
        return session.scalars(
            select(Document)
            .where(Document.certificate_number == number, Document.kind.in_(PERMIT_KINDS), Document.direction == "outbound", Document.issuing_country.in_(issuers))
            .order_by(Document.version.desc(), Document.created_at.desc())
            .limit(1)
        ).first()

    def _refused(
        self, document: Document | None, caller: str | None, callee: str | None, operation: Operation, number: str, fault: EpixFault, reason: str, *,
        event: str = "permit.request_refused",
    ) -> EpixFault:
        """``fault``, once traced (on the permit when there is one) with ``reason``, which only operators see."""
        if document is None:
            self.record_refusal(caller, fault, operation=operation, number=number, callee=callee, reason=reason)
            return fault
        detail = {"operation": operation.value, "caller": caller, "error": fault.error, "reason": reason}
        with self.database.transaction() as session:
            self._trace(session, document, event, caller, callee, detail)
        return fault

    def _trace(self, session: Session, document: Document | None, event: str, caller: str | None, callee: str | None, detail: dict, *, payload_digest: str | None = None) -> None:
        actor = counterpart(caller)
        if document is not None:
            add_event(session, document=document, event=event, actor=actor, detail=detail, payload_digest=payload_digest)
            return
        session.add(TraceEvent(
            at=utcnow(), correlation_id=str(uuid.uuid4()), tenant=callee if callee in self.authorities else ALL_TENANTS, event=event, actor=actor,
            country=callee, products=[], detail=detail, payload_digest=payload_digest,
        ))


def epix_form(stored: bytes, signer: Signer) -> bytes:
    """The stored signed permit as EPIX carries it: unqualified root ``CITESEPermit``, signed by ``signer``."""
    root = parse_xml(stored, source="stored permit")
    signature = root.find(f"{{{XMLDSIG}}}Signature")
    if root.tag == EPIX_PERMIT_ROOT and signature is not None:
        return stored
    if signature is not None:
        root.remove(signature)
    # A default namespace would put the new root back in a namespace.
    permit = etree.Element(EPIX_PERMIT_ROOT, attrib=dict(root.attrib), nsmap={p: uri for p, uri in root.nsmap.items() if p is not None})
    permit.text = root.text
    permit.extend(list(root))
    return signer.sign(permit)


def epix_v1_form(record: dict, signer: Signer) -> bytes:
    """The stored permit as a toolkit v1 partner asks for it: its record written as a ``CBFShip`` with EPIX's
    unqualified root, signed by ``signer`` (the issuing authority)."""
    rendered = render_permit(permit_from_data(record), "v1-epix")
    return signer.sign(to_xml(rendered.root))


def _parties(document: Document) -> set[str | None]:
    parties = {document.issuing_country, document.importing_country}
    if document.kind == PermitKind.CITES_IMPORT.value:
        parties.add(document.exporting_country)
    return parties


def _refusal(document: Document | None, caller: str, *, final: bool, parties: set[str | None]) -> str | None:
    """Why ``caller`` gets no answer about ``document`` (for the trace only), or None."""
    if document is None:
        return "no such permit issued here"
    if caller not in parties - {None}:
        return f"{caller} is not a party to the permit entitled to this request"
    if final and document.lifecycle not in FINAL_LIFECYCLES:
        return f"the permit is {document.lifecycle}: it has no final certificate"
    return None


def _match(positions: tuple[CitesPosition, ...], record: CITESPermit) -> tuple[list[tuple[CitesPosition, int]], list[str]]:
    """Each position with its line number, in the line's unit; and what is wrong with the positions, if anything."""
    lines: dict[str, tuple[int, Decimal | None, str | None]] = {}
    for index, item in enumerate(record.consignment.items, start=1):
        named = item.id.value.strip() if item.id is not None else ""
        quantity = item.quantity.value.strip() if item.quantity is not None else ""
        try:
            permitted = Decimal(quantity) if quantity else None
        except InvalidOperation:
            permitted = None
        lines[named or str(index)] = (index, permitted, item.quantity.unit if item.quantity is not None else None)
    recorded, problems, seen = [], [], set()
    for index, position in enumerate(positions, start=1):
        at = f"CitesPosition[{index}] (ID {position.id})"
        if position.id in seen:
            problems.append(f"{at}: line {position.id} is confirmed twice")
            continue
        seen.add(position.id)
        if position.id not in lines:
            problems.append(f"{at}: the permit has no line {position.id} (its lines: {', '.join(lines) or 'none'})")
            continue
        line, permitted, unit = lines[position.id]
        if position.unit and unit and position.unit != unit:
            problems.append(f"{at}: unit {position.unit} is not the line's unit {unit}")
        elif permitted is not None and position.quantity > permitted:
            unit_text = f" {unit}" if unit else ""
            problems.append(f"{at}: {format(position.quantity, 'f')}{unit_text} inspected exceeds the {format(permitted, 'f')}{unit_text} permitted")
        recorded.append((CitesPosition(position.id, position.quantity, position.unit or unit), line))
    return recorded, problems
