"""A ``hub worker`` process killed (SIGKILL) in the middle of a delivery loses nothing: once its lease expires,
another worker delivers the same message again, under the same identity, and the counterpart sees it twice as one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from connectors.p2p.sandbox import create_sandbox_from_pki
from connectors.serving import running_sandbox
from hub.broker import Broker
from hub.config import Settings
from hub.store.models import Message, TraceEvent
from hub.standards import PROJECT_ROOT
from tests.support.broker import example_record
from tests.contract.suite import client_tls, wait_for

LEASE_SECONDS = 2


@pytest.mark.slow
def test_a_killed_worker_process_loses_nothing(postgres_database_url, pki, tmp_path: Path):
    with running_sandbox(create_sandbox_from_pki(pki.directory), certs_dir=pki.directory) as sandbox:
        connectors = tmp_path / "connectors.yaml"
        destinations = {
            name: {"type": "p2p", "endpoints": {"*": f"{sandbox.url}/p2p/{path}"}, "acks": "poll", "timeout": 60, "answered_by": {"*": "US"}}
            for name, path in (("foreign_authority", "authority"), ("customs", "customs"))
        }
        # routed by the default table, unused here
        destinations["ephyto_hub"] = {"type": "ephyto_hub", "endpoint": f"{sandbox.url}/hub/DeliveryService"}
        destinations["traces_nt"] = {"type": "traces_nt", "endpoint": f"{sandbox.url}/tracesnt/ws", "submission_service": "S", "username": "u", "authentication_key": "k", "client_id": "c"}
        destinations["single_window"] = {"type": "single_window", "endpoint": f"{sandbox.url}/iop", "interaction_code": "CFS.ENVIO01", "service_id": "IOPCFS0001", "sender_id": "HUBFR", "recipient_id": "VUCEPE"}
        destinations["as4_authority"] = {"type": "as4", "endpoint": f"{sandbox.url}/as4", "service": {"value": "urn:s"}, "action": "Certificate",
                                         "initiator": {"party_id": "fr", "role": "r", "country": "FR"}, "responder": {"party_id": "jp", "role": "r", "country": "JP"}}
        connectors.write_text(json.dumps({"connectors": destinations}))
        settings = Settings(database_url=postgres_database_url, certs_dir=pki.directory, connectors_file=connectors, lease_seconds=LEASE_SECONDS)
        broker = Broker.from_settings(settings)
        with httpx.Client(base_url=sandbox.url, verify=client_tls(pki)) as control:
            control.post("/p2p/authority/control", json={"fault": "slow", "seconds": 30}).raise_for_status()
            stored = broker.submit(json.dumps(example_record()).encode(), "application/json", tenant="FR", actor="test")
            message_id = next(m.id for m in stored.document.messages if m.destination == "foreign_authority")

            env = {**os.environ, "HUB_DATABASE_URL": postgres_database_url, "HUB_CERTS_DIR": str(pki.directory), "HUB_CONNECTORS": str(connectors), "HUB_LEASE_SECONDS": str(LEASE_SECONDS)}
            doomed = subprocess.Popen([sys.executable, "-m", "hub", "worker", "--concurrency", "1"], env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                def in_flight():
                    with broker.database.sessions() as session:
                        message = session.get(Message, message_id)
                        return message.state == "sending" and (message.lease_owner or "").startswith("worker:")

                wait_for(in_flight, timeout=30, what="the doomed worker to take the message")
                time.sleep(1)  # its request is now with the (slow) counterpart
            finally:
                doomed.send_signal(signal.SIGKILL)
                doomed.wait(timeout=10)
            with broker.database.sessions() as session:
                assert session.get(Message, message_id).state == "sending"  # the dead worker's lease holds it…

            time.sleep(LEASE_SECONDS + 0.5)  # …until it expires
            survivor = broker.make_worker(webhooks=False)
            survivor.drain()

            with broker.database.sessions() as session:
                message = session.get(Message, message_id)
                assert message.state == "awaiting_ack", message.last_error
                assert message.attempts == 2
                events = [e.event for e in session.scalars(select(TraceEvent).where(TraceEvent.message_id == message_id).order_by(TraceEvent.id))]
            assert events.count("message.sending") == 2 and "message.lease_expired" in events
            entries = [r for r in control.get("/p2p/authority/received").json()["received"] if r["message_id"] == message_id]
            assert len(entries) == 1  # the counterpart holds one message, however often it came
            assert entries[0]["certificate_number"] == "FR-2026-PC-000123"
        broker.close()
