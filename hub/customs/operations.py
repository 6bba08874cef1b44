"""Reservations and clearances sent to a CHED authority's quantity ledger (TRACES-NT's CSW-CERTEX), each recorded as
a :class:`~hub.store.models.CustomsOperation` BEFORE the call, so that no outcome is lost to a timeout or a crash.

A reservation is recorded in the transaction that checks it against the hub's ledger: the operation ``pending`` and
its movements ``pending`` (held on their lines: nothing else may take them). The call goes out after the commit, and
its answer settles the operation::

    pending ──accepted──────► done        movements reserved; those of the declaration it replaces released
            ──refused───────► refused     movements removed (CSW-CERTEX reserves all or nothing)
            ──no answer─────► unknown     movements stay pending, held until a repeat or the reconciliation
    unknown ──repeat (same key)──► pending …
            ──reconciliation──► done (TRACES-NT holds it: adopted) | dropped (it does not: movements removed)

CSW-CERTEX carries no operation id of ours (``CertexHeader/MessageId`` is one per message, and nothing in the
captures says TRACES-NT de-duplicates on it). What it keys a reservation by is the CHED, the declaration (MRN) and
the goods item: reserving the same goods items of the same declaration again replaces the earlier reservation (see
:func:`hub.customs.ledger.reserve`), and repeating a clearance answers ``03`` (nothing to process). So a repeat after
a timeout never reserves twice there. The operation's ``key`` hashes (authority, CHED, kind, declaration, goods items
or clearance): a repeated request finds the open operation it repeats and settles it.
"""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal
from enum import Enum
from typing import Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.customs.ledger import HELD, Clearance, DeclaredItem, MovementState, format_quantity
from hub.store.models import CustomsOperation, QuantityMovement, utcnow

RESERVE, CLEAR = "reserve", "clear"


class OperationState(str, Enum):
    """Where one operation sent to a CHED authority stands (see the module's docstring)."""

    PENDING = "pending"
    UNKNOWN = "unknown"
    DONE = "done"
    REFUSED = "refused"
    DROPPED = "dropped"
    SUPERSEDED = "superseded"


#: The states whose outcome at the authority is not settled yet.
OPEN = (OperationState.PENDING.value, OperationState.UNKNOWN.value)


def operation_key(authority: str, reference: str, kind: str, declaration: str, *, items: Sequence[DeclaredItem] = (), clearance: Clearance | None = None) -> str:
    """The identity of an operation: the same request (whatever the order of its goods items) has the same key."""
    parts = [authority, reference, kind, declaration, clearance.value if clearance else ""]
    parts += [f"{i.goods_item}:{i.line}:{format_quantity(i.quantity)}:{i.class_code or ''}:{(i.unit or '').upper()}"
              for i in sorted(items, key=lambda i: (i.goods_item, i.line))]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def items_json(items: Iterable[DeclaredItem]) -> list[dict]:
    """Declared items as the operation stores them."""
    return [{"goods_item": i.goods_item, "line": i.line, "quantity": format_quantity(i.quantity), "class_code": i.class_code, "unit": i.unit} for i in items]


def items_of(operation: CustomsOperation) -> list[DeclaredItem]:
    """The declared items an operation sent."""
    return [DeclaredItem(goods_item=i["goods_item"], line=i["line"], quantity=Decimal(i["quantity"]), class_code=i.get("class_code"), unit=i.get("unit")) for i in operation.items or []]


def find_open(session: Session, document_id: str, key: str) -> CustomsOperation | None:
    """The open operation with ``key`` on the document, if a request repeats one."""
    return session.scalars(
        select(CustomsOperation).where(CustomsOperation.document_id == document_id, CustomsOperation.key == key, CustomsOperation.state.in_(OPEN))
        .order_by(CustomsOperation.created_at.desc()).limit(1)
    ).first()


def begin(session: Session, *, document_id: str, authority: str, reference: str, kind: str, declaration: str, key: str,
          items: Sequence[DeclaredItem] = (), clearance: Clearance | None = None, office: str | None = None) -> CustomsOperation:
    """A new operation, ``pending``, its first attempt about to go out."""
    operation = CustomsOperation(
        id=str(uuid.uuid4()), key=key, document_id=document_id, authority=authority, ched_reference=reference, kind=kind,
        declaration=declaration, clearance=clearance.value if clearance else None, items=items_json(items), office=office,
        state=OperationState.PENDING.value, attempts=1,
    )
    session.add(operation)
    session.flush()
    return operation


def restart(operation: CustomsOperation) -> None:
    """A repeat of an open operation: one more attempt goes out."""
    operation.state = OperationState.PENDING.value
    operation.attempts += 1
    operation.updated_at = utcnow()


def mark_unknown(operation: CustomsOperation, error: str) -> bool:
    """The call ended without an answer: the outcome is unknown. False (nothing changed) when another attempt of the
    same operation settled it meanwhile."""
    if operation.state != OperationState.PENDING.value:
        return False
    operation.state = OperationState.UNKNOWN.value
    operation.last_error = error[:2000]
    operation.updated_at = utcnow()
    return True


def pending_rows(session: Session, operation: CustomsOperation) -> list[QuantityMovement]:
    """The movements still pending on the operation's answer."""
    return list(session.scalars(select(QuantityMovement).where(QuantityMovement.operation_id == operation.id, QuantityMovement.state == MovementState.PENDING.value).order_by(QuantityMovement.id)))


def accept_reservation(session: Session, operation: CustomsOperation) -> list[QuantityMovement]:
    """The authority holds the reservation: its movements become reserved, the held movements of the same declaration
    and goods items it replaces are released (their operations, once nothing of theirs is held, superseded), and the
    operation is done. Returns the operation's movements; applying it twice changes nothing."""
    rows = pending_rows(session, operation)
    for row in rows:
        row.state = MovementState.RESERVED.value
    replacing = {(i.goods_item, i.line) for i in items_of(operation)}
    replaced = session.scalars(select(QuantityMovement).where(
        QuantityMovement.document_id == operation.document_id, QuantityMovement.declaration == operation.declaration,
        QuantityMovement.state.in_([s.value for s in HELD]),
        (QuantityMovement.operation_id != operation.id) | QuantityMovement.operation_id.is_(None),
    )).all()
    others = set()
    for row in replaced:
        if (row.goods_item, row.line) in replacing:
            row.state = MovementState.RELEASED.value
            if row.operation_id:
                others.add(row.operation_id)
    session.flush()
    for other_id in others:
        other = session.get(CustomsOperation, other_id)
        if other is not None and other.state in OPEN and not pending_rows(session, other):
            other.state = OperationState.SUPERSEDED.value
    operation.state = OperationState.DONE.value
    operation.updated_at = utcnow()
    session.flush()
    return list(session.scalars(select(QuantityMovement).where(QuantityMovement.operation_id == operation.id).order_by(QuantityMovement.id)))


def discard(session: Session, operation: CustomsOperation, state: OperationState) -> None:
    """The authority took nothing of the operation (``REFUSED`` by its answer, ``DROPPED`` as found by reading its
    ledger): its pending movements are removed, what it would have replaced stays as it was."""
    session.execute(delete(QuantityMovement).where(QuantityMovement.operation_id == operation.id, QuantityMovement.state == MovementState.PENDING.value))
    operation.state = state.value
    operation.updated_at = utcnow()
    session.flush()


def settle_pending_of(session: Session, document_id: str, declaration: str, *, held_there: bool) -> list[str]:
    """Before a clearance of ``declaration`` is applied here: its pending movements become reserved when the
    authority held them (``held_there``: it processed the clearance), else they are removed; their operations are
    settled. Returns the ids of the operations settled."""
    operations = session.scalars(select(CustomsOperation).where(
        CustomsOperation.document_id == document_id, CustomsOperation.declaration == declaration,
        CustomsOperation.kind == RESERVE, CustomsOperation.state.in_(OPEN),
    )).all()
    for operation in operations:
        if held_there:
            accept_reservation(session, operation)
        else:
            discard(session, operation, OperationState.DROPPED)
    return [o.id for o in operations]


def finish(operation: CustomsOperation) -> None:
    """The operation's answer was applied."""
    operation.state = OperationState.DONE.value
    operation.updated_at = utcnow()
