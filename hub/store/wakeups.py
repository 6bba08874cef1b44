"""Wake-ups: a worker in another process hears that messages were queued, instead of finding out at its next poll.

The transaction that queues messages calls :func:`announce`; once it commits, every worker listening is woken:

* PostgreSQL: ``NOTIFY hub_outbox`` in that transaction (the server delivers it at commit, to every worker
  ``LISTEN``ing, on any machine; a rolled-back transaction notifies nobody);
* SQLite (processes of one machine, sharing the file): after the commit, one datagram to each worker's Unix socket,
  in a directory named after the database file.

A :class:`Listener` sets its worker's wake event on each. Wake-ups only make a worker prompter: a lost one costs a
poll interval (the worker still polls, less often, for retries falling due).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import tempfile
import threading
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from hub.store.db import Database

log = logging.getLogger("hub.wakeups")
CHANNEL = "hub_outbox"
_ANNOUNCED = "hub.wakeups.announced"


def announce(session: Session) -> None:
    """Messages were queued in this transaction: wake the workers once it commits (once per transaction)."""
    if session.info.get(_ANNOUNCED):
        return
    session.info[_ANNOUNCED] = True
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))
    else:
        folder = socket_folder(bind.url.database)
        event.listen(session, "after_commit", lambda _session: _send_datagrams(folder), once=True)


def socket_folder(database_file: str) -> Path:
    """Where the workers of the SQLite database ``database_file`` keep their sockets (a short path: a Unix socket's
    name has at most 107 bytes)."""
    name = hashlib.sha256(os.path.abspath(database_file).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"hub-wake-{name}"


def _send_datagrams(folder: Path) -> None:
    try:
        paths = list(folder.glob("*.sock"))
    except OSError:
        return
    if not paths:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        for path in paths:
            try:
                sender.sendto(b"1", str(path))
            except (ConnectionRefusedError, FileNotFoundError):
                path.unlink(missing_ok=True)  # a worker gone without removing its socket
            except OSError:
                pass  # its queue is full: it is awake already


class Listener:
    """Sets ``wake`` whenever messages are announced, from a thread of its own, until :meth:`stop`."""

    def __init__(self, database: Database, wake: threading.Event) -> None:
        self.database = database
        self.wake = wake
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        target = self._listen_postgresql if self.database.dialect == "postgresql" else self._listen_sqlite
        self._thread = threading.Thread(target=self._guarded, args=(target,), name="hub-wakeups", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _guarded(self, target) -> None:
        pause = 0.5
        while not self._stop.is_set():
            try:
                target()
                return
            except Exception as exc:  # the database away, a socket refused: polling goes on; try again later
                log.info("wake-ups interrupted (%s); listening again in %.1f s", exc, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, 30.0)

    def _listen_postgresql(self) -> None:
        import psycopg  # the driver of the PostgreSQL engine; absent with SQLite only

        url = make_url(self.database.url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self.wake.set()  # what was announced while not listening is found by this poll
            while not self._stop.is_set():
                for _notice in connection.notifies(timeout=1.0):
                    self.wake.set()

    def _listen_sqlite(self) -> None:
        folder = socket_folder(make_url(self.database.url).database)
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.bind(str(path))
            receiver.settimeout(1.0)
            try:
                while not self._stop.is_set():
                    try:
                        receiver.recv(16)
                    except TimeoutError:
                        continue
                    self.wake.set()
            finally:
                path.unlink(missing_ok=True)
