"""Wake-ups (hub/store/wakeups.py): a listener hears messages queued by another connection once their transaction
commits, and nothing from one rolled back; on SQLite (a datagram per listening process) and PostgreSQL (NOTIFY)."""

from __future__ import annotations

import threading
import time

import pytest

from hub.store.db import Database
from hub.store.wakeups import Listener, announce


def _listening(database, wake: threading.Event) -> Listener:
    listener = Listener(database, wake)
    listener.start()
    deadline = time.monotonic() + 10
    # Listening once the first wake-up (sent when it starts, or ours) arrives.
    while not wake.wait(0.05):
        with database.transaction() as session:
            announce(session)
        assert time.monotonic() < deadline, "the listener never started"
    time.sleep(0.1)
    wake.clear()
    return listener


def test_a_worker_elsewhere_is_woken_when_messages_are_committed_not_when_rolled_back(database):
    other = Database(database.url)  # another engine: another process's connections
    wake = threading.Event()
    listener = _listening(database, wake)
    try:
        with pytest.raises(RuntimeError):
            with other.transaction() as session:
                announce(session)
                raise RuntimeError("rolled back")
        assert not wake.wait(1.5)
        with other.transaction() as session:
            announce(session)
            announce(session)  # once per transaction
        assert wake.wait(5)
    finally:
        listener.stop()
        other.dispose()


def test_a_listener_stops_and_leaves_nothing_behind(sqlite_database_url):
    from sqlalchemy.engine import make_url

    from hub.store.wakeups import socket_folder

    database = Database(sqlite_database_url)
    wake = threading.Event()
    listener = _listening(database, wake)
    folder = socket_folder(make_url(sqlite_database_url).database)
    assert len(list(folder.glob("*.sock"))) == 1
    listener.stop()
    assert list(folder.glob("*.sock")) == []
    database.dispose()
