"""The C allocator of the hub's long-running processes (``hub serve``, ``hub worker``).

glibc's malloc gives each new thread an arena of its own, up to eight per core. The API's thread pool, the delivery
threads and the group commits' leaders each touch a different one, and memory freed in one arena serves no other:
under load the resident memory of ``hub serve`` kept growing by fragmentation, not by live objects (Python's own
allocations stayed flat under ``tracemalloc``). Two arenas hold it: 186–187 MB after 3,000 documents, against
207–218 MB with glibc's default, at the same CPU per document (docs/performance.md).
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

log = logging.getLogger(__name__)

#: glibc's ``M_ARENA_MAX`` option of ``mallopt`` (malloc.h).
M_ARENA_MAX = -8
#: The arenas the hub's processes allow themselves when the environment does not say.
ARENAS = 2


def limit_arenas(count: int = ARENAS) -> bool:
    """Let glibc's malloc use at most ``count`` arenas from now on; call it before the process starts its threads.

    ``MALLOC_ARENA_MAX`` in the environment, which glibc read at start, wins: an operator's choice is kept. Elsewhere
    than on glibc (macOS, musl) nothing changes. Returns whether the limit was set here."""
    if os.environ.get("MALLOC_ARENA_MAX") or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        done = ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, count) == 1
    except (OSError, AttributeError) as exc:
        log.debug("malloc arenas left to glibc: %s", exc)
        return False
    return done
