"""Where a document's time goes: the stages of its way through the hub, timed, with the SQL statements and commits
each stage sent to the database.

Stages: ``validate`` (reading the record or document, mapping, schema, code lists, rules), ``sign``, ``verify`` (a
signature checked: a submitted signed document, or a counterpart's signed answer, inside ``deliver`` or ``ack``),
``store`` (the submission's transaction), ``claim``, ``deliver`` (the exchange with the counterpart), ``settle`` (its
outcome recorded), ``ack`` (answers that came later recorded) and ``audit`` (the audit log's entries, one per request
that changes something). Work outside a stage counts as ``other``.

The figures are this process's (a ``hub worker`` process has its own); ``/metrics`` shows them as
``hub_stage_seconds{stage}`` (a histogram of the time each took, stages nested in it included),
``hub_stage_cpu_seconds_total{stage}`` (the CPU its own code took, in the thread that ran it: a ``verify`` inside a
``deliver`` counts as ``verify`` only, so that the stages add up to a part of the process's CPU, the rest being
outside any stage), ``hub_sql_statements_total{stage}`` and ``hub_sql_commits_total{stage}``, with
``hub_documents_stored_total`` to divide by.
"""

from __future__ import annotations

import bisect
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator

STAGES = ("validate", "sign", "verify", "store", "claim", "deliver", "settle", "ack", "audit")
#: Upper bounds of the histogram's buckets, in seconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_current: ContextVar[str] = ContextVar("hub_stage", default="other")
# The CPU spent so far in stages nested in the current one (a one-item list, so that a nested stage adds to it).
_nested_cpu: ContextVar[list[float] | None] = ContextVar("hub_stage_nested_cpu", default=None)


@dataclass
class StageFigures:
    """One stage's figures: how often it ran, for how long in all, per bucket; its statements and commits."""

    count: int = 0
    seconds: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    statements: int = 0
    commits: int = 0
    cpu_seconds: float = 0.0  # the thread's CPU in the stage's own code (nested stages not counted)


class Clock:
    """The figures of every stage, kept by this process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.figures: dict[str, StageFigures] = {}
        self.documents = 0

    def _of(self, name: str) -> StageFigures:
        # Made only the first time: a StageFigures made to be thrown away cost more than the rest of the count.
        figures = self.figures.get(name)
        if figures is None:
            figures = self.figures[name] = StageFigures()
        return figures

    def observe(self, name: str, seconds: float, cpu_seconds: float = 0.0) -> None:
        with self._lock:
            figures = self._of(name)
            figures.count += 1
            figures.seconds += seconds
            figures.cpu_seconds += cpu_seconds
            index = bisect.bisect_left(BUCKETS, seconds)
            if index < len(BUCKETS):
                figures.buckets[index] += 1

    def statement(self) -> None:
        with self._lock:
            self._of(_current.get()).statements += 1

    def commit(self) -> None:
        with self._lock:
            self._of(_current.get()).commits += 1

    def document_stored(self) -> None:
        with self._lock:
            self.documents += 1

    def snapshot(self) -> tuple[int, dict[str, StageFigures]]:
        """(documents stored, a copy of every stage's figures)."""
        with self._lock:
            return self.documents, {name: StageFigures(f.count, f.seconds, list(f.buckets), f.statements, f.commits, f.cpu_seconds) for name, f in self.figures.items()}

    def reset(self) -> None:
        with self._lock:
            self.figures.clear()
            self.documents = 0


#: This process's clock.
CLOCK = Clock()


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage ``name``; the SQL it sends counts for that stage (the innermost, when nested), and so
    does the CPU its thread spends in it, but for the stages nested in it."""
    token, nested = _current.set(name), _nested_cpu.set([0.0])
    started, cpu_started = time.perf_counter(), time.thread_time()
    try:
        yield
    finally:
        cpu = time.thread_time() - cpu_started
        own = cpu - _nested_cpu.get()[0]
        _nested_cpu.reset(nested)
        enclosing = _nested_cpu.get()
        if enclosing is not None:
            enclosing[0] += cpu
        CLOCK.observe(name, time.perf_counter() - started, own)
        _current.reset(token)


def count_statement(*_args) -> None:
    """An engine's ``before_cursor_execute`` listener: one statement for the current stage (transaction control
    excluded: a commit is counted as such)."""
    statement = _args[2] if len(_args) > 2 else ""
    if not statement.startswith("BEGIN"):
        CLOCK.statement()


def count_commit(*_args) -> None:
    """An engine's ``commit`` listener."""
    CLOCK.commit()
