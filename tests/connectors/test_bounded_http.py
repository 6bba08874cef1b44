"""Bounded exchanges (connectors/http.py): one deadline for the whole answer, not per read; answers read as a stream
up to a size limit; compressed answers refused. Against a local server that trickles or floods its answer, over real
sockets, and through a connector delivering to it (what the worker stores is what the error carries)."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from connectors.http import (
    DEFAULT_MAX_ANSWER_BYTES,
    KEPT_ANSWER_BYTES,
    AnswerRefused,
    AnswerTooLarge,
    BoundedTransport,
    bounded_client,
)
from connectors.p2p import P2PConfig, P2PConnector
from hub.connector import ConnectorContext, OutboundMessage
from hub.errors import TransientDeliveryError
from tests.support.loopback import LoopbackServer

TRICKLE_INTERVAL = 0.5
TRICKLE_BYTES = 40  # 20 s of answer at one byte every 0.5 s
HUGE_BYTES = 50 * 1024 * 1024


class HostileServer(LoopbackServer):
    """A loopback HTTP/1.1 server answering every request the way ``mode`` says; counts the bytes it got out."""

    def __init__(self, mode: str) -> None:
        self.mode, self.sent, self.done = mode, 0, threading.Event()
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}/p2p/authority"

    def answer(self, connection: socket.socket) -> None:
        try:
            _read_request(connection)
            getattr(self, f"_{self.mode}")(connection)
        finally:
            self.done.set()

    def _send(self, connection: socket.socket, data: bytes) -> None:
        connection.sendall(data)
        self.sent += len(data)

    def _trickle(self, connection: socket.socket) -> None:
        body = b"<ok/>" + b" " * (TRICKLE_BYTES - 5)
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        for index in range(len(answer)):
            if self.stopped.is_set():
                return
            self._send(connection, answer[index:index + 1])
            time.sleep(TRICKLE_INTERVAL)

    def _flood(self, connection: socket.socket) -> None:
        self._send(connection, b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nConnection: close\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(HUGE_BYTES // len(chunk)):
            self._send(connection, chunk)

    def _declared(self, connection: socket.socket) -> None:
        self._send(connection, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % HUGE_BYTES)
        self._send(connection, b"x" * 65536)

    def _gzipped(self, connection: socket.socket) -> None:
        self._send(connection, b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nabcd")


def _read_request(connection: socket.socket) -> None:
    connection.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536) or b"\r\n\r\n"
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += connection.recv(65536) or b"x" * length


@pytest.fixture
def server(request):
    hostile = HostileServer(request.param)
    yield hostile
    hostile.close()


def _message() -> OutboundMessage:
    return OutboundMessage(id="msg-1", correlation_id="corr-1", destination="foreign_authority", document_id="doc-1",
                           document_kind="sps", certificate_number="FR-2026-1", status="issued", issuing_country="FR",
                           exporting_country="FR", importing_country="US", payload=b"<SPSCertificate/>", attempt=1)


def _connector(pki, url: str, **settings) -> P2PConnector:
    config = P2PConfig(endpoints={"*": url}, **settings)
    return P2PConnector("foreign_authority", config, context=ConnectorContext(certs_dir=str(pki.directory), public_url="http://127.0.0.1:8000"))


# --- the deadline is for the whole answer -------------------------------------------------------------------------

@pytest.mark.parametrize("server", ["trickle"], indirect=True)
def test_a_trickled_answer_ends_at_the_deadline_not_after_each_read(server):
    trickle_total = TRICKLE_INTERVAL * (TRICKLE_BYTES + 60)
    with bounded_client(timeout=1.5) as client:
        started = time.monotonic()
        with pytest.raises(httpx.TimeoutException):
            client.post(server.url, content=b"<x/>")
        took = time.monotonic() - started
    # A per-read timeout would wait for the whole trickle (each byte comes well within 1.5 s).
    assert took < trickle_total / 5


@pytest.mark.parametrize("server", ["trickle"], indirect=True)
def test_a_delivery_to_a_trickling_counterpart_is_a_transient_failure_within_its_timeout(pki, server):
    connector = _connector(pki, server.url, timeout=1.5)
    try:
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError, match=r"no answer from .* within 1\.5s"):
            connector.deliver(_message())
        took = time.monotonic() - started
    finally:
        connector.close()
    assert took < TRICKLE_INTERVAL * TRICKLE_BYTES / 5


# --- answers are read up to a limit, as a stream ------------------------------------------------------------------

@pytest.mark.parametrize("server", ["flood"], indirect=True)
def test_a_huge_answer_is_cut_at_the_limit_and_only_its_start_is_kept(pki, server):
    limit = 1024 * 1024
    connector = _connector(pki, server.url, timeout=20, max_answer_bytes=limit)
    try:
        with pytest.raises(TransientDeliveryError, match=f"answer larger than {limit} bytes") as failed:
            connector.deliver(_message())
    finally:
        connector.close()
    # What the worker stores as the attempt's answer is the error's: bounded, never the whole.
    assert failed.value.response is not None and len(failed.value.response) <= min(limit, KEPT_ANSWER_BYTES)
    assert failed.value.response.startswith(b"x")
    server.done.wait(10)
    assert server.sent < HUGE_BYTES / 2  # the reading stopped: the server could not push the rest


@pytest.mark.parametrize("server", ["declared"], indirect=True)
def test_an_answer_declaring_a_length_over_the_limit_is_refused_before_its_body(server):
    with bounded_client(timeout=5, max_answer_bytes=1024 * 1024) as client:
        with pytest.raises(AnswerTooLarge, match="answer larger than 1048576 bytes"):
            client.get(server.url)


@pytest.mark.parametrize("server", ["gzipped"], indirect=True)
def test_a_compressed_answer_is_refused_its_size_is_unknown_until_inflated(server):
    with bounded_client(timeout=5) as client:
        with pytest.raises(AnswerRefused, match="compressed with 'gzip'"):
            client.get(server.url)


def test_answers_under_the_limit_pass_whole():
    body = b"y" * 5000
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    with bounded_client(timeout=5, max_answer_bytes=5000, transport=transport) as client:
        assert client.get("http://counterpart.test/").content == body


def test_a_handed_transport_is_bounded_too():
    class Chunks(httpx.SyncByteStream):
        def __iter__(self):
            for _ in range(100):
                yield b"z" * 1000

    bounded = BoundedTransport(httpx.MockTransport(lambda request: httpx.Response(200, stream=Chunks())), timeout=5, max_answer_bytes=10_000)
    with httpx.Client(transport=bounded) as client:
        with pytest.raises(AnswerTooLarge) as failed:
            client.get("http://counterpart.test/")
    assert failed.value.head == b"z" * 10_000


def test_the_answer_is_asked_uncompressed():
    seen = []
    transport = httpx.MockTransport(lambda request: seen.append(request.headers["Accept-Encoding"]) or httpx.Response(204))
    with bounded_client(timeout=5, transport=transport) as client:
        client.get("http://counterpart.test/")
    assert seen == ["identity"]


# --- every connector reads its answers through the bounded path ---------------------------------------------------

class _Flood(httpx.SyncByteStream):
    def __init__(self, chunks: int) -> None:
        self.chunks = chunks

    def __iter__(self):
        for _ in range(self.chunks):
            yield b"x" * 65536  # no Content-Length: only counting tells


def _flooding_transport(mebibytes: int = 4) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, stream=_Flood(16 * mebibytes), headers={"Content-Type": "text/xml"}))


@pytest.mark.parametrize("name", ["foreign_authority", "ephyto_hub", "traces_nt", "single_window"])
def test_every_connector_stops_reading_an_answer_at_its_limit(pki, certificates, ephyto_certificates, project_root, name):
    from connectors.registry import build_connector, load_connector_configs
    from hub.signing import Signer
    from tests.connectors.traces_nt.harness import ChedMessages

    limit = 1024 * 1024
    # The test PKI stands for certs/dev, which a fresh clone has not made yet.
    config = load_connector_configs(project_root / "config" / "connectors.yaml", environ={"HUB_CERTS_DIR": str(pki.directory)})[name]
    context = ConnectorContext(certs_dir=str(pki.directory), public_url="http://127.0.0.1:8000")
    connector = build_connector(name, config.model_copy(update={"max_answer_bytes": limit}), transport=_flooding_transport(), context=context)
    message = {
        "ephyto_hub": lambda: ephyto_certificates.message(destination=name, importing_country="US"),
        "traces_nt": lambda: ChedMessages(Signer(pki.key_provider("FR"))).message(),
    }.get(name, lambda: certificates.message(destination=name, importing_country="US"))()
    connector.open()
    try:
        with pytest.raises(TransientDeliveryError, match=f"answer larger than {limit} bytes"):
            connector.deliver(message)
    finally:
        connector.close()


def test_the_cites_exchange_client_stops_reading_an_answer_at_its_limit(pki):
    from connectors.cites_p2p.client import CitesExchangeClient
    from connectors.cites_p2p.epix import EpixFault

    with CitesExchangeClient("https://peer.test/cites", country="FR", certs_dir=pki.directory, transport=_flooding_transport(11)) as client:
        with pytest.raises(EpixFault, match=f"answer larger than {DEFAULT_MAX_ANSWER_BYTES} bytes"):
            client.service_state()
