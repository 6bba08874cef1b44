"""bench/load.py end to end, small: 60 mixed documents through a live hub on SQLite whose sandboxes fault 10% of the
delivery calls; nothing lost, duplicated or stuck, and the report has its shape. The verdicts are checked on their
own too, so that a tally that counts nothing cannot pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hub.standards import PROJECT_ROOT

BENCH = PROJECT_ROOT / "bench"
#: A generous bound: about 45 s on 2 idle cores (start-up of six processes included), several times that when the
#: machine is shared.
BOUND_SECONDS = 240
sys.path.insert(0, str(BENCH))

from load_counterparts import Counterparts  # noqa: E402
from load_mix import DESTINATIONS, Mix  # noqa: E402
from load_tally import _verdict, percentile  # noqa: E402


def test_verdicts_set_the_hub_state_beside_the_counterparts_record():
    assert _verdict("acknowledged", 1) == "delivered"
    assert _verdict("acknowledged", 2) == "duplicated"
    assert _verdict("acknowledged", 0) == "lost"
    assert _verdict("awaiting_ack", 1) == "stuck"
    assert _verdict("retry_wait", 0) == "stuck"
    assert _verdict("dead_letter", 0) == "dead_lettered"
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0 and percentile([], 99) is None


def test_the_mix_follows_its_shares_and_numbers_are_unique():
    documents = Mix().documents(200, run="T")
    families = [d.family for d in documents]
    assert (families.count("ephyto"), families.count("ched"), families.count("cites")) == (120, 50, 30)
    assert len({d.number for d in documents}) == 200
    assert set(families) == set(DESTINATIONS)


def test_faults_are_queued_at_the_rate_asked():
    controls = []

    def handler(request: httpx.Request) -> httpx.Response:
        controls.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={"faults": 0})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    counterparts = Counterparts({"p2p": "https://p2p"}, Path("unused"), fault_rate=0.05, slow_seconds=4.0, client=client)
    for _ in range(1000):
        counterparts.sending("customs")
    assert len(controls) == 50 and {path for path, _ in controls} == {"/p2p/customs/control"}
    assert {c["fault"] for _, c in controls} == {"unavailable", "server_error", "slow", "drop"}
    assert all(c["seconds"] == 4.0 for _, c in controls if c["fault"] == "slow")


@pytest.mark.slow
def test_load_on_sqlite_loses_duplicates_and_strands_nothing(tmp_path: Path):
    output = tmp_path / "load.json"
    command = [sys.executable, str(BENCH / "load.py"), "--documents", "60", "--database", "sqlite", "--fault-rate", "0.1",
               "--timeout", "40", "--output", str(output)]
    run = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = run.communicate(timeout=BOUND_SECONDS)
    except subprocess.TimeoutExpired:
        run.terminate()  # SIGTERM: load.py stops the hub and the sandboxes it started, then exits
        out, err = run.communicate(timeout=60)
        pytest.fail(f"bench/load.py took more than {BOUND_SECONDS} s\n{out[-3000:]}{err[-3000:]}")
    assert run.returncode == 0, out[-3000:] + err[-3000:]

    report = json.loads(output.read_text())
    assert report["documents"] == 60 and report["fault_rate"] == 0.1
    (hub,) = report["runs"]
    assert hub["engine"] == "sqlite" and "error" not in hub
    baseline, load = hub["batches"]
    assert (baseline["name"], load["name"]) == ("baseline", "load")
    assert load["accepted"] == 60 and load["messages"] == 2 * 60 - 9  # ePhyto and CHED: 2 messages each, CITES (9 of 60): 1
    assert (load["lost"], load["duplicated"], load["stuck"], load["unexpected_at_counterparts"]) == (0, 0, 0, 0)
    assert load["delivered"] + load["dead_lettered"] == load["messages"]
    assert sum(baseline["faults_injected"].values()) == 0
    injected, left = sum(load["faults_injected"].values()), sum(load["faults_left"].values())
    assert injected >= 10 and left < injected  # the faults were queued, and the hub's calls met them
    assert sum(n for outcome, n in load["attempts"].items() if outcome not in {"acknowledged", "delivered", "accepted"}) >= 1
    assert 0 < load["latency_p50_s"] <= load["latency_p95_s"] <= load["latency_p99_s"]
    assert load["submitted_per_s"] > 0 and load["delivered_per_s"] > 0
    assert {"serve", "sandbox-p2p", "sandbox-ephyto_hub", "sandbox-traces_nt"} <= set(hub["peak_rss_mib"])
    assert all(mib > 10 for mib in hub["peak_rss_mib"].values())
    table = output.with_suffix(".md").read_text()
    assert "| sqlite | in hub serve | load | 60/60 |" in table and "Peak RSS" in table
