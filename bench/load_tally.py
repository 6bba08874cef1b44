"""Counting a load batch: each message's state in the hub set beside the counterpart's own record of it, the
throughput and latencies read from the store, and the markdown table of a whole report."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from sqlalchemy import func, select

from load_counterparts import Received
from load_mix import DESTINATIONS, LoadDocument
from hub.store.db import Database
from hub.store.models import DeliveryAttempt, Document, Message
from hub.store.states import FINAL_STATES

FINAL = {state.value for state in FINAL_STATES}
PROBLEMS_KEPT = 50  # the report names this many problem messages, with their state and the counterpart's record


@dataclass
class RunResult:
    """One batch's figures; ``clean`` when nothing was lost, duplicated or stuck and every submission was accepted."""

    name: str
    documents: int
    accepted: int = 0
    messages: int = 0
    states: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    duplicated: int = 0
    lost: int = 0
    stuck: int = 0
    dead_lettered: int = 0
    redeliveries_absorbed: int = 0
    unexpected_at_counterparts: int = 0
    attempts: dict[str, int] = field(default_factory=dict)
    submitted_per_s: float | None = None
    delivered_per_s: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latency_p99_s: float | None = None
    waited_s: float | None = None
    faults_injected: dict[str, int] = field(default_factory=dict)
    faults_left: dict[str, int] = field(default_factory=dict)
    submission_failure_count: int = 0
    submission_failures: list[str] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.stuck or self.submission_failure_count or self.unexpected_at_counterparts)

    def as_json(self) -> dict:
        return {**asdict(self), "clean": self.clean}

    def one_line(self) -> str:
        return (f"{self.delivered}/{self.messages} messages delivered, {self.duplicated} duplicated, {self.lost} lost, {self.stuck} stuck, "
                f"{self.dead_lettered} dead-lettered; {self.delivered_per_s or 0:.1f} docs/s; p50/p99 {self.latency_p50_s}/{self.latency_p99_s} s")


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def tally(name: str, *, database: Database, documents: list[LoadDocument], submitted: dict[str, float], received: Received,
          first_request: float, last_answer: float) -> RunResult:
    """Classify every message of ``documents`` and measure the batch."""
    result = RunResult(name, len(documents), accepted=len(submitted))
    family = {d.number: d.family for d in documents}
    with database.sessions() as session:
        rows = session.execute(
            select(Document.certificate_number, Message.id, Message.destination, Message.state, Message.attempts,
                   Message.acknowledged_at, Message.updated_at, Message.last_error).join(Message, Message.document_id == Document.id)
        ).all()
        attempts = session.execute(select(DeliveryAttempt.message_id, DeliveryAttempt.outcome, func.count()).group_by(DeliveryAttempt.message_id, DeliveryAttempt.outcome)).all()
    rows = [row for row in rows if row.certificate_number in family]
    ours = {row.id for row in rows}
    result.attempts = dict(sum((Counter({outcome: n}) for message_id, outcome, n in attempts if message_id in ours), Counter()))
    result.messages = len(rows)
    result.states = dict(Counter(row.state for row in rows))
    finished: dict[str, float] = {}
    routed: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        routed[row.certificate_number].add(row.destination)
        records = received.records.get((row.destination, row.certificate_number), 0)
        deliveries = received.deliveries.get((row.destination, row.certificate_number), 0)
        verdict = _verdict(row.state, records)
        setattr(result, verdict, getattr(result, verdict) + 1)
        result.redeliveries_absorbed += max(0, deliveries - records)
        if verdict != "delivered" and len(result.problems) < PROBLEMS_KEPT:
            result.problems.append({"verdict": verdict, "certificate_number": row.certificate_number, "destination": row.destination, "message": row.id,
                                    "state": row.state, "attempts": row.attempts, "last_error": (row.last_error or "")[:300],
                                    "counterpart_records": records, "counterpart_deliveries": deliveries})
        if row.state in FINAL:
            done = _epoch(row.acknowledged_at) or _epoch(row.updated_at)
            finished[row.certificate_number] = max(done, finished.get(row.certificate_number, done))
        else:
            finished.setdefault(row.certificate_number, math.inf)
    for number in submitted:
        missing = set(DESTINATIONS[family[number]]) - routed[number]
        result.lost += len(missing)
        for destination in sorted(missing)[: max(0, PROBLEMS_KEPT - len(result.problems))]:
            result.problems.append({"verdict": "lost", "certificate_number": number, "destination": destination, "state": "no message"})
    hub_keys = {(row.destination, row.certificate_number) for row in rows}
    result.unexpected_at_counterparts = sum(n for key, n in received.records.items() if key[1] in family and key not in hub_keys)
    _measure(result, submitted, finished, first_request, last_answer)
    return result


def _verdict(state: str, records: int) -> str:
    if records > 1:
        return "duplicated"
    if state not in FINAL:
        return "stuck"
    if state == "dead_letter":
        return "dead_lettered"
    return "delivered" if records == 1 else "lost"


def _measure(result: RunResult, submitted: dict[str, float], finished: dict[str, float], first_request: float, last_answer: float) -> None:
    if not submitted:
        return
    result.submitted_per_s = round(len(submitted) / max(last_answer - first_request, 1e-9), 2)
    done = {number: finished.get(number, math.inf) for number in submitted}
    complete = [moment for moment in done.values() if moment != math.inf]
    if complete:
        result.delivered_per_s = round(len(complete) / max(max(complete) - first_request, 1e-9), 2)
    latencies = [done[number] - submitted[number] for number in submitted if done[number] != math.inf]
    for p in (50, 95, 99):
        value = percentile(latencies, p)
        setattr(result, f"latency_p{p}_s", None if value is None else round(value, 3))


def _cell(value, spec: str = "") -> str:
    return "—" if value is None else format(value, spec)


def markdown(report: dict) -> str:
    """The report as markdown: one results table for every batch of every engine, then peak memory per process."""
    lines = [f"Command: `{report['command']}`; machine: {report['machine']['cpus']} CPUs, {report['machine']['memory_gib']} GiB, "
             f"load average at start {report['machine']['load_average_at_start']}; fault rate {report['fault_rate']:.0%}; "
             f"connector timeout {report['connector_timeout_s']} s.", "",
             "| database | workers | batch | documents | submitted/s | delivered/s | × baseline | latency p50 / p95 / p99 (s) | delivered | duplicated | lost | stuck | dead-lettered | faults injected (left) | wall (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in report["runs"]:
        if run.get("error"):
            lines.append(f"| {run['engine']} | {run['worker_processes']} | FAILED | | | | | {run['error'].splitlines()[0][:120]} | | | | | | | {run['wall_s']} |")
            continue
        baseline = next((b for b in run["batches"] if b["name"] == "baseline"), None)
        for batch in run["batches"]:
            ratio = batch["delivered_per_s"] / baseline["delivered_per_s"] if baseline and baseline["delivered_per_s"] and batch["delivered_per_s"] else None
            injected = sum(batch["faults_injected"].values())
            left = sum(batch["faults_left"].values())
            latency = " / ".join(_cell(batch[f"latency_p{p}_s"], ".2f") for p in (50, 95, 99))
            lines.append(f"| {run['engine']} | {run['worker_processes']} | {batch['name']} | {batch['accepted']}/{batch['documents']} | {_cell(batch['submitted_per_s'], '.1f')} "
                         f"| {_cell(batch['delivered_per_s'], '.1f')} | {_cell(ratio, '.2f')} | {latency} | {batch['delivered']}/{batch['messages']} | {batch['duplicated']} "
                         f"| {batch['lost']} | {batch['stuck']} | {batch['dead_lettered']} | {injected} ({left}) | {run['wall_s'] if batch is run['batches'][-1] else ''} |")
    lines += ["", "Peak RSS per process (MiB):", "", "| database | " + " | ".join(_process_names(report)) + " |", "|---|" + "---|" * len(_process_names(report))]
    for run in report["runs"]:
        peaks = run.get("peak_rss_mib", {})
        lines.append(f"| {run['engine']} | " + " | ".join(_cell(peaks.get(name)) for name in _process_names(report)) + " |")
    return "\n".join(lines) + "\n"


def _process_names(report: dict) -> list[str]:
    names: list[str] = []
    for run in report["runs"]:
        names += [name for name in run.get("peak_rss_mib", {}) if name not in names]
    return names
