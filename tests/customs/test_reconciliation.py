"""The hub's quantity ledger and TRACES-NT's (CSW-CERTEX) kept equal across timeouts and outages (issue 12, item 12),
against the TRACES-NT sandbox in-process, on SQLite and PostgreSQL.

The failure reproduced: TRACES-NT answers a reservation after the hub's timeout; the hub answered 502 and reserved
nothing while TRACES-NT kept its reservation, so after the next declaration the ledgers read 50 kg against 150 kg.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal

import httpx
import pytest

from connectors.serving import InProcessTransport
from connectors.traces_nt import TracesNtConfig, TracesNtConnector
from connectors.traces_nt.sandbox import create_traces_sandbox_app
from hub.connector import ConnectorContext
from hub.customs.ledger import Clearance, DeclaredItem
from hub.customs.reconcile import Reconciler
from hub.store.models import CustomsOperation, TraceEvent
from tests.support.api import api_client
from tests.support.broker import CHED_NUMBER, example_record, make_broker

BASE = "http://traces"
USERNAME, KEY, CLIENT_ID = "hub-fr", "authentication-key-of-hub-fr", "CLIENT-FR-1"
CUSTOMS, CUSTOMS_KEY = "douane-fr", "authentication-key-of-douane-fr"
OFFICE = "FR000690"
TIMEOUT = 1.5  # the hub's timeout towards TRACES-NT (generous: the machine may be loaded); late answers come after LATE seconds
LATE = 2.0
MRN_A, MRN_B, MRN_C = "26FR0000000000A01", "26FR0000000000B01", "26FR0000000000C01"


class TracesHub:
    """A broker whose ``traces_nt`` destination is the real connector over the sandbox, with a customs account."""

    def __init__(self, database_url: str, pki) -> None:
        self.app = create_traces_sandbox_app(accounts={USERNAME: KEY}, client_ids={USERNAME: CLIENT_ID}, customs_accounts={CUSTOMS: CUSTOMS_KEY})
        self.sandbox = httpx.Client(transport=InProcessTransport(self.app), base_url=BASE)
        config = TracesNtConfig(endpoint=f"{BASE}/tracesnt/ws", submission_service="ChedSubmissionService", username=USERNAME,
                                authentication_key=KEY, client_id=CLIENT_ID, certex_username=CUSTOMS, certex_authentication_key=CUSTOMS_KEY,
                                customs_office=OFFICE, timeout=TIMEOUT)
        self.connector = TracesNtConnector("traces_nt", config, transport=InProcessTransport(self.app),
                                           context=ConnectorContext(certs_dir=str(pki.directory), public_url="http://hub"))
        routes = {"rules": [{"name": "cheds", "when": {"kind": ["ched"]}, "to": ["traces_nt"]}]}
        self.broker = make_broker(database_url, pki, connectors={"traces_nt": self.connector}, routes=routes)
        self.broker.submit(json.dumps(example_record("ched-P-FR-cheese")).encode(), "application/json", tenant="FR", actor="test")
        self.broker.make_worker(webhooks=False).drain()
        [ched] = self.sandbox.get("/received").json()["received"]
        self.reference = ched["reference"]
        self.reconciler = Reconciler(self.broker.customs, grace=0)

    def fault(self, kind: str, *, count: int = 1, seconds: float | None = None) -> None:
        extra = {"seconds": seconds} if seconds is not None else {}
        self.sandbox.post("/control", json={"fault": kind, "target": "certex", "count": count, **extra}).raise_for_status()

    def theirs(self) -> dict:
        """TRACES-NT's ledger of the CHED: (reserved, written off) of line 1 and the movements per declaration."""
        ledger = self.sandbox.get(f"/quantities/{self.reference}").raise_for_status().json()
        line = ledger["lines"][0]
        held = {(m["declaration"], m["state"]): Decimal(m["quantity"]) for m in ledger["movements"] if m["state"] != "released"}
        return {"reserved": Decimal(line["reserved"]), "written_off": Decimal(line["written_off"]), "movements": held}

    def ours(self, api) -> dict:
        standing = api.get(f"/v1/customs/documents/N853/{CHED_NUMBER}").json()
        line = standing["lines"][0]
        held = {(m["declaration"], m["state"]): Decimal(m["quantity"]) for m in standing["declarations"]}
        for declaration in {d for d, _ in held} | {d for d, _ in self.theirs()["movements"]}:
            for m in api.get(f"/v1/customs/declarations/{declaration}").json()["movements"]:
                if m["state"] == "written_off":
                    held[(declaration, "written_off")] = Decimal(m["quantity"])
        return {"reserved": Decimal(line["reserved"]), "written_off": Decimal(line["written_off"]), "movements": held}

    def wait_until_theirs(self, predicate, *, within: float = 10.0) -> dict:
        """TRACES-NT's ledger once ``predicate`` holds (its late answers are processed after the hub stopped waiting)."""
        deadline = time.monotonic() + within
        while True:
            theirs = self.theirs()
            if predicate(theirs) or time.monotonic() > deadline:
                return theirs
            time.sleep(0.05)

    def operations(self) -> list[CustomsOperation]:
        with self.broker.database.sessions() as session:
            return list(session.query(CustomsOperation).order_by(CustomsOperation.created_at))

    def close(self) -> None:
        self.broker.close()
        self.connector.close()
        self.sandbox.close()


@pytest.fixture
def hub(database_url, pki):
    traces_hub = TracesHub(database_url, pki)
    with api_client(traces_hub.broker) as api:
        traces_hub.api = api
        yield traces_hub
    traces_hub.close()


def reserve(api, declaration: str, quantity: str, goods_item: int = 1):
    return api.post(f"/v1/customs/declarations/{declaration}/reservations", json={
        "code": "N853", "number": CHED_NUMBER, "office": OFFICE,
        "items": [{"goods_item": goods_item, "line": 1, "quantity": quantity, "unit": "KGM", "class_code": "04069021"}]})


def clear(api, declaration: str, kind: str):
    return api.post(f"/v1/customs/declarations/{declaration}/clearance", json={"code": "N853", "number": CHED_NUMBER, "clearance": kind, "office": OFFICE})


def reserved_there(declaration: str, quantity: str):
    return lambda theirs: theirs["movements"].get((declaration, "reserved")) == Decimal(quantity)


# --- the failure of issue 12 ------------------------------------------------------------------------------------------


def test_a_late_answer_then_the_next_declaration_then_reconcile_leaves_both_ledgers_equal(hub):
    api = hub.api
    hub.fault("slow", seconds=LATE)
    late = reserve(api, MRN_A, "100")
    assert late.status_code == 502 and "unknown" in late.json()["message"]
    hub.wait_until_theirs(reserved_there(MRN_A, "100"))  # TRACES-NT kept it
    assert reserve(api, MRN_B, "50").status_code == 200

    # The hub holds A pending (not nothing): both ledgers hold 150 kg, A's outcome unknown here.
    ours, theirs = hub.ours(api), hub.theirs()
    assert (ours["reserved"], theirs["reserved"]) == (Decimal(150), Decimal(150))
    assert ours["movements"][(MRN_A, "pending")] == 100
    [unknown, done] = hub.operations()
    assert (unknown.declaration, unknown.state, done.state) == (MRN_A, "unknown", "done")

    report = hub.reconciler.run()  # a look first: the difference is reported, nothing changes
    assert [(d.declaration, d.line, d.ours, d.theirs, d.action) for d in report.differences] == [
        (MRN_A, 1, "pending 100", "reserved 100", "to do: adopted (TRACES-NT holds it: the reservation was meant)")]
    assert report.needs_attention and hub.operations()[0].state == "unknown"

    repaired = hub.reconciler.run(repair=True)
    assert [d.action for d in repaired.differences] == ["adopted (TRACES-NT holds it: the reservation was meant)"]
    assert repaired.agree and not repaired.needs_attention
    ours, theirs = hub.ours(api), hub.theirs()
    assert ours == theirs == {"reserved": Decimal(150), "written_off": Decimal(0),
                              "movements": {(MRN_A, "reserved"): Decimal(100), (MRN_B, "reserved"): Decimal(50)}}
    assert hub.reconciler.run(repair=True).differences == []  # nothing left to do

    # Customs' repeat of A is answered accepted, without reserving twice; its release writes it off on both sides.
    assert reserve(api, MRN_A, "100").status_code == 200
    assert clear(api, MRN_A, "released").json()["outcome"] == "processed"
    ours, theirs = hub.ours(api), hub.theirs()
    assert (ours["reserved"], ours["written_off"]) == (theirs["reserved"], theirs["written_off"]) == (Decimal(50), Decimal(100))
    with hub.broker.database.sessions() as session:
        events = [e.event for e in session.query(TraceEvent).order_by(TraceEvent.id)]
    assert "customs.outcome_unknown" in events and "customs.reconciled" in events


def test_repeating_a_reservation_after_a_timeout_does_not_reserve_twice(hub):
    api = hub.api
    hub.fault("slow", seconds=LATE)
    assert reserve(api, MRN_A, "100").status_code == 502
    hub.wait_until_theirs(reserved_there(MRN_A, "100"))
    again = reserve(api, MRN_A, "100")
    assert again.status_code == 200, again.text
    ours, theirs = hub.ours(api), hub.theirs()
    assert ours == theirs == {"reserved": Decimal(100), "written_off": Decimal(0), "movements": {(MRN_A, "reserved"): Decimal(100)}}
    [operation] = hub.operations()
    assert (operation.state, operation.attempts) == ("done", 2)


def test_a_repeat_sent_while_the_late_answer_is_still_on_its_way_does_not_reserve_twice(hub):
    api = hub.api
    hub.fault("slow", seconds=LATE)
    assert reserve(api, MRN_A, "100").status_code == 502
    assert reserve(api, MRN_A, "100").status_code == 200  # TRACES-NT processes this one first, then the late one
    theirs = hub.wait_until_theirs(lambda t: False, within=LATE)  # let the late one land
    assert theirs["reserved"] == hub.ours(api)["reserved"] == 100


# --- outages ----------------------------------------------------------------------------------------------------------


def test_an_outage_of_several_calls_then_recovery(hub):
    api = hub.api
    hub.fault("unavailable", count=3)
    assert reserve(api, MRN_A, "100").status_code == 502
    assert reserve(api, MRN_A, "100").status_code == 502  # the repeat finds the same operation
    during = hub.reconciler.run(repair=True)  # TRACES-NT cannot even be read: nothing is changed
    assert during.cheds[0].error and "traces_nt" in during.cheds[0].error and during.needs_attention
    [operation] = hub.operations()
    assert (operation.state, operation.attempts) == ("unknown", 2)
    assert hub.ours(api)["movements"] == {(MRN_A, "pending"): Decimal(100)}

    after = hub.reconciler.run(repair=True)  # TRACES-NT is back: it never got A, so A is dropped
    assert [(d.declaration, d.ours, d.theirs, d.action) for d in after.differences] == [
        (MRN_A, "pending 100", "-", "dropped (TRACES-NT never received it)")]
    assert hub.ours(api) == hub.theirs() == {"reserved": Decimal(0), "written_off": Decimal(0), "movements": {}}
    assert hub.operations()[0].state == "dropped"
    # Customs tries again: the whole certificate is there to take.
    assert reserve(api, MRN_A, "2400").status_code == 200
    assert hub.ours(api)["reserved"] == hub.theirs()["reserved"] == 2400


def test_a_clearance_lost_in_an_outage_is_sent_again_by_the_reconciliation(hub):
    api = hub.api
    assert reserve(api, MRN_A, "100").status_code == 200
    hub.fault("unavailable")
    assert clear(api, MRN_A, "released").status_code == 502
    assert hub.ours(api)["movements"] == {(MRN_A, "reserved"): Decimal(100)}  # nothing written off without TRACES-NT
    report = hub.reconciler.run(repair=True)
    assert [d.action for d in report.differences] == ["cleared on TRACES-NT again"]
    ours, theirs = hub.ours(api), hub.theirs()
    assert ours == theirs and ours["written_off"] == 100 and ours["reserved"] == 0


def test_a_clearance_answered_late_is_applied_here_by_the_reconciliation(hub):
    api = hub.api
    assert reserve(api, MRN_A, "100").status_code == 200
    hub.fault("slow", seconds=LATE)
    assert clear(api, MRN_A, "invalidated").status_code == 502
    hub.wait_until_theirs(lambda t: t["reserved"] == 0)
    report = hub.reconciler.run(repair=True)
    assert [d.action for d in report.differences] == ["applied here (TRACES-NT had applied it)"]
    assert hub.ours(api) == hub.theirs() == {"reserved": Decimal(0), "written_off": Decimal(0), "movements": {}}


# --- differences without an operation ---------------------------------------------------------------------------------


def test_what_traces_holds_for_a_declaration_given_back_here_is_released_there(hub):
    api = hub.api
    assert reserve(api, MRN_A, "100").status_code == 200
    assert clear(api, MRN_A, "invalidated").status_code == 200
    hub.connector.certex_reserve(hub.reference, declaration=MRN_A, items=[DeclaredItem(1, 1, Decimal(30), "04069021", "KGM")])  # behind the hub's back
    report = hub.reconciler.run(repair=True)
    assert [(d.declaration, d.ours, d.theirs, d.action) for d in report.differences] == [(MRN_A, "-", "reserved 30", "released on TRACES-NT")]
    assert hub.theirs()["reserved"] == hub.ours(api)["reserved"] == 0


def test_another_customs_office_s_declaration_is_reported_and_left_alone(hub):
    assert reserve(hub.api, MRN_A, "100").status_code == 200  # a CHED with movements here is compared
    hub.connector.certex_reserve(hub.reference, declaration=MRN_C, items=[DeclaredItem(1, 1, Decimal(7), "04069021", "KGM")], office="DE001234")
    report = hub.reconciler.run(repair=True)
    assert [(d.declaration, d.action) for d in report.differences] == [(MRN_C, "not ours (a declaration the hub never saw): left alone")]
    assert report.agree and not report.needs_attention and report.cheds[0].lines[0].foreign == 7
    assert hub.theirs()["reserved"] == 107  # still there


def test_a_reservation_traces_lost_is_reserved_again(hub):
    api = hub.api
    assert reserve(api, MRN_A, "100").status_code == 200
    hub.connector.certex_clear(hub.reference, declaration=MRN_A, clearance=Clearance.INVALIDATED)  # behind the hub's back
    report = hub.reconciler.run(repair=True)
    assert [(d.ours, d.theirs, d.action) for d in report.differences] == [("reserved 100", "-", "reserved again on TRACES-NT")]
    assert hub.ours(api) == hub.theirs()


def test_a_write_off_entered_by_hand_is_written_off_on_traces_too(hub):
    answer = hub.api.post(f"/v1/customs/documents/N853/{CHED_NUMBER}/write-offs", json={
        "purchase_date": "2026-03-01", "items": [{"goods_item": 1, "line": 1, "quantity": "40", "unit": "KGM"}]})
    assert answer.status_code == 200, answer.text
    ours, theirs = hub.ours(hub.api), hub.theirs()
    assert (ours["written_off"], theirs["written_off"]) == (Decimal(40), Decimal(40))
    assert hub.reconciler.run().differences == []


def test_the_worker_reconciles_at_most_once_per_interval(hub):
    api = hub.api
    hub.fault("unavailable")
    assert reserve(api, MRN_A, "100").status_code == 502
    assert hub.reconciler.run_periodically(every=3600) == 1  # the open operation: dropped
    assert hub.operations()[0].state == "dropped"
    hub.fault("unavailable")
    assert reserve(api, MRN_B, "100").status_code == 502
    assert hub.reconciler.run_periodically(every=3600) == 0  # not yet
    assert hub.operations()[1].state == "unknown"


# --- the command line -------------------------------------------------------------------------------------------------


def test_hub_customs_reconcile_reports_then_repairs(hub, database_url, monkeypatch):
    from typer.testing import CliRunner

    from hub.broker import Broker
    from hub.cli import app

    hub.fault("slow", seconds=LATE)
    assert reserve(hub.api, MRN_A, "100").status_code == 502
    hub.wait_until_theirs(reserved_there(MRN_A, "100"))
    monkeypatch.setattr(Broker, "from_settings", classmethod(lambda cls, settings: hub.broker))
    monkeypatch.setattr(Broker, "close", lambda self: None)
    runner = CliRunner()
    in_flight = runner.invoke(app, ["customs", "reconcile", "--database-url", database_url])  # sent less than 300 s ago
    assert in_flight.exit_code == 0 and "ledgers agree" in in_flight.output, in_flight.output  # the totals do: A is held
    assert f"declaration {MRN_A}: ours reserve unknown, theirs reserved 100 → in flight: left to a later run" in in_flight.output
    look = runner.invoke(app, ["customs", "reconcile", "--grace", "0", "--database-url", database_url])
    assert look.exit_code == 1, look.output
    assert f"declaration {MRN_A} goods item 1 line 1: ours pending 100, theirs reserved 100 → to do: adopted" in look.output
    assert "run with --repair" in look.output
    repaired = runner.invoke(app, ["customs", "reconcile", "--repair", "--grace", "0", "--format", "json", "--database-url", database_url])
    assert repaired.exit_code == 0, repaired.output
    body = json.loads(repaired.output)
    assert body["agree"] and body["cheds"][0]["lines"][0]["ours"] == body["cheds"][0]["lines"][0]["theirs"] == {"reserved": "100", "written_off": "0"}
    again = runner.invoke(app, ["customs", "reconcile", "--database-url", database_url])
    assert again.exit_code == 0 and "0 difference(s): nothing to repair" in again.output


def test_hub_customs_reconcile_without_a_customs_account_says_what_to_configure(database_url, pki, monkeypatch):
    from typer.testing import CliRunner

    from hub.broker import Broker
    from hub.cli import app

    broker = make_broker(database_url, pki)
    monkeypatch.setattr(Broker, "from_settings", classmethod(lambda cls, settings: broker))
    answer = CliRunner().invoke(app, ["customs", "reconcile", "--database-url", database_url])
    assert answer.exit_code == 2 and "certex_username" in answer.output and "Traceback" not in answer.output
