"""PostgreSQL stopped under load, first ``fast`` (clients disconnected, clean shutdown), then ``immediate`` (every
server process quits, crash recovery at restart), each time started again after a few seconds on the same data and
port; between the two, one of the two ``hub worker`` processes is SIGKILLed and a new one started. Documents keep
coming through the API (``hub serve --no-worker``) the whole time, and the counterparts keep answering and pushing.
The API answers ``/healthz`` with 503 while the database is down; afterwards every document is stored, every
message answered or alerted, applied once by its counterpart, and in order (issue 12 #9: before the fix, 11 of 96
messages stayed ``awaiting_ack`` for good, answers read or pushed during the outages lost)."""

from __future__ import annotations

import time

import httpx
import pytest

from hub.store.embedded_postgres import create_database
from tests.chaos.harness import (
    ANSWERED,
    Counterparts,
    HubProcess,
    RestartablePostgres,
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

PER_TYPE = 12  # 60 documents, 120 messages
LEASE_SECONDS = 3
ANSWER_DEADLINE = 4.0
OUTAGE_SECONDS = 4


@pytest.mark.slow
def test_postgres_stopped_fast_then_immediate_under_load_loses_nothing(pki, tmp_path):
    port = free_port()
    hub_url = f"http://127.0.0.1:{port}"
    submissions = interleaved(batch(PER_TYPE, tag="P"))
    postgres = RestartablePostgres()
    t0 = time.monotonic()
    with postgres as server, Counterparts.running(pki, push_to=hub_url) as counterparts, processes() as started:
        create_database(server, "chaos")
        database_url = server.url_for("chaos")
        key = api_key(database_url)
        connectors = counterparts.write_connectors(tmp_path / "connectors.json", acks="push", timeout=5.0, poll_interval=0.3,
                                                   answer_deadline=ANSWER_DEADLINE)
        env = environment(HUB_DATABASE_URL=database_url, HUB_CERTS_DIR=str(pki.directory), HUB_CONNECTORS=str(connectors),
                          HUB_LEASE_SECONDS=str(LEASE_SECONDS), HUB_PUBLIC_URL=hub_url)

        def launch(name: str, *args: str) -> HubProcess:
            process = HubProcess(list(args), env=env, log=tmp_path / f"{name}.log").start()
            started.append(process)
            return process

        api = launch("api", "serve", "--port", str(port), "--no-worker", "--no-sandboxes", "--cites-exchange-port", "0")
        wait_until(lambda: health(hub_url) == 200 or not api.alive(), timeout=30, what="the API to answer", describe=api.tail)
        assert api.alive(), api.tail()
        workers = [launch(f"worker-{n}", "worker", "--concurrency", "2") for n in (1, 2)]
        # Paced, so that documents are still coming in during both outages.
        submitter = Submitter(hub_url, key, submissions, deadline=150, pause=0.25)
        submitter.start()

        phases = [("started", round(time.monotonic() - t0, 1))]
        for mode, share in (("fast", 1 / 3), ("immediate", 2 / 3)):
            wait_until(lambda: len(submitter.accepted) >= share * len(submissions) and delivered(database_url) >= 20 * share,
                       timeout=90, what=f"{share:.0%} of the documents submitted", describe=lambda: " / ".join(w.tail(5) for w in workers))
            if mode == "immediate":
                workers[0].kill()  # mid-delivery: its leases hold its messages until they expire
            postgres.halt(mode)
            down = time.monotonic()
            wait_until(lambda: health(hub_url) == 503, timeout=10, what=f"/healthz to answer 503 while PostgreSQL is down ({mode})")
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down)))
            postgres.resume()
            wait_until(lambda: health(hub_url) == 200, timeout=30, what=f"/healthz to answer 200 after the {mode} restart")
            if mode == "immediate":
                # A new worker for the killed one (`hub worker` refuses to start while the database is down).
                workers.append(launch("worker-3", "worker", "--concurrency", "2"))
            phases.append((mode, round(time.monotonic() - t0, 1)))

        submitter.finish(timeout=120)
        phases.append(("submitted", round(time.monotonic() - t0, 1)))
        dead = [p for p in [api, *workers[1:]] if not p.alive()]
        assert not dead, "hub process(es) died of the outage: " + " / ".join(p.tail(5) for p in dead)
        wait_until(lambda: settled(stored_messages(database_url)), timeout=60, what="every message answered or alerted",
                   describe=lambda: summary(stored_messages(database_url), counterparts.received()))
        phases.append(("settled", round(time.monotonic() - t0, 1)))
        messages, received = stored_messages(database_url), counterparts.received()
        print(summary(messages, received), f"; phases (s) {phases}; {submitter.retries} submission retries")
        assert delivery_problems(submissions, messages, received, allow_dead_letters=False) == [], summary(messages, received)


def health(hub_url: str) -> int | None:
    try:
        return httpx.get(f"{hub_url}/healthz", timeout=3).status_code
    except httpx.HTTPError:
        return None


def delivered(database_url: str) -> int:
    return sum(m.state in ANSWERED or m.state == "awaiting_ack" for m in stored_messages(database_url))
