"""What a customs step costs the store, counted on the engine (issue 14): each step on the hub's own ledger is one
transaction of a few SQL statements, however many declarations the document has served; and the reservation and the
write-off of a declaration whose goods are released at once are one transaction. On SQLite and PostgreSQL."""

from __future__ import annotations

from contextlib import contextmanager
from decimal import Decimal

from sqlalchemy import event, select

from hub.customs.ledger import Clearance, DeclaredItem, FailureReason
from hub.store.models import QuantityMovement, TraceEvent
from tests.support.broker import CHED_NUMBER

#: Statements per step, at most. On SQLite: the BEGIN IMMEDIATE of a writing transaction, the document with its lines
#: and what was written off on each, the ledger whole only when movements are held (a clearance), the writes
#: (movements, trace). On PostgreSQL a step that changes the ledger reads the document, locks its row and reads the
#: ledger under the lock before it writes; a check reads the document with what was written off.
BOUNDS = {
    "sqlite": {"check": 3, "reserve": 4, "clear": 5, "write_off": 4},
    "postgresql": {"check": 2, "reserve": 5, "clear": 5, "write_off": 5},
}


class Counted:
    """SQL statements and commits on an engine while a block runs."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.commits = 0


@contextmanager
def counting(engine):
    counted = Counted()

    def statement(_conn, _cursor, text, *_) -> None:
        counted.statements.append(text.split("\n")[0][:100])

    def commit(_conn) -> None:
        counted.commits += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


def one_of_each(broker, declaration: str) -> dict[str, Counted]:
    """Check, reserve and clear ``declaration`` (10 kg), then write 5 kg of another off at once; what each cost."""
    customs, engine, items = broker.customs, broker.database.engine, [DeclaredItem(1, 1, Decimal("10"))]
    costs = {}
    with counting(engine) as costs["check"]:
        customs.check("N853", CHED_NUMBER, tenant="FR", declaration=declaration)
    with counting(engine) as costs["reserve"]:
        assert customs.reserve("N853", CHED_NUMBER, tenant="FR", declaration=declaration, items=items, office="FR000690").accepted
    with counting(engine) as costs["clear"]:
        assert customs.clear("N853", CHED_NUMBER, tenant="FR", declaration=declaration, clearance=Clearance.RELEASED, office="FR000690").changed
    with counting(engine) as costs["write_off"]:
        reserved, cleared = customs.write_off("N853", CHED_NUMBER, tenant="FR", declaration=f"{declaration}W", items=[DeclaredItem(1, 1, Decimal("5"))], office="FR000690")
        assert reserved.accepted and cleared.changed
    return costs


def test_each_step_is_one_transaction_of_a_few_statements_however_many_declarations_came_before(ched_broker, ched):
    first, bounds = one_of_each(ched_broker, "26FR0001"), BOUNDS[ched_broker.database.dialect]
    for step, cost in first.items():
        assert cost.commits == 1, f"{step}: {cost.commits} commits"
        assert len(cost.statements) <= bounds[step], f"{step}: {len(cost.statements)} statements: {cost.statements}"
    for n in range(2, 12):
        one_of_each(ched_broker, f"26FR{n:04d}")
    later = one_of_each(ched_broker, "26FR0099")
    assert {step: len(c.statements) for step, c in later.items()} == {step: len(c.statements) for step, c in first.items()}
    # 12 declarations of 10 kg and 12 of 5 kg written off, nothing held.
    [line] = ched_broker.customs.check("N853", CHED_NUMBER, tenant="FR").balances
    assert (line.written_off, line.reserved, line.available) == (Decimal("180"), 0, Decimal("2220"))


def test_a_write_off_at_once_reserves_and_writes_off_in_one_transaction(ched_broker, ched):
    customs = ched_broker.customs
    assert customs.reserve("N853", CHED_NUMBER, tenant="FR", declaration="26FR0001", items=[DeclaredItem(1, 1, Decimal("100")), DeclaredItem(2, 1, Decimal("30"))]).accepted
    # Goods item 1 again (it replaces the 100 kg reserved), written off at once with goods item 2 still reserved.
    reserved, cleared = customs.write_off("N853", CHED_NUMBER, tenant="FR", declaration="26FR0001", items=[DeclaredItem(1, 1, Decimal("40"))], office="FR000690")
    assert reserved.accepted and [(m.goods_item, m.state.value) for m in reserved.standing.movements] == [(2, "reserved"), (1, "reserved")]
    assert sorted((m.goods_item, m.quantity, m.state.value) for m in cleared.changed) == [(1, Decimal("40"), "written_off"), (2, Decimal("30"), "written_off")]
    [line] = cleared.standing.balances
    assert (line.written_off, line.reserved, line.available, cleared.standing.movements) == (Decimal("70"), 0, Decimal("2330"), ())
    with ched_broker.database.sessions() as session:
        stored = session.execute(select(QuantityMovement.goods_item, QuantityMovement.quantity, QuantityMovement.state).order_by(QuantityMovement.id)).all()
        events = session.scalars(select(TraceEvent.event).where(TraceEvent.document_id == ched.id, TraceEvent.event.like("customs.%")).order_by(TraceEvent.id)).all()
    assert [(g, Decimal(q), s) for g, q, s in stored] == [(1, 100, "released"), (2, 30, "written_off"), (1, 40, "written_off")]
    assert events == ["customs.reserved", "customs.reserved", "customs.written_off"]


def test_a_refused_write_off_at_once_writes_nothing(ched_broker, ched):
    customs = ched_broker.customs
    reserved, cleared = customs.write_off("N853", CHED_NUMBER, tenant="FR", declaration="26FR0001", items=[DeclaredItem(1, 1, Decimal("2400.5"))])
    assert cleared is None and reserved.reservation.failure is FailureReason.QUANTITY_EXCEEDED
    reserved, cleared = customs.write_off("N853", CHED_NUMBER, tenant="FR", declaration="26FR0001", items=[DeclaredItem(1, 1, Decimal("2400"))])
    assert cleared.standing.lifecycle == "used" and not cleared.standing.valid  # everything written off: used
    refused, nothing = customs.write_off("N853", CHED_NUMBER, tenant="FR", declaration="26FR0002", items=[DeclaredItem(1, 1, Decimal("1"))])
    assert nothing is None and refused.reservation is None and "the document is used" in refused.standing.reasons
    with ched_broker.database.sessions() as session:
        assert session.scalars(select(QuantityMovement.declaration)).all() == ["26FR0001"]


def test_a_write_off_at_once_of_a_ched_goes_through_traces_first(with_traces):
    api, broker, traces = with_traces
    reserved, cleared = broker.customs.write_off("N853", CHED_NUMBER, tenant="FR", declaration="26FR0001", items=[DeclaredItem(1, 1, Decimal("10"))], office="FR000690")
    assert reserved.accepted and [m.state.value for m in cleared.changed] == ["written_off"]
    assert [c[0] for c in traces.calls] == ["reserve", "clear"]
