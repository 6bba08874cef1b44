"""One document's quantity ledger as one transaction of the registry reads and changes it, through SQLAlchemy Core.

The document, its certified lines, how many open non-conformities it has and what was written off on each line are
read in one statement (:func:`open_sheet`); the ledger is read whole (every held movement, and what was written off
per line) in one more only when the document holds movements, and the non-conformities' texts only when there are
some. On PostgreSQL a sheet to change is read once its document's row is locked instead: the document (:func:`find`),
the lock, then the whole ledger. The registry applies the rules of :mod:`hub.customs.ledger` to it, and
:meth:`Sheet.write` stores what changed in as few statements as it takes: one insert of the new movements, one update
per state reached, the document's lifecycle (the trace's events go in one insert before the commit,
:mod:`hub.customs.step`). So a check costs one to two statements, a reservation, a clearance or a write-off at once
two to five (on SQLite, plus the ``BEGIN IMMEDIATE`` of a writing transaction), and one commit.

Nothing here holds ORM objects: a caller mixing this with an ORM session flushes the session first and expires it
after (:func:`hub.customs.registry.apply_clearance`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Iterable, NamedTuple, Sequence

from sqlalchemy import Connection, Integer, String, and_, bindparam, case, cast, func, insert, literal, null, or_, select, type_coerce, union_all, update
from sqlalchemy.sql import ColumnElement

from hub import families
from hub.customs.gun import GunCode
from hub.customs.ledger import HELD, CertifiedLine, LineBalance, Movement, MovementState, balances
from hub.errors import NotFound
from hub.scope import Scope
from hub.store.models import Document, DocumentProduct, NonConformity, QuantityMovement, utcnow

_documents = Document.__table__
_products = DocumentProduct.__table__
_refusals = NonConformity.__table__
_movements = QuantityMovement.__table__
_m = _movements.c
_HELD = [state.value for state in HELD]
_IS_HELD = or_(*(_m.state == state for state in _HELD))

@dataclass(frozen=True)
class DocumentRow:
    """What the registry needs of a stored document (never its record, which only a validity check reads)."""

    id: str
    tenant: str
    correlation_id: str
    kind: str
    certificate_number: str
    status: str
    lifecycle: str
    importing_country: str | None
    exporting_country: str | None
    product_codes: tuple
    lines: tuple[CertifiedLine, ...] = ()  # the certified lines (those with a quantity), in line order
    open_refusals: int | None = None  # how many open non-conformities it has (None: not counted)

    @classmethod
    def of(cls, document: Document) -> "DocumentRow":
        """The row of an ORM document."""
        return cls(**{name: getattr(document, name) for name in _DOCUMENT_COLUMNS if name != "product_codes"},
                   product_codes=tuple(document.product_codes or ()),
                   lines=tuple(_line(p) for p in sorted(document.products, key=lambda p: p.line) if p.quantity is not None))


_DOCUMENT_COLUMNS = tuple(name for name in DocumentRow.__dataclass_fields__ if name not in ("lines", "open_refusals"))

# The statements, built once: building a statement costs more than running it.


def _document(*ledger: ColumnElement):
    """A document, how many open refusals it has, and its certified lines (one row per line), with the ``ledger``
    columns of each line."""
    return select(
        *(_documents.c[name] for name in _DOCUMENT_COLUMNS),
        select(func.count()).where(_refusals.c.document_id == _documents.c.id, _refusals.c.state == "open").scalar_subquery().label("open_refusals"),
        _products.c.line, _products.c.hs_code, _products.c.unit, _products.c.quantity, *ledger,
    ).select_from(_documents.outerjoin(_products, and_(_products.c.document_id == _documents.c.id, _products.c.quantity.is_not(None))))


# By number only, the kinds checked in Python: given the kind too, SQLite without statistics walks the index of all
# documents of that kind (ix_documents_search) instead of the few with that number.
_BY_NUMBER = (_documents.c.certificate_number == bindparam("number"),)
_NEWEST_FIRST = (_documents.c.version.desc(), _documents.c.created_at.desc(), _documents.c.id, _products.c.line)
_FIND = _document().where(*_BY_NUMBER).order_by(*_NEWEST_FIRST)
# The same with what was written off on each line, in one pass over the line's movements: NULL when the line holds
# some (reserved or pending), whose sheet then reads its ledger whole.
_held_on_line = func.count(case((_IS_HELD, 1)))
_written_off_on_line = func.coalesce(func.sum(case((_m.state == MovementState.WRITTEN_OFF.value, _m.quantity))), 0)
_WRITTEN_OFF_UNLESS_HELD = select(type_coerce(case((_held_on_line == 0, _written_off_on_line)), _m.quantity.type)).where(
    _m.document_id == _documents.c.id, _m.line == _products.c.line).scalar_subquery().label("written_off")
_FIND_WITH_LEDGER = _document(_WRITTEN_OFF_UNLESS_HELD).where(*_BY_NUMBER).order_by(*_NEWEST_FIRST)
_GET = _document().where(_documents.c.id == bindparam("document_id")).order_by(_products.c.line)
_LOCK = select(_documents.c.status, _documents.c.lifecycle).where(_documents.c.id == bindparam("document_id")).with_for_update()
_RECORD = select(_documents.c.record).where(_documents.c.id == bindparam("document_id"))
_REFUSALS = select(_refusals.c.counterpart, _refusals.c.cause_code, _refusals.c.cause_text).where(
    _refusals.c.document_id == bindparam("document_id"), _refusals.c.state == "open").order_by(_refusals.c.opened_at, _refusals.c.id)
# Every movement held on the document, then what was written off summed per line (``id`` NULL): one statement.
_LEDGER = union_all(
    select(_m.id, _m.declaration, _m.goods_item, _m.line, _m.quantity, _m.state, _m.office, _m.updated_at, _m.unit, _m.operation_id).where(
        _m.document_id == bindparam("document_id"), _IS_HELD),
    select(
        cast(null(), Integer), cast(null(), String), cast(null(), Integer), _m.line, func.sum(_m.quantity), literal(MovementState.WRITTEN_OFF.value),
        cast(null(), String), null(), cast(null(), String), cast(null(), String),
    ).where(_m.document_id == bindparam("document_id"), _m.state == MovementState.WRITTEN_OFF.value).group_by(_m.line),
)

_INSERT_MOVEMENTS = insert(_movements)
_MOVE = update(_movements).where(_m.id.in_(bindparam("ids", expanding=True))).values(state=bindparam("to_state"), updated_at=bindparam("now"))
_SET_LIFECYCLE = update(_documents).where(_documents.c.id == bindparam("document_id")).values(lifecycle=bindparam("to_lifecycle"), updated_at=bindparam("now"))


def open_sheet(connection: Connection, gun: GunCode, number: str, tenant: str, *, lock: bool = False) -> "Sheet":
    """The sheet of the document :func:`find` finds, read once its row is locked (with ``lock``). Where nothing is
    to be locked (SQLite's writers are serialised already), what was written off is read with the document, and the
    ledger is read whole only when the document holds movements; on PostgreSQL the ledger is read under the lock."""
    if lock and _locks_rows(connection):
        return Sheet.read(connection, find(connection, gun, number, tenant, lock=True), gun.code)
    found = _visible(_documents_of(connection.execute(_FIND_WITH_LEDGER, {"number": number}), with_ledger=True), gun, number, tenant)
    if found.written_off is None:
        return Sheet.read(connection, found.document, gun.code)
    return Sheet.of(connection, found.document, gun.code, entries=[], written_off=found.written_off)


def find(connection: Connection, gun: GunCode, number: str, tenant: str, *, lock: bool = False) -> DocumentRow:
    """The latest version of the document ``gun`` names by ``number`` that ``tenant`` sees; with ``lock``, its row is
    locked (PostgreSQL) against concurrent reservations and its state read again under the lock. SQLite needs no lock:
    its writers are serialised already. :class:`~hub.errors.NotFound` when there is none."""
    document = _visible(_documents_of(connection.execute(_FIND, {"number": number})), gun, number, tenant).document
    return relock(connection, document) if lock else document


def get(connection: Connection, document_id: str, *, lock: bool = False) -> DocumentRow:
    """The document with id ``document_id`` (locked as :func:`find` locks it)."""
    [found] = _documents_of(connection.execute(_GET, {"document_id": document_id}))
    return relock(connection, found.document) if lock else found.document


class _Found(NamedTuple):
    """A document as a statement of ``_document`` read it, with what was written off on each line when that is all
    its ledger holds (None: the statement did not read it, or the document holds movements)."""

    document: DocumentRow
    written_off: dict[int, Decimal] | None


def _visible(found: list[_Found], gun: GunCode, number: str, tenant: str) -> _Found:
    """The first of ``found`` (newest first) that ``gun`` names and ``tenant`` sees."""
    scope = Scope.of(tenant)
    for one in found:
        document = one.document
        if gun.matches(document.kind, document.certificate_number) and scope.sees(document.tenant, document.importing_country, document.exporting_country):
            return one
    raise NotFound(f"no {gun.label} numbered {number!r} is known to the hub for {tenant}", where="number")


def _documents_of(rows, *, with_ledger: bool = False) -> list[_Found]:
    """Documents from the rows of a statement of ``_document``, a document's rows together (one per certified line)."""
    found: dict[str, tuple] = {}
    for row in rows:
        first, lines, written_off = found.setdefault(row.id, (row, [], {} if with_ledger else None))
        if row.line is not None:
            lines.append(_line(row))
            if written_off is not None:
                written_off[row.line] = row.written_off
    return [_Found(_document_row(first, lines), None if written_off is None or None in written_off.values() else written_off)
            for first, lines, written_off in found.values()]


#: The columns a :class:`DocumentRow` takes as they are read: all but the last, its product codes.
_AS_READ = len(_DOCUMENT_COLUMNS) - 1


def _document_row(row, lines: list[CertifiedLine]) -> DocumentRow:
    return DocumentRow(*row[:_AS_READ], tuple(row.product_codes or ()), tuple(lines), row.open_refusals)


def _locks_rows(connection: Connection) -> bool:
    return connection.dialect.name != "sqlite"


def _entry(row) -> "Entry":
    return Entry(
        Movement(declaration=row.declaration, goods_item=row.goods_item, line=row.line, quantity=row.quantity,
                 state=MovementState(row.state), office=row.office, at=row.updated_at),
        id=row.id, unit=row.unit, operation_id=row.operation_id,
    )


def _refusals_of(connection: Connection, document: DocumentRow) -> list[str]:
    """The open non-conformities' reasons (read only when the document has some, or they were not counted)."""
    if document.open_refusals == 0:
        return []
    return [f"refused by {r.counterpart}: {r.cause_code}" + (f" ({r.cause_text})" if r.cause_text else "")
            for r in connection.execute(_REFUSALS, {"document_id": document.id})]


def _line(product) -> CertifiedLine:
    return CertifiedLine(line=product.line, class_code=product.hs_code, unit=product.unit, quantity=product.quantity)


def relock(connection: Connection, document: DocumentRow) -> DocumentRow:
    """``document`` with its row locked (PostgreSQL) and its status and lifecycle as they are under the lock."""
    if not _locks_rows(connection):
        return document
    status, lifecycle = connection.execute(_LOCK, {"document_id": document.id}).one()
    return replace(document, status=status, lifecycle=lifecycle)


def valid_until(connection: Connection, document: DocumentRow) -> datetime | None:
    """The last moment the document may be used, as its family reads it from the record (read only for families
    with a validity: CITES permits)."""
    family = families.for_kind(document.kind)
    if family is None or not family.valid_until:
        return None
    return family.valid_until(connection.scalar(_RECORD, {"document_id": document.id}))


@dataclass
class Entry:
    """One movement of the sheet: a held one as read (``id`` set), or one this transaction adds (``id`` None)."""

    movement: Movement
    id: int | None = None
    unit: str | None = None
    operation_id: str | None = None
    changed: bool = False


@dataclass
class Sheet:
    """A document's ledger in one transaction: its certified lines, open refusals (non-conformities), the movements
    held on it (reserved or pending, in the order they were made) and what was written off per line; then what the
    transaction changes (see the module's docstring)."""

    document: DocumentRow
    code: str
    lines: list[CertifiedLine]
    refusals: list[str]
    entries: list[Entry]
    written_off: dict[int, Decimal]
    lifecycle_changed: bool = False
    #: The reasons it is not valid that no step of the registry changes, once the registry has worked them out.
    lasting_reasons: list[str] | None = None

    def __post_init__(self) -> None:
        # What was written off before this transaction counts on the lines as one movement per line.
        self._written_off = [Movement(declaration="", goods_item=0, line=line, quantity=total, state=MovementState.WRITTEN_OFF)
                             for line, total in self.written_off.items()]

    @classmethod
    def read(cls, connection: Connection, document: DocumentRow, code: str) -> "Sheet":
        """The sheet of ``document`` (locked by the caller when it is to be changed) as ``code`` names it."""
        entries, written_off = [], {}
        for row in connection.execute(_LEDGER, {"document_id": document.id}):
            if row.id is None:
                written_off[row.line] = row.quantity
            else:
                entries.append(_entry(row))
        return cls.of(connection, document, code, entries=entries, written_off=written_off)

    @classmethod
    def of(cls, connection: Connection, document: DocumentRow, code: str, *, entries: list["Entry"], written_off: dict[int, Decimal]) -> "Sheet":
        """The sheet of ``document`` whose ledger was read: its held movements and what was written off per line."""
        entries.sort(key=lambda e: e.id)
        return cls(document=document, code=code, lines=list(document.lines), refusals=_refusals_of(connection, document), entries=entries, written_off=written_off)

    # --- what it holds ------------------------------------------------------------------------------------------------

    def held(self, declaration: str | None = None, *, states: Sequence[MovementState] = HELD) -> list[Entry]:
        """The entries held (in ``states``), of ``declaration`` only when given."""
        return [e for e in self.entries if e.movement.state in states and (declaration is None or e.movement.declaration == declaration)]

    def movements(self) -> list[Movement]:
        """Every movement that counts on the lines: the held and changed ones, and what was written off before, one
        movement per line."""
        return self._written_off + [e.movement for e in self.entries]

    def balances(self) -> list[LineBalance]:
        return balances(self.lines, self.movements())

    # --- what the transaction changes -----------------------------------------------------------------------------

    def add(self, movements: Sequence[Movement], *, operation_id: str | None = None) -> list[Entry]:
        """New movements on the document's lines (stored by :meth:`write`)."""
        units = {line.line: line.unit for line in self.lines}
        added = [Entry(m, unit=units.get(m.line), operation_id=operation_id, changed=True) for m in movements]
        self.entries += added
        return added

    def move(self, entries: Sequence[Entry], state: MovementState, *, at: datetime) -> None:
        """``entries`` reach ``state`` (stored by :meth:`write`)."""
        self.change((entry, replace(entry.movement, state=state, at=at)) for entry in entries)

    def change(self, changes: Iterable[tuple[Entry, Movement]]) -> None:
        """Each entry's movement becomes the one given with it (stored by :meth:`write`)."""
        for entry, movement in changes:
            entry.movement = movement
            entry.changed = True

    def set_lifecycle(self, lifecycle: str) -> None:
        self.document = replace(self.document, lifecycle=lifecycle)
        self.lifecycle_changed = True

    def write(self, connection: Connection) -> None:
        """Store what changed: the new movements in one insert, the changed ones in one update per state reached,
        the lifecycle."""
        now = utcnow()
        new = [e for e in self.entries if e.changed and e.id is None]
        if new:
            connection.execute(_INSERT_MOVEMENTS, [{
                "document_id": self.document.id, "line": e.movement.line, "declaration": e.movement.declaration,
                "goods_item": e.movement.goods_item, "document_code": self.code, "quantity": e.movement.quantity, "unit": e.unit,
                "state": e.movement.state.value, "office": e.movement.office, "operation_id": e.operation_id,
                "created_at": e.movement.at or now, "updated_at": e.movement.at or now,
            } for e in new])
        moved: dict[MovementState, list[int]] = {}
        for e in self.entries:
            if e.changed and e.id is not None:
                moved.setdefault(e.movement.state, []).append(e.id)
        for state, ids in moved.items():
            connection.execute(_MOVE, {"ids": ids, "to_state": state.value, "now": now})
        if self.lifecycle_changed:
            connection.execute(_SET_LIFECYCLE, {"document_id": self.document.id, "to_lifecycle": self.document.lifecycle, "now": now})
        for e in self.entries:
            e.changed = False
        self.lifecycle_changed = False
