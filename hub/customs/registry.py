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
from typing import Mapping, Protocol, Sequence, runtime_checkable

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from hub.scope import Scope
from hub.customs.cites_checks import export_permit_reasons
from hub.customs.gun import GunCode, gun_code
from hub.customs import operations
from hub.customs.ledger import (
    Clearance,
    ClearanceOutcome,
    DeclaredItem,
    FailureReason,
    LineBalance,
    Movement,
    MovementState,
    Reservation,
    clear,
    format_quantity,
    fully_consumed,
    reserve,
    superseded,
)
from hub.customs.operations import CLEAR, RESERVE, OperationState, operation_key
from hub.customs.sheet import DocumentRow, Sheet, find, get, open_sheet, valid_until
from hub.customs.step import Step, step
from hub.errors import DeliveryError, TransientDeliveryError
from hub.records.lifecycle import CLOSED, Lifecycle, move
from hub.store.db import Database
from hub.store.models import CustomsOperation, Document, Message, QuantityMovement, utcnow

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
    quantity ledgers they reach (see the module's docstring). Each step on the hub's own ledger is one transaction
    of a few Core statements on a bare connection (:mod:`hub.customs.step`, :mod:`hub.customs.sheet`)."""

    def __init__(self, database: Database, *, ched_authorities: Mapping[str, ChedQuantities] | None = None) -> None:
        self.database = database
        self.ched_authorities = dict(ched_authorities or {})

    def check(self, code: str, number: str, *, tenant: str, office: str | None = None, declaration: str | None = None) -> Standing:
        """The standing of the document ``code`` ``number``; the consultation is traced."""
        gun = gun_code(code)
        with step(self.database) as current:
            sheet = open_sheet(current.connection(), gun, number, tenant)
            standing = _standing(current, sheet)
            current.trace(sheet.document, "customs.checked", _actor(office), {"code": standing.code, "declaration": declaration, "valid": standing.valid, "reasons": list(standing.reasons)})
            return standing

    def reserve(self, code: str, number: str, *, tenant: str, declaration: str, items: Sequence[DeclaredItem], office: str | None = None) -> ReservationAnswer:
        """Reserve ``items`` of ``declaration`` on the document, all or nothing. A document that is not valid for
        clearance reserves nothing (the answer's standing says why); a refusal is traced as well.

        For a CHED kept by an authority, what the hub's ledger accepts is held ``pending`` (an operation recorded
        before the call, see :mod:`hub.customs.operations`) and sent; the authority's refusal is the answer. When it
        does not answer, the :class:`~hub.errors.TransientDeliveryError` says the outcome is unknown: the quantities
        stay held until the same request is repeated (it never reserves twice) or the reconciliation settles it."""
        gun = gun_code(code)
        with step(self.database) as current:
            sheet = open_sheet(current.connection(), gun, number, tenant, lock=True)
            authority = self._authority_of(current.connection(), gun, sheet.document.id)
            answer, operation_id = _reserve_on(current, sheet, declaration=declaration, items=items, office=office, authority=authority)
            sheet.write(current.connection())
        if operation_id is None:
            return answer
        try:
            information = authority.connector.certex_reserve(authority.reference, declaration=declaration, items=items, office=office)
        except DeliveryError as exc:
            raise self._unknown(operation_id, exc) from None
        return self._settle_reservation(operation_id, information, gun.code, items=items, office=office)

    def _settle_reservation(self, operation_id: str, information, code: str, *, items: Sequence[DeclaredItem], office: str | None) -> ReservationAnswer:
        """The authority's answer to a reservation applied to its operation: accepted (held → reserved) or refused
        (nothing held, the refusal traced and answered)."""
        with step(self.database) as current:
            session, connection = current.session, current.connection()
            operation = session.get(CustomsOperation, operation_id)
            document = get(connection, operation.document_id, lock=True)
            detail = {"declaration": operation.declaration, "by": operation.ched_reference, "operation": operation.id}
            if information.reservation_accepted is False:
                failed = next((i for i in items if i.goods_item == information.failed_goods_item and (information.failed_line is None or i.line == information.failed_line)), items[0])
                reservation = Reservation(failure=information.failure or FailureReason.QUANTITY_EXCEEDED, failed_item=failed)
                operations.discard(session, operation, OperationState.REFUSED)
                sheet = Sheet.read(connection, document, code)
                current.trace(sheet.document, "customs.reservation_refused", _actor(office), {**detail, "failure": reservation.failure.value, "reason": reservation.failure.text, "goods_item": failed.goods_item, "line": failed.line})
            else:
                rows = operations.accept_reservation(session, operation)
                reservation = Reservation(movements=tuple(_movement(r) for r in rows))
                sheet = Sheet.read(connection, document, code)
                current.trace(sheet.document, "customs.reserved", _actor(office), {**detail, "attempts": operation.attempts, "items": [_item_detail(m) for m in reservation.movements]})
            return ReservationAnswer(reservation, _standing(current, sheet))

    def _unknown(self, operation_id: str, exc: DeliveryError) -> TransientDeliveryError:
        """The authority did not answer: the operation's outcome is unknown (traced); the error to raise says so."""
        with step(self.database) as current:
            operation = current.session.get(CustomsOperation, operation_id)
            if operations.mark_unknown(operation, str(exc)):
                document = get(current.connection(), operation.document_id)
                current.trace(document, "customs.outcome_unknown", "customs", {"operation": operation.id, "kind": operation.kind, "declaration": operation.declaration, "by": operation.ched_reference, "error": str(exc)[:500]})
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
        gun = gun_code(code)
        with step(self.database) as current:
            sheet = open_sheet(current.connection(), gun, number, tenant, lock=True)
            document = sheet.document
            authority = self._authority_of(current.connection(), gun, document.id)
            if authority is None:
                answer = _clear_on(current, sheet, declaration=declaration, clearance=clearance, office=office)
                sheet.write(current.connection())
                return answer
            key = operation_key(authority.name, authority.reference, CLEAR, declaration, clearance=clearance)
            operation = operations.find_open(current.session, document.id, key)
            if operation is None:
                operation = operations.begin(current.session, document_id=document.id, authority=authority.name, reference=authority.reference, kind=CLEAR, declaration=declaration, key=key, clearance=clearance, office=office)
            else:
                operations.restart(operation)
            operation_id = operation.id
        try:
            response = authority.connector.certex_clear(authority.reference, declaration=declaration, clearance=clearance, office=office)
        except DeliveryError as exc:
            raise self._unknown(operation_id, exc) from None
        with step(self.database) as current:
            document = find(current.connection(), gun, number, tenant, lock=True)
            return _apply(current, document, gun.code, declaration=declaration, clearance=clearance, office=office,
                          operation_id=operation_id, held_there=response.outcome is ClearanceOutcome.PROCESSED)

    def write_off(self, code: str, number: str, *, tenant: str, declaration: str, items: Sequence[DeclaredItem], office: str | None = None) -> tuple[ReservationAnswer, ClearanceAnswer | None]:
        """Reserve ``items`` of ``declaration`` and write off what it holds reserved, at once: :meth:`reserve` then
        :meth:`clear` (``released``) in one transaction, for goods released as the declaration is lodged. Returns the
        reservation's answer, and the clearance's when it was accepted; a refusal writes nothing off. A CHED kept by an
        authority is reserved and written off there first, as :meth:`reserve` and :meth:`clear` do."""
        gun = gun_code(code)
        with step(self.database) as current:
            sheet = open_sheet(current.connection(), gun, number, tenant, lock=True)
            if self._authority_of(current.connection(), gun, sheet.document.id) is None:
                reserved, _ = _reserve_on(current, sheet, declaration=declaration, items=items, office=office)
                cleared = _clear_on(current, sheet, declaration=declaration, clearance=Clearance.RELEASED, office=office) if reserved.accepted else None
                sheet.write(current.connection())
                return reserved, cleared
        reserved = self.reserve(code, number, tenant=tenant, declaration=declaration, items=items, office=office)
        if not reserved.accepted:
            return reserved, None
        return reserved, self.clear(code, number, tenant=tenant, declaration=declaration, clearance=Clearance.RELEASED, office=office)

    def write_off_by_hand(self, code: str, number: str, *, tenant: str, items: Sequence[DeclaredItem], purchase_date: str, document_type: str = "EXA", declaration: str = "inconnu") -> tuple[ReservationAnswer, ClearanceAnswer | None]:
        """What customs did not write back, entered by the issuing authority: the declaration's document type (EXA),
        its number (``inconnu`` when unknown), the purchase date and the quantities, written off at once (the document
        becomes *used* once nothing remains). Returns the reservation's answer, and the clearance's when it was
        accepted; a refusal (more than remains, no such line, not valid) writes nothing off. A CHED kept by an
        authority is reserved and written off there too, so that the two ledgers stay equal."""
        reference = f"{document_type}:{declaration}:{purchase_date}"
        return self.write_off(code, number, tenant=tenant, declaration=reference, items=items, office=None)

    def _authority_of(self, connection: Connection, gun: GunCode, document_id: str) -> Authority | None:
        """The CHED authority keeping this document's quantities, if ``gun`` names a CHED and one does."""
        if not self.ched_authorities or gun.ched_type is None:
            return None
        return self.authority_of(connection, document_id)

    def authority_of(self, connection: Connection | Session, document_id: str) -> Authority | None:
        """The CHED authority the document was sent to, with the reference it gave, if any (read on a connection or
        a session)."""
        if not self.ched_authorities:
            return None
        sent = connection.execute(
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
    authority ``held_there`` (it processed the clearance), else removed; the operation is then done. The session's
    objects are expired afterwards: the ledger was changed beside them."""
    session.flush()
    current = Step(session.connection(), session=session)
    answer = _apply(current, DocumentRow.of(document), code, declaration=declaration, clearance=clearance, office=office,
                    operation_id=operation_id, held_there=held_there)
    current.write()
    session.expire_all()
    return answer


def _apply(current: Step, document: DocumentRow, code: str, *, declaration: str, clearance: Clearance, office: str | None,
           operation_id: str | None = None, held_there: bool = False) -> ClearanceAnswer:
    if operation_id is not None:
        session = current.session
        operations.settle_pending_of(session, document.id, declaration, held_there=held_there)
        operations.finish(session.get(CustomsOperation, operation_id))
        session.flush()
    sheet = Sheet.read(current.connection(), document, code)
    answer = _clear_on(current, sheet, declaration=declaration, clearance=clearance, office=office, operation_id=operation_id)
    sheet.write(current.connection())
    return answer


def _reserve_on(current: Step, sheet: Sheet, *, declaration: str, items: Sequence[DeclaredItem], office: str | None,
                authority: Authority | None = None) -> tuple[ReservationAnswer, str | None]:
    """Reserve on the sheet: (the answer, None). With ``authority``, what is accepted is held pending on an operation
    to send, or a repeat finds the open operation it repeats: (the answer so far, the operation's id). Until it
    takes something, the sheet's standing is the one it had before."""
    reasons = _reasons(current, sheet)
    if reasons:
        current.trace(sheet.document, "customs.reservation_refused", _actor(office), {"declaration": declaration, "reasons": reasons})
        return ReservationAnswer(None, _standing(current, sheet)), None
    key = operation_key(authority.name, authority.reference, RESERVE, declaration, items=items) if authority else None
    repeated = operations.find_open(current.session, sheet.document.id, key) if authority else None
    if repeated is not None:
        operations.restart(repeated)
        return ReservationAnswer(None, _standing(current, sheet)), repeated.id
    now = utcnow()
    reservation = reserve(sheet.lines, sheet.movements(), declaration=declaration, items=items, office=office, at=now)
    if not reservation.accepted:
        item = reservation.failed_item
        current.trace(sheet.document, "customs.reservation_refused", _actor(office), {"declaration": declaration, "failure": reservation.failure.value, "reason": reservation.failure.text, "goods_item": item.goods_item if item else None, "line": item.line if item else None})
        return ReservationAnswer(reservation, _standing(current, sheet)), None
    operation = None
    if authority is not None:
        operation = operations.begin(current.session, document_id=sheet.document.id, authority=authority.name, reference=authority.reference, kind=RESERVE, declaration=declaration, key=key, items=items, office=office)
    else:
        own = sheet.held(declaration)
        replaced = superseded([e.movement for e in own], declaration=declaration, items=items)
        sheet.move([e for e in own if e.movement in replaced], MovementState.RELEASED, at=now)
    state = MovementState.PENDING if operation is not None else MovementState.RESERVED
    taken = [m if m.state is state else replace(m, state=state) for m in reservation.movements]
    sheet.add(taken, operation_id=operation.id if operation is not None else None)
    event, detail = ("customs.reserved", {}) if operation is None else ("customs.reservation_sent", {"by": authority.reference, "operation": operation.id})
    current.trace(sheet.document, event, _actor(office), {"declaration": declaration, **detail, "items": [_item_detail(m) for m in taken]})
    return ReservationAnswer(reservation, _standing(current, sheet)), operation.id if operation is not None else None


def _clear_on(current: Step, sheet: Sheet, *, declaration: str, clearance: Clearance, office: str | None, operation_id: str | None = None) -> ClearanceAnswer:
    """Write off or release on the sheet what ``declaration`` holds reserved; the document is used once every line is
    written off."""
    own = sheet.held(declaration, states=(MovementState.RESERVED,))
    now = utcnow()
    outcome, changes = clear([e.movement for e in own], declaration=declaration, clearance=clearance, at=now)
    if changes:
        # ``clear`` changes every reserved movement of the declaration, in the order given.
        sheet.change(zip(own, (new for _, new in changes)))
        event = "customs.written_off" if clearance is Clearance.RELEASED else "customs.released"
        current.trace(sheet.document, event, _actor(office), {"declaration": declaration, "operation": operation_id, "items": [_item_detail(new) for _, new in changes]})
        if clearance is Clearance.RELEASED and fully_consumed(sheet.lines, sheet.movements()):
            sheet.set_lifecycle(move(sheet.document.lifecycle, Lifecycle.USED).value)
            current.trace(sheet.document, "document.used", _actor(office), {"declaration": declaration})
    return ClearanceAnswer(outcome, tuple(new for _, new in changes), _standing(current, sheet))


def _visible(document: Document, tenant: str) -> bool:
    return Scope.of(tenant).sees(document.tenant, document.importing_country, document.exporting_country)


def _movement(row: QuantityMovement) -> Movement:
    return Movement(declaration=row.declaration, goods_item=row.goods_item, line=row.line, quantity=row.quantity, state=MovementState(row.state), office=row.office, at=row.updated_at)


def _standing(current: Step, sheet: Sheet) -> Standing:
    document = sheet.document
    reasons = _reasons(current, sheet)
    return Standing(
        code=sheet.code,
        document_id=document.id,
        kind=document.kind,
        certificate_number=document.certificate_number,
        status=document.status,
        lifecycle=document.lifecycle,
        valid=not reasons,
        reasons=tuple(reasons),
        balances=tuple(sheet.balances()),
        movements=tuple(e.movement for e in sheet.held()),
    )


def _reasons(current: Step, sheet: Sheet) -> list[str]:
    """Why the document is not valid for clearance (empty: it is)."""
    document = sheet.document
    reasons = []
    if Lifecycle(document.lifecycle) in CLOSED:
        reasons.append(f"the document is {document.lifecycle}")
    if document.status in _CLOSED_STATUSES:
        reasons.append(f"the document's status is {document.status}")
    if sheet.lasting_reasons is None:
        sheet.lasting_reasons = _lasting_reasons(current, sheet)
    return reasons + sheet.lasting_reasons


def _lasting_reasons(current: Step, sheet: Sheet) -> list[str]:
    """The reasons a document is not valid that no step of the registry changes: refusals, no quantity, validity
    ended, the exporting country's permit (C638)."""
    reasons = list(sheet.refusals)
    if not sheet.lines:
        reasons.append("the document certifies no quantity")
    ends = valid_until(current.connection(), sheet.document)
    if ends is not None and ends < utcnow():
        reasons.append(f"its validity ended on {ends.isoformat()}")
    if sheet.document.kind == "cites_import":
        session = current.session
        reasons += export_permit_reasons(session, session.get(Document, sheet.document.id))
    return reasons


def _item_detail(movement: Movement) -> dict:
    return {"goods_item": movement.goods_item, "line": movement.line, "quantity": format_quantity(movement.quantity), "state": movement.state.value}


def _actor(office: str | None) -> str:
    return _ACTOR.format(office=office) if office else "customs"
