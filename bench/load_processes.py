"""The processes of one load run, as a user starts them: the counterparts' sandboxes (``hub sandbox NAME``, each its
own process: they are the counterparts, not the hub), ``hub serve`` (the API, and on SQLite the delivery worker) and,
on PostgreSQL, ``hub worker`` processes; their peak memory, sampled while they run.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-m", "hub"]
#: The counterparts the load reaches, and single_window, which config/routes.yaml names (the hub checks every
#: destination has a connector; nothing in the mix goes there).
SANDBOXES = ("p2p", "ephyto_hub", "traces_nt", "single_window")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Spawned:
    """One process: its role (``serve``, ``worker-1``, ``sandbox-p2p``…), its log and the largest RSS seen."""

    name: str
    process: subprocess.Popen
    log: Path
    peak_rss: int = 0

    def peak_mb(self) -> float:
        """The kernel's high-water mark (VmHWM) when it can be read, else the largest sample."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss = max(self.peak_rss, int(line.split()[1]) * 1024)
        except OSError:
            pass
        return self.peak_rss / 2**20


@dataclass
class HubProcesses:
    """Starts, watches and stops every process of a run; ``ports`` are those of the API and each sandbox."""

    env: dict[str, str]
    logs: Path
    workers: int
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in ("api", *SANDBOXES)})
    spawned: list[Spawned] = field(default_factory=list)
    _sampling: threading.Event = field(default_factory=threading.Event)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def sandbox_url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.ports[name]}"

    def _spawn(self, name: str, *args: str) -> None:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            # A session of their own: a Ctrl-C on the benchmark reaches them only through stop(), in order.
            process = subprocess.Popen([*HUB, *args], env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.spawned.append(Spawned(name, process, log))

    def start(self, timeout: float = 90.0) -> None:
        """Sandboxes first, then the API and the workers; returns once each answers (or raises, naming the laggards)."""
        deadline = time.monotonic() + timeout
        for name in SANDBOXES:
            self._spawn(f"sandbox-{name}", "sandbox", name, "--port", str(self.ports[name]), "--hub-url", self.api_url)
        self._wait_ready(deadline)
        serve = ["serve", "--port", str(self.ports["api"]), "--no-sandboxes", "--cites-exchange-port", "0"]
        self._spawn("serve", *serve, *(["--no-worker"] if self.workers else []))
        for index in range(self.workers):
            self._spawn(f"worker-{index + 1}", "worker")
        self._wait_ready(deadline)
        threading.Thread(target=self._sample, name="rss-sampler", daemon=True).start()

    def _wait_ready(self, deadline: float) -> None:
        pending = {spawned.name for spawned in self.spawned}
        while pending:
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{', '.join(sorted(pending))} not ready in time\n{self.log_tails()}")
            for spawned in self.spawned:
                if spawned.name in pending and self._ready(spawned):
                    pending.discard(spawned.name)
            time.sleep(0.2)

    def _ready(self, spawned: Spawned) -> bool:
        if spawned.name.startswith("worker"):
            return b"delivering with" in spawned.log.read_bytes()
        port = self.ports["api"] if spawned.name == "serve" else self.ports[spawned.name.removeprefix("sandbox-")]
        try:
            if spawned.name == "serve":
                return httpx.get(f"{self.api_url}/healthz", timeout=2).status_code == 200
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return True
        except (httpx.TransportError, OSError):
            return False

    def _sample(self) -> None:
        """Samples every process's RSS twice a second (the high-water mark of /proc is read at the end too)."""
        handles = {}
        while not self._sampling.wait(0.5):
            for spawned in self.spawned:
                try:
                    handle = handles.setdefault(spawned.process.pid, psutil.Process(spawned.process.pid))
                    spawned.peak_rss = max(spawned.peak_rss, handle.memory_info().rss)
                except psutil.Error:
                    continue

    def check_alive(self) -> None:
        for spawned in self.spawned:
            if spawned.process.poll() is not None:
                raise RuntimeError(f"`hub {spawned.name}` exited with {spawned.process.returncode}\n{self.log_tails()}")

    def peaks(self) -> dict[str, float]:
        """Peak RSS in MiB per process, read before the processes stop."""
        return {spawned.name: round(spawned.peak_mb(), 1) for spawned in self.spawned}

    def log_tails(self, lines: int = 12) -> str:
        tails = []
        for spawned in self.spawned:
            text = spawned.log.read_text(errors="replace").splitlines()[-lines:] if spawned.log.is_file() else []
            tails.append(f"--- {spawned.name} ({spawned.log}) ---\n" + "\n".join(text))
        return "\n".join(tails)

    def stop(self) -> None:
        """Workers and the API first (SIGINT, as Ctrl-C), then the sandboxes; whatever still runs after 15 s is killed."""
        self._sampling.set()
        for spawned in reversed(self.spawned):
            if spawned.process.poll() is None:
                spawned.process.send_signal(signal.SIGINT)
            try:
                spawned.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                spawned.process.kill()
                spawned.process.wait(timeout=5)
