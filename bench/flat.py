"""Flatness benchmark: what a submission and a delivery cost in an empty store and in one holding 100,000 documents.

For each engine (SQLite, and PostgreSQL embedded), in one process and one fresh database:

1. the cost in the empty store: ``--samples`` documents stored (the submission's transaction alone: its CPU work,
   validate and sign, is done before and not counted), then their messages claimed, delivered to a counterpart that
   answers at once in-process, and settled, by the worker in its batches;
2. the store filled with ``--documents`` documents as the hub leaves them after a day's work (each with its products,
   one acknowledged message, its delivery attempt, two answers, eight trace events; the signed certificates stored
   once each), written with multi-row inserts;
3. the same cost again, with ``--samples`` new documents.

The figure per engine: the median time of a submission's transaction, and of a delivered message (claim + settle
per message of a batch), full / empty. The target of issue 14: each ≤ 1.2. Nothing is analysed by hand between the
steps: the store must stay fast with what the hub does by itself.

    python bench/flat.py [--documents 100000] [--samples 300] [--engines sqlite,postgresql] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from core import EXAMPLE  # noqa: E402
from hub.broker import Broker  # noqa: E402
from hub.config import Settings  # noqa: E402
from hub.connector import ConnectorConfig, DeliveryResult, Outcome  # noqa: E402
from hub.delivery.retry import RetryStrategy  # noqa: E402
from hub.intake.submission import prepare, store  # noqa: E402
from hub.routing.table import RoutingTable  # noqa: E402
from hub.signing.pki import DEV_AUTHORITIES  # noqa: E402
from hub.signing import init_dev_pki  # noqa: E402
from hub.store.db import Database  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.store.models import Acknowledgement, DeliveryAttempt, Document, DocumentProduct, Message, Payload, TraceEvent, utcnow  # noqa: E402
from hub.store.payloads import digest_of  # noqa: E402

TARGET = 1.2
ROUTES = {"rules": [{"name": "everything", "when": {}, "to": ["authority"]}]}


class Answering:
    """A counterpart in-process that takes every message at once (the network is not what is measured here)."""

    name = "authority"

    def __init__(self) -> None:
        self.config = ConnectorConfig(type="bench")
        self.count = 0

    def open(self) -> None: ...

    def close(self) -> None: ...

    def deliver(self, message) -> DeliveryResult:
        self.count += 1
        return DeliveryResult(outcome=Outcome.ACCEPTED, receipt_id=f"R-{message.id}", request=message.payload, response=b"<receipt>accepted</receipt>")


@dataclass
class Figures:
    engine: str
    documents: int
    store_empty_ms: float = 0.0
    store_full_ms: float = 0.0
    deliver_empty_ms: float = 0.0
    deliver_full_ms: float = 0.0
    seed_seconds: float = 0.0

    @property
    def store_ratio(self) -> float:
        return self.store_full_ms / self.store_empty_ms

    @property
    def deliver_ratio(self) -> float:
        return self.deliver_full_ms / self.deliver_empty_ms


def record_body(number: str) -> bytes:
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["certificate_number"] = number
    return json.dumps(data).encode()


def measure(broker: Broker, worker, prefix: str, samples: int) -> tuple[float, float]:
    """(median ms of a submission's transaction, median ms per message delivered) for ``samples`` new documents."""
    docs = broker.documents
    prepared = [prepare(record_body(f"FR-FLAT-{prefix}-{i:05d}"), "application/json", tenant="FR", routing=docs.routing, profiles=docs.profiles,
                        signer_for=docs.signer_for, verifier=docs.verifier, signers=docs.signers) for i in range(samples)]
    stores = []
    for one in prepared:
        started = time.perf_counter()
        with broker.database.transaction() as session:
            store(session, one, tenant="FR", actor="bench", savepoint=False)
        stores.append(time.perf_counter() - started)
    per_message = []
    while True:
        started = time.perf_counter()
        delivered = worker.run_once(limit=worker.batch_size)
        if not delivered:
            break
        per_message.append((time.perf_counter() - started) / delivered)
    return statistics.median(stores) * 1000, statistics.median(per_message) * 1000


def seed(database: Database, documents: int, certificate: bytes, *, chunk: int = 5000) -> float:
    """Fill the store with ``documents`` acknowledged documents; returns the seconds it took."""
    started = time.perf_counter()
    then = utcnow() - timedelta(days=1)
    for first in range(0, documents, chunk):
        rows: dict[type, list[dict]] = {Payload: [], Document: [], DocumentProduct: [], Message: [], DeliveryAttempt: [], Acknowledgement: [], TraceEvent: []}
        for n in range(first, min(first + chunk, documents)):
            document_id, message_id, correlation = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
            signed = certificate.replace(b"FR-2026-PC-000123", f"FR-SEED-{n:07d}".encode())
            payload = digest_of(signed)
            rows[Payload].append({"digest": payload, "media_type": "application/xml", "size": len(signed), "content": signed, "created_at": then})
            rows[Document].append({
                "id": document_id, "tenant": "FR", "correlation_id": correlation, "kind": "phytosanitary", "direction": "outbound", "issuing_country": "FR",
                "exporting_country": "FR", "importing_country": ["US", "CA", "JP", "EC", "NO"][n % 5], "certificate_number": f"FR-SEED-{n:07d}", "status": "issued",
                "version": 1, "lifecycle": "issued", "product_codes": ["080810"], "source_format": "record", "record": {"certificate_number": f"FR-SEED-{n:07d}"},
                "report": {"findings": []}, "payload_digest": payload, "request_digest": digest_of(f"seed-{n}".encode()), "created_at": then, "updated_at": then,
            })
            rows[DocumentProduct].append({"document_id": document_id, "line": 1, "hs_code": "080810", "common_name": "apples", "quantity": 1000, "unit": "KGM"})
            rows[Message].append({
                "id": message_id, "document_id": document_id, "destination": "authority", "state": "acknowledged", "attempts": 1, "next_attempt_at": then,
                "payload_digest": payload, "receipt_id": f"R-{message_id}", "created_at": then, "updated_at": then, "delivered_at": then, "acknowledged_at": then, "repolls": 0,
            })
            rows[DeliveryAttempt].append({"message_id": message_id, "number": 1, "worker": "seed", "started_at": then, "finished_at": then, "outcome": "accepted", "request_digest": payload})
            for kind, outcome in (("receipt", "accepted"), ("acknowledgement", "acknowledged")):
                rows[Acknowledgement].append({"message_id": message_id, "document_id": document_id, "counterpart": "authority", "kind": kind, "outcome": outcome,
                                              "counterpart_reference": f"R-{message_id}", "received_at": then})
            for event in ("document.received", "document.validated", "document.signed", "document.routed", "message.queued", "message.sending", "receipt.accepted", "acknowledgement.acknowledged"):
                rows[TraceEvent].append({"at": then, "correlation_id": correlation, "tenant": "FR", "document_id": document_id, "message_id": message_id if event.startswith(("message", "receipt", "ack")) else None,
                                         "event": event, "actor": "seed", "destination": "authority", "country": "US", "products": ["080810"], "detail": {}})
        with database.transaction() as session:
            for model, values in rows.items():
                session.execute(insert(model), values)
    return time.perf_counter() - started


def run_engine(engine: str, url: str, root: Path, pki, documents: int, samples: int) -> Figures:
    upgrade(url)
    settings = Settings(database_url=url, certs_dir=root / "certs", routes_file=Path("<bench routes>"), connectors_file=Path("<bench connectors>"))
    broker = Broker(settings=settings, database=Database(url), routing=RoutingTable.from_data(ROUTES, source="bench routes"),
                    connectors={"authority": Answering()}, trust_store=pki.trust_store(), retry=RetryStrategy(base=0.0, jitter=0.0))
    worker = broker.make_worker(webhooks=False)
    figures = Figures(engine=engine, documents=documents)
    try:
        measure(broker, worker, "warm", 20)  # specs, schemas, keys and statement caches loaded
        figures.store_empty_ms, figures.deliver_empty_ms = measure(broker, worker, "empty", samples)
        certificate = broker.documents.signer_for("FR").sign(b"<rsm:SPSCertificate xmlns:rsm='urn:un:unece:uncefact:data:standard:SPSCertificate:17'><id>FR-2026-PC-000123</id></rsm:SPSCertificate>")
        print(f"  {engine}: filling the store with {documents} documents …", file=sys.stderr, flush=True)
        figures.seed_seconds = seed(broker.database, documents, certificate)
        figures.store_full_ms, figures.deliver_full_ms = measure(broker, worker, "full", samples)
    finally:
        broker.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000, help="documents in the filled store")
    parser.add_argument("--samples", type=int, default=300, help="documents measured in each state")
    parser.add_argument("--engines", "--scenario", dest="engines", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if set(engines) - {"sqlite", "postgresql"} or not engines:
        parser.error("--engines takes sqlite and/or postgresql")
    results = []
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="hub-bench-flat-") as temp:
        root = Path(temp)
        pki = init_dev_pki(root / "certs", authorities=DEV_AUTHORITIES, rsa_key_bits=2048)
        for engine in engines:
            if engine == "sqlite":
                url = f"sqlite:///{root / 'flat.db'}"
            else:
                from hub.store.embedded_postgres import EmbeddedPostgres, create_database

                server = stack.enter_context(EmbeddedPostgres())
                create_database(server, "bench_flat")
                url = server.url_for("bench_flat").replace("postgresql://", "postgresql+psycopg://", 1)
            print(f"running {engine} …", file=sys.stderr, flush=True)
            results.append(run_engine(engine, url, root, pki, args.documents, args.samples))
    if args.json:
        print(json.dumps([{**asdict(f), "store_ratio": f.store_ratio, "deliver_ratio": f.deliver_ratio} for f in results], indent=2))
        return
    print(f"\n{'engine':<12}{'documents':>10}{'store empty':>13}{'full':>9}{'ratio':>7}{'deliver empty':>15}{'full':>9}{'ratio':>7}{'seeded in':>11}")
    for f in results:
        print(f"{f.engine:<12}{f.documents:>10}{f.store_empty_ms:>11.2f}ms{f.store_full_ms:>7.2f}ms{f.store_ratio:>7.2f}"
              f"{f.deliver_empty_ms:>13.2f}ms{f.deliver_full_ms:>7.2f}ms{f.deliver_ratio:>7.2f}{f.seed_seconds:>10.0f}s")
    print("\ntargets (issue 14)")
    for f in results:
        for what, ratio in (("submission", f.store_ratio), ("delivery", f.deliver_ratio)):
            print(f"  {'MET' if ratio <= TARGET else 'NOT MET':<9}{what} cost at {f.documents} documents ≤ {TARGET}× empty ({f.engine})   {ratio:.2f}×")


if __name__ == "__main__":
    main()
