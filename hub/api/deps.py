"""Dependencies shared by the routers: the broker and a read session scoped to the request."""

from __future__ import annotations

from typing import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from hub.broker import Broker

#: Bounds of integer parameters: what a 64-bit column and a sane page can hold (past them: 422, never a 500).
MAX_OFFSET = 10_000_000
MAX_VERSION = 1_000_000
MAX_EVENT_ID = 2**62


async def get_broker(request: Request) -> Broker:
    return request.app.state.broker


def read_session(request: Request) -> Iterator[Session]:
    """A session for reading, closed when the request ends."""
    with request.app.state.broker.database.sessions() as session:
        yield session
