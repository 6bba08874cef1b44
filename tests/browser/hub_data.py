"""The hub the browser tests look at: a site served for real on loopback, over a broker whose counterparts are
scripted, holding documents in every state a console shows and a person per role.

- ``NUMBER`` (the worked phytosanitary certificate, France → Ecuador): acknowledged by the authority; customs failed
  twice, then refused it for good (a dead letter, three attempts on its timeline; an alert).
- ``TO_RESEND``, ``TO_ABANDON``: two more dead letters at customs, one for each action.
- ``REJECTED``: refused by the authority (a non-conformity), ``AWAITING``: to the United States, awaiting its answer.
- Non-conformities over the last months (on ``REJECTED``'s document), the most frequent problem ``TOP_PROBLEM``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import uvicorn
from sqlalchemy import select

from hub.acks.correlation import record_answer
from hub.api.auth import create_client
from hub.broker import Broker
from hub.connector import Outcome
from hub.notify.alerts_config import AlertSettings, AlertsConfig
from hub.notify.alerts_service import AlertService
from hub.store.models import Message, NonConformity, NonConformityProduct, utcnow
from hub.web.app import create_site
from tests.support.broker import example_record, permanent, transient

NUMBER = "FR-2026-PC-000123"
TO_RESEND = "FR-2026-PC-000124"
TO_ABANDON = "FR-2026-PC-000125"
REJECTED = "FR-2026-PC-000126"
AWAITING = "FR-2026-PC-000127"
PASSWORD = "correct horse battery"
#: Who logs in, by role (a foreign authority has no login: it uses the public page).
PEOPLE = {"operator": "alice", "issuing_authority": "bruno", "auditor": "chloe", "administrator": "root"}
#: Non-conformities (importing country, HS code, cause, months ago of each); the first is the most frequent.
PROBLEMS = (
    ("EC", "080810", "PEST-FOUND", "Cydia pomonella found at inspection", (0, 0, 1, 2, 2, 4)),
    ("US", "080810", "DOC-MISSING", "Import permit number missing", (0, 1, 3)),
    ("EC", "080810", "LABEL", "Boxes not marked with the packing house", (1, 5)),
    ("JP", "080610", "TREATMENT", "Cold treatment record incomplete", (2,)),
)
TOP_PROBLEM = "EC × 080810 × PEST-FOUND"


@dataclass
class LiveHub:
    """The site at ``url`` over ``broker``; ``documents`` and ``messages`` by certificate number (messages by
    destination); ``api_key`` of France's system."""

    url: str
    broker: Broker
    api_key: str
    documents: dict[str, str] = field(default_factory=dict)
    messages: dict[str, dict[str, str]] = field(default_factory=dict)


def ship(broker: Broker, number: str, *, authority=(), customs=(), import_country: str | None = None) -> tuple[str, dict[str, str]]:
    """Submit the worked certificate under ``number`` as France's system and deliver it, each counterpart answering
    its script (default: accepted); returns the document id and its messages by destination."""
    record = example_record(certificate_number=number)
    if import_country:
        record["consignment"]["import_country"] = {"id": import_country, "name": import_country}
    broker.connectors["authority"].fail_next(*authority)
    broker.connectors["customs"].fail_next(*customs)
    stored = broker.submit(json.dumps(record).encode(), "application/json", tenant="FR", actor="api:fr-system")
    broker.make_worker(webhooks=False).drain()
    with broker.database.sessions() as session:
        messages = {m.destination: m.id for m in session.scalars(select(Message).where(Message.document_id == stored.document.id))}
    return stored.document.id, messages


def populate(hub: LiveHub) -> None:
    """The documents, answers, non-conformities, alerts and people the journeys need."""
    broker = hub.broker
    for number, options in (
        (NUMBER, {"customs": (transient(), transient(), permanent())}),
        (TO_RESEND, {"customs": (permanent(),)}),
        (TO_ABANDON, {"customs": (permanent(),)}),
        (REJECTED, {"authority": (Outcome.REJECTED,)}),
        (AWAITING, {"import_country": "US"}),
    ):
        hub.documents[number], hub.messages[number] = ship(broker, number, **options)
    with broker.database.transaction() as session:
        to_ecuador = session.get(Message, hub.messages[NUMBER]["authority"])
        record_answer(session, to_ecuador, counterpart="authority", outcome=Outcome.ACKNOWLEDGED, kind="acknowledgement", actor="counterpart:authority",
                      payload=b'<Acknowledgement status="acknowledged"/>', answered_by="EC NPPO")
        for country, product, cause, text, months_ago in PROBLEMS:
            for months in months_ago:
                nc = NonConformity(id=str(uuid.uuid4()), document_id=hub.documents[REJECTED], tenant="FR", source="border_refusal", counterpart="authority",
                                   country=country, cause_code=cause, cause_text=text, opened_at=utcnow() - timedelta(days=30 * months + 1))
                nc.products.append(NonConformityProduct(hs_code=product))
                session.add(nc)
        for role, name in PEOPLE.items():
            create_client(session, name=name, role=role, tenant="FR" if role == "issuing_authority" else None,
                          acts_for="FR" if role in ("operator", "auditor") else None, password=PASSWORD)
    destinations = {name: connector.config.type for name, connector in broker.connectors.items()}
    AlertService(broker.database, destinations=destinations, settings=AlertSettings(config=AlertsConfig())).sync()


def api_key(broker: Broker) -> str:
    with broker.database.transaction() as session:
        return create_client(session, name="fr-system", tenant="FR")[1]


class Served:
    """``create_site(broker)`` served by uvicorn on a free loopback port, in a thread of this process."""

    def __init__(self, broker: Broker) -> None:
        config = uvicorn.Config(create_site(broker), host="127.0.0.1", port=0, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="browser-tests-site", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not (self.server.started and self.server.servers):
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the site did not start listening within 15 s")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
