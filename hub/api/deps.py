"""Dependencies shared by the routers: the broker and a read session scoped to the request."""

from __future__ import annotations

from typing import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from hub.broker import Broker


def get_broker(request: Request) -> Broker:
    return request.app.state.broker


def read_session(request: Request) -> Iterator[Session]:
    """A session for reading, closed when the request ends."""
    with request.app.state.broker.database.sessions() as session:
        yield session
