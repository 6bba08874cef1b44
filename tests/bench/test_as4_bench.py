"""bench/as4.py runs each scenario and prints its figures beside the baseline (no time is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from hub.standards import PROJECT_ROOT


def test_the_as4_bench_prints_every_scenario_beside_its_baseline():
    run = subprocess.run([sys.executable, str(PROJECT_ROOT / "bench" / "as4.py"), "--seconds", "0.05", "--json"],
                         capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    for scenario in ("send", "receive", "receipt"):
        assert figures[scenario]["hub_per_second"] > 0 and figures[scenario]["baseline_per_second"] > 0
    assert figures["message_bytes"]["as4_message"] > figures["message_bytes"]["certificate"]


def test_an_unknown_scenario_is_refused():
    run = subprocess.run([sys.executable, str(PROJECT_ROOT / "bench" / "as4.py"), "--scenario", "teleport"],
                         capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert run.returncode == 2 and "--scenario takes" in run.stderr
