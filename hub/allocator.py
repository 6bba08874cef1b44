"""The C allocator of the hub's long-running processes (``hub serve``, ``hub worker``).

glibc's malloc gives each new thread an arena of its own, up to eight per core. The API's thread pool, the delivery
threads and the group commits' leaders each touch a different one, and memory freed in one arena serves no other:
under load the resident memory of ``hub serve`` kept growing by fragmentation, not by live objects (Python's own
allocations stayed flat under ``tracemalloc``). Two arenas hold it: 186–187 MB after 3,000 documents, against
207–218 MB with glibc's default, at the same CPU per document (docs/performance.md).

Freed memory stays with malloc all the same, in pages between live blocks that only ``malloc_trim`` hands back to the
system: the same processes call it every minute from a thread of its own (:func:`start_trimming`).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import platform
import threading

log = logging.getLogger(__name__)

#: glibc's ``M_ARENA_MAX`` option of ``mallopt`` (malloc.h).
M_ARENA_MAX = -8
#: The arenas the hub's processes allow themselves when the environment does not say.
ARENAS = 2
#: Seconds between two hand-backs of freed memory (:func:`start_trimming`).
TRIM_INTERVAL = 60.0


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError as exc:
        log.debug("glibc not loaded: %s", exc)
        return None


def limit_arenas(count: int = ARENAS) -> bool:
    """Let glibc's malloc use at most ``count`` arenas from now on; call it before the process starts its threads.

    ``MALLOC_ARENA_MAX`` in the environment, which glibc read at start, wins: an operator's choice is kept. Elsewhere
    than on glibc (macOS, musl) nothing changes. Returns whether the limit was set here."""
    libc = None if os.environ.get("MALLOC_ARENA_MAX") else _glibc()
    return libc is not None and libc.mallopt(M_ARENA_MAX, count) == 1


def release_free_memory() -> bool:
    """Hand the pages malloc holds free, in every arena, back to the system (glibc's ``malloc_trim(0)``); returns
    whether any was. Nothing happens elsewhere than on glibc."""
    libc = _glibc()
    return libc is not None and libc.malloc_trim(0) == 1


def start_trimming(stop: threading.Event, interval: float = TRIM_INTERVAL) -> threading.Thread | None:
    """Call :func:`release_free_memory` every ``interval`` seconds until ``stop`` is set, from a daemon thread (a
    trim takes milliseconds, up to tens under load: never on an event loop). None elsewhere than on glibc."""
    if _glibc() is None:
        return None

    def trim() -> None:
        while not stop.wait(interval):
            release_free_memory()

    thread = threading.Thread(target=trim, name="hub-malloc-trim", daemon=True)
    thread.start()
    return thread
