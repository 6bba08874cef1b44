"""``hub sandbox NAME --plain-http``: a sandbox on its own, reachable by any SOAP client on loopback."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
import zeep

from connectors.ephyto_hub.connector import WSDL_PATH
from connectors.ephyto_hub.transport import HttpxTransport
from hub.standards import PROJECT_ROOT
from tests.contract.suite import wait_for
from tests.support.ports import free_ports

BINDING = "{http://ephyto.ippc.int/}DeliveryServiceSoapBinding"


@pytest.mark.slow
def test_the_ephyto_hub_sandbox_serves_plain_http_for_any_soap_client(tmp_path):
    [port] = free_ports(1)
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "hub", "sandbox", "ephyto_hub", "--port", str(port), "--plain-http"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        def listening():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/received").status_code == 200
            except httpx.TransportError:
                return sandbox.poll() is not None and pytest.fail(sandbox.stdout.read())

        wait_for(listening, timeout=30, what="the sandbox to listen")
        with httpx.Client(timeout=10) as http:
            service = zeep.Client(str(WSDL_PATH), transport=HttpxTransport(http)).create_service(BINDING, f"http://127.0.0.1:{port}/hub/DeliveryService")
            assert "FR" in [nppo.Country for nppo in service.GetActiveNppos()]
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=20)
