"""The hub as the certificate registry customs asks at clearance (DELTA-G through the national single window).

A declaration names a document by its GUN code and number. The registry answers whether the document is valid for
clearance and how much remains on each line; it reserves the declared quantities (all or nothing), writes them off
when the goods are released and releases them when the declaration is invalidated. A document whose every line is
written off moves to the *used* lifecycle. Each step is one transaction, traced on the document.

Customs clients are API clients: a client sees the documents of its tenant and those its country imports or exports.

A CHED the hub submitted to TRACES-NT has its quantities kept there too, and TRACES-NT's ledger is the EU's: when the
TRACES-NT connector has a customs (CSW-CERTEX) account, a reservation or clearance of such a CHED is checked here,
recorded as an operation (its quantities held ``pending``) and then sent to TRACES-NT (with the CHED reference
TRACES-NT gave); TRACES-NT's answer settles it. A refusal from TRACES-NT is the answer; TRACES-NT not answering is a
:class:`~hub.errors.TransientDeliveryError` (the API answers 502) saying the outcome is unknown, and the operation
stays open until the same request is repeated or :mod:`hub.customs.reconcile` settles it by reading TRACES-NT's
ledger (see :mod:`hub.customs.operations`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Mapping, Protocol, Sequence, runtime_checkable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.scope import Scope
from hub.customs.cites_checks import export_permit_reasons
from hub.customs.gun import gun_code
from hub.customs import operations
from hub.customs.ledger import (
    HELD,
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
from hub.customs.operations import CLEAR, RESERVE, OperationState, operation_key
from hub.store.lifecycle import valid_until
from hub.errors import DeliveryError, NotFound, TransientDeliveryError
from hub.records.lifecycle import CLOSED, Lifecycle, move
from hub.store.db import Database
from hub.store.models import CustomsOperation, Document, Message, NonConformity, QuantityMovement, utcnow
from hub.store.trace import add_event

_CLOSED_STATUSES = ("withdrawn", "rejected", "cancelled")
_HELD = [state.value for state in HELD]
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
    ``isinstance(connector, ChedQuantities)`` tells, and ``keeps_ched_quantities`` whether it is configured to.
    ``certex_read`` answers the CHED's ledger (its ``reserved`` and ``consumed`` movements) without changing it."""

    @property
    def keeps_ched_quantities(self) -> bool: ...

    def certex_read(self, ched_id: str, *, office: str | None = None): ...

    def certex_reserve(self, ched_id: str, *, declaration: str, items: Sequence[DeclaredItem], office: str | None = None): ...

    def certex_clear(self, ched_id: str, *, declaration: str, clearance: Clearance, office: str | None = None): ...


@dataclass(frozen=True)
class Authority:
    """The CHED authority keeping a document's quantities: its destination name, connector, and its reference for
    the document (the CHED reference TRACES-NT gave)."""

    name: str
    connector: ChedQuantities
    reference: str


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
        clearance reserves nothing (the answer's standing says why); a refusal is traced as well.

        For a CHED kept by an authority, what the hub's ledger accepts is held ``pending`` (an operation recorded
        before the call, see :mod:`hub.customs.operations`) and sent; the authority's refusal is the answer. When it
        does not answer, the :class:`~hub.errors.TransientDeliveryError` says the outcome is unknown: the quantities
        stay held until the same request is repeated (it never reserves twice) or the reconciliation settles it."""
        authority = self._authority(code, number, tenant)
        answer, operation_id = self._reserve_here(code, number, tenant=tenant, declaration=declaration, items=items, office=office, authority=authority)
        if operation_id is None:
            return answer
        try:
            information = authority.connector.certex_reserve(authority.reference, declaration=declaration, items=items, office=office)
        except DeliveryError as exc:
            raise self._unknown(operation_id, exc) from None
        return self._settle_reservation(operation_id, information, code, items=items, office=office)

    def _reserve_here(self, code: str, number: str, *, tenant: str, declaration: str, items: Sequence[DeclaredItem], office: str | None,
                      authority: Authority | None = None) -> tuple[ReservationAnswer, str | None]:
        """Reserve on the hub's ledger: (the answer, None). With ``authority``, what is accepted is held pending on an
        operation to send, or a repeat finds the open operation it repeats: (the answer so far, the operation's id)."""
        with self.database.transaction() as session:
            document = _find(session, code, number, tenant, lock=True)
            before = _standing(session, document, code)
            if not before.valid:
                add_event(session, document=document, event="customs.reservation_refused", actor=_actor(office), state=document.lifecycle, detail={"declaration": declaration, "reasons": list(before.reasons)})
                return ReservationAnswer(None, before), None
            key = operation_key(authority.name, authority.reference, RESERVE, declaration, items=items) if authority else None
            repeated = operations.find_open(session, document.id, key) if authority else None
            if repeated is not None:
                operations.restart(repeated)
                return ReservationAnswer(None, before), repeated.id
            own = _held_rows(session, document.id, declaration)
            current = _sums(session, document.id, excluding=declaration) + [_movement(r) for r in own]
            reservation = reserve(_lines(document), current, declaration=declaration, items=items, office=office, at=utcnow())
            if not reservation.accepted:
                item = reservation.failed_item
                add_event(session, document=document, event="customs.reservation_refused", actor=_actor(office), state=document.lifecycle, detail={"declaration": declaration, "failure": reservation.failure.value, "reason": reservation.failure.text, "goods_item": item.goods_item if item else None, "line": item.line if item else None})
                return ReservationAnswer(reservation, before), None
            operation = None
            if authority is not None:
                operation = operations.begin(session, document_id=document.id, authority=authority.name, reference=authority.reference, kind=RESERVE, declaration=declaration, key=key, items=items, office=office)
            else:
                by_movement = {_movement(r): r for r in own}
                for old in superseded(current, declaration=declaration, items=items):
                    by_movement[old].state = MovementState.RELEASED.value
            state = MovementState.PENDING if operation is not None else MovementState.RESERVED
            units = {b.line.line: b.line.unit for b in before.balances}
            for movement in reservation.movements:
                session.add(QuantityMovement(
                    document_id=document.id, line=movement.line, declaration=declaration, goods_item=movement.goods_item,
                    document_code=before.code, quantity=movement.quantity, unit=units.get(movement.line), state=state.value, office=office,
                    operation_id=operation.id if operation is not None else None,
                ))
            session.flush()
            event, detail = ("customs.reserved", {}) if operation is None else ("customs.reservation_sent", {"by": authority.reference, "operation": operation.id})
            add_event(session, document=document, event=event, actor=_actor(office), state=document.lifecycle, detail={"declaration": declaration, **detail, "items": [_item_detail(replace(m, state=state)) for m in reservation.movements]})
            return ReservationAnswer(reservation, _standing(session, document, code)), operation.id if operation is not None else None

    def _settle_reservation(self, operation_id: str, information, code: str, *, items: Sequence[DeclaredItem], office: str | None) -> ReservationAnswer:
        """The authority's answer to a reservation applied to its operation: accepted (held → reserved) or refused
        (nothing held, the refusal traced and answered)."""
        with self.database.transaction() as session:
            operation = session.get(CustomsOperation, operation_id)
            document = _lock(session, operation.document_id)
            if information.reservation_accepted is False:
                failed = next((i for i in items if i.goods_item == information.failed_goods_item and (information.failed_line is None or i.line == information.failed_line)), items[0])
                reservation = Reservation(failure=information.failure or FailureReason.QUANTITY_EXCEEDED, failed_item=failed)
                operations.discard(session, operation, OperationState.REFUSED)
                add_event(session, document=document, event="customs.reservation_refused", actor=_actor(office), state=document.lifecycle, detail={"declaration": operation.declaration, "by": operation.ched_reference, "operation": operation.id, "failure": reservation.failure.value, "reason": reservation.failure.text, "goods_item": failed.goods_item, "line": failed.line})
                return ReservationAnswer(reservation, _standing(session, document, code))
            rows = operations.accept_reservation(session, operation)
            add_event(session, document=document, event="customs.reserved", actor=_actor(office), state=document.lifecycle, detail={"declaration": operation.declaration, "by": operation.ched_reference, "operation": operation.id, "attempts": operation.attempts, "items": [_item_detail(_movement(r)) for r in rows]})
            return ReservationAnswer(Reservation(movements=tuple(_movement(r) for r in rows)), _standing(session, document, code))

    def _unknown(self, operation_id: str, exc: DeliveryError) -> TransientDeliveryError:
        """The authority did not answer: the operation's outcome is unknown (traced); the error to raise says so."""
        with self.database.transaction() as session:
            operation = session.get(CustomsOperation, operation_id)
            if operations.mark_unknown(operation, str(exc)):
                document = session.get(Document, operation.document_id)
                add_event(session, document=document, event="customs.outcome_unknown", actor="customs", state=document.lifecycle, detail={"operation": operation.id, "kind": operation.kind, "declaration": operation.declaration, "by": operation.ched_reference, "error": str(exc)[:500]})
            what, name = operation.kind, operation.authority
        return TransientDeliveryError(
            f"{exc}; the outcome of the {what} at {name} is unknown: operation {operation_id} holds it until the same "
            "request is repeated (a repeat never reserves twice) or the reconciliation settles it",
            request=exc.request, response=exc.response,
        )

    def clear(self, code: str, number: str, *, tenant: str, declaration: str, clearance: Clearance, office: str | None = None) -> ClearanceAnswer:
        """Write off (goods released) or release (declaration invalidated) what ``declaration`` reserved on the
        document. Repeating it changes nothing and answers :attr:`ClearanceOutcome.NOTHING_TO_PROCESS`. For a CHED
        kept by an authority, the clearance is recorded as an operation and sent first (a repeat is safe: the
        authority answers ``03``); it is applied here once the authority answered."""
        authority = self._authority(code, number, tenant)
        if authority is None:
            return self._clear_here(code, number, tenant=tenant, declaration=declaration, clearance=clearance, office=office)
        key = operation_key(authority.name, authority.reference, CLEAR, declaration, clearance=clearance)
        with self.database.transaction() as session:
            document = _find(session, code, number, tenant, lock=True)
            operation = operations.find_open(session, document.id, key)
            if operation is None:
                operation = operations.begin(session, document_id=document.id, authority=authority.name, reference=authority.reference, kind=CLEAR, declaration=declaration, key=key, clearance=clearance, office=office)
            else:
                operations.restart(operation)
            operation_id = operation.id
        try:
            response = authority.connector.certex_clear(authority.reference, declaration=declaration, clearance=clearance, office=office)
        except DeliveryError as exc:
            raise self._unknown(operation_id, exc) from None
        return self._clear_here(code, number, tenant=tenant, declaration=declaration, clearance=clearance, office=office,
                                operation_id=operation_id, held_there=response.outcome is ClearanceOutcome.PROCESSED)

    def _clear_here(self, code: str, number: str, *, tenant: str, declaration: str, clearance: Clearance, office: str | None,
                    operation_id: str | None = None, held_there: bool = False) -> ClearanceAnswer:
        with self.database.transaction() as session:
            document = _find(session, code, number, tenant, lock=True)
            return apply_clearance(session, document, code, declaration=declaration, clearance=clearance, office=office, operation_id=operation_id, held_there=held_there)

    def write_off_by_hand(self, code: str, number: str, *, tenant: str, items: Sequence[DeclaredItem], purchase_date: str, document_type: str = "EXA", declaration: str = "inconnu") -> tuple[ReservationAnswer, ClearanceAnswer | None]:
        """What customs did not write back, entered by the issuing authority: the declaration's document type (EXA),
        its number (``inconnu`` when unknown), the purchase date and the quantities, written off at once (the document
        becomes *used* once nothing remains). Returns the reservation's answer, and the clearance's when it was
        accepted; a refusal (more than remains, no such line, not valid) writes nothing off. A CHED kept by an
        authority is reserved and written off there too, so that the two ledgers stay equal."""
        reference = f"{document_type}:{declaration}:{purchase_date}"
        reserved = self.reserve(code, number, tenant=tenant, declaration=reference, items=items, office=None)
        if not reserved.accepted:
            return reserved, None
        return reserved, self.clear(code, number, tenant=tenant, declaration=reference, clearance=Clearance.RELEASED, office=None)

    def _authority(self, code: str, number: str, tenant: str) -> Authority | None:
        """The CHED authority keeping this document's quantities, with its reference for it, if any."""
        if not self.ched_authorities or gun_code(code).ched_type is None:
            return None
        with self.database.sessions() as session:
            return self.authority_of(session, _find(session, code, number, tenant).id)

    def authority_of(self, session: Session, document_id: str) -> Authority | None:
        """The CHED authority the document was sent to, with the reference it gave, if any."""
        if not self.ched_authorities:
            return None
        sent = session.execute(
            select(Message.destination, Message.receipt_id)
            .where(Message.document_id == document_id, Message.destination.in_(list(self.ched_authorities)), Message.receipt_id.is_not(None))
            .order_by(Message.created_at.desc()).limit(1)
        ).first()
        return Authority(sent.destination, self.ched_authorities[sent.destination], sent.receipt_id) if sent else None

    def declaration(self, declaration: str, *, tenant: str) -> list[tuple[Document, Movement]]:
        """Every movement of ``declaration`` on documents ``tenant`` may see, with its document."""
        with self.database.sessions() as session:
            rows = session.execute(
                select(QuantityMovement, Document).join(Document, QuantityMovement.document_id == Document.id)
                .where(QuantityMovement.declaration == declaration).order_by(QuantityMovement.id)
            ).all()
            return [(document, _movement(row)) for row, document in rows if _visible(document, tenant)]


def apply_clearance(session: Session, document: Document, code: str, *, declaration: str, clearance: Clearance, office: str | None,
                    operation_id: str | None = None, held_there: bool = False) -> ClearanceAnswer:
    """Apply a clearance of ``declaration`` to the document's ledger (locked by the caller). With ``operation_id``
    (a clearance the authority answered), the declaration's pending reservations are settled first: reserved when the
    authority ``held_there`` (it processed the clearance), else removed; the operation is then done."""
    if operation_id is not None:
        operations.settle_pending_of(session, document.id, declaration, held_there=held_there)
        operations.finish(session.get(CustomsOperation, operation_id))
    own = _reserved_rows(session, document.id, declaration)
    current = [_movement(r) for r in own]
    outcome, changes = clear(current, declaration=declaration, clearance=clearance, at=utcnow())
    by_movement = dict(zip(current, own))
    for old, new in changes:
        by_movement[old].state = new.state.value
    session.flush()
    if changes:
        event = "customs.written_off" if clearance is Clearance.RELEASED else "customs.released"
        add_event(session, document=document, event=event, actor=_actor(office), state=document.lifecycle, detail={"declaration": declaration, "operation": operation_id, "items": [_item_detail(new) for _, new in changes]})
        if clearance is Clearance.RELEASED and fully_consumed(_lines(document), _sums(session, document.id)):
            document.lifecycle = move(document.lifecycle, Lifecycle.USED).value
            add_event(session, document=document, event="document.used", actor=_actor(office), state=document.lifecycle, detail={"declaration": declaration})
    return ClearanceAnswer(outcome, tuple(new for _, new in changes), _standing(session, document, code))


def _lock(session: Session, document_id: str) -> Document:
    """The document, its row locked (PostgreSQL) against concurrent reservations."""
    session.execute(select(Document.id).where(Document.id == document_id).with_for_update())
    return session.get(Document, document_id)


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
        query = query.where(~((QuantityMovement.declaration == excluding) & QuantityMovement.state.in_(_HELD)))
    return [Movement(declaration="", goods_item=0, line=line, quantity=Decimal(total), state=MovementState(state)) for line, state, total in session.execute(query)]


def _reserved_rows(session: Session, document_id: str, declaration: str | None = None) -> list[QuantityMovement]:
    """The reservations the document holds, confirmed ones only (by ``declaration`` only, when given)."""
    query = select(QuantityMovement).where(QuantityMovement.document_id == document_id, QuantityMovement.state == MovementState.RESERVED.value)
    if declaration is not None:
        query = query.where(QuantityMovement.declaration == declaration)
    return list(session.scalars(query.order_by(QuantityMovement.id)))


def _held_rows(session: Session, document_id: str, declaration: str | None = None) -> list[QuantityMovement]:
    """The reservations the document holds, pending ones included (by ``declaration`` only, when given)."""
    query = select(QuantityMovement).where(QuantityMovement.document_id == document_id, QuantityMovement.state.in_(_HELD))
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
        movements=tuple(_movement(r) for r in _held_rows(session, document.id)),
    )


def _item_detail(movement: Movement) -> dict:
    return {"goods_item": movement.goods_item, "line": movement.line, "quantity": format_quantity(movement.quantity), "state": movement.state.value}



def _actor(office: str | None) -> str:
    return _ACTOR.format(office=office) if office else "customs"
