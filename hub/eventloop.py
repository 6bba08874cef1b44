"""The event loop the hub's own servers run on.

uvloop's (libuv): an HTTP request costs the API process markedly less CPU there than on asyncio's own loop, which
``asyncio.run`` would give (uvicorn picks uvloop only when it makes the loop itself; the hub makes it, to run the API,
the worker's supervision and the sandboxes in one). Measured in docs/performance.md.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new uvloop event loop (as :func:`asyncio.run` does on asyncio's)."""
    return uvloop.run(main)
