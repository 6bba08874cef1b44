"""bench/broker.py end to end, small: `hub serve` on SQLite with its counterpart sandbox, a handful of documents
submitted, delivered and acknowledged; the figures are printed beside the core baseline (no time is asserted). It
starts the hub as the default deployment configures it, so a deployment change the bench does not follow (a
connector needing a key the bench's PKI lacks) fails here rather than in `make bench`."""

from __future__ import annotations

import json
import subprocess
import sys

from hub.standards import PROJECT_ROOT

#: About 20 s on 2 idle cores (the PKI, the hub and its sandbox started); several times that on a shared machine.
BOUND_SECONDS = 300


def test_the_broker_bench_delivers_and_acknowledges_every_document_and_reports_it():
    run = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / "broker.py"), "--engines", "sqlite", "--scenario", "sqlite-serve",
         "--documents", "12", "--seconds", "0.05", "--json"],
        capture_output=True, text=True, timeout=BOUND_SECONDS, cwd=PROJECT_ROOT,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout)
    [scenario] = figures["scenarios"]
    assert scenario["scenario"] == "sqlite-serve" and scenario["error"] is None
    assert scenario["documents"] == 12 and scenario["documents_per_s"] > 0 and scenario["cpu_ms_per_document"] > 0
    assert scenario["states"] == {"acknowledged": 24}  # two destinations each
    assert figures["core_baseline_docs_per_s"] > 0
    assert {target["verdict"] for target in figures["targets"]} <= {"MET", "NOT MET", "NOT MEASURED"}
