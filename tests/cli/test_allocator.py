"""The hub's long-running processes hold glibc's malloc to two arenas, however many threads they run, and hand its
free pages back to the system every minute (hub/allocator.py); an operator's MALLOC_ARENA_MAX wins."""

from __future__ import annotations

import ast
import os
import platform
import subprocess
import sys
import threading
import time

import pytest

from hub import allocator
from hub.standards import PROJECT_ROOT

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

#: Sixteen threads allocating at once (blocks above Python's own small-object allocator), then glibc's own account
#: of its arenas on stderr.
_THREADS = """
import ctypes, sys, threading
from hub.allocator import limit_arenas
limited = limit_arenas() if sys.argv[1] == "limit" else None
barrier = threading.Barrier(16)
def allocate():
    barrier.wait()
    for _ in range(100):
        kept = [bytearray(4096) for _ in range(20)]
threads = [threading.Thread(target=allocate) for _ in range(16)]
for thread in threads: thread.start()
for thread in threads: thread.join()
print(limited, flush=True)
ctypes.CDLL("libc.so.6").malloc_stats()
"""


def _arenas(mode: str, **environment: str) -> tuple[str, int]:
    env = {**{k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}, **environment}
    done = subprocess.run([sys.executable, "-c", _THREADS, mode], capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=60, check=True)
    return done.stdout.strip(), sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_sixteen_threads_share_two_arenas_once_limited():
    assert _arenas("limit") == ("True", 2)


def test_without_the_limit_glibc_gives_threads_arenas_of_their_own():
    _, arenas = _arenas("none")
    assert arenas > 2  # what the limit is for: one per thread, up to eight per core


def test_an_operators_malloc_arena_max_wins():
    assert _arenas("limit", MALLOC_ARENA_MAX="4") == ("False", 4)


def test_hub_serve_and_hub_worker_set_the_limit_before_anything_else():
    tree = ast.parse((PROJECT_ROOT / "hub" / "cli" / "run.py").read_text())
    commands = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for name in ("serve", "worker"):
        statements = [s for s in commands[name].body if not isinstance(s, (ast.ImportFrom, ast.Import)) and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        first = statements[0]
        assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Call) and ast.unparse(first.value.func) == "limit_arenas", (name, ast.unparse(first))


#: 80 MB of blocks from malloc's heap (4 KB: above Python's small-object allocator, below glibc's mmap threshold),
#: one in ten kept: the rest is free but between live blocks, so malloc cannot shrink its heap by itself.
_FRAGMENTED = """
import sys
from hub.allocator import release_free_memory
def anonymous():
    return int(next(line for line in open("/proc/self/status") if line.startswith("RssAnon")).split()[1]) // 1024
blocks = [bytearray(4096) for _ in range(20_000)]
kept = blocks[::10]
del blocks
before = anonymous()
released = release_free_memory() if sys.argv[1] == "trim" else None
print(released, before, anonymous())
"""


def _fragmented(mode: str) -> tuple[str, int, int]:
    done = subprocess.run([sys.executable, "-c", _FRAGMENTED, mode], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60, check=True)
    released, before, after = done.stdout.split()
    return released, int(before), int(after)


def test_free_pages_between_live_blocks_go_back_to_the_system_once_trimmed():
    released, before, after = _fragmented("trim")
    assert released == "True" and before - after >= 40, (before, after)


def test_without_a_trim_malloc_keeps_them():
    _, before, after = _fragmented("none")
    assert before - after < 5, (before, after)  # what the trim is for


def test_the_trimming_thread_trims_every_interval_until_stopped(monkeypatch):
    trims = []
    monkeypatch.setattr(allocator, "release_free_memory", lambda: trims.append(time.monotonic()) or True)
    stop = threading.Event()
    thread = allocator.start_trimming(stop, interval=0.02)
    time.sleep(0.2)
    stop.set()
    thread.join(timeout=2)
    assert not thread.is_alive() and thread.daemon
    assert len(trims) >= 3
    stopped = len(trims)
    time.sleep(0.05)
    assert len(trims) == stopped


def test_hub_serve_and_hub_worker_start_trimming_once_started_up():
    for path, function in (("run.py", "worker"), ("serve.py", "_serve")):
        tree = ast.parse((PROJECT_ROOT / "hub" / "cli" / path).read_text())
        body = next(node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function)
        calls = [ast.unparse(node.func) for node in ast.walk(body) if isinstance(node, ast.Call)]
        assert "start_trimming" in calls and calls.index("start_trimming") > calls.index("freeze_start_up"), (path, function)
