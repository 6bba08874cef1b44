"""A raw loopback TCP server for tests that need a counterpart misbehaving below HTTP (trickling, flooding): each
connection is handed to :meth:`LoopbackServer.answer` on a thread of its own."""

from __future__ import annotations

import socket
import threading


class LoopbackServer:
    """Listens on 127.0.0.1 (a free port, :attr:`port`) until :meth:`close`; subclasses write :meth:`answer`."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def answer(self, connection: socket.socket) -> None:
        """Serve one connection (closed afterwards)."""
        raise NotImplementedError

    def close(self) -> None:
        self.stopped.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            try:
                self.answer(connection)
            except OSError:
                pass  # the client gave up: what a misbehaving server's tests want of it
