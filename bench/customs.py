"""Customs registry benchmark: declarations cleared per second, against the pure ledger.

A CHED certifies a large quantity; each declaration reserves a small quantity of it and writes it off (each run has
a CHED of its own, so that a run finds its CHED as the previous one did). Two scenarios, on the registry over SQLite
and over a real PostgreSQL (embedded):

* ``at-once``: the reservation and the write-off in one call, one transaction (:meth:`CustomsRegistry.write_off`:
  goods released as the declaration is lodged, or a write-off entered by hand), from one thread;
* ``three-steps``: check, reserve, then write off, three calls and three transactions as DELTA-G makes them, from one
  thread and from 8 threads at once (reservations on one document serialise: the row is locked).

The baselines, measured in the same run: the same reserve + write-off on the pure ledger (``hub.customs.ledger``) in
memory; and, for SQLite, the floor the disk sets: the rows a write-off at once stores (a movement, a trace event)
inserted by raw ``sqlite3`` in one durable transaction each (WAL, ``synchronous=FULL`` as the hub runs it), nothing
read. Each figure is the best of ``--repeat`` runs (the machine is shared); SQL statements and commits per
declaration are counted on the engine (``before_cursor_execute``, ``commit``); CPU is this process's (the hub's, not
PostgreSQL's) per declaration, the least of the runs.

    python bench/customs.py [--declarations 300] [--engines sqlite,postgresql] [--scenario at-once,three-steps] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Callable

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.connector import ConnectorConfig, DeliveryResult, Outcome  # noqa: E402
from hub.broker import Broker  # noqa: E402
from hub.config import Settings  # noqa: E402
from hub.customs.ledger import CertifiedLine, Clearance, DeclaredItem, Movement, MovementState, clear, reserve  # noqa: E402
from hub.routing.table import RoutingTable  # noqa: E402
from hub.signing import init_dev_pki  # noqa: E402
from hub.signing.trust import TrustStore  # noqa: E402
from hub.standards import PROJECT_ROOT  # noqa: E402
from hub.store.db import Database  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402

CHED = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples" / "ched-P-FR-cheese.record.json"
NUMBER = "CHEDP.FR.2026.{:07d}"  # each run clears its declarations against a CHED of its own
THREADS = 8


def ledger_baseline(declarations: int) -> float:
    """Declarations per second on the pure ledger: reserve then write off, what was written off kept as one sum per
    line (as the registry reads it from the database)."""
    lines = [CertifiedLine(1, "04069021", "KGM", Decimal(10 ** 9))]
    written_off = Movement(declaration="", goods_item=0, line=1, quantity=Decimal(0), state=MovementState.WRITTEN_OFF)
    started = time.perf_counter()
    for n in range(declarations):
        declaration = f"26FR{n:014d}"
        reservation = reserve(lines, [written_off], declaration=declaration, items=[DeclaredItem(1, 1, Decimal(1))])
        _, changes = clear(list(reservation.movements), declaration=declaration, clearance=Clearance.RELEASED)
        written_off = replace(written_off, quantity=written_off.quantity + sum(new.quantity for _, new in changes))
    return declarations / (time.perf_counter() - started)


def sqlite_floor(path: Path, declarations: int) -> float:
    """Declarations per second that SQLite itself allows: one transaction per declaration storing what a write-off at
    once stores, through raw ``sqlite3`` on the hub's schema, with the hub's journal and synchronous settings."""
    if not path.exists():
        upgrade(f"sqlite:///{path}")
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    started = time.perf_counter()
    for n in range(declarations):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO quantity_movements (document_id, line, declaration, goods_item, document_code, quantity, unit, state, office, created_at, updated_at) "
            "VALUES ('floor', 1, ?, 1, 'N853', 1, 'KGM', 'written_off', 'FR000690', datetime(), datetime())", (f"26FR{n:014d}",))
        connection.execute(
            "INSERT INTO trace_events (at, correlation_id, tenant, document_id, event, actor, state, country, products, detail) "
            "VALUES (datetime(), 'floor', 'FR', 'floor', 'customs.written_off', 'customs:FR000690', 'issued', 'FR', '[]', ?)", (json.dumps({"declaration": n}),))
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return declarations / elapsed


def broker_on(database_url: str, certs: Path) -> Broker:
    upgrade(database_url)
    routes = RoutingTable.from_data({"rules": [{"name": "cheds", "when": {"kind": ["ched"]}, "to": ["customs"]}]})
    class Nowhere:
        name, config = "customs", ConnectorConfig(type="bench")

        def open(self) -> None: ...

        def close(self) -> None: ...

        def deliver(self, message):
            return DeliveryResult(outcome=Outcome.ACKNOWLEDGED)

    settings = Settings(database_url=database_url, certs_dir=certs)

    return Broker(settings=settings, database=Database(database_url), routing=routes, connectors={"customs": Nowhere()}, trust_store=TrustStore.from_paths(ca_bundle=certs / "ca.pem"))


def submit_ched(broker: Broker, number: str) -> None:
    """A CHED numbered ``number`` certifying a large quantity on its line 1."""
    record = json.loads(CHED.read_text())
    record["certificate_number"] = number
    record["consignment"]["items"][0]["line_items"][0]["net_weight"]["value"] = str(10 ** 9)
    broker.submit(json.dumps(record).encode(), "application/json", tenant="FR", actor="bench")


def three_steps(broker: Broker, number: str, declaration: str) -> None:
    """Check, reserve, write off: three calls, three transactions."""
    broker.customs.check("N853", number, tenant="FR", declaration=declaration)
    answer = broker.customs.reserve("N853", number, tenant="FR", declaration=declaration, items=[DeclaredItem(1, 1, Decimal(1))], office="FR000690")
    assert answer.accepted, answer
    broker.customs.clear("N853", number, tenant="FR", declaration=declaration, clearance=Clearance.RELEASED, office="FR000690")


def at_once(broker: Broker, number: str, declaration: str) -> None:
    """Reserve and write off in one call, one transaction."""
    reserved, cleared = broker.customs.write_off("N853", number, tenant="FR", declaration=declaration, items=[DeclaredItem(1, 1, Decimal(1))], office="FR000690")
    assert reserved.accepted and cleared is not None and cleared.changed, reserved


SCENARIOS: dict[str, tuple[Callable[[Broker, str, str], None], tuple[int, ...]]] = {"at-once": (at_once, (1,)), "three-steps": (three_steps, (1, THREADS))}


#: Issue 14's target, and the figure it is judged on.
TARGET, TARGET_SCENARIO = 1000, "sqlite, at-once, 1 thread"


class Counter:
    """SQL statements and commits on an engine."""

    def __init__(self, engine) -> None:
        self.statements = self.commits = 0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *_) -> None:
        self.statements += 1

    def _commit(self, *_) -> None:
        self.commits += 1


def clear_declarations(broker: Broker, one: Callable[[Broker, str, str], None], number: str, count: int, threads: int) -> float:
    """Declarations per second through the registry, on the CHED ``number``."""
    def declare(n: int) -> None:
        one(broker, number, f"26FR{n:014d}")

    started = time.perf_counter()
    if threads == 1:  # one after the other, as one client lodges them: no hop through a pool's queue per declaration
        for n in range(count):
            declare(n)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(declare, range(count)))
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declarations", type=int, default=300)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--scenario", default=",".join(SCENARIOS), help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is kept")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    scenarios = options.scenario.split(",")
    if unknown := set(scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenario {', '.join(sorted(unknown))} (known: {', '.join(SCENARIOS)})")
    results: dict[str, float] = {}
    counted: dict[str, tuple[float, float]] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        certs = init_dev_pki(root / "certs", authorities=("FR",), rsa_key_bits=2048).directory
        results["ledger (in memory)"] = max(ledger_baseline(options.declarations) for _ in range(options.repeat))
        for engine in options.engines.split(","):
            if engine == "sqlite":
                url = f"sqlite:///{root / 'customs.db'}"
                results["sqlite floor (raw sqlite3)"] = max(sqlite_floor(root / "floor.db", options.declarations) for _ in range(options.repeat))
            else:
                from hub.store.embedded_postgres import EmbeddedPostgres, create_database

                server = stack.enter_context(EmbeddedPostgres())
                create_database(server, "bench_customs")
                url = server.url_for("bench_customs").replace("postgresql://", "postgresql+psycopg://", 1)
            broker = broker_on(url, certs)
            counter = Counter(broker.database.engine)
            numbers = iter(range(1, 10 ** 7))
            for scenario in scenarios:
                one, thread_counts = SCENARIOS[scenario]
                for threads in thread_counts:
                    name = f"{engine}, {scenario}, {threads} thread{'s' if threads > 1 else ''}"
                    runs, cpu, statements, commits = [], [], 0, 0
                    for _ in range(options.repeat):
                        number = NUMBER.format(next(numbers))
                        submit_ched(broker, number)
                        before = (counter.statements, counter.commits, time.process_time())
                        runs.append(clear_declarations(broker, one, number, options.declarations, threads))
                        cpu.append((time.process_time() - before[2]) / options.declarations * 1000)
                        statements, commits = statements + counter.statements - before[0], commits + counter.commits - before[1]
                    results[name] = max(runs)
                    total = options.declarations * options.repeat
                    counted[name] = (statements / total, commits / total, min(cpu))
            broker.close()
    baseline, floor = results["ledger (in memory)"], results.get("sqlite floor (raw sqlite3)")

    def to_floor(name: str, value: float) -> float | None:
        return value / floor if floor and name.startswith("sqlite") else None

    if options.json:
        print(json.dumps({name: {"declarations_per_second": value, "ratio": value / baseline, "ratio_to_sqlite_floor": to_floor(name, value),
                                 **({"statements_per_declaration": counted[name][0], "commits_per_declaration": counted[name][1],
                                     "cpu_ms_per_declaration": counted[name][2]} if name in counted else {})}
                          for name, value in results.items()}, indent=2))
        return
    print(f"{'scenario':<36}{'declarations/s':>16}{'× ledger':>10}{'× floor':>9}{'statements':>12}{'commits':>9}{'CPU ms':>8}")
    for name, value in results.items():
        statements, commits, cpu = (f"{counted[name][0]:.1f}", f"{counted[name][1]:.1f}", f"{counted[name][2]:.2f}") if name in counted else ("", "", "")
        ratio = to_floor(name, value)
        print(f"{name:<36}{value:>16.1f}{value / baseline:>10.4f}{f'{ratio:.2f}' if ratio else '':>9}{statements:>12}{commits:>9}{cpu:>8}")
    measured = results.get(TARGET_SCENARIO)
    verdict = "NOT MEASURED" if measured is None else "MET" if measured >= TARGET else "NOT MET"
    print(f"\ntarget (issue 14)\n  {verdict:<13}≥ {TARGET:,} declarations/s on SQLite ({TARGET_SCENARIO})"
          + ("" if measured is None else f": {measured:,.0f}/s, the disk's floor {floor:,.0f}/s" if floor else f": {measured:,.0f}/s"))

if __name__ == "__main__":
    main()
