"""The chaos tests' harness: the counterparts (every connector type's sandbox over real HTTPS on loopback), the faults
queued on them, hub processes started and SIGKILLed, a PostgreSQL stopped and restarted on the same port, and the
counting that decides whether anything was lost, duplicated, reordered or left stuck.

::

    Counterparts.running(pki, push_to=…)     p2p (authority, customs), ephyto_hub, single_window, traces_nt in threads
    counterparts.connectors(...)             the hub's connectors.yaml for them
    counterparts.inject(plan)                ~share of the requests of every target answered with every fault kind
    counterparts.received()                  what each destination's counterpart applied, in arrival order
    Batch / submit_*                         documents for every connector type, replacements right after originals
    stored_messages(url) / delivery_problems(...)   the store's view and the verdict: a list of problems ([] = good)
    HubProcess / RestartablePostgres / wait_until   processes and deadlines; everything is killed on exit

Faults are queued per target in a seeded random order; a request that should pass takes a ``slow`` entry of 0 s (the
sandboxes process a slow request normally afterwards), so the share of faulty requests is what the plan says and the
run is the same every time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from sqlalchemy import select

from connectors.p2p import P2PConfig
from hub.connector import ConnectorConfig
from hub.standards import PROJECT_ROOT
from hub.store.db import Database
from hub.store.embedded_postgres import EmbeddedPostgres
from hub.store.models import Document, Message, TraceEvent
from connectors.as4.sandbox import MPC
from tests.contract.suite import client_tls
from tests.support.broker import example_record, replacement_of

HUB = [sys.executable, "-m", "hub"]
TRACES_ACCOUNT = {"username": "hub-chaos", "authentication_key": "chaos-authentication-key", "client_id": "hub-chaos-client"}
#: The setting that gives a counterpart its answer deadline (issue 12, "Nothing stuck"); set only where the
#: connector config knows it, so that these tests run before and after the lead's change.
ANSWER_DEADLINE_SETTING = "answer_deadline"

ANSWERED = frozenset({"acknowledged", "acknowledged_with_warnings", "rejected"})
DELIVERED = ANSWERED | {"awaiting_ack"}
BACKLOG = frozenset({"queued", "sending", "retry_wait"})
OVERDUE_EVENT = "message.answer_overdue"


# --- waiting and processes --------------------------------------------------------------------------------------------


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.25,
               describe: Callable[[], str] | None = None) -> object:
    """Poll ``condition`` until it returns something truthy; AssertionError naming ``what`` (and ``describe()``)
    after ``timeout`` seconds. Exceptions from ``condition`` count as "not yet" (the store may be down)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # a database or server that is down is what these tests make happen
            last_error = exc
        if time.monotonic() > deadline:
            detail = describe() if describe else (f"last error: {last_error!r}" if last_error else "")
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}. {detail}")
        time.sleep(interval)


class HubProcess:
    """A ``hub …`` command in its own process group, its output in ``log``; always stopped by ``close``."""

    def __init__(self, args: list[str], *, env: Mapping[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, dict(env), log
        self.process: subprocess.Popen | None = None

    def start(self) -> "HubProcess":
        sink = self.log.open("ab")
        self.process = subprocess.Popen([*HUB, *self.args], env=self.env, cwd=PROJECT_ROOT, stdout=sink,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        sink.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and whatever it started (nothing may finish its work)."""
        if self.process is None:
            return
        with contextlib.suppress(psutil.NoSuchProcess):
            parent = psutil.Process(self.process.pid)
            for child in parent.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            parent.kill()
        self.process.wait(timeout=10)

    def close(self, timeout: float = 15.0) -> None:
        """Ask it to stop (SIGINT), then kill it if it has not within ``timeout``."""
        if not self.alive():
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no output)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def processes() -> Iterator[list[HubProcess]]:
    """A list to put started processes in; every one still running is killed on exit, whatever happened."""
    started: list[HubProcess] = []
    try:
        yield started
    finally:
        running = [process for process in started if process.alive()]
        for process in running:
            with contextlib.suppress(Exception):
                process.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 8
        for process in running:
            try:
                process.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(Exception):
                    process.kill()


def free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RestartablePostgres(EmbeddedPostgres):
    """An embedded PostgreSQL that can be stopped ``fast`` (clients disconnected, a clean shutdown) or ``immediate``
    (every server process quits at once, crash recovery at the next start) and started again on the same data
    directory and port, as a database server that restarts under its clients does.

    Commits are synchronous here, as on any production server: the embedded default (``synchronous_commit=off``)
    lets an immediate stop lose transactions already reported committed, which would be the harness losing data,
    not the hub. ``fsync`` may stay off: the operating system, which holds what was written, does not crash."""

    def _settings(self) -> dict[str, str]:
        return {**super()._settings(), "synchronous_commit": "on"}

    def halt(self, mode: str) -> None:
        if mode not in ("fast", "immediate"):
            raise ValueError(f"stop mode {mode!r}: fast or immediate")
        self._run("pg_ctl", "-D", str(self._data), "-m", mode, "-w", "-t", "60", "stop")

    def resume(self) -> None:
        options = " ".join(f"-c {name}={value}" for name, value in self._settings().items())
        self._run("pg_ctl", "-D", str(self._data), "-l", str(self._log), "-o", options, "-w", "-t", "60", "start")


# --- the counterparts -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def serving(app, *, certs_dir: Path, client_certificates: bool = True) -> Iterator[str]:
    """``app`` over HTTPS on a free loopback port in a thread (client certificates required unless told otherwise);
    its base URL. Stopped on exit."""
    from connectors.serving import serve_sandbox

    server = serve_sandbox(app, host="127.0.0.1", port=0, certs_dir=certs_dir, client_certificates=client_certificates)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[listener])), name=f"chaos-{port}", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout=15, what=f"a counterpart on port {port}")
        if not server.started:
            raise RuntimeError(f"the counterpart on port {port} did not start")
        yield f"https://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


#: Each destination of config/routes.yaml: the sandbox that plays it and where its control and record live.
DESTINATIONS = {
    "foreign_authority": ("p2p", "/p2p/authority"),
    "customs": ("p2p", "/p2p/customs"),
    "ephyto_hub": ("ephyto_hub", ""),
    "single_window": ("single_window", ""),
    "traces_nt": ("traces_nt", ""),
    "as4_authority": ("as4", "/as4"),
}
#: Where each sandbox's /control endpoints are (one per authority it plays).
CONTROL_PATHS = {"p2p": ("/p2p/authority", "/p2p/customs"), "as4": ("/as4",)}
#: The P-Mode of the AS4 access point (Japan's), as config/connectors.yaml has it.
AS4_LEG = {"initiator": {"party_id": "fr-nppo-ap", "role": "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/initiator", "country": "FR"},
           "responder": {"party_id": "jp-nppo-ap", "role": "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/responder", "country": "JP"},
           "service": {"value": "urn:trade-document-hub:services:sps-certificates"}}
AS4_MPC = MPC  # where the sandbox holds what it has for the hub, in pull mode
#: Every fault each sandbox plays, and the targets (operations) it plays them on.
FAULTS = {
    "p2p": (("unavailable", "server_error", "slow", "malformed", "drop", "refuse"), ("deliver", "acks")),
    "ephyto_hub": (("unavailable", "server_error", "slow", "malformed", "drop", "refuse"), ("DeliverEnvelope", "GetEnvelopeTrackingInfo")),
    "single_window": (("unavailable", "server_error", "slow", "malformed", "drop", "refuse", "fault"), ("deliver", "tracking")),
    "traces_nt": (("unavailable", "server_error", "soap_fault", "refuse", "slow", "malformed", "drop"), ("submit", "status", "certificate")),
    "as4": (("unavailable", "server_error", "slow", "malformed", "drop", "refuse"), ("deliver",)),
}
#: Faults that make the hub give a delivery up at once (a permanent refusal): the message goes to the dead letters.
PERMANENT = frozenset({"refuse"})


@dataclass(frozen=True)
class Receipt:
    """One message as a counterpart applied it: its certificate number, the counterpart's own key for it, how often
    it came, and its status there."""

    certificate_number: str
    key: str
    deliveries: int
    status: str


@dataclass
class Counterparts:
    """The running sandboxes; ``urls`` by sandbox name, ``client`` talks to them with FR's client certificate."""

    pki: object
    urls: dict[str, str]
    client: httpx.Client
    injected: collections.Counter = field(default_factory=collections.Counter)

    @classmethod
    @contextlib.contextmanager
    def running(cls, pki, *, push_to: str | None = None, settle_after: float = 0.2) -> Iterator["Counterparts"]:
        """Every counterpart type: the p2p authorities push their acknowledgements to ``push_to`` (the hub's base URL;
        None: they are only served by the ``/acks`` feed); ePhyto envelopes count as delivered ``settle_after``
        seconds after they arrive; the single window releases every consignment; TRACES-NT accepts every CHED."""
        from connectors.as4.sandbox import create_as4_sandbox_from_pki as as4_app
        from connectors.ephyto_hub.sandbox import create_ephyto_hub_sandbox
        from connectors.p2p.sandbox import create_sandbox_from_pki as p2p_app
        from connectors.single_window.sandbox import create_sandbox_from_pki as window_app
        from connectors.traces_nt.sandbox import create_traces_sandbox_app

        certs = Path(pki.directory)
        push = {name: f"{push_to}/v1/inbound/{hub}" for name, hub in (("authority", "foreign_authority"), ("customs", "customs"))} if push_to else None
        apps = {
            "p2p": (p2p_app(certs, push_url=push), True),
            "ephyto_hub": (create_ephyto_hub_sandbox(delivery_delay=settle_after), True),
            "single_window": (window_app(certs), True),
            "as4": (as4_app(certs, push_url=f"{push_to}/v1/inbound/as4_authority" if push_to else None), False),
            "traces_nt": (create_traces_sandbox_app(accounts={TRACES_ACCOUNT["username"]: TRACES_ACCOUNT["authentication_key"]},
                                                    client_ids={TRACES_ACCOUNT["username"]: TRACES_ACCOUNT["client_id"]}), False),
        }
        with contextlib.ExitStack() as stack:
            urls = {name: stack.enter_context(serving(app, certs_dir=certs, client_certificates=mtls)) for name, (app, mtls) in apps.items()}
            client = stack.enter_context(httpx.Client(verify=client_tls(pki), timeout=10))
            counterparts = cls(pki=pki, urls=urls, client=client)
            counterparts.control("single_window", decide="released")
            if not push_to:  # no hub to push to: the hub pulls Japan's answers from its access point
                counterparts.control("as4", "/as4", pull=True)
            yield counterparts

    def control(self, sandbox: str, path: str = "", **body: object) -> None:
        self.client.post(f"{self.urls[sandbox]}{path}/control", json=body).raise_for_status()

    def connectors(self, *, acks: str = "poll", timeout: float = 1.0, poll_interval: float = 0.2,
                   answer_deadline: float | None = None, max_attempts: int = 8) -> dict:
        """The hub's connectors.yaml (as data) for these counterparts: each connector times out after ``timeout``
        seconds, follows its answers every ``poll_interval``; ``answer_deadline`` where the config takes one."""
        common = {"timeout": timeout, "max_attempts": max_attempts}
        if answer_deadline is not None and ANSWER_DEADLINE_SETTING in ConnectorConfig.model_fields:
            common[ANSWER_DEADLINE_SETTING] = answer_deadline
        p2p, ephyto, window, traces = (self.urls[n] for n in ("p2p", "ephyto_hub", "single_window", "traces_nt"))
        # One sandbox plays both p2p authorities and signs every answer as the US authority.
        signer = {"answered_by": {"*": "US"}} if "answered_by" in P2PConfig.model_fields else {}
        return {"connectors": {
            "foreign_authority": {"type": "p2p", "endpoints": {"*": f"{p2p}/p2p/authority"}, "acks": acks, **signer, **common},
            "customs": {"type": "p2p", "endpoints": {"*": f"{p2p}/p2p/customs"}, "acks": acks, **signer, **common},
            "ephyto_hub": {"type": "ephyto_hub", "endpoint": f"{ephyto}/hub/DeliveryService", "profile": "ephyto",
                           "tracking_poll_interval": poll_interval, **common},
            "single_window": {"type": "single_window", "endpoint": f"{window}/iop/EnvioCertificadoFitosanitario",
                              "tracking_endpoint": f"{window}/iop/ConsultaEventosSeguimiento", "interaction_code": "CFS.ENVIO01",
                              "service_id": "IOPCFS0001", "sender_id": "HUBFR", "recipient_id": "VUCEPE", "recipient_country": "PE",
                              "receipt_outcome": "accepted", "tracking_poll_interval": poll_interval, **common},
            "traces_nt": {"type": "traces_nt", "endpoint": f"{traces}/tracesnt/ws", "submission_service": "ChedSubmissionService",
                          "ca_bundle": str(Path(self.pki.directory) / "ca.pem"), **TRACES_ACCOUNT, **common},
            "as4_authority": {"type": "as4", "endpoint": f"{self.urls['as4']}/as4", "action": "Certificate", **AS4_LEG,
                              **({"pull": {"mpc": AS4_MPC, "interval": poll_interval}} if acks == "poll" else {}), **common},
        }}

    def write_connectors(self, path: Path, **options) -> Path:
        path.write_text(json.dumps(self.connectors(**options), indent=1))
        return path

    def inject(self, *, share: float, requests: int, seed: int, slow_seconds: tuple[float, float] = (0.3, 1.6),
               sandboxes: tuple[str, ...] = ("p2p", "ephyto_hub", "single_window", "traces_nt", "as4")) -> None:
        """Queue, on every target of every sandbox (both p2p authorities), ``requests`` entries of which ``share``
        are faults, every kind in turn, in a seeded random order; ``slow`` lasts one of ``slow_seconds`` (past the
        connector's timeout for the longer one: the counterpart applies a request the hub stopped waiting for)."""
        rng = random.Random(seed)
        for sandbox in sandboxes:
            kinds, targets = FAULTS[sandbox]
            paths = CONTROL_PATHS.get(sandbox, ("",))
            for path in paths:
                for target in targets:
                    faults = int(requests * share)
                    plan = [kinds[i % len(kinds)] for i in range(faults)] + [None] * (requests - faults)
                    rng.shuffle(plan)
                    for kind in plan:
                        body = {"fault": kind or "slow", "target": target, "seconds": 0.0}
                        if kind == "slow":
                            body["seconds"] = rng.choice(slow_seconds)
                        if kind:
                            self.injected[(sandbox, target, kind)] += 1
                        self.control(sandbox, path, **body)

    def clear_faults(self) -> None:
        for sandbox in ("ephyto_hub", "single_window", "traces_nt", "p2p", "as4"):
            for path in CONTROL_PATHS.get(sandbox, ("",)):
                self.control(sandbox, path, fault="none")

    def received(self) -> dict[str, list[Receipt]]:
        """What each destination's counterpart holds, in the order each message first arrived, one entry per
        identity the counterpart de-duplicates on (a resend it recognised counts once)."""
        found: dict[str, list[Receipt]] = {}
        for destination, (sandbox, path) in DESTINATIONS.items():
            entries = self.client.get(f"{self.urls[sandbox]}{path}/received").raise_for_status().json()["received"]
            if sandbox == "ephyto_hub":
                found[destination] = [Receipt(e["NPPOCertificateNumber"], e["hubDeliveryNumber"], e["deliveries"], e["HUBTrackingInfo"]) for e in entries]
            elif sandbox == "traces_nt":
                found[destination] = [Receipt(e["certificate_number"], e["reference"], e["deliveries"], e["status"]) for e in entries]
            else:
                found[destination] = [Receipt(e["certificate_number"], e["message_id"], e["deliveries"], e["status"]) for e in entries]
        return found


# --- documents ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """A record to submit and the destinations config/routes.yaml sends it to."""

    number: str
    record: dict
    destinations: frozenset[str]
    replaces: str | None = None


def batch(per_type: int, *, tag: str, replacement_every: int = 3) -> list[Submission]:
    """``per_type`` documents for each connector type (phytosanitary certificates to EC, US, PE and JP; CHEDs), every
    ``replacement_every``-th phytosanitary one a replacement of the one before it, submitted right after it."""
    out: list[Submission] = []
    routes = {"EC": "foreign_authority", "US": "ephyto_hub", "PE": "single_window", "JP": "as4_authority"}
    for country, destination in routes.items():
        previous: Submission | None = None
        for n in range(per_type):
            number = f"FR-2026-{tag}{country}-{n:05d}"
            base = example_record(certificate_number=number)
            base["consignment"]["import_country"] = {"id": country}
            if previous is not None and n % replacement_every == replacement_every - 1:
                record = replacement_of(previous.record, number)
                out.append(Submission(number, record, frozenset({destination, "customs"}), replaces=previous.number))
            else:
                out.append(Submission(number, base, frozenset({destination, "customs"})))
            previous = out[-1]
    for n in range(per_type):
        number = f"CHEDP.FR.2026.{tag}{n:05d}"
        out.append(Submission(number, example_record("ched-P-FR-cheese", certificate_number=number), frozenset({"traces_nt", "customs"})))
    return out


class Submitter(threading.Thread):
    """Submits ``submissions`` through the hub's API in the background, as an issuing system under load would:
    each one is retried (same Idempotency-Key) until the hub answers 200 or 202, whatever happens to the hub or its
    database meanwhile; ``refused`` collects any other answer (a 4xx is a test failure)."""

    def __init__(self, base_url: str, key: str, submissions: list[Submission], *, deadline: float = 120.0, pause: float = 0.0) -> None:
        super().__init__(name="chaos-submitter", daemon=True)
        self.pause = pause
        self.base_url, self.key, self.submissions = base_url, key, submissions
        self.deadline = time.monotonic() + deadline
        self.accepted: list[str] = []
        self.refused: list[str] = []
        self.retries = 0
        self.stop = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=10) as api:
            for submission in self.submissions:
                while not self.stop.is_set() and time.monotonic() < self.deadline:
                    try:
                        answer = api.post("/v1/documents", content=json.dumps(submission.record),
                                          headers={"Idempotency-Key": f"chaos-{submission.number}"})
                    except httpx.HTTPError:
                        answer = None
                    if answer is not None and answer.status_code in (200, 202):
                        self.accepted.append(submission.number)
                        time.sleep(self.pause)
                        break
                    if answer is not None and 400 <= answer.status_code < 500:
                        self.refused.append(f"{submission.number}: {answer.status_code} {answer.text[:300]}")
                        break
                    self.retries += 1
                    time.sleep(0.2)

    def finish(self, timeout: float) -> None:
        self.join(timeout)
        self.stop.set()
        assert not self.is_alive(), "the submitter did not finish"
        assert self.refused == [], self.refused
        assert len(self.accepted) == len(self.submissions), f"{len(self.accepted)} of {len(self.submissions)} submitted"


def api_key(database_url: str, *, name: str = "chaos-exporter", tenant: str = "FR") -> str:
    """A new API key of ``tenant`` in the store at ``database_url`` (migrated to head first)."""
    from hub.api.auth import create_client
    from hub.store.migrate import upgrade

    upgrade(database_url)
    database = Database(database_url)
    try:
        with database.transaction() as session:
            return create_client(session, name=name, tenant=tenant)[1]
    finally:
        database.dispose()


def interleaved(submissions: list[Submission]) -> list[Submission]:
    """The submissions mixed across connector types, each replacement still after the certificate it replaces."""
    by_type = collections.defaultdict(list)
    for submission in submissions:
        by_type[min(submission.destinations - {"customs"})].append(submission)
    queues = list(by_type.values())
    mixed = []
    while any(queues):
        for queue in queues:
            if queue:
                mixed.append(queue.pop(0))
    return mixed


# --- the store's view and the verdict -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredMessage:
    id: str
    destination: str
    state: str
    certificate_number: str
    predecessor_id: str | None
    events: frozenset[str]


_databases: dict[str, Database] = {}


def stored_messages(database_url: str) -> list[StoredMessage]:
    """Every outbound message in the store with its certificate number and the names of its trace events (one engine
    per URL, kept for the session: the tests ask often)."""
    database = _databases.get(database_url) or _databases.setdefault(database_url, Database(database_url))
    try:
        with database.sessions() as session:
            rows = session.execute(select(Message.id, Message.destination, Message.state, Message.predecessor_id, Document.certificate_number)
                                   .join(Document, Message.document_id == Document.id).where(Document.direction == "outbound")).all()
            events = collections.defaultdict(set)
            for message_id, event in session.execute(select(TraceEvent.message_id, TraceEvent.event).where(TraceEvent.message_id.is_not(None))):
                events[message_id].add(event)
    except Exception:
        database.dispose()  # connections to a server that went away: the next call opens new ones
        raise
    return [StoredMessage(r.id, r.destination, r.state, r.certificate_number, r.predecessor_id, frozenset(events[r.id])) for r in rows]


def states(messages: list[StoredMessage]) -> dict[str, int]:
    return dict(sorted(collections.Counter(m.state for m in messages).items()))


def alerted(message: StoredMessage) -> bool:
    """A message an operator has been told about: dead-lettered, or its answer reported overdue."""
    return message.state == "dead_letter" or OVERDUE_EVENT in message.events


def blocked_behind_dead_letter(message: StoredMessage, by_id: Mapping[str, StoredMessage]) -> bool:
    """Queued behind a dead-lettered predecessor: it waits, as ordering demands, until an operator resends that one."""
    predecessor = by_id.get(message.predecessor_id) if message.predecessor_id else None
    return message.state == "queued" and predecessor is not None and (
        predecessor.state == "dead_letter" or blocked_behind_dead_letter(predecessor, by_id))


def settled(messages: list[StoredMessage]) -> bool:
    """Nothing more will happen without an operator or a deadline: every message answered, alerted, or held behind
    a dead letter."""
    by_id = {m.id: m for m in messages}
    return all(m.state in ANSWERED or alerted(m) or blocked_behind_dead_letter(m, by_id) for m in messages)


def delivery_problems(submissions: list[Submission], messages: list[StoredMessage], received: Mapping[str, list[Receipt]],
                      *, allow_dead_letters: bool) -> list[str]:
    """Every broken promise, counted: a document or message lost, a message not answered nor alerted, a message
    applied twice (or not at all though the hub says it was delivered), a replacement applied before its original."""
    problems: list[str] = []
    by_id = {m.id: m for m in messages}
    by_key = collections.defaultdict(list)
    for m in messages:
        by_key[(m.certificate_number, m.destination)].append(m)

    lost = [(s.number, d) for s in submissions for d in s.destinations if not by_key.get((s.number, d))]
    if lost:
        problems.append(f"{len(lost)} message(s) never stored: {lost[:5]}")
    doubled = {k: len(v) for k, v in by_key.items() if len(v) > 1}
    if doubled:
        problems.append(f"{len(doubled)} (certificate, destination) pairs with several messages: {list(doubled.items())[:5]}")

    unsettled = [m for m in messages if not (m.state in ANSWERED or alerted(m) or (allow_dead_letters and blocked_behind_dead_letter(m, by_id)))]
    if unsettled:
        problems.append(f"{len(unsettled)} of {len(messages)} message(s) neither answered nor alerted: "
                        f"{states(unsettled)}, e.g. {[(m.destination, m.certificate_number, m.state) for m in unsettled[:5]]}")
    if not allow_dead_letters:
        dead = [m for m in messages if m.state == "dead_letter"]
        if dead:
            problems.append(f"{len(dead)} message(s) in the dead letters: {[(m.destination, m.certificate_number) for m in dead[:5]]}")
    silent_dead = [m for m in messages if m.state == "dead_letter" and "message.dead_letter" not in m.events]
    if silent_dead:
        problems.append(f"{len(silent_dead)} dead letter(s) without their message.dead_letter event")

    for destination, receipts in received.items():
        counts = collections.Counter(r.certificate_number for r in receipts)
        ours = {m.certificate_number: m for m in messages if m.destination == destination}
        twice = {n: c for n, c in counts.items() if c > 1}
        if twice:
            problems.append(f"{destination}: {len(twice)} certificate(s) applied more than once: {list(twice.items())[:5]}")
        strangers = sorted(set(counts) - set(ours))
        if strangers:
            problems.append(f"{destination}: {len(strangers)} certificate(s) the hub never sent there: {strangers[:5]}")
        missing = sorted(n for n, m in ours.items() if m.state in DELIVERED and counts[n] == 0)
        if missing:
            problems.append(f"{destination}: {len(missing)} message(s) the hub counts as delivered that the counterpart "
                            f"never applied: {missing[:5]}")
        arrival = {r.certificate_number: i for i, r in reversed(list(enumerate(receipts)))}
        for m in ours.values():
            predecessor = by_id.get(m.predecessor_id) if m.predecessor_id else None
            if predecessor is None or m.certificate_number not in arrival:
                continue
            if predecessor.certificate_number not in arrival:
                problems.append(f"{destination}: {m.certificate_number} applied without {predecessor.certificate_number}, which it follows")
            elif arrival[predecessor.certificate_number] > arrival[m.certificate_number]:
                problems.append(f"{destination}: {m.certificate_number} applied before {predecessor.certificate_number}, which it follows")
    return problems


def summary(messages: list[StoredMessage], received: Mapping[str, list[Receipt]]) -> str:
    """One line for the test's output: states, and how many resends the counterparts de-duplicated."""
    resends = sum(max(0, r.deliveries - 1) for receipts in received.values() for r in receipts)
    waiting = collections.Counter((m.destination, m.state, "alerted" if alerted(m) else "silent") for m in messages if m.state not in ANSWERED)
    line = f"{len(messages)} messages {states(messages)}; counterparts saw {resends} duplicate delivery(ies), each applied once"
    return line + (f"; not answered: {dict(sorted(waiting.items()))}" if waiting else "")


def environment(**values: str) -> dict[str, str]:
    """This process's environment plus ``values`` (what a hub subprocess runs with)."""
    return {**os.environ, **values}
