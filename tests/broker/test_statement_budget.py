"""The database cost of a document, counted (issue 14): from the API call to the acknowledgement, through the real
point-to-point connector and its sandbox over mutual TLS, every SQL statement and every commit of the hub — the
audit entry, the submission, the claim, the delivery's outcome, the acknowledgement polled later — divided by the
documents. A bound on counts, not on time: it holds on any machine, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.p2p.sandbox import create_sandbox_from_pki
from connectors.serving import running_sandbox
from hub.broker import Broker
from hub.config import Settings
from hub.stages import CLOCK, STAGES
from hub.store.migrate import upgrade
from hub.store.models import Message
from tests.support.api import api_client
from tests.support.broker import example_record

DOCUMENTS = 48
MAX_STATEMENTS = 15
MAX_COMMITS = 3


@pytest.mark.slow
def test_a_document_costs_at_most_15_statements_and_3_commits_end_to_end(database_url, pki, tmp_path: Path):
    with running_sandbox(create_sandbox_from_pki(pki.directory), certs_dir=pki.directory) as sandbox:
        connectors = tmp_path / "connectors.yaml"
        connectors.write_text(json.dumps({"connectors": {
            "foreign_authority": {"type": "p2p", "endpoints": {"*": f"{sandbox.url}/p2p/authority"}, "acks": "poll", "answered_by": {"*": "US"}},
        }}))
        routes = tmp_path / "routes.yaml"
        routes.write_text(json.dumps({"rules": [{"name": "everything", "when": {}, "to": ["foreign_authority"]}]}))
        upgrade(database_url)
        broker = Broker.from_settings(Settings(database_url=database_url, certs_dir=pki.directory, connectors_file=connectors, routes_file=routes))
        worker = broker.make_worker(webhooks=False)
        try:
            with api_client(broker) as client:
                def submit(number: str) -> None:
                    answer = client.post("/v1/documents", json=example_record(certificate_number=number))
                    assert answer.status_code == 202, answer.text

                submit("FR-2026-WARM-1")  # the first of its kind loads specs, schemas, keys: not counted
                worker.drain()
                _acknowledge_all(worker, broker, expected=1)
                CLOCK.reset()
                for index in range(DOCUMENTS):
                    submit(f"FR-2026-BUDGET-{index:03d}")
                assert worker.drain() == DOCUMENTS
                _acknowledge_all(worker, broker, expected=DOCUMENTS + 1)
                documents, figures = CLOCK.snapshot()
        finally:
            broker.close()
    assert documents == DOCUMENTS
    statements = sum(f.statements for f in figures.values())
    commits = sum(f.commits for f in figures.values())
    by_stage = {name: round(f.statements / DOCUMENTS, 2) for name, f in figures.items()}
    print(f"\n{statements / DOCUMENTS:.2f} statements, {commits / DOCUMENTS:.2f} commits per document: {by_stage}")
    assert statements / DOCUMENTS <= MAX_STATEMENTS, f"{statements / DOCUMENTS:.1f} statements per document: {by_stage}"
    assert commits / DOCUMENTS <= MAX_COMMITS, f"{commits / DOCUMENTS:.2f} commits per document"
    assert {"validate", "sign", "store", "claim", "deliver", "settle", "ack"} <= set(figures) <= {*STAGES, "other"}


def _acknowledge_all(worker, broker, *, expected: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        worker.poll_acks()
        with broker.database.sessions() as session:
            if session.scalar(select(func.count()).select_from(Message).where(Message.state == "acknowledged")) == expected:
                return
        time.sleep(0.05)
    raise AssertionError("the sandbox's acknowledgements did not all arrive within 60 s")
