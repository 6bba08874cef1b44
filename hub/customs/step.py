"""One step of the customs registry (a check, a reservation, a clearance, a write-off at once) as one transaction on
a bare SQLAlchemy Core connection.

The registry's own ledger is read and written through Core statements built once (:mod:`hub.customs.sheet`); an ORM
session's begin, flush and commit would cost more than the statements themselves. A step therefore holds no session
unless it needs ORM objects (the operations sent to a CHED authority, the export permits a CITES import permit names):
:attr:`Step.session` then makes one on the step's connection, in its transaction. The trace's events wait in the step
and go in one multi-row insert just before the commit, as :mod:`hub.store.appends` writes a session's.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from hub.store.appends import flush_appends
from hub.store.db import Database
from hub.store.trace import add_event


class Step:
    """One transaction of the registry: its Core connection, the trace events it appends, and (only when asked for)
    an ORM session on the same connection. It offers what :mod:`hub.store.appends` needs of a session (``info`` and
    ``connection()``), so that :func:`~hub.store.trace.add_event` and :func:`~hub.store.appends.flush_appends` serve it
    as they serve a session."""

    def __init__(self, connection: Connection, *, session: Session | None = None) -> None:
        self._connection = connection
        self._session = session
        self._owns_session = False
        self.info: dict[str, Any] = {}

    def connection(self) -> Connection:
        return self._connection

    @property
    def session(self) -> Session:
        """An ORM session in the step's transaction (made the first time it is asked for)."""
        if self._session is None:
            # Bound to the connection, the session joins its transaction: it neither commits nor rolls it back.
            self._session = Session(bind=self._connection, expire_on_commit=False)
            self._owns_session = True
        return self._session

    def trace(self, document: Any, event: str, actor: str, detail: dict) -> None:
        """An event on ``document``'s trace, in its lifecycle as it is now (written by :meth:`write`)."""
        add_event(self, document=document, event=event, actor=actor, state=document.lifecycle, detail=detail)

    def write(self) -> None:
        """Store what waits: the session's changes (the events may refer to them), then the trace's events."""
        if self._session is not None:
            self._session.flush()
        flush_appends(self)

    def close(self) -> None:
        """Close the session the step made, if it made one (a session it was given is its owner's to close)."""
        if self._owns_session:
            self._session.close()


@contextmanager
def step(database: Database) -> Iterator[Step]:
    """A step in a transaction of its own: written and committed when the block ends, rolled back if it raises."""
    with database.core_transaction() as connection:
        current = Step(connection)
        try:
            yield current
            current.write()
        finally:
            current.close()
