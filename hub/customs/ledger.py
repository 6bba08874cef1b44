"""The quantity ledger customs keeps against a certificate or permit: what was certified per line, what declarations
have reserved, written off (consumed) and released. Pure functions over values, no I/O: the hub's registry keeps the
ledger in its database, the TRACES-NT sandbox in memory, and both answer customs with the same rules.

A declaration reserves quantities line by line (all or nothing); when the goods are released the reservation is
written off; when the declaration is invalidated it is released and the quantity is available again. A line's
available quantity is what was certified minus what is reserved or written off.

Failure reasons reuse the CSW-CERTEX ``ReservationFailureReason`` codes seen in the TRACES-NT captures; their
meanings are inferred from the capture names (``14-wrong-code`` answers ``03``), not from a specification.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Iterable, Sequence


class MovementState(str, Enum):
    """Where one declared quantity stands. ``PENDING`` is a reservation sent to a CHED authority whose answer is not
    known yet: it is held like a reservation (nothing else may take it) until the answer, a repeat of the request or
    the reconciliation settles it."""

    PENDING = "pending"
    RESERVED = "reserved"
    WRITTEN_OFF = "written_off"
    RELEASED = "released"


#: The states that hold a quantity on its line until the declaration is decided.
HELD = (MovementState.PENDING, MovementState.RESERVED)


class FailureReason(str, Enum):
    """Why a reservation was refused; the value is the CSW-CERTEX ``ReservationFailureReason``."""

    COMMODITY_MISMATCH = "03"  # no such line, or its commodity code or unit differs from the declaration's
    QUANTITY_EXCEEDED = "04"  # more than remains on the line

    @property
    def text(self) -> str:
        return _FAILURE_TEXT[self]


_FAILURE_TEXT = {
    FailureReason.COMMODITY_MISMATCH: "the declared goods item does not match the certificate line (line number, commodity code or unit)",
    FailureReason.QUANTITY_EXCEEDED: "the declared quantity exceeds the quantity remaining on the certificate line",
}


class Clearance(str, Enum):
    """What customs tells the registry once a declaration is decided; the value is ``GoodsClearanceInformation``."""

    RELEASED = "01"  # goods released for free circulation: reservations are written off
    INVALIDATED = "02"  # declaration invalidated or deleted: reservations are released


class ClearanceOutcome(str, Enum):
    """``QuantityManagementOutcome`` of a clearance (captures: ``01`` first time, ``03`` when repeated)."""

    PROCESSED = "01"
    NOTHING_TO_PROCESS = "03"


@dataclass(frozen=True)
class CertifiedLine:
    """One line of the certificate: its number, commodity code (HS/CN prefix), unit and certified quantity."""

    line: int
    class_code: str | None
    unit: str | None
    quantity: Decimal


@dataclass(frozen=True)
class DeclaredItem:
    """One goods item of a customs declaration, set against one certificate line."""

    goods_item: int
    line: int
    quantity: Decimal
    class_code: str | None = None
    unit: str | None = None


@dataclass(frozen=True)
class Movement:
    """A quantity a declaration took from one line, and where it stands."""

    declaration: str
    goods_item: int
    line: int
    quantity: Decimal
    state: MovementState
    office: str | None = None
    at: datetime | None = None

    def as_json(self) -> dict:
        """The movement as customs APIs show it."""
        return {
            "declaration": self.declaration, "goods_item": self.goods_item, "line": self.line,
            "quantity": format_quantity(self.quantity), "state": self.state.value, "office": self.office,
            "at": self.at.isoformat() if self.at else None,
        }


@dataclass(frozen=True)
class LineBalance:
    """One line's certified, reserved (pending included), written-off and available quantities."""

    line: CertifiedLine
    reserved: Decimal
    written_off: Decimal

    @property
    def available(self) -> Decimal:
        return self.line.quantity - self.reserved - self.written_off

    def as_json(self) -> dict:
        """The balance as customs APIs show it."""
        return {
            "line": self.line.line, "class_code": self.line.class_code, "unit": self.line.unit,
            "certified": format_quantity(self.line.quantity), "reserved": format_quantity(self.reserved),
            "written_off": format_quantity(self.written_off), "available": format_quantity(self.available),
        }


@dataclass(frozen=True)
class Reservation:
    """The answer to a reservation: the movements to store, or why nothing was reserved."""

    movements: tuple[Movement, ...] = ()
    failure: FailureReason | None = None
    failed_item: DeclaredItem | None = None

    @property
    def accepted(self) -> bool:
        return self.failure is None


def balances(lines: Iterable[CertifiedLine], movements: Iterable[Movement]) -> list[LineBalance]:
    """Each line's balance, in line order."""
    movements = list(movements)
    out = []
    for line in sorted(lines, key=lambda l: l.line):
        taken = [m for m in movements if m.line == line.line]
        out.append(LineBalance(
            line=line,
            reserved=sum((m.quantity for m in taken if m.state in HELD), Decimal(0)),
            written_off=sum((m.quantity for m in taken if m.state is MovementState.WRITTEN_OFF), Decimal(0)),
        ))
    return out


def reserve(
    lines: Sequence[CertifiedLine],
    movements: Sequence[Movement],
    *,
    declaration: str,
    items: Sequence[DeclaredItem],
    office: str | None = None,
    at: datetime | None = None,
) -> Reservation:
    """Reserve every item of ``declaration`` or none. A declaration reserving a goods item again (an amendment)
    replaces its earlier reservation of that item, so repeating a request changes nothing."""
    by_line = {line.line: line for line in lines}
    # Reservations this request replaces do not count against it.
    replaced = superseded(movements, declaration=declaration, items=items)
    kept = [m for m in movements if m not in replaced]
    available = {b.line.line: b.available for b in balances(lines, kept)}
    for item in items:
        line = by_line.get(item.line)
        if line is None or not _same_commodity(line.class_code, item.class_code) or not _same_unit(line.unit, item.unit):
            return Reservation(failure=FailureReason.COMMODITY_MISMATCH, failed_item=item)
        if item.quantity <= 0 or item.quantity > available[item.line]:
            return Reservation(failure=FailureReason.QUANTITY_EXCEEDED, failed_item=item)
        available[item.line] -= item.quantity
    return Reservation(movements=tuple(
        Movement(declaration=declaration, goods_item=i.goods_item, line=i.line, quantity=i.quantity, state=MovementState.RESERVED, office=office, at=at)
        for i in items
    ))


def clear(movements: Sequence[Movement], *, declaration: str, clearance: Clearance, at: datetime | None = None) -> tuple[ClearanceOutcome, list[tuple[Movement, Movement]]]:
    """Write off (goods released) or release (declaration invalidated) what ``declaration`` holds reserved.
    Returns the outcome and each (old, new) movement; a repeat finds nothing reserved and answers
    :attr:`ClearanceOutcome.NOTHING_TO_PROCESS`."""
    target = MovementState.WRITTEN_OFF if clearance is Clearance.RELEASED else MovementState.RELEASED
    changes = [(m, replace(m, state=target, at=at or m.at)) for m in movements if m.declaration == declaration and m.state is MovementState.RESERVED]
    return (ClearanceOutcome.PROCESSED if changes else ClearanceOutcome.NOTHING_TO_PROCESS), changes


def superseded(movements: Sequence[Movement], *, declaration: str, items: Sequence[DeclaredItem]) -> list[Movement]:
    """The held (reserved or pending) movements a new reservation of ``items`` by ``declaration`` replaces (to be
    released)."""
    replacing = {(i.goods_item, i.line) for i in items}
    return [m for m in movements if m.declaration == declaration and m.state in HELD and (m.goods_item, m.line) in replacing]


def fully_consumed(lines: Sequence[CertifiedLine], movements: Sequence[Movement]) -> bool:
    """True once every line's certified quantity has been written off."""
    return bool(lines) and all(b.written_off >= b.line.quantity for b in balances(lines, movements))


def format_quantity(quantity: Decimal) -> str:
    """A quantity as customs writes it: no exponent, no trailing zeros (``600``, ``0.001``)."""
    text = format(quantity, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _same_commodity(certified: str | None, declared: str | None) -> bool:
    # A declaration's CN code is usually more precise than the certificate's (040100 against 0401), or the reverse.
    if not certified or not declared:
        return True
    # A declared code shorter than an HS heading (4 digits) names too little to match anything.
    return declared.startswith(certified) or (len(declared) >= 4 and certified.startswith(declared))


def _same_unit(certified: str | None, declared: str | None) -> bool:
    return not certified or not declared or certified.upper() == declared.upper()
