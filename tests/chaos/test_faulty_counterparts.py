"""Every connector type against a counterpart that misbehaves on about 30 % of its requests, with every fault its
sandbox plays (503 with and without Retry-After, 500, SOAP faults, garbage, connections cut half-way, answers past
the hub's timeout, refusals), on delivery and on every call that follows an answer. After the faults: every document
stored, every message answered (or dead-lettered with its event, and delivered once resent by an operator), each
applied exactly once by its counterpart, each replacement after the certificate it replaces."""

from __future__ import annotations

import json

import pytest

from hub.broker import Broker
from hub.config import Settings
from hub.delivery.retry import RetryStrategy
from tests.chaos.harness import (
    Counterparts,
    batch,
    delivery_problems,
    interleaved,
    settled,
    stored_messages,
    summary,
    wait_until,
)

PER_TYPE = 24  # documents per connector type (ePhyto Hub, TRACES-NT, single window, AS4; p2p gets them all as customs)
FAULT_SHARE = 0.3


@pytest.mark.slow
def test_every_connector_type_survives_faulty_counterparts(database_url, pki, tmp_path):
    submissions = interleaved(batch(PER_TYPE, tag="F"))
    with Counterparts.running(pki) as counterparts:
        counterparts.inject(share=FAULT_SHARE, requests=2 * PER_TYPE * 2, seed=12)
        settings = Settings(database_url=database_url, certs_dir=pki.directory, lease_seconds=30,
                            connectors_file=counterparts.write_connectors(tmp_path / "connectors.json", timeout=1.0, poll_interval=0.2))
        # Short backoff: the faults, not the waiting, are under test.
        broker = Broker.from_settings(settings, retry=RetryStrategy(base=0.05, factor=2.0, max_delay=0.8))
        worker = broker.make_worker(webhooks=False, concurrency=4, poll_interval=0.05, ack_poll_interval=0.2)
        worker.start()
        try:
            for submission in submissions:
                stored = broker.submit(json.dumps(submission.record).encode(), "application/json", tenant="FR", actor="chaos")
                assert sorted(m.destination for m in stored.document.messages) == sorted(submission.destinations), submission.number

            wait_until(lambda: settled(stored_messages(database_url)), timeout=90, what="every message answered or alerted",
                       describe=lambda: summary(stored_messages(database_url), counterparts.received()))
            messages, received = stored_messages(database_url), counterparts.received()
            assert delivery_problems(submissions, messages, received, allow_dead_letters=True) == [], summary(messages, received)
            dead = [m for m in messages if m.state == "dead_letter"]
            assert dead, "the plan refuses some deliveries for good: some messages must be in the dead letters"

            # The operator resends the dead letters once the counterparts behave: everything is then delivered.
            counterparts.clear_faults()
            for message in dead:
                broker.resend(message.id, tenant="FR", actor="operator")
            wait_until(lambda: all(m.state in ("acknowledged", "acknowledged_with_warnings", "rejected") for m in stored_messages(database_url)),
                       timeout=60, what="every message answered after the dead letters were resent",
                       describe=lambda: summary(stored_messages(database_url), counterparts.received()))
            messages, received = stored_messages(database_url), counterparts.received()
            assert delivery_problems(submissions, messages, received, allow_dead_letters=False) == [], summary(messages, received)
            assert all(m.state == "acknowledged" for m in messages), summary(messages, received)
            print(summary(messages, received), f"; {len(dead)} dead letter(s) resent;", f"faults injected: {sum(counterparts.injected.values())}")
        finally:
            worker.stop(timeout=5)
            broker.close()
