"""Mutual TLS on a running API (``hub serve --api-tls``): a client registered by its certificate is authenticated by
the TLS handshake alone, a caller without a certificate still by its key, and a certificate of another CA never
gets through the handshake."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest

from hub.api.app import create_app
from hub.api.auth import create_client
from hub.cli.serve import api_server


@pytest.fixture
def served(broker):
    """The API of ``broker`` over HTTPS with optional client certificates, on a free loopback port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = api_server(create_app(broker), host="127.0.0.1", port=0, tls_from=Path(broker.settings.certs_dir))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[listener])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    listener.close()


def tls(pki, country: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if country is not None:
        context.load_cert_chain(str(pki.client_certs[country]), str(pki.client_keys[country]))
    return context


def test_a_client_registered_by_its_certificate_needs_nothing_else(served, broker, pki, stranger_pki):
    with broker.database.transaction() as session:
        _, key = create_client(session, name="fr-by-certificate", tenant="FR", certificate=pki.client_certs["FR"].read_bytes())
    assert key is None
    with httpx.Client(verify=tls(pki, "FR")) as client:
        assert client.get(f"{served}/v1/documents").status_code == 200
    with httpx.Client(verify=tls(pki, None)) as client:
        answer = client.get(f"{served}/v1/documents")
        assert answer.status_code == 401 and "WWW-Authenticate" in answer.headers
    with httpx.Client(verify=tls(pki, "US")) as client:  # a certificate of the CA, registered for nobody
        assert client.get(f"{served}/v1/documents").status_code == 401
    stranger = ssl.create_default_context(cafile=str(pki.ca_cert))
    stranger.load_cert_chain(str(stranger_pki.client_certs["FR"]), str(stranger_pki.client_keys["FR"]))
    with httpx.Client(verify=stranger) as client, pytest.raises(httpx.HTTPError):
        client.get(f"{served}/v1/documents")  # another CA's certificate: refused in the handshake
