"""Group commit: the writes of concurrent requests made in one transaction, one commit for all of them.

Each request that writes (a submission, a pushed answer, an audit entry) waits for its commit before it answers,
so that what it answers is durable. When several arrive at once, the first becomes the leader: it takes every item
waiting (up to ``max_batch``), applies them one after the other in one transaction and commits once; each request
then answers with its own item's result. Nothing is answered before its commit, and a request never waits for more
than the batch in front of it: a leader that has written its own item hands the lead to the next request waiting.

An item that fails makes its batch roll back; each item of that batch is then applied again in a transaction of its
own (``alone``, by default the same work), so that one bad item fails alone, with its own error.

Under no load a batch holds one item: the cost is that of a plain transaction.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from contextlib import nullcontext
from typing import Callable, Generic, TypeVar

from sqlalchemy.orm import Session

from hub.store.db import Database

T = TypeVar("T")
R = TypeVar("R")


class _Ticket(Generic[T, R]):
    __slots__ = ("item", "result", "error", "done", "lead", "wake")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = False
        self.lead = False
        self.wake = threading.Event()


class GroupCommit(Generic[T, R]):
    """Apply items from many threads in shared transactions. ``apply(session, item)`` does one item's work in the
    given transaction and returns its result; ``alone(item)``, when given, does it in a transaction of its own (for
    work that needs its own recovery, e.g. a savepoint); ``wrap()``, a context around each transaction (a stage of
    :mod:`hub.stages`); ``prepare(session, items)``, what a batch's transaction does once before its items are
    applied (read at once what each of them would read alone)."""

    def __init__(self, database: Database, apply: Callable[[Session, T], R], *, alone: Callable[[T], R] | None = None,
                 max_batch: int = 32, wrap: Callable[[], object] | None = None,
                 prepare: Callable[[Session, list[T]], object] | None = None) -> None:
        self.database = database
        self.apply = apply
        self.alone = alone
        self.max_batch = max_batch
        self.wrap = wrap
        self.prepare = prepare
        self._lock = threading.Lock()
        self._waiting: deque[_Ticket[T, R]] = deque()
        self._leading = False

    def run(self, item: T) -> R:
        """Apply ``item`` (with whatever else waits) and return its result once committed, or raise its error."""
        ticket: _Ticket[T, R] = _Ticket(item)
        with self._lock:
            self._waiting.append(ticket)
            if not self._leading:
                self._leading = ticket.lead = True
        while not ticket.lead and not ticket.done:
            ticket.wake.wait()
            ticket.wake.clear()
        if not ticket.done:
            self._lead(ticket)
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]

    def _lead(self, own: _Ticket[T, R]) -> None:
        while not own.done:
            with self._lock:
                batch = [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
            self._write(batch)
            for ticket in batch:
                if ticket is not own:
                    ticket.wake.set()
        with self._lock:
            if self._waiting:
                successor = self._waiting[0]
                successor.lead = True  # it writes the next batch: this request may answer now
                successor.wake.set()
            else:
                self._leading = False

    def _write(self, batch: list[_Ticket[T, R]]) -> None:
        try:
            with self._context(), self.database.transaction() as session:
                if self.prepare is not None:
                    self.prepare(session, [ticket.item for ticket in batch])
                results = [self.apply(session, ticket.item) for ticket in batch]
        except BaseException as exc:
            if len(batch) == 1 and self.alone is None:
                batch[0].error, batch[0].done = exc, True
                return
            for ticket in batch:  # each on its own: the one at fault fails alone
                try:
                    ticket.result = self._alone(ticket.item)
                except BaseException as own_error:  # noqa: BLE001 — handed to the request it belongs to
                    ticket.error = own_error
                ticket.done = True
            return
        for ticket, result in zip(batch, results):
            ticket.result, ticket.done = result, True

    def _alone(self, item: T) -> R:
        if self.alone is not None:
            return self.alone(item)
        with self._context(), self.database.transaction() as session:
            return self.apply(session, item)

    def _context(self):
        return self.wrap() if self.wrap is not None else nullcontext()


_GROUPS: "weakref.WeakKeyDictionary[Database, dict[str, GroupCommit]]" = weakref.WeakKeyDictionary()
_GROUPS_LOCK = threading.Lock()


def group_for(database: Database, name: str, make: Callable[[], GroupCommit]) -> GroupCommit:
    """The group commit called ``name`` of ``database`` (one per database and kind of work), made on first use."""
    with _GROUPS_LOCK:
        groups = _GROUPS.setdefault(database, {})
        if name not in groups:
            groups[name] = make()
        return groups[name]
