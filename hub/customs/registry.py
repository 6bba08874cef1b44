"""The hub as the certificate registry customs asks at clearance (DELTA-G through the national single window).

A declaration names a document by its GUN code and number. The registry answers whether the document is valid for
clearance and how much remains on each line; it reserves the declared quantities (all or nothing), writes them off
when the goods are released and releases them when the declaration is invalidated. A document whose every line is
written off moves to the *used* lifecycle. Each step is one transaction, traced on the document.

Customs clients are API clients: a client sees the documents of its tenant and those its country imports or exports.

A CHED the hub submitted to TRACES-NT has its quantities kept there too, and TRACES-NT's ledger is the EU's: when the
TRACES-NT connector has a customs (CSW-CERTEX) account, a reservation or clearance of such a CHED goes to TRACES-NT
first (with the CHED reference TRACES-NT gave), and is recorded here only once TRACES-NT agreed. A refusal from
TRACES-NT is the answer; TRACES-NT not answering is a :class:`~hub.errors.DeliveryError` (the API answers 502).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping, Protocol, Sequence, runtime_checkable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.scope import Scope
from hub.customs.cites_checks import export_permit_reasons
from hub.customs.gun import gun_code
from hub.customs.ledger import (
    CertifiedLine,
    Clearance,
    ClearanceOutcome,
    DeclaredItem,
    FailureReason,
    LineBalance,
    Movement,
    MovementState,
    Reservation,
    balances,
    clear,
    format_quantity,
    fully_consumed,
    reserve,
    superseded,
)
from hub.store.lifecycle import valid_until
from hub.errors import NotFound
from hub.records.lifecycle import CLOSED, Lifecycle, move
from hub.store.db import Database
from hub.store.models import Document, Message, NonConformity, QuantityMovement, utcnow
from hub.store.trace import add_event

_CLOSED_STATUSES = ("withdrawn", "rejected", "cancelled")
_ACTOR = "customs:{office}"


@dataclass(frozen=True)
class Standing:
    """What the registry knows of one document for customs: validity (with the reasons it is not), quantities per
    line, and the reservations declarations hold on it (what they wrote off is in the balances and the trace)."""

    code: str
    document_id: str
    kind: str
    certificate_number: str
    status: str
    lifecycle: str
    valid: bool
    reasons: tuple[str, ...]
    balances: tuple[LineBalance, ...]
    movements: tuple[Movement, ...]


@dataclass(frozen=True)
class ReservationAnswer:
    """A reservation's outcome and the document's standing after it; ``reservation`` is None when the document was
    not valid for clearance (the standing's reasons say why)."""

    reservation: Reservation | None
    standing: Standing

    @property
    def accepted(self) -> bool:
        return self.reservation is not None and self.reservation.accepted


@dataclass(frozen=True)
class ClearanceAnswer:
    """A clearance's outcome for one document, the movements it changed, and the standing after it."""

    outcome: ClearanceOutcome
    changed: tuple[Movement, ...]
    standing: Standing


@runtime_checkable
class ChedQuantities(Protocol):
    """A CHED authority's quantity ledger reached through CSW-CERTEX (the TRACES-NT connector's customs calls);
    ``isinstance(connector, ChedQuantities)`` tells, and ``keeps_ched_quantities`` whether it is configured to."""

    @property
    def keeps_ched_quantities(self) -> bool: ...

    def certex_reserve(self, ched_id: str, *, declaration: str, items: Sequence[DeclaredItem], office: str | None = None): ...

    def certex_clear(self, ched_id: str, *, declaration: str, clearance: Clearance, office: str | None = None): ...


class CustomsRegistry:
    """The customs-facing registry over the hub's store; ``ched_authorities`` maps destination names to the CHED
    quantity ledgers they reach (see the module's docstring)."""

    def __init__(self, database: Database, *, ched_authorities: Mapping[str, ChedQuantities] | None = None) -> None:
        self.database = database
        self.ched_authorities = dict(ched_authorities or {})

    def check(self, code: str, number: str, *, tenant: str, office: str | None = None, declaration: str | None = None) -> Standing:
        """The standing of the document ``code`` ``number``; the consultation is traced."""
        with self.database.transaction() as session:
            document = _find(session, code, number, tenant)
            standing = _standing(session, document, code)
            add_event(session, document=document, event="customs.checked", actor=_actor(office), state=document.lifecycle, detail={"code": standing.code, "declaration": declaration, "valid": standing.valid, "reasons": list(standing.reasons)})
            return standing

    def reserve(self, code: str, number: str, *, tenant: str, declaration: str, items: Sequence[DeclaredItem], office: str | None = None) -> ReservationAnswer:
        """Reserve ``items`` of ``declaration`` on the document, all or nothing. A document that is not valid for
        clearance reserves nothing (the answer's standing says why); a refusal is traced as well."""
        authority = self._authority(code, number, tenant)
        reserved_there = False
        if authority is not None:
            refused, reserved_there = self._reserve_with_authority(authority, code, number, tenant=tenant, declaration=declaration, items=items, office=office)
            if refused is not None:
                return refused
        answer = self._reserve_here(code, number, tenant=tenant, declaration=declaration, items=items, office=office)
        if reserved_there and not answer.accepted:
            # A race with another declaration (or a change of the document) in between: give back what the
            # authority reserved, so that both ledgers hold the same.
            connector, reference = authority
            connector.certex_clear(reference, declaration=declaration, clearance=Clearance.INVALIDATED, office=office)
        return answer

    def _reserve_here(self, code: str, number: str, *, tenant: str, declaration: str, items: Sequence[DeclaredItem], office: str | None) -> ReservationAnswer:
        with self.database.transaction() as session:
            document = _find(session, code, number, tenant, lock=True)
            before = _standing(session, document, code)
            own = _reserved_rows(session, document.id, declaration)
            if not before.valid:
                add_event(session, document=document, event="customs.reservation_refused", actor=_actor(office), state=document.lifecycle, detail={"declaration": declaration, "reasons": list(before.reasons)})
                return ReservationAnswer(None, before)
            current = _sums(session, document.id, excluding=declaration) + [_movement(r) for r in own]
            reservation = reserve(_lines(document), current, declaration=declaration, items=items, office=office, at=utcnow())
            if not reservation.accepted:
                item = reservation.failed_item
                add_event(session, document=document, event="customs.reservation_refused", actor=_actor(office), state=document.lifecycle, detail={"declaration": declaration, "failure": reservation.failure.value, "reason": reservation.failure.text, "goods_item": item.goods_item if item else None, "line": item.line if item else None})
                return ReservationAnswer(reservation, before)
            by_movement = {_movement(r): r for r in own}
            for old in superseded(current, declaration=declaration, items=items):
                by_movement[old].state = MovementState.RELEASED.value
            units = {b.line.line: b.line.unit for b in before.balances}
            for movement in reservation.movements:
                session.add(QuantityMovement(
                    document_id=document.id, line=movement.line, declaration=declaration, goods_item=movement.goods_item,
                    document_code=before.code, quantity=movement.quantity, unit=units.get(movement.line), state=MovementState.RESERVED.value, office=office,
                ))
            session.flush()
            add_event(session, document=document, event="customs.reserved", actor=_actor(office), state=document.lifecycle, detail={"declaration": declaration, "items": [_item_detail(m) for m in reservation.movements]})
            return ReservationAnswer(reservation, _standing(session, document, code))

    def clear(self, code: str, number: str, *, tenant: str, declaration: str, clearance: Clearance, office: str | None = None) -> ClearanceAnswer:
        """Write off (goods released) or release (declaration invalidated) what ``declaration`` reserved on the
        document. Repeating it changes nothing and answers :attr:`ClearanceOutcome.NOTHING_TO_PROCESS`."""
        authority = self._authority(code, number, tenant)
        if authority is not None:
            connector, reference = authority
            connector.certex_clear(reference, declaration=declaration, clearance=clearance, office=office)
        with self.database.transaction() as session:
            document = _find(session, code, number, tenant, lock=True)
            own = _reserved_rows(session, document.id, declaration)
            current = [_movement(r) for r in own]
            outcome, changes = clear(current, declaration=declaration, clearance=clearance, at=utcnow())
            by_movement = dict(zip(current, own))
            for old, new in changes:
                by_movement[old].state = new.state.value
            session.flush()
            if changes:
                event = "customs.written_off" if clearance is Clearance.RELEASED else "customs.released"
                add_event(session, document=document, event=event, actor=_actor(office), state=document.lifecycle, detail={"declaration": declaration, "items": [_item_detail(new) for _, new in changes]})
                if clearance is Clearance.RELEASED and fully_consumed(_lines(document), _sums(session, document.id)):
                    document.lifecycle = move(document.lifecycle, Lifecycle.USED).value
                    add_event(session, document=document, event="document.used", actor=_actor(office), state=document.lifecycle, detail={"declaration": declaration})
            return ClearanceAnswer(outcome, tuple(new for _, new in changes), _standing(session, document, code))

    def write_off_by_hand(self, code: str, number: str, *, tenant: str, items: Sequence[DeclaredItem], purchase_date: str, document_type: str = "EXA", declaration: str = "inconnu") -> tuple[ReservationAnswer, ClearanceAnswer | None]:
        """What customs did not write back, entered by the issuing authority: the declaration's document type (EXA),
        its number (``inconnu`` when unknown), the purchase date and the quantities, written off at once (the document
        becomes *used* once nothing remains). Returns the reservation's answer, and the clearance's when it was
        accepted; a refusal (more than remains, no such line, not valid) writes nothing off."""
        reference = f"{document_type}:{declaration}:{purchase_date}"
        reserved = self._reserve_here(code, number, tenant=tenant, declaration=reference, items=items, office=None)
        if not reserved.accepted:
            return reserved, None
        return reserved, self.clear(code, number, tenant=tenant, declaration=reference, clearance=Clearance.RELEASED, office=None)

    def _authority(self, code: str, number: str, tenant: str) -> tuple[ChedQuantities, str] | None:
        """The CHED authority keeping this document's quantities, with its reference for it, if any."""
        if not self.ched_authorities or gun_code(code).ched_type is None:
            return None
        with self.database.sessions() as session:
            document = _find(session, code, number, tenant)
            sent = session.execute(
                select(Message.destination, Message.receipt_id)
                .where(Message.document_id == document.id, Message.destination.in_(list(self.ched_authorities)), Message.receipt_id.is_not(None))
                .order_by(Message.created_at.desc()).limit(1)
            ).first()
        return (self.ched_authorities[sent.destination], sent.receipt_id) if sent else None

    def _reserve_with_authority(self, authority, code, number, *, tenant, declaration, items, office) -> tuple[ReservationAnswer | None, bool]:
        """Reserve at the CHED authority first: its refusal (traced here) is the answer; else (None, whether it
        reserved)."""
        connector, reference = authority
        with self.database.sessions() as session:
            standing = _standing(session, _find(session, code, number, tenant), code)
        if not standing.valid:
            return None, False  # refused here, without asking the authority
        info = connector.certex_reserve(reference, declaration=declaration, items=items, office=office)
        if info.reservation_accepted is not False:
            return None, True
        failed = next((i for i in items if i.goods_item == info.failed_goods_item and (info.failed_line is None or i.line == info.failed_line)), items[0])
        reservation = Reservation(failure=info.failure or FailureReason.QUANTITY_EXCEEDED, failed_item=failed)
        with self.database.transaction() as session:
            document = _find(session, code, number, tenant)
            add_event(session, document=document, event="customs.reservation_refused", actor=_actor(office), state=document.lifecycle, detail={"declaration": declaration, "by": reference, "failure": reservation.failure.value, "reason": reservation.failure.text, "goods_item": failed.goods_item, "line": failed.line})
            return ReservationAnswer(reservation, _standing(session, document, code)), False

    def declaration(self, declaration: str, *, tenant: str) -> list[tuple[Document, Movement]]:
        """Every movement of ``declaration`` on documents ``tenant`` may see, with its document."""
        with self.database.sessions() as session:
            rows = session.execute(
                select(QuantityMovement, Document).join(Document, QuantityMovement.document_id == Document.id)
                .where(QuantityMovement.declaration == declaration).order_by(QuantityMovement.id)
            ).all()
            return [(document, _movement(row)) for row, document in rows if _visible(document, tenant)]


def _find(session: Session, code: str, number: str, tenant: str, *, lock: bool = False) -> Document:
    gun = gun_code(code)
    query = (
        select(Document)
        .where(Document.certificate_number == number, Document.kind.in_(gun.kinds))
        .order_by(Document.version.desc(), Document.created_at.desc())
    )
    for document in session.scalars(query):
        if gun.matches(document.kind, document.certificate_number) and _visible(document, tenant):
            if lock:
                # Serialises reservations on one document (PostgreSQL; SQLite writers are serialised already).
                session.execute(select(Document.id).where(Document.id == document.id).with_for_update())
            return document
    raise NotFound(f"no {gun.label} numbered {number!r} is known to the hub for {tenant}", where="number")


def _visible(document: Document, tenant: str) -> bool:
    return Scope.of(tenant).sees(document.tenant, document.importing_country, document.exporting_country)


def _lines(document: Document) -> list[CertifiedLine]:
    return [CertifiedLine(line=p.line, class_code=p.hs_code, unit=p.unit, quantity=p.quantity) for p in document.products if p.quantity is not None]


def _sums(session: Session, document_id: str, *, excluding: str | None = None) -> list[Movement]:
    """What the document's lines hold, summed per line and state (one row each however many declarations took
    some), leaving out the reservations of ``excluding`` (which a new reservation of that declaration replaces)."""
    query = (
        select(QuantityMovement.line, QuantityMovement.state, func.sum(QuantityMovement.quantity))
        .where(QuantityMovement.document_id == document_id, QuantityMovement.state != MovementState.RELEASED.value)
        .group_by(QuantityMovement.line, QuantityMovement.state)
    )
    if excluding is not None:
        query = query.where(~((QuantityMovement.declaration == excluding) & (QuantityMovement.state == MovementState.RESERVED.value)))
    return [Movement(declaration="", goods_item=0, line=line, quantity=Decimal(total), state=MovementState(state)) for line, state, total in session.execute(query)]


def _reserved_rows(session: Session, document_id: str, declaration: str | None = None) -> list[QuantityMovement]:
    """The reservations held on the document (by ``declaration`` only, when given)."""
    query = select(QuantityMovement).where(QuantityMovement.document_id == document_id, QuantityMovement.state == MovementState.RESERVED.value)
    if declaration is not None:
        query = query.where(QuantityMovement.declaration == declaration)
    return list(session.scalars(query.order_by(QuantityMovement.id)))


def _movement(row: QuantityMovement) -> Movement:
    return Movement(declaration=row.declaration, goods_item=row.goods_item, line=row.line, quantity=row.quantity, state=MovementState(row.state), office=row.office, at=row.updated_at)


def _standing(session: Session, document: Document, code: str) -> Standing:
    lines = _lines(document)
    reasons = []
    if Lifecycle(document.lifecycle) in CLOSED:
        reasons.append(f"the document is {document.lifecycle}")
    if document.status in _CLOSED_STATUSES:
        reasons.append(f"the document's status is {document.status}")
    refusals = session.scalars(select(NonConformity).where(NonConformity.document_id == document.id, NonConformity.state == "open")).all()
    reasons += [f"refused by {nc.counterpart}: {nc.cause_code}" + (f" ({nc.cause_text})" if nc.cause_text else "") for nc in refusals]
    if not lines:
        reasons.append("the document certifies no quantity")
    ends = valid_until(document)
    if ends is not None and ends < utcnow():
        reasons.append(f"its validity ended on {ends.isoformat()}")
    reasons += export_permit_reasons(session, document)
    return Standing(
        code=gun_code(code).code,
        document_id=document.id,
        kind=document.kind,
        certificate_number=document.certificate_number,
        status=document.status,
        lifecycle=document.lifecycle,
        valid=not reasons,
        reasons=tuple(reasons),
        balances=tuple(balances(lines, _sums(session, document.id))),
        movements=tuple(_movement(r) for r in _reserved_rows(session, document.id)),
    )


def _item_detail(movement: Movement) -> dict:
    return {"goods_item": movement.goods_item, "line": movement.line, "quantity": format_quantity(movement.quantity), "state": movement.state.value}



def _actor(office: str | None) -> str:
    return _ACTOR.format(office=office) if office else "customs"
