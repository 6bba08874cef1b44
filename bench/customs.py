"""Customs registry benchmark: declarations cleared per second (check + reserve + write-off), against the pure ledger.

One CHED certifies a large quantity; each declaration checks it, reserves a small quantity and writes it off, as
DELTA-G does at clearance. Measured on the registry over SQLite and over a real PostgreSQL (embedded), from one
thread and from 8 threads at once (reservations on one document serialise: the row is locked); the baseline is the
same reserve + clear on the pure ledger (``hub.customs.ledger``) in memory, measured in the same run.

    python bench/customs.py [--declarations 300] [--engines sqlite,postgresql] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

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
NUMBER = "CHEDP.FR.2026.0001234"
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

    broker = Broker(settings=settings, database=Database(database_url), routing=routes, connectors={"customs": Nowhere()}, trust_store=TrustStore.from_paths(ca_bundle=certs / "ca.pem"))
    record = json.loads(CHED.read_text())
    record["consignment"]["items"][0]["line_items"][0]["net_weight"]["value"] = str(10 ** 9)
    broker.submit(json.dumps(record).encode(), "application/json", tenant="FR", actor="bench")
    return broker


def clear_declarations(broker: Broker, prefix: str, count: int, threads: int) -> float:
    """Declarations per second through the registry: check, reserve, write off."""

    def one(n: int) -> None:
        declaration = f"{prefix}{n:012d}"
        broker.customs.check("N853", NUMBER, tenant="FR", declaration=declaration)
        answer = broker.customs.reserve("N853", NUMBER, tenant="FR", declaration=declaration, items=[DeclaredItem(1, 1, Decimal(1))], office="FR000690")
        assert answer.accepted, answer
        broker.customs.clear("N853", NUMBER, tenant="FR", declaration=declaration, clearance=Clearance.RELEASED, office="FR000690")

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declarations", type=int, default=300)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    results: dict[str, float] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        certs = init_dev_pki(root / "certs", authorities=("FR",), rsa_key_bits=2048).directory
        results["ledger (in memory)"] = ledger_baseline(options.declarations)
        for engine in options.engines.split(","):
            if engine == "sqlite":
                url = f"sqlite:///{root / 'customs.db'}"
            else:
                from hub.store.embedded_postgres import EmbeddedPostgres, create_database

                server = stack.enter_context(EmbeddedPostgres())
                create_database(server, "bench_customs")
                url = server.url_for("bench_customs").replace("postgresql://", "postgresql+psycopg://", 1)
            broker = broker_on(url, certs)
            for threads in (1, THREADS):
                results[f"{engine}, {threads} thread{'s' if threads > 1 else ''}"] = clear_declarations(broker, f"26{engine[:2].upper()}{threads}", options.declarations, threads)
            broker.close()
    baseline = results["ledger (in memory)"]
    if options.json:
        print(json.dumps({name: {"declarations_per_second": value, "ratio": value / baseline} for name, value in results.items()}, indent=2))
        return
    print(f"{'scenario':<24}{'declarations/s':>16}{'× ledger':>10}")
    for name, value in results.items():
        print(f"{name:<24}{value:>16.1f}{value / baseline:>10.4f}")


if __name__ == "__main__":
    main()
