"""Fixtures of the IPPC ePhyto Hub connector's tests: the sandbox Hub in-process and over mutual TLS."""

from __future__ import annotations

import httpx
import pytest

from connectors.ephyto_hub.sandbox import create_ephyto_hub_sandbox
from connectors.serving import InProcessTransport, running_sandbox


@pytest.fixture
def sandbox_hub():
    """A fresh sandbox Hub (the ASGI app), in-process."""
    return create_ephyto_hub_sandbox()


@pytest.fixture
def hub_http(sandbox_hub):
    """An HTTP client calling ``sandbox_hub`` in-process, at ``http://sandbox``."""
    client = httpx.Client(transport=InProcessTransport(sandbox_hub), base_url="http://sandbox")
    yield client
    client.close()


@pytest.fixture(scope="module")
def hub_server(pki):
    """A sandbox Hub served over mutual TLS on loopback (development PKI), one per module."""
    with running_sandbox(create_ephyto_hub_sandbox(), certs_dir=pki.directory) as running:
        yield running
