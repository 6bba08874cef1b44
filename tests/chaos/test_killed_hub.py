"""``hub serve`` (API and worker in one process, its own SQLite file) SIGKILLed in the middle of deliveries while
documents keep coming through its API, then started again: the counterparts (in this process, on their own loopback
ports) keep answering meanwhile, pushing acknowledgements to a hub that is not there. Afterwards every document is
stored, every message answered or alerted, applied once by its counterpart, and in order (issue 12 #6: before the
fix, 3 of 120 messages stayed ``awaiting_ack`` for good, their pushed acknowledgements lost)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.chaos.harness import (
    ANSWERED,
    Counterparts,
    HubProcess,
    Submitter,
    api_key,
    batch,
    delivery_problems,
    environment,
    free_port,
    interleaved,
    processes,
    settled,
    stored_messages,
    summary,
    wait_until,
)

PER_TYPE = 15  # 75 documents, 150 messages
LEASE_SECONDS = 3
ANSWER_DEADLINE = 4.0


@pytest.mark.slow
def test_a_killed_hub_serve_loses_nothing_and_leaves_nothing_stuck(pki, tmp_path, caplog):
    database_url = f"sqlite:///{tmp_path / 'hub.db'}"
    key = api_key(database_url)
    port = free_port()
    hub_url = f"http://127.0.0.1:{port}"
    submissions = interleaved(batch(PER_TYPE, tag="K"))
    with Counterparts.running(pki, push_to=hub_url) as counterparts, processes() as started:
        connectors = counterparts.write_connectors(tmp_path / "connectors.json", acks="push", timeout=5.0, poll_interval=0.3,
                                                   answer_deadline=ANSWER_DEADLINE)
        env = environment(HUB_DATABASE_URL=database_url, HUB_CERTS_DIR=str(pki.directory), HUB_CONNECTORS=str(connectors),
                          HUB_LEASE_SECONDS=str(LEASE_SECONDS), HUB_PUBLIC_URL=hub_url)
        args = ["serve", "--port", str(port), "--no-sandboxes", "--cites-exchange-port", "0"]

        def start() -> HubProcess:
            hub = HubProcess(args, env=env, log=tmp_path / "serve.log").start()
            started.append(hub)
            wait_until(lambda: httpx_status(f"{hub_url}/healthz") == 200 or not hub.alive(), timeout=30, what="hub serve to answer")
            assert hub.alive(), hub.tail()
            return hub

        first = start()
        submitter = Submitter(hub_url, key, submissions)
        submitter.start()
        # Kill it mid-delivery: some messages answered, others on their way, documents still coming in.
        wait_until(lambda: mid_delivery(database_url, at_least=30), timeout=60, what="deliveries under way", describe=first.tail)
        # The next deliveries to both p2p counterparts take 1.5 s: they are with the counterpart when the hub dies,
        # and the counterpart applies them and pushes their acknowledgements to a hub that is gone.
        for path in ("/p2p/authority", "/p2p/customs"):
            counterparts.control("p2p", path, fault="slow", seconds=1.5, count=4)
        wait_until(lambda: in_flight(database_url) >= 4, timeout=20, what="deliveries in flight", describe=first.tail)
        time.sleep(0.3)
        first.kill()
        time.sleep(3)  # the counterparts' pushes meanwhile fail and are given up (they try for ~2 s)
        start()
        submitter.finish(timeout=90)

        wait_until(lambda: settled(stored_messages(database_url)), timeout=60, what="every message answered or alerted",
                   describe=lambda: summary(stored_messages(database_url), counterparts.received()))
        messages, received = stored_messages(database_url), counterparts.received()
        print(summary(messages, received), f"; {submitter.retries} submission retries")
        # The chaos happened: deliveries were cut by the kill, and answers pushed while the hub was down were lost.
        assert any("message.lease_expired" in m.events for m in messages), "no delivery was under way when the hub died"
        assert abandoned_pushes(caplog) > 0, "no acknowledgement was pushed while the hub was down"
        assert delivery_problems(submissions, messages, received, allow_dead_letters=False) == [], summary(messages, received)


def abandoned_pushes(caplog) -> int:
    return sum("abandoned" in record.getMessage() for record in caplog.records if record.name == "connectors.p2p.sandbox")


def httpx_status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def in_flight(database_url: str) -> int:
    return sum(m.state == "sending" for m in stored_messages(database_url))


def mid_delivery(database_url: str, *, at_least: int) -> bool:
    """At least ``at_least`` messages delivered and some still to deliver."""
    messages = stored_messages(database_url)
    delivered = sum(m.state in ANSWERED or m.state == "awaiting_ack" for m in messages)
    return delivered >= at_least and any(m.state in ("queued", "sending", "retry_wait", "awaiting_ack") for m in messages)
