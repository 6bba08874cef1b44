"""``hub serve --workers 2`` as an operator runs it, on SQLite and on PostgreSQL: the API in the serve process and the
deliveries in two child ``hub worker`` processes; documents go in through the API and come out delivered by both
processes and acknowledged by the sandbox; a worker process SIGKILLed is started again and the rest is still
delivered; SIGTERM stops the serve process with every worker process gone and exit code 0. Beside it: ``hub worker``
stopped by SIGTERM mid-delivery finishes and records it; a worker whose serve process is gone stops; the supervision's
back-off and its SIGKILL after the stop timeout, on stand-in processes."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import select

from hub.broker import Broker
from hub.cli.serve import WorkerProcesses
from hub.config import Settings
from hub.standards import PROJECT_ROOT
from hub.store.db import Database
from hub.store.models import DeliveryAttempt, Message
from tests.cli.test_serve import EXAMPLE, HUB, hub_env, run  # noqa: F401 (hub_env is a fixture)
from tests.contract.suite import wait_for
from tests.support.loopback import LoopbackServer


def _every(seconds: float, condition):
    """``condition`` asked at most every ``seconds`` (each asking costs the hub API requests)."""
    def paced():
        time.sleep(seconds)
        return condition()
    return paced


def _serve(hub_env: dict[str, str], log: Path) -> subprocess.Popen:
    sandbox_ports = [f"{name}={hub_env[variable]}" for name, variable in (
        ("p2p", "SANDBOX_PORT"), ("ephyto_hub", "EPHYTO_PORT"), ("traces_nt", "TRACES_PORT"), ("delta", "DELTA_PORT"),
        ("single_window", "SINGLE_WINDOW_PORT"), ("cites_authority", "CITES_SANDBOX_PORT"))]
    with log.open("w") as out:
        return subprocess.Popen(
            [*HUB, "serve", "--workers", "2", "--port", hub_env["API_PORT"], "--cites-exchange-port", hub_env["CITES_EXCHANGE_PORT"],
             *[argument for port in sandbox_ports for argument in ("--sandbox-port", port)]],
            env=hub_env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT,
        )


def _worker_processes(server: subprocess.Popen) -> dict[int, psutil.Process]:
    """The serve process's live ``hub worker`` children, by pid."""
    children = {}
    for child in psutil.Process(server.pid).children():
        try:
            if "worker" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                children[child.pid] = child
        except psutil.NoSuchProcess:
            pass
    return children


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_serve_with_two_worker_processes_delivers_restarts_a_killed_one_and_stops_them_all(hub_env, database_url, tmp_path):
    hub_env = {**hub_env, "HUB_DATABASE_URL": database_url}
    assert run(hub_env, "db", "upgrade").returncode == 0
    added = run(hub_env, "clients", "add", "exporter", "--tenant", "FR")
    assert added.returncode == 0, added.stderr
    log = tmp_path / "serve.log"
    server = _serve(hub_env, log)
    api = httpx.Client(base_url=f"http://127.0.0.1:{hub_env['API_PORT']}", headers={"Authorization": f"Bearer {added.stdout.strip()}"}, timeout=10)
    numbers = (f"FR-2026-PC-{n:06d}" for n in range(100, 1000))
    ever_started: dict[int, psutil.Process] = {}

    def submit() -> str:
        record = json.loads(EXAMPLE.read_text())
        record["certificate_number"] = next(numbers)
        answer = api.post("/v1/documents", content=json.dumps(record), headers={"Content-Type": "application/json"})
        assert answer.status_code == 202, answer.text
        return answer.json()["id"]

    def acknowledged(document_ids: list[str]):
        messages = [m for d in document_ids for m in api.get("/v1/messages", params={"document_id": d}).json()["items"]]
        return messages if len(messages) == 2 * len(document_ids) and all(m["state"] == "acknowledged" for m in messages) else None

    def delivering_pids(messages) -> set[int]:
        workers = {a["worker"] for m in messages for a in api.get(f"/v1/messages/{m['id']}").json()["attempts"]}
        assert all(w.startswith("worker:") and "/" in w for w in workers), workers  # worker:<host>:<pid>/<lane>
        return {int(w.split("/")[0].rsplit(":", 1)[1]) for w in workers}

    def two_workers():
        if server.poll() is not None:
            pytest.fail(f"hub serve stopped:\n{log.read_text()}")
        children = _worker_processes(server)
        ever_started.update(children)
        return children if len(children) == 2 else None

    try:
        def healthy():
            try:
                return api.get("/healthz").status_code == 200
            except httpx.TransportError:
                return server.poll() is not None and pytest.fail(log.read_text())

        wait_for(healthy, timeout=30, what="the hub to listen")
        first = wait_for(_every(0.1, two_workers), timeout=30, what="two worker processes")
        assert "2 worker processes" in log.read_text()  # the banner

        # Both processes deliver: documents go in waves until each has delivered some (a bounded number of waves).
        pids: set[int] = set()
        for _wave in range(12):
            documents = [submit() for _ in range(3)]
            pids |= delivering_pids(wait_for(_every(0.2, lambda: acknowledged(documents)), timeout=30, what="the wave to be acknowledged"))
            if len(pids) >= 2:
                break
        assert pids == set(first), (pids, set(first))

        # A worker process killed is started again, and the deliveries go on.
        killed = next(iter(first.values()))
        killed.send_signal(signal.SIGKILL)

        def replaced():
            children = two_workers()
            return children if children and killed.pid not in children else None

        restarted = wait_for(_every(0.1, replaced), timeout=30, what="the killed worker process to be started again")
        assert len(restarted) == 2 and killed.pid not in restarted
        documents = [submit() for _ in range(3)]
        later = delivering_pids(wait_for(_every(0.2, lambda: acknowledged(documents)), timeout=30, what="documents after the restart to be acknowledged"))
        assert later <= set(restarted)
        assert "was killed by SIGKILL; starting it again" in log.read_text()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            for child in [*psutil.Process(server.pid).children(recursive=True), server]:
                child.kill()
            raise
    assert server.returncode == 0, log.read_text()
    assert ever_started and all(_gone(child) for child in ever_started.values()), log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()


class _SlowCounterpart(LoopbackServer):
    """Takes a connection, says nothing for ``seconds``, then closes it: a delivery under way for that long."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.reached = threading.Event()

    def answer(self, connection) -> None:
        self.reached.set()
        self.stopped.wait(self.seconds)


def _submitted(hub_env: dict[str, str], monkeypatch) -> str:
    """The worked certificate submitted straight to the store of ``hub_env`` (its two messages due): its id."""
    for name, value in hub_env.items():
        monkeypatch.setenv(name, value)
    broker = Broker.from_settings(Settings.from_env())
    try:
        return broker.submit(EXAMPLE.read_bytes(), "application/json", tenant="FR", actor="test").document.id
    finally:
        broker.close()


def test_hub_worker_stops_on_sigterm_after_finishing_what_it_sends(hub_env, sqlite_database_url, monkeypatch, tmp_path):
    counterpart = _SlowCounterpart(seconds=2)
    hub_env = {**hub_env, "HUB_DATABASE_URL": sqlite_database_url, "HUB_SANDBOX_URL": f"https://127.0.0.1:{counterpart.port}"}
    document_id = _submitted(hub_env, monkeypatch)
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen([*HUB, "worker"], env=hub_env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert counterpart.reached.wait(30), log.read_text()
        worker.send_signal(signal.SIGTERM)  # while the counterpart holds the delivery
        assert worker.wait(timeout=30) == 0, log.read_text()
    finally:
        counterpart.close()
        if worker.poll() is None:
            worker.kill()
    database = Database(sqlite_database_url)
    try:
        with database.sessions() as session:
            messages = session.scalars(select(Message).where(Message.document_id == document_id)).all()
            attempts = session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.message_id.in_([m.id for m in messages]))).all()
    finally:
        database.dispose()
    # What was under way was settled (its attempt recorded, to be tried again), not left leased in `sending`.
    assert attempts and all(m.state != "sending" for m in messages), ([m.state for m in messages], log.read_text())
    assert "Traceback" not in log.read_text(), log.read_text()


def test_a_supervised_worker_stops_when_its_serve_process_is_gone(hub_env, sqlite_database_url, tmp_path):
    hub_env = {**hub_env, "HUB_DATABASE_URL": sqlite_database_url}
    log = tmp_path / "worker.log"
    # A stand-in for `hub serve`: starts the worker, says its pid, and dies without stopping it.
    parent = subprocess.run(
        [sys.executable, "-c", "import os, subprocess, sys; print(subprocess.Popen([*sys.argv[2:], '--supervisor', str(os.getpid())], "
         "stdout=open(sys.argv[1], 'w'), stderr=subprocess.STDOUT).pid)", str(log), *HUB, "worker"],
        env=hub_env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30,
    )
    orphan = psutil.Process(int(parent.stdout))
    try:
        wait_for(_every(0.2, lambda: _gone(orphan)), timeout=60, what="the orphaned worker to stop")
    finally:
        if not _gone(orphan):
            orphan.kill()
    assert "the serve process is gone; stopping" in log.read_text(), log.read_text()


def _supervisor(code: str, **options) -> WorkerProcesses:
    """Worker processes running the Python ``code`` instead of ``hub worker``."""
    processes = WorkerProcesses(2, settings=Settings(), **options)
    processes.command = [sys.executable, "-c", code]
    return processes


def test_a_worker_process_that_keeps_dying_is_started_again_later_and_later(caplog):
    processes = _supervisor("raise SystemExit(3)")

    async def scenario() -> None:
        processes.start()
        supervising = asyncio.create_task(processes.supervise(every=0.01))
        restarts = lambda: [r.getMessage() for r in caplog.records if "worker process 1 " in r.getMessage() and "starting it again" in r.getMessage()]
        deadline = asyncio.get_running_loop().time() + 30
        while len(restarts()) < 3 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await processes.stop()
        supervising.cancel()
        assert [m.rsplit(" in ", 1)[1] for m in restarts()[:3]] == ["0.5 s", "1.0 s", "2.0 s"], restarts()
        assert "exited with code 3" in restarts()[0]

    with caplog.at_level(logging.INFO, logger="hub.serve"):
        asyncio.run(scenario())
    assert all(p.poll() is not None for p in processes.processes)


def test_a_worker_process_deaf_to_sigterm_is_killed_after_the_stop_timeout(tmp_path):
    processes = _supervisor(f"import os, pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); (pathlib.Path({str(tmp_path)!r}) / str(os.getpid())).touch(); time.sleep(120)",
                            stop_timeout=0.5)

    async def scenario() -> None:
        processes.start()
        wait_for(lambda: len(list(tmp_path.iterdir())) == 2, timeout=30, what="the processes to ignore SIGTERM")
        await asyncio.wait_for(processes.stop(), timeout=30)

    asyncio.run(scenario())
    assert [p.returncode for p in processes.processes] == [-signal.SIGKILL, -signal.SIGKILL]
