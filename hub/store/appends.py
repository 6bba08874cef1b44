"""Append-only rows written in batches: trace events, delivery attempts, payloads, answers that need no id back.

A unit of work appends many rows that nothing reads back in the same transaction (a submission's five trace
events, a delivery batch's attempts and responses). Written one by one through the ORM, each is a round trip of its
own (on SQLite the ORM cannot batch inserts whose ids it must fetch). Here they wait in the session and go as one
multi-row statement per table, just before the transaction commits, after the ORM's own flush (so that the rows they
refer to exist; payloads go before the ORM's flush, since its rows refer to them). A read of one of these tables
through the session writes them first, so the transaction always reads its own writes. A rollback forgets them.

Order: payloads first (the others refer to them), then each statement in the order it was first used.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Alias, Join, Table, event, insert, inspect
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.sql import Executable

_PENDING = "hub.appends"


def append(session: Session, statement: Executable, row: dict[str, Any], *, key: Any = None, first: bool = False) -> None:
    """Add ``row`` to ``statement``'s batch (an INSERT built once, executed with a list of rows). With ``key``,
    a row with the same key already waiting is not added again (a payload stored twice in one transaction).
    ``first``: this statement's batch goes before the others (what they refer to)."""
    pending: dict[Executable, _Batch] = session.info.setdefault(_PENDING, {})
    batch = pending.get(statement)
    if batch is None:
        batch = pending[statement] = _Batch(first=first)
    if key is not None:
        if key in batch.keys:
            return
        batch.keys.add(key)
    batch.rows.append(row)


def append_new(session: Session, obj: Any) -> None:
    """Append a new mapped object (never added to the session) as a row of its table: its column attributes, the
    column's default where it has none, its autoincrement key left to the database. The object stays transient: it
    answers what it holds, it is never flushed or refreshed."""
    statement, columns = _row_shape(type(obj))
    row = {}
    for key, column, default in columns:
        value = getattr(obj, key)
        if value is None and default is not None:
            value = default() if callable(default) else default
            setattr(obj, key, value)
        row[column] = value
    append(session, statement, row)


@functools.cache
def _row_shape(cls: type) -> tuple[Executable, list[tuple[str, str, Any]]]:
    mapper = inspect(cls)
    columns = []
    for attribute in mapper.column_attrs:
        column = attribute.columns[0]
        if column.primary_key and column.autoincrement is True:
            continue  # the database numbers it
        default = column.default.arg if column.default is not None and (column.default.is_scalar or column.default.is_callable) else None
        if callable(default):
            default = functools.partial(default, None)  # SQLAlchemy wraps a default callable to take the context
        columns.append((attribute.key, column.key, default))
    return insert(mapper.local_table), columns


def flush_appends(session: Session, *, only_first: bool = False) -> int:
    """Write every waiting row now (one statement per table; with ``only_first``, only the batches that others
    refer to); how many statements ran. Called before commit and before a read of an appended table; call it to read
    an id the database gave."""
    pending: dict[Executable, _Batch] | None = session.info.get(_PENDING)
    if not pending:
        return 0
    ordered = sorted(pending.items(), key=lambda item: not item[1].first)
    if only_first:
        ordered = [(statement, batch) for statement, batch in ordered if batch.first]
        if not ordered:
            return 0
        session.info[_PENDING] = {statement: batch for statement, batch in pending.items() if not batch.first}
    else:
        session.info[_PENDING] = {}
    connection = session.connection()
    for statement, batch in ordered:
        connection.execute(statement, batch.rows)
    return len(ordered)


def waiting(session: Session) -> int:
    """How many rows wait to be written (tests)."""
    return sum(len(b.rows) for b in (session.info.get(_PENDING) or {}).values())


class _Batch:
    __slots__ = ("rows", "keys", "first")

    def __init__(self, *, first: bool) -> None:
        self.rows: list[dict[str, Any]] = []
        self.keys: set[Any] = set()
        self.first = first


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.info.get(_PENDING):
        session.flush()  # the rows appended refer to documents and messages the ORM has yet to insert
        flush_appends(session)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context, _instances) -> None:
    if session.info.get(_PENDING):
        flush_appends(session, only_first=True)  # the ORM's rows refer to payloads


@event.listens_for(Session, "do_orm_execute")
def _before_read(state: ORMExecuteState) -> None:
    pending = state.session.info.get(_PENDING)
    if not pending or not state.is_select:
        return
    appended = {statement.table for statement in pending}
    read = _tables_read(state.statement, state.all_mappers)
    if read is None or read & appended:
        state.session.flush()
        flush_appends(state.session)


def _tables_read(statement: Any, mappers: Any) -> set[Table] | None:
    """The tables a SELECT names (its entities, FROM, joins), found without compiling it; None when it names
    something else (a subquery…), which is then taken to read everything."""
    tables = {mapper.local_table for mapper in mappers}
    for clause in [*getattr(statement, "columns_clause_froms", ()), *getattr(statement, "_from_obj", ())]:
        if not _add_tables(clause, tables):
            return None
    for join in getattr(statement, "_setup_joins", ()):
        target = join[0]
        mapper = getattr(target, "__mapper__", None) or getattr(target, "mapper", None)
        table = getattr(mapper, "local_table", None) if mapper is not None else target
        if not _add_tables(table, tables):
            return None
    return tables


def _add_tables(clause: Any, tables: set[Table]) -> bool:
    if isinstance(clause, Table):
        tables.add(clause)
        return True
    if isinstance(clause, Join):
        return _add_tables(clause.left, tables) and _add_tables(clause.right, tables)
    if isinstance(clause, Alias) and isinstance(clause.element, Table):
        tables.add(clause.element)
        return True
    return False


@event.listens_for(Session, "after_transaction_create")
def _check_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested and session.info.get(_PENDING):
        # Rows waiting now belong to the enclosing transaction; written inside the savepoint, its rollback would
        # take them too. Write them first (flush_appends) before beginning a savepoint.
        raise RuntimeError("rows are waiting to be appended: call flush_appends(session) before begin_nested()")


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, _previous: SessionTransaction) -> None:
    # Whatever waits was appended in the transaction or savepoint rolled back (none waits when a savepoint begins).
    session.info.pop(_PENDING, None)
