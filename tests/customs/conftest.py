"""The customs tests' fixtures: a CHED stored for the registry, and a broker whose CHEDs go to a scripted TRACES-NT
that keeps their quantities (CSW-CERTEX)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from connectors.traces_nt.certex import ChedClearanceResponse, ProcessedChedInformation
from hub.customs.ledger import ClearanceOutcome, FailureReason
from hub.errors import TransientDeliveryError
from tests.support.api import api_client
from tests.support.broker import ScriptedConnector, example_record, make_broker


@pytest.fixture
def ched(ched_broker):
    stored = ched_broker.submit(json.dumps(example_record("ched-P-FR-cheese")).encode(), "application/json", tenant="FR", actor="test")
    return stored.document


class TracesQuantities(ScriptedConnector):
    """TRACES-NT's CSW-CERTEX ledger, scripted: records the calls; refuses a reservation when told to."""

    def __init__(self) -> None:
        super().__init__("traces_nt")
        self.calls: list[tuple] = []
        self.refuse: FailureReason | None = None
        self.down = False

    keeps_ched_quantities = True

    def certex_read(self, ched_id, *, office=None):
        self._answer("read", ched_id)
        return ProcessedChedInformation()

    def certex_reserve(self, ched_id, *, declaration, items, office=None):
        self._answer("reserve", ched_id, declaration)
        if self.refuse:
            return ProcessedChedInformation(reservation_accepted=False, failure=self.refuse, failed_goods_item=items[-1].goods_item, failed_line=items[-1].line)
        return ProcessedChedInformation(reservation_accepted=True)

    def certex_clear(self, ched_id, *, declaration, clearance, office=None):
        self._answer("clear", ched_id, declaration, clearance)
        return ChedClearanceResponse(outcome=ClearanceOutcome.PROCESSED, sending_date=datetime.now(timezone.utc))

    def _answer(self, *call) -> None:
        if self.down:
            raise TransientDeliveryError("traces_nt: 503 Service Unavailable")
        self.calls.append(call)


@pytest.fixture
def with_traces(database_url, pki):
    traces = TracesQuantities()
    routes = {"rules": [{"name": "cheds", "when": {"kind": ["ched"]}, "to": ["traces_nt", "customs"]}]}
    broker = make_broker(database_url, pki, connectors={"traces_nt": traces, "customs": ScriptedConnector("customs")}, routes=routes)
    broker.submit(json.dumps(example_record("ched-P-FR-cheese")).encode(), "application/json", tenant="FR", actor="test")
    broker.make_worker().drain()  # TRACES-NT gave its CHED reference (the receipt id)
    with api_client(broker) as client:
        yield client, broker, traces
    broker.close()
