"""Appended rows (hub/store/appends.py): written in one statement per table at commit, read by the transaction that
wrote them whatever the shape of its query, forgotten with a rollback; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import aliased

from hub.store.appends import waiting
from hub.store.models import Document, Message, TraceEvent
from hub.store.trace import DocumentFacts, add_event

FACTS = DocumentFacts(id="d-1", correlation_id="c-1", tenant="FR", certificate_number="N-1", importing_country="US", product_codes=["0808"])


def _add(session, count: int = 1) -> None:
    for _ in range(count):
        add_event(session, document=FACTS, event="test.appended", actor="test")


def _events(database) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(TraceEvent))


def test_rows_appended_in_a_transaction_go_in_one_statement_at_commit(database):
    inserts = []
    event.listen(database.engine, "before_cursor_execute", lambda _c, _cur, statement, *_a: inserts.append(statement) if statement.startswith("INSERT INTO trace_events") else None)
    with database.transaction() as session:
        _add(session, 7)
        assert waiting(session) == 7 and inserts == []
    assert len(inserts) == 1 and _events(database) == 7


@pytest.mark.parametrize("query", [
    lambda: select(func.count()).select_from(TraceEvent),
    lambda: select(func.max(TraceEvent.id)),
    lambda: select(Document.id).join(TraceEvent, TraceEvent.document_id == Document.id),
    lambda: select(aliased(TraceEvent).id),
    lambda: select(select(TraceEvent.id).subquery().c.id),
], ids=["select_from", "column", "join", "aliased", "subquery"])
def test_a_read_of_the_table_sees_what_the_transaction_appended(database, query):
    with database.transaction() as session:
        _add(session)
        session.execute(query()).all()
        assert waiting(session) == 0


def test_a_read_of_other_tables_leaves_the_rows_waiting(database):
    with database.transaction() as session:
        _add(session, 2)
        session.execute(select(Message.id).join(Document, Message.document_id == Document.id)).all()
        session.get(Message, "none")
        assert waiting(session) == 2


def test_a_rollback_forgets_the_rows(database):
    with pytest.raises(RuntimeError):
        with database.transaction() as session:
            _add(session, 3)
            raise RuntimeError("the unit of work fails")
    with database.transaction() as session:
        assert waiting(session) == 0
    assert _events(database) == 0


def test_a_savepoint_with_rows_waiting_is_refused(database):
    with database.transaction() as session:
        _add(session)
        with pytest.raises(RuntimeError, match="flush_appends"):
            session.begin_nested()
