"""Helpers for broker tests: a development PKI, a scripted counterpart, and a broker wired to them.

The scripted counterpart is a connector whose answers a test sets one by one (receipt, acknowledgement, rejection,
transient or permanent error); it records every delivery in order, so tests can check ordering, duplicates and
message identity. End-to-end tests use the real point-to-point connector and sandbox instead.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hub.connector import ConnectorConfig, DeliveryResult, OutboundMessage, Outcome
from hub.broker import Broker
from hub.config import Settings
from hub.delivery.retry import RetryStrategy
from hub.errors import PermanentDeliveryError, TransientDeliveryError
from hub.routing.table import RoutingTable
from hub.signing.pki import DevPki
from hub.standards import PROJECT_ROOT
from hub.store.db import Database

EXAMPLES = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples"

ROUTES = {
    "rules": [
        {"name": "phyto-abroad", "when": {"kind": ["phytosanitary", "phytosanitary_reexport", "veterinary"]}, "to": ["authority"]},
        {"name": "french-exports-to-customs", "when": {"kind": ["phytosanitary"], "exporting_country": ["FR"]}, "to": ["customs"]},
    ]
}
#: The default routes plus CHEDs to customs (the customs registry's tests).
ROUTES_WITH_CHEDS = {"rules": ROUTES["rules"] + [{"name": "cheds", "when": {"kind": ["ched"]}, "to": ["customs"]}]}
#: The default routes plus CITES exports and re-exports to the foreign authority (the CITES tests).
ROUTES_WITH_PERMITS = {"rules": ROUTES["rules"] + [
    {"name": "permits", "when": {"kind": ["cites_export", "cites_reexport"]}, "to": ["authority"]},
    {"name": "import-permits", "when": {"kind": ["cites_import"]}, "to": ["customs"]},
]}
#: The worked CITES example: a French re-export certificate, one line of 12 PCS.
PERMIT_NUMBER = "FR2607512345-R"
PERMIT_EXAMPLE = PROJECT_ROOT / "mappings" / "CITESEPermit" / "2" / "examples" / "reexport-FR-python.record.json"
#: The worked CHED example: one line, CN 04069021, 2400 KGM.
CHED_NUMBER = "CHEDP.FR.2026.0001234"


def current_validity() -> dict:
    """A CITES validity period around today: the permit is in force whenever the tests run."""
    start = datetime.now(timezone.utc) - timedelta(days=1)
    return {"start": start.isoformat(timespec="seconds"), "end": (start + timedelta(days=150)).isoformat(timespec="seconds")}


def permit_record(**changes) -> dict:
    """The worked CITES re-export certificate, in force today, with ``changes``."""
    data = json.loads(PERMIT_EXAMPLE.read_text(encoding="utf-8"))
    data["validity"] = current_validity()
    data.update(copy.deepcopy(changes))
    return data


def example_record(name: str = "phyto-FR-apples", **changes) -> dict:
    record = json.loads((EXAMPLES / f"{name}.record.json").read_text(encoding="utf-8"))
    record.update(copy.deepcopy(changes))
    return record


def replacement_of(record: dict, number: str) -> dict:
    """A replacement certificate for ``record`` (IPPC notes ADRP and ADRPN naming the certificate replaced)."""
    replacement = copy.deepcopy(record)
    replacement["certificate_number"] = number
    replacement["notes"] = [*record.get("notes", []), {"subject": "ADRP", "content": ["1"]}, {"subject": "ADRPN", "content": [record["certificate_number"]]}]
    return replacement


@dataclass
class ScriptedConnector:
    """A counterpart whose answers are scripted: push ``Outcome``s or exceptions onto ``script``; default: ACCEPTED."""

    name: str
    config: ConnectorConfig = field(default_factory=lambda: ConnectorConfig(type="scripted", max_attempts=3, retry_for=0))
    script: deque = field(default_factory=deque)
    received: list[OutboundMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self) -> None: ...

    def close(self) -> None: ...

    def deliver(self, message: OutboundMessage) -> DeliveryResult:
        with self.lock:
            self.received.append(message)
            answer = self.script.popleft() if self.script else Outcome.ACCEPTED
        if isinstance(answer, Exception):
            raise answer
        return DeliveryResult(outcome=answer, receipt_id=f"R-{message.id[:8]}-{len(self.received)}", request=message.payload, response=f"<receipt>{answer.value}</receipt>".encode(), reason_code="BAD" if answer is Outcome.REJECTED else None)

    def fail_next(self, *errors: Exception | Outcome) -> None:
        self.script.extend(errors)

    @property
    def numbers(self) -> list[str]:
        return [m.certificate_number for m in self.received]


def transient(retry_after: float | None = None) -> TransientDeliveryError:
    return TransientDeliveryError("503 Service Unavailable", retry_after=retry_after)


def permanent() -> PermanentDeliveryError:
    return PermanentDeliveryError("404 no such endpoint")


def make_broker(database_url: str, pki: DevPki, *, connectors=None, routes=None, retry: RetryStrategy | None = None) -> Broker:
    connectors = connectors or {"authority": ScriptedConnector("authority"), "customs": ScriptedConnector("customs")}
    settings = Settings(database_url=database_url, certs_dir=Path(pki.directory), routes_file=Path("<test routes>"), connectors_file=Path("<test connectors>"))
    return Broker(
        settings=settings,
        database=Database(database_url),
        routing=RoutingTable.from_data(routes or ROUTES, source="test routes"),
        connectors=connectors,
        trust_store=pki.trust_store(),
        retry=retry or RetryStrategy(base=0.0, jitter=0.0),
    )
