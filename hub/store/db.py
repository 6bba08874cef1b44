"""Engines and sessions: SQLite (WAL, one file) by default, PostgreSQL when the URL says so; the same code for both."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import ConfigurationError
from hub.stages import count_commit, count_statement


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``url``: ``sqlite:///path`` (the directory is created; WAL journal, foreign keys on, a busy
    timeout so that concurrent writers wait rather than fail) or ``postgresql+psycopg://…``."""
    engine = _make_engine(url, pool_size=pool_size)
    event.listen(engine, "before_cursor_execute", count_statement)
    event.listen(engine, "commit", count_commit)
    return engine


def _make_engine(url: str, *, pool_size: int) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigurationError(f"{url!r}: the hub needs a SQLite file (sqlite:///var/hub.db), not an in-memory database")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=pool_size, max_overflow=pool_size)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        # No ping per checkout (a round trip per transaction): a connection the server dropped fails its first
        # statement, the pool then drops every connection older than the failure, and the work is tried again by
        # its loop or answered 503 (hub.api). Connections are renewed hourly all the same.
        return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_recycle=3600)
    shown = parsed.render_as_string(hide_password=True)  # never the password, in an error that may be printed
    raise ConfigurationError(f"HUB_DATABASE_URL {shown!r}: only sqlite:/// and postgresql:// databases are supported")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Transactions begin where SQLAlchemy says (_sqlite_begin), not where the sqlite3 module guesses.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # a commit answered 202 survives a power loss, not only a crash
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection) -> None:
    # A unit of work that writes takes the write lock first (BEGIN IMMEDIATE), waiting its turn: one that read first
    # and then wrote would fail at once (SQLITE_BUSY) if another process wrote meanwhile, the busy handler unable to
    # help. Reads begin deferred and never wait.
    immediate = connection.get_execution_options().get("hub_writes", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _reusable(connection: Connection) -> bool:
    """Whether a connection whose transaction ended in an error is whole again: open, valid, and out of any
    transaction, as SQLAlchemy and as the driver see it."""
    return not (connection.closed or connection.invalidated or connection.in_transaction()
                or connection.connection.driver_connection.in_transaction)


class _SqliteWriter:
    """The right to write a SQLite database: a re-entrant lock for this process's threads, and an exclusive
    ``flock`` on ``<database>.writer`` for the processes sharing the file (the kernel hands it to the next waiter as
    soon as it is released)."""

    def __init__(self, database: str) -> None:
        self._threads = threading.RLock()
        self._depth = 0
        self._path = f"{database}.writer"
        self._file: int | None = None

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._depth == 0:
            try:
                if self._file is None:
                    self._file = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._file, fcntl.LOCK_EX)
            except BaseException:
                self._threads.release()
                raise
        self._depth += 1

    def __exit__(self, *_exc) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._threads.release()


class Database:
    """An engine and its session factory; ``transaction()`` is the unit of work (commit on success, else roll back)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writing_engine = self.engine.execution_options(hub_writes=True)
        self._writing = sessionmaker(self._writing_engine, expire_on_commit=False)
        # SQLite has one writer at a time and its busy handler waits by sleeping in growing steps, leaving the lock
        # idle between sleeps; queueing writers on a lock hands it over at once: this process's on a lock, and other
        # processes' (hub serve --workers N) on a file lock beside the database.
        self._writer = _SqliteWriter(make_url(url).database) if self.dialect == "sqlite" else contextlib.nullcontext()
        # SQLite's writers take turns, so one connection serves them all: the Core hot paths keep it between their
        # transactions rather than take one from the pool and hand it back each time (a tenth of a customs step).
        self._held: Connection | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with self._writer, self._writing.begin() as session:
            yield session

    @contextmanager
    def core_transaction(self) -> Iterator[Connection]:
        """A unit of work on a bare Core connection, for hot paths that need no ORM object: committed when the block
        ends, rolled back if it raises; writers wait their turn as in :meth:`transaction`."""
        with self._writer:
            if self.dialect != "sqlite":  # PostgreSQL's writers run side by side, each on a connection from the pool
                with self._writing_engine.begin() as connection:
                    yield connection
                return
            if self._held is not None and self._held.in_transaction():
                # A second writer would wait for the first one, its own caller, until the busy timeout.
                raise RuntimeError("a Core transaction is already open in this thread, and SQLite has one writer at a time")
            if self._held is None:
                self._held = self._writing_engine.connect()
            connection = self._held
            try:
                with connection.begin():
                    yield connection
            except BaseException:
                if not _reusable(connection):  # the rollback failed, or the connection broke: the next takes a new one
                    self._held = None
                    connection.close()
                raise

    def dispose(self) -> None:
        """Close the connections: the held writer's, then the pool's."""
        with self._writer:
            if self._held is not None:
                self._held.close()
                self._held = None
        self.engine.dispose()
