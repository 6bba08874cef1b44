"""One document's quantity ledger as one transaction of the registry reads and changes it, through SQLAlchemy Core.

The document, its certified lines and how many open non-conformities it has are read in one statement (:func:`find`;
on PostgreSQL its row is then locked), the :class:`Sheet` in one more (every held movement, and what was written off
summed per line; the non-conformities' texts only when there are some). The registry applies the rules of :mod:`hub.customs.ledger` to it, and :meth:`Sheet.write` stores what changed
in as few statements as it takes: one insert of the new movements, one update per state reached, the document's
lifecycle (the trace's events go in one insert at commit, :mod:`hub.store.appends`). So a check, a reservation, a
clearance or a write-off at once costs three to five statements and one commit.

Nothing here holds ORM objects: a caller mixing this with an ORM session flushes the session first and expires it
after (:func:`hub.customs.registry.apply_clearance`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Sequence

from sqlalchemy import Connection, Integer, String, and_, bindparam, cast, func, insert, literal, null, or_, select, union_all, update

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
_HELD = [state.value for state in HELD]

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
# A document, how many open refusals it has, and its certified lines: one row per line.
_document = select(
    *(_documents.c[name] for name in _DOCUMENT_COLUMNS),
    select(func.count()).where(_refusals.c.document_id == _documents.c.id, _refusals.c.state == "open").scalar_subquery().label("open_refusals"),
    _products.c.line, _products.c.hs_code, _products.c.unit, _products.c.quantity,
).select_from(_documents.outerjoin(_products, and_(_products.c.document_id == _documents.c.id, _products.c.quantity.is_not(None))))
# By number only, the kinds checked in Python: given the kind too, SQLite without statistics walks the index of all
# documents of that kind (ix_documents_search) instead of the few with that number.
_FIND = _document.where(_documents.c.certificate_number == bindparam("number")).order_by(
    _documents.c.version.desc(), _documents.c.created_at.desc(), _documents.c.id, _products.c.line)
_GET = _document.where(_documents.c.id == bindparam("document_id")).order_by(_products.c.line)
_LOCK = select(_documents.c.status, _documents.c.lifecycle).where(_documents.c.id == bindparam("document_id")).with_for_update()
_RECORD = select(_documents.c.record).where(_documents.c.id == bindparam("document_id"))
_REFUSALS = select(_refusals.c.counterpart, _refusals.c.cause_code, _refusals.c.cause_text).where(
    _refusals.c.document_id == bindparam("document_id"), _refusals.c.state == "open").order_by(_refusals.c.opened_at, _refusals.c.id)
_m = _movements.c
# Every movement held on the document, then what was written off summed per line (``id`` NULL): one statement.
_LEDGER = union_all(
    select(_m.id, _m.declaration, _m.goods_item, _m.line, _m.quantity, _m.state, _m.office, _m.updated_at, _m.unit, _m.operation_id).where(
        _m.document_id == bindparam("document_id"), or_(*(_m.state == state for state in _HELD))),
    select(
        cast(null(), Integer), cast(null(), String), cast(null(), Integer), _m.line, func.sum(_m.quantity), literal(MovementState.WRITTEN_OFF.value),
        cast(null(), String), null(), cast(null(), String), cast(null(), String),
    ).where(_m.document_id == bindparam("document_id"), _m.state == MovementState.WRITTEN_OFF.value).group_by(_m.line),
)

_INSERT_MOVEMENTS = insert(_movements)
_MOVE = update(_movements).where(_m.id.in_(bindparam("ids", expanding=True))).values(state=bindparam("to_state"), updated_at=bindparam("now"))
_SET_LIFECYCLE = update(_documents).where(_documents.c.id == bindparam("document_id")).values(lifecycle=bindparam("to_lifecycle"), updated_at=bindparam("now"))


def open_sheet(connection: Connection, gun: GunCode, number: str, tenant: str, *, lock: bool = False) -> "Sheet":
    """The sheet of the document :func:`find` finds, read once its row is locked (with ``lock``)."""
    return Sheet.read(connection, find(connection, gun, number, tenant, lock=lock), gun.code)


def find(connection: Connection, gun: GunCode, number: str, tenant: str, *, lock: bool = False) -> DocumentRow:
    """The latest version of the document ``gun`` names by ``number`` that ``tenant`` sees; with ``lock``, its row is
    locked (PostgreSQL) against concurrent reservations and its state read again under the lock. SQLite needs no lock:
    its writers are serialised already. :class:`~hub.errors.NotFound` when there is none."""
    scope = Scope.of(tenant)
    for document in _documents_of(connection.execute(_FIND, {"number": number})):
        if gun.matches(document.kind, document.certificate_number) and scope.sees(document.tenant, document.importing_country, document.exporting_country):
            return relock(connection, document) if lock else document
    raise NotFound(f"no {gun.label} numbered {number!r} is known to the hub for {tenant}", where="number")


def get(connection: Connection, document_id: str, *, lock: bool = False) -> DocumentRow:
    """The document with id ``document_id`` (locked as :func:`find` locks it)."""
    [document] = _documents_of(connection.execute(_GET, {"document_id": document_id}))
    return relock(connection, document) if lock else document


def _documents_of(rows) -> list[DocumentRow]:
    """Documents from rows of ``_document``, a document's rows together (one per certified line)."""
    lines_of: dict[str, list[CertifiedLine]] = {}
    documents: list[tuple] = []
    for row in rows:
        lines = lines_of.get(row.id)
        if lines is None:
            lines = lines_of[row.id] = []
            documents.append(row)
        if row.line is not None:
            lines.append(_line(row))
    return [_document_row(row, lines_of[row.id]) for row in documents]


def _document_row(row, lines: list[CertifiedLine]) -> DocumentRow:
    return DocumentRow(*(getattr(row, name) for name in _DOCUMENT_COLUMNS[:-1]), tuple(row.product_codes or ()), tuple(lines), row.open_refusals)


def _entry(row, movement_id: int) -> "Entry":
    return Entry(
        Movement(declaration=row.declaration, goods_item=row.goods_item, line=row.line, quantity=row.quantity,
                 state=MovementState(row.state), office=row.office, at=row.updated_at),
        id=movement_id, unit=row.unit, operation_id=row.operation_id,
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
    if connection.dialect.name == "sqlite":
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

    @classmethod
    def read(cls, connection: Connection, document: DocumentRow, code: str) -> "Sheet":
        """The sheet of ``document`` (locked by the caller when it is to be changed) as ``code`` names it."""
        entries, written_off = [], {}
        for row in connection.execute(_LEDGER, {"document_id": document.id}):
            if row.id is None:
                written_off[row.line] = row.quantity
            else:
                entries.append(_entry(row, row.id))
        entries.sort(key=lambda e: e.id)
        return cls(document=document, code=code, lines=list(document.lines), refusals=_refusals_of(connection, document), entries=entries, written_off=written_off)

    # --- what it holds ------------------------------------------------------------------------------------------------

    def held(self, declaration: str | None = None, *, states: Sequence[MovementState] = HELD) -> list[Entry]:
        """The entries held (in ``states``), of ``declaration`` only when given."""
        return [e for e in self.entries if e.movement.state in states and (declaration is None or e.movement.declaration == declaration)]

    def movements(self) -> list[Movement]:
        """Every movement that counts on the lines: the held and changed ones, and what was written off before, one
        movement per line."""
        summed = [Movement(declaration="", goods_item=0, line=line, quantity=total, state=MovementState.WRITTEN_OFF) for line, total in self.written_off.items()]
        return summed + [e.movement for e in self.entries]

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
        for entry in entries:
            entry.movement = replace(entry.movement, state=state, at=at)
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
