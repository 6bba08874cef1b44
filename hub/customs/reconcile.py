"""Reconciling the hub's quantity ledger with a CHED authority's (TRACES-NT's CSW-CERTEX): for each CHED with
movements, read the authority's ledger (``ProcessedChedRequest`` with ``QuantityManagementIndication`` 0: its
``ReservedQuantity`` and ``ConsumedQuantity`` per MRN, goods item and line), report every difference and, with
``repair``, settle it.

First the operations whose outcome is unknown (the call timed out, or a process died in it) are settled from what the
authority holds:

* a reservation the authority holds as sent was meant (the declaration is ours, customs asked for it): **adopted**,
  held → reserved (customs was answered 502; its repeat is answered accepted, its invalidation releases it);
* a reservation it does not hold never arrived: **dropped** (what customs was told, 502, stays true);
* a clearance whose declaration it no longer holds reserved was applied there: applied here; else it is **sent
  again** (a repeat is answered ``03``, nothing to process, when it had been applied).

Then the two ledgers are compared per declaration, goods item and line (reserved, written off / consumed):

* held there, nothing held here for the declaration (a reservation given back here but not there): **released on
  TRACES-NT** (``ChedClearanceRequest`` 02);
* written off here, still reserved there: **written off on TRACES-NT** (``ChedClearanceRequest`` 01);
* reserved here, not or otherwise there: **reserved again on TRACES-NT** (the same goods items: it replaces);
* a declaration the hub never saw (another customs office of the EU reserving on the same CHED): **not ours**,
  reported and left alone; anything else is reported for a person.

Operations whose last attempt went out less than ``grace`` seconds ago (or after the authority's ledger was read) may
still land there: they are reported as in flight and their declaration is left to a later run. Calls to the authority are made outside any
database transaction; each repair is traced on the document (``customs.reconciled``).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Iterable

from sqlalchemy import select

from hub.customs import operations
from hub.customs.gun import code_for
from hub.customs.ledger import HELD, Clearance, DeclaredItem, Movement, MovementState, format_quantity
from hub.customs.operations import OPEN, RESERVE, OperationState
from hub.customs.registry import Authority, CustomsRegistry, apply_clearance
from hub.errors import DeliveryError
from hub.store.models import CustomsOperation, Document, QuantityMovement, utcnow
from hub.store.trace import add_event

log = logging.getLogger(__name__)

#: Seconds an operation may stay pending (in flight) before the reconciliation takes its outcome as unknown.
GRACE = 300.0
#: Seconds between two runs from the worker's polls (CHEDs with open operations), between two passes over all CHEDs,
#: and how many CHEDs of such a pass one run looks at.
INTERVAL, FULL_INTERVAL, BATCH = 60.0, 3600.0, 20
_ACTOR = "customs:reconciliation"
IN_FLIGHT = "in flight: left to a later run"
_Key = tuple[str, int, int]  # declaration, goods item, line


@dataclass(frozen=True)
class Difference:
    """One difference between the ledgers: where (CHED, declaration, goods item, line), what each holds (``ours``,
    ``theirs``: e.g. ``pending 100``, ``reserved 50``, ``written off 20``, ``-``), and the repair done (or, without
    ``repair``, to do)."""

    ched: str
    certificate_number: str
    declaration: str
    goods_item: int | None
    line: int | None
    ours: str
    theirs: str
    action: str

    def as_json(self) -> dict:
        return {"ched": self.ched, "certificate_number": self.certificate_number, "declaration": self.declaration, "goods_item": self.goods_item,
                "line": self.line, "ours": self.ours, "theirs": self.theirs, "action": self.action}


@dataclass(frozen=True)
class LineTotals:
    """One CHED line as each ledger holds it after the run: reserved (pending included) and written off (consumed);
    ``theirs`` counts only the declarations the hub knows, ``foreign`` those it does not (other customs offices)."""

    line: int
    ours_reserved: Decimal
    ours_written_off: Decimal
    theirs_reserved: Decimal
    theirs_written_off: Decimal
    foreign: Decimal = Decimal(0)

    @property
    def agree(self) -> bool:
        return (self.ours_reserved, self.ours_written_off) == (self.theirs_reserved, self.theirs_written_off)

    def as_json(self) -> dict:
        return {"line": self.line, "ours": {"reserved": format_quantity(self.ours_reserved), "written_off": format_quantity(self.ours_written_off)},
                "theirs": {"reserved": format_quantity(self.theirs_reserved), "written_off": format_quantity(self.theirs_written_off)},
                "foreign": format_quantity(self.foreign), "agree": self.agree}


@dataclass
class ChedReconciliation:
    """One CHED's run: its differences (as found), its lines after the run, or why it could not be read."""

    authority: str
    ched: str
    certificate_number: str
    document_id: str
    differences: list[Difference] = field(default_factory=list)
    lines: list[LineTotals] = field(default_factory=list)
    error: str | None = None

    @property
    def agree(self) -> bool:
        return self.error is None and all(line.agree for line in self.lines)

    def as_json(self) -> dict:
        return {"authority": self.authority, "ched": self.ched, "certificate_number": self.certificate_number, "document_id": self.document_id,
                "agree": self.agree, "error": self.error, "lines": [l.as_json() for l in self.lines], "differences": [d.as_json() for d in self.differences]}


@dataclass
class Report:
    """A reconciliation run: every CHED looked at; ``repaired`` says whether differences were repaired."""

    repaired: bool
    cheds: list[ChedReconciliation] = field(default_factory=list)

    @property
    def differences(self) -> list[Difference]:
        return [d for ched in self.cheds for d in ched.differences]

    @property
    def agree(self) -> bool:
        return all(ched.agree for ched in self.cheds)

    @property
    def needs_attention(self) -> bool:
        """Whether anything is left: a CHED not read, lines that differ, a difference to do or for a person."""
        return not self.agree or any(d.action.startswith(("to do", "for a person")) for d in self.differences)

    def as_json(self) -> dict:
        return {"repaired": self.repaired, "agree": self.agree, "needs_attention": self.needs_attention, "cheds": [c.as_json() for c in self.cheds]}


@dataclass(frozen=True)
class _Remote:
    """A repair the authority must make: a clearance of the declaration, or a reservation of items again."""

    declaration: str
    clearance: Clearance | None = None
    items: tuple[DeclaredItem, ...] = ()
    office: str | None = None
    operation_id: str | None = None  # a clearance operation this settles


class Reconciler:
    """Reconciles the registry's CHEDs with their authorities (see the module's docstring)."""

    def __init__(self, registry: CustomsRegistry, *, grace: float = GRACE) -> None:
        self.registry = registry
        self.database = registry.database
        self.grace = grace
        self._ran_at: float | None = None
        self._full_at: float | None = None
        self._cursor: str | None = None  # where the pass over all CHEDs stands (None: no pass under way)

    def run(self, *, repair: bool = False, only_open: bool = False, after: str | None = None, limit: int | None = None) -> Report:
        """Compare every CHED with movements (``only_open``: those with open operations; ``after`` and ``limit``: a
        batch of them in document id order) and, with ``repair``, settle and repair the differences."""
        report = Report(repaired=repair)
        for document_id, authority in self._cheds(only_open=only_open, after=after, limit=limit):
            report.cheds.append(self._reconcile(document_id, authority, repair=repair))
        return report

    def run_periodically(self, *, every: float = INTERVAL, full_every: float = FULL_INTERVAL, batch: int = BATCH) -> int:
        """For the worker's polls: at most once per ``every`` seconds, repair the CHEDs with open operations, and once
        per ``full_every`` go through all of them, ``batch`` CHEDs a run (so that one run stays short beside the ack
        polling it shares a loop with); the number of differences found."""
        now = time.monotonic()
        if self._ran_at is not None and now - self._ran_at < every:
            return 0
        self._ran_at = now
        reports = [self.run(repair=True, only_open=True)]
        if self._cursor is None and (self._full_at is None or now - self._full_at >= full_every):
            self._full_at, self._cursor = now, ""
        if self._cursor is not None:
            reports.append(self.run(repair=True, after=self._cursor, limit=batch))
            looked = [ched.document_id for ched in reports[-1].cheds]
            self._cursor = looked[-1] if len(looked) == batch else None
        differences = [d for report in reports for d in report.differences]
        for d in differences:
            log.warning("customs reconciliation: CHED %s declaration %s goods item %s line %s: ours %s, theirs %s: %s",
                        d.ched, d.declaration, d.goods_item, d.line, d.ours, d.theirs, d.action)
        return len(differences)

    # --- one CHED ------------------------------------------------------------------------------------------------------

    def _cheds(self, *, only_open: bool, after: str | None = None, limit: int | None = None) -> list[tuple[str, Authority]]:
        with self.database.sessions() as session:
            with_operations = select(CustomsOperation.document_id)
            if only_open:
                ids = session.scalars(with_operations.where(CustomsOperation.state.in_(OPEN)).distinct()).all()
            else:
                ids = session.scalars(select(QuantityMovement.document_id).distinct().union(with_operations.distinct())).all()
            found = []
            for document_id in sorted(i for i in set(ids) if after is None or i > after):
                authority = self.registry.authority_of(session, document_id)
                if authority is not None:
                    found.append((document_id, authority))
                if limit is not None and len(found) == limit:
                    break
        return found

    def _reconcile(self, document_id: str, authority: Authority, *, repair: bool) -> ChedReconciliation:
        with self.database.sessions() as session:
            document = session.get(Document, document_id)
            result = ChedReconciliation(authority.name, authority.reference, document.certificate_number, document_id)
        try:
            read_at = utcnow()
            theirs = _their_ledger(authority.connector.certex_read(authority.reference))
            remote = self._settle_and_compare(result, theirs, read_at, repair=repair)
            if repair and remote:
                self._repair_remotely(result, authority, remote)
            if repair:
                theirs = _their_ledger(authority.connector.certex_read(authority.reference))
        except DeliveryError as exc:
            result.error = f"{authority.name} could not be read or repaired: {exc}"
            return result
        with self.database.sessions() as session:
            result.lines = _line_totals(_our_ledger(session, document_id), theirs, _declarations_of(session, document_id))
        return result

    def _settle_and_compare(self, result: ChedReconciliation, theirs: dict[_Key, _Sums], read_at, *, repair: bool) -> list[_Remote]:
        """In one transaction (the document locked): settle the open operations from what the authority holds, then
        compare what is left; returns the repairs the authority must make."""
        with self.database.transaction() as session:
            document = _lock(session, result.document_id)
            code = _code(document)
            stale = read_at - timedelta(seconds=self.grace)
            in_flight: set[str] = set()
            settled: set[str] = set()
            remote: list[_Remote] = []
            open_operations = session.scalars(select(CustomsOperation).where(CustomsOperation.document_id == document.id, CustomsOperation.state.in_(OPEN)).order_by(CustomsOperation.created_at)).all()
            for operation in open_operations:
                # An attempt sent less than ``grace`` ago may still land after the read: its outcome is not read yet.
                if not operation.updated_at < min(read_at, stale):
                    in_flight.add(operation.declaration)
                    there = [t for key, t in theirs.items() if key[0] == operation.declaration]
                    held_there = _Sums(held=sum((t.held for t in there), Decimal(0)), written_off=sum((t.written_off for t in there), Decimal(0)))
                    result.differences.append(_difference(result, (operation.declaration, None, None), f"{operation.kind} {operation.state}",
                                                          held_there.describe(), f"{IN_FLIGHT} (sent less than {self.grace:g} s ago)"))
                elif operation.kind == RESERVE:
                    settled.add(operation.declaration)
                    self._settle_reservation(session, result, document, operation, theirs, repair=repair)
                else:
                    settled.add(operation.declaration)
                    remote += self._settle_clearance(session, result, document, code, operation, theirs, repair=repair)
            ours = _our_ledger(session, document.id)
            known = _declarations_of(session, document.id)
            # Without repair nothing was settled: the declarations an open operation explains are reported once, above.
            skipped = in_flight | {r.declaration for r in remote} | (set() if repair else settled)
            for key in sorted(set(ours) | set(theirs)):
                declaration = key[0]
                mine, there = ours.get(key, _NOTHING), theirs.get(key, _NOTHING)
                if declaration in skipped or mine.same(there):
                    continue
                action, repair_with = self._compare(session, document.id, key, mine, there, known)
                result.differences.append(_difference(result, key, mine.describe(), there.describe(), action if repair or repair_with is None else f"to do: {action}"))
                if repair and repair_with is not None and all(r.declaration != declaration or r.clearance != repair_with.clearance for r in remote):
                    remote.append(repair_with)
            return _merge_reservations(remote) if repair else []

    def _settle_reservation(self, session, result, document, operation: CustomsOperation, theirs, *, repair: bool) -> None:
        items = operations.items_of(operation)
        held = all(theirs.get((operation.declaration, i.goods_item, i.line), _NOTHING).held == i.quantity for i in items)
        action = "adopted (TRACES-NT holds it: the reservation was meant)" if held else "dropped (TRACES-NT never received it)"
        for item in items:
            there = theirs.get((operation.declaration, item.goods_item, item.line), _NOTHING)
            result.differences.append(_difference(result, (operation.declaration, item.goods_item, item.line), f"pending {format_quantity(item.quantity)}",
                                                  there.describe(), action if repair else f"to do: {action}"))
        if not repair:
            return
        if held:
            operations.accept_reservation(session, operation)
        else:
            operations.discard(session, operation, OperationState.DROPPED)
        add_event(session, document=document, event="customs.reconciled", actor=_ACTOR, state=document.lifecycle,
                  detail={"operation": operation.id, "declaration": operation.declaration, "by": operation.ched_reference, "outcome": operation.state})

    def _settle_clearance(self, session, result, document, code: str, operation: CustomsOperation, theirs, *, repair: bool) -> list[_Remote]:
        clearance = Clearance(operation.clearance)
        still_reserved = any(key[0] == operation.declaration and there.held for key, there in theirs.items())
        action = "cleared on TRACES-NT again" if still_reserved else "applied here (TRACES-NT had applied it)"
        result.differences.append(_difference(result, (operation.declaration, None, None), f"clearance {clearance.name.lower()} unknown",
                                              "still reserved" if still_reserved else "cleared", action if repair else f"to do: {action}"))
        if not repair:
            return []
        if still_reserved:
            return [_Remote(operation.declaration, clearance=clearance, office=operation.office, operation_id=operation.id)]
        apply_clearance(session, document, code, declaration=operation.declaration, clearance=clearance, office=operation.office, operation_id=operation.id, held_there=True)
        return []

    def _compare(self, session, document_id: str, key: _Key, mine: _Sums, there: _Sums, known: set[str]) -> tuple[str, _Remote | None]:
        """What to do about one difference: (the action, the repair the authority must make or None)."""
        declaration = key[0]
        if declaration not in known:
            return "not ours (a declaration the hub never saw): left alone", None
        held_here = _held_rows_of(session, document_id, declaration)
        if there.held and not held_here and mine.written_off == there.written_off:
            return "released on TRACES-NT", _Remote(declaration, clearance=Clearance.INVALIDATED)
        if there.held and not held_here and mine.written_off > there.written_off:
            return "written off on TRACES-NT", _Remote(declaration, clearance=Clearance.RELEASED)
        row = next((r for r in held_here if (r.goods_item, r.line) == key[1:] and r.state == MovementState.RESERVED.value), None)
        if row is not None and mine.written_off == there.written_off:
            item = DeclaredItem(goods_item=row.goods_item, line=row.line, quantity=mine.held, unit=row.unit)
            return "reserved again on TRACES-NT", _Remote(declaration, items=(item,), office=row.office)
        return "for a person: the ledgers disagree in a way no repair settles safely", None

    def _repair_remotely(self, result: ChedReconciliation, authority: Authority, remote: list[_Remote]) -> None:
        """Make the authority's repairs, outside any transaction; each one's outcome is traced (and applied here for a
        clearance operation it settles)."""
        for repair in remote:
            outcome: str
            if repair.clearance is not None:
                answer = authority.connector.certex_clear(authority.reference, declaration=repair.declaration, clearance=repair.clearance, office=repair.office)
                outcome = f"clearance {repair.clearance.value}: {answer.outcome.value}"
            else:
                answer = authority.connector.certex_reserve(authority.reference, declaration=repair.declaration, items=list(repair.items), office=repair.office)
                outcome = "reserved" if answer.reservation_accepted is not False else f"refused ({answer.failure.value if answer.failure else '?'})"
                if answer.reservation_accepted is False:
                    result.differences.append(_difference(result, (repair.declaration, repair.items[0].goods_item, repair.items[0].line), "reserved", "refused",
                                                          f"for a person: TRACES-NT refused the reservation again ({outcome})"))
            with self.database.transaction() as session:
                document = _lock(session, result.document_id)
                if repair.operation_id is not None:
                    apply_clearance(session, document, _code(document), declaration=repair.declaration, clearance=repair.clearance, office=repair.office,
                                    operation_id=repair.operation_id, held_there=True)
                add_event(session, document=document, event="customs.reconciled", actor=_ACTOR, state=document.lifecycle,
                          detail={"declaration": repair.declaration, "by": authority.reference, "operation": repair.operation_id, "outcome": outcome})


# --- the two ledgers ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sums:
    """What one ledger holds for one (declaration, goods item, line): held (reserved; pending, here) and written off
    (consumed, there)."""

    held: Decimal = Decimal(0)
    written_off: Decimal = Decimal(0)
    pending: bool = False

    def same(self, other: "_Sums") -> bool:
        return (self.held, self.written_off) == (other.held, other.written_off)

    def describe(self) -> str:
        parts = [f"{'pending' if self.pending else 'reserved'} {format_quantity(self.held)}"] if self.held else []
        parts += [f"written off {format_quantity(self.written_off)}"] if self.written_off else []
        return ", ".join(parts) or "-"


_NOTHING = _Sums()


def _their_ledger(information) -> dict[_Key, _Sums]:
    """The authority's ``ReservedQuantity`` and ``ConsumedQuantity`` summed per (declaration, goods item, line)."""
    return _summed(list(information.reserved) + list(information.consumed))


def _our_ledger(session, document_id: str) -> dict[_Key, _Sums]:
    rows = session.scalars(select(QuantityMovement).where(QuantityMovement.document_id == document_id, QuantityMovement.state != MovementState.RELEASED.value)).all()
    return _summed(Movement(declaration=r.declaration, goods_item=r.goods_item, line=r.line, quantity=r.quantity, state=MovementState(r.state)) for r in rows)


def _summed(movements: Iterable[Movement]) -> dict[_Key, _Sums]:
    held: dict[_Key, Decimal] = defaultdict(Decimal)
    written: dict[_Key, Decimal] = defaultdict(Decimal)
    pending: set[_Key] = set()
    for m in movements:
        key = (m.declaration, m.goods_item, m.line)
        if m.state is MovementState.WRITTEN_OFF:
            written[key] += m.quantity
        elif m.state is not MovementState.RELEASED:
            held[key] += m.quantity
            if m.state is MovementState.PENDING:
                pending.add(key)
    return {key: _Sums(held=held.get(key, Decimal(0)), written_off=written.get(key, Decimal(0)), pending=key in pending) for key in set(held) | set(written)}


def _line_totals(ours: dict[_Key, _Sums], theirs: dict[_Key, _Sums], known: set[str]) -> list[LineTotals]:
    lines = sorted({key[2] for key in set(ours) | set(theirs)})
    out = []
    for line in lines:
        mine = [m for key, m in ours.items() if key[2] == line]
        there = [m for key, m in theirs.items() if key[2] == line and key[0] in known]
        foreign = [m for key, m in theirs.items() if key[2] == line and key[0] not in known]
        out.append(LineTotals(
            line=line, ours_reserved=sum((m.held for m in mine), Decimal(0)), ours_written_off=sum((m.written_off for m in mine), Decimal(0)),
            theirs_reserved=sum((m.held for m in there), Decimal(0)), theirs_written_off=sum((m.written_off for m in there), Decimal(0)),
            foreign=sum((m.held + m.written_off for m in foreign), Decimal(0)),
        ))
    return out


def _declarations_of(session, document_id: str) -> set[str]:
    """Every declaration the hub saw on the document (movements or operations, in any state)."""
    moved = session.scalars(select(QuantityMovement.declaration).where(QuantityMovement.document_id == document_id).distinct()).all()
    sent = session.scalars(select(CustomsOperation.declaration).where(CustomsOperation.document_id == document_id).distinct()).all()
    return set(moved) | set(sent)


def _held_rows_of(session, document_id: str, declaration: str) -> list[QuantityMovement]:
    return list(session.scalars(select(QuantityMovement).where(
        QuantityMovement.document_id == document_id, QuantityMovement.declaration == declaration, QuantityMovement.state.in_([s.value for s in HELD]),
    ).order_by(QuantityMovement.id)))


def _merge_reservations(remote: list[_Remote]) -> list[_Remote]:
    """One reservation per declaration (its items together), clearances as they are."""
    merged: dict[str, _Remote] = {}
    out = []
    for repair in remote:
        if repair.clearance is not None:
            out.append(repair)
        elif repair.declaration in merged:
            earlier = merged[repair.declaration]
            merged[repair.declaration] = _Remote(repair.declaration, items=earlier.items + repair.items, office=earlier.office or repair.office)
        else:
            merged[repair.declaration] = repair
    return out + list(merged.values())


def _difference(result: ChedReconciliation, key: tuple, ours: str, theirs: str, action: str) -> Difference:
    return Difference(ched=result.ched, certificate_number=result.certificate_number, declaration=key[0], goods_item=key[1], line=key[2],
                      ours=ours, theirs=theirs, action=action)


def _code(document: Document) -> str:
    """The GUN code of a CHED (the registry's answers name it)."""
    return code_for(document.kind, document.certificate_number) or document.kind


def _lock(session, document_id: str) -> Document:
    session.execute(select(Document.id).where(Document.id == document_id).with_for_update())
    return session.get(Document, document_id)
