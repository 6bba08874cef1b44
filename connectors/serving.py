"""Running a sandbox: over real HTTPS with mutual TLS (uvicorn), or in-process behind a synchronous httpx transport.

* :func:`serve_sandbox` gives a ``uvicorn.Server`` to run in the caller's own event loop (``await server.serve()``);
* :func:`running_sandbox` runs one in a background thread on a free loopback port, for tests and demos;
* :class:`InProcessTransport` lets a synchronous ``httpx.Client`` (hence any connector) call an ASGI app without a
  socket. Unlike ``httpx.ASGITransport`` (async only) and Starlette's ``TestClient`` it honours the client's read
  timeout and lets the app finish on its own, as a real server would, and it reports an answer cut half-way as
  ``httpx.RemoteProtocolError``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette

from hub.errors import ConfigurationError

log = logging.getLogger(__name__)


def serve_sandbox(
    app, *, host: str = "127.0.0.1", port: int = 8443, certs_dir: Path | str, log_level: str = "warning", client_certificates: bool = True,
    plain_http: bool = False,
) -> uvicorn.Server:
    """A uvicorn server for ``app`` over HTTPS that requires a client certificate issued by the dev PKI's CA
    (unless ``client_certificates`` is False: for counterparts that authenticate callers in the message instead).

    Uses ``tls/server.pem``/``.key`` (valid for localhost, 127.0.0.1, ::1) and ``ca.pem`` under ``certs_dir``.
    ``plain_http`` serves plain HTTP on loopback instead, for debugging with any client (never on another host).
    """
    if plain_http:
        return uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level=log_level, access_log=False, timeout_graceful_shutdown=2))
    certs_dir = Path(certs_dir)
    files = [certs_dir / "tls" / "server.pem", certs_dir / "tls" / "server.key", certs_dir / "ca.pem"]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise ConfigurationError(f"the sandbox's TLS files are missing: {', '.join(missing)} (run `hub certs init`)")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(files[0]),
        ssl_keyfile=str(files[1]),
        ssl_ca_certs=str(files[2]),
        ssl_cert_reqs=ssl.CERT_REQUIRED if client_certificates else ssl.CERT_NONE,
        lifespan="off",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


@dataclass(frozen=True)
class RunningSandbox:
    """A sandbox served in a background thread: ``url`` is its base, e.g. ``https://127.0.0.1:40123``."""

    url: str
    port: int
    server: uvicorn.Server


@contextmanager
def running_sandbox(
    app, *, certs_dir: Path | str, host: str = "127.0.0.1", startup_timeout: float = 10.0, client_certificates: bool = True,
) -> Iterator[RunningSandbox]:
    """Serve ``app`` over mutual TLS (server TLS only without ``client_certificates``) on a free port of ``host`` in a
    thread; stop it on exit."""
    server = serve_sandbox(app, host=host, port=0, certs_dir=certs_dir, client_certificates=client_certificates)
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Connections accepted from a socket bound here inherit its options; without TCP_NODELAY, Nagle's algorithm and
    # delayed ACKs add some 40 ms to every answer on loopback.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host, 0))
    port = listener.getsockname()[1]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[listener])), name=f"sandbox-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            listener.close()
            raise RuntimeError(f"the sandbox did not start on {host}:{port}")
        time.sleep(0.01)
    try:
        yield RunningSandbox(url=f"https://{host}:{port}", port=port, server=server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


class InProcessTransport(httpx.BaseTransport):
    """A synchronous httpx transport that calls an ASGI app on a private event loop (its own thread)."""

    def __init__(self, app, *, root_path: str = "") -> None:
        self._app = app
        self._root_path = root_path
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="in-process-asgi", daemon=True)
        self._thread.start()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("the in-process transport is closed", request=request)
        body = request.read()
        timeout = request.extensions.get("timeout", {}).get("read")
        future = asyncio.run_coroutine_threadsafe(self._call(request, body), self._loop)
        try:
            status, headers, content, complete = future.result(timeout)
        except concurrent.futures.TimeoutError:
            # Like a real server, the app keeps running; only the client stops waiting.
            raise httpx.ReadTimeout(f"no answer within {timeout}s", request=request) from None
        if not complete:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body", request=request)
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _call(self, request: httpx.Request, body: bytes) -> tuple[int, list, bytes, bool]:
        answered: asyncio.Future[bool] = self._loop.create_future()
        started: dict = {}
        chunks: list[bytes] = []
        request_sent = False

        async def receive() -> dict:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.shield(answered)
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                started.update(status=message["status"], headers=message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False) and not answered.done():
                    answered.set_result(True)

        async def run() -> None:
            try:
                await self._app(_scope(request, self._root_path), receive, send)
            except Exception as exc:  # an app crash is the peer failing, as a server would report it
                log.error("ASGI app failed on %s %s", request.method, request.url, exc_info=True)
                if not answered.done():
                    answered.set_exception(httpx.RemoteProtocolError(f"the app failed: {exc!r}", request=request))
            finally:
                if not answered.done():
                    answered.set_result(False)

        self._loop.create_task(run())
        complete = await answered
        headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in started.get("headers", [])]
        return started.get("status", 500), headers, b"".join(chunks), complete

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def cancel_pending() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_pending(), self._loop).result(5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()


def _scope(request: httpx.Request, root_path: str) -> dict:
    url = request.url
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": url.scheme,
        "path": url.path,
        "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query,
        "root_path": root_path,
        "headers": [(key.lower(), value) for key, value in request.headers.raw],
        "client": ("127.0.0.1", 50000),
        "server": (url.host, url.port or (443 if url.scheme == "https" else 80)),
        "extensions": {},
    }


def sandbox_app(routes: list, *, close, **state) -> Starlette:
    """A sandbox's ASGI app over ``routes``: ``close`` (a coroutine function: its HTTP clients) is awaited when the
    app stops, and ``state`` is put on ``app.state`` (for tests that steer the sandbox in-process)."""

    @asynccontextmanager
    async def lifespan(_app):
        yield
        await close()

    app = Starlette(routes=routes, lifespan=lifespan)
    for name, value in state.items():
        setattr(app.state, name, value)
    return app
