"""The customs-facing registry (DELTA-G through the national single window): check, reserve, write off, release, on
SQLite and PostgreSQL, through the REST API."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from hub.customs.gun import code_for, gun_code
from hub.customs.ledger import CertifiedLine, Clearance, DeclaredItem, FailureReason, reserve
from hub.errors import InputError
from hub.store.models import TraceEvent
from tests.support.broker import CHED_NUMBER


def reserve_items(api, declaration: str, *items: dict, code: str = "N853", number: str = CHED_NUMBER):
    return api.post(f"/v1/customs/declarations/{declaration}/reservations", json={"code": code, "number": number, "office": "FR000690", "items": list(items)})


def item(quantity: str, goods_item: int = 1, **more) -> dict:
    return {"goods_item": goods_item, "line": 1, "quantity": quantity, "unit": "KGM", "class_code": "04069021", **more}


def clearance(api, declaration: str, kind: str, number: str = CHED_NUMBER):
    return api.post(f"/v1/customs/declarations/{declaration}/clearance", json={"code": "N853", "number": number, "clearance": kind, "office": "FR000690"})


def line(answer) -> dict:
    return answer.json()["standing"]["lines"][0] if "standing" in answer.json() else answer.json()["lines"][0]


def test_gun_codes_name_the_ched_types_and_refuse_unknown_codes():
    assert code_for("ched", "CHEDP.FR.2026.0001234") == "N853"
    assert code_for("ched", "CHEDPP.XI.2026.0000074") == "C085"
    assert code_for("ched", "CHEDA.FR.2026.1") == "C640"
    assert not gun_code("C640").matches("ched", "CHEDP.FR.2026.1")
    with pytest.raises(InputError) as caught:
        gun_code("X999")
    assert "C401" in str(caught.value)


def test_the_ledger_refuses_what_does_not_match_or_does_not_remain():
    lines = [CertifiedLine(1, "0401", "KGM", Decimal("1000"))]
    assert reserve(lines, [], declaration="A", items=[DeclaredItem(1, 1, Decimal("1"), "040100", "KGM")]).accepted  # the captures' CN vs HS
    assert reserve(lines, [], declaration="A", items=[DeclaredItem(1, 1, Decimal("1"), "0402", "KGM")]).failure is FailureReason.COMMODITY_MISMATCH
    assert reserve(lines, [], declaration="A", items=[DeclaredItem(1, 1, Decimal("1"), "0401", "LTR")]).failure is FailureReason.COMMODITY_MISMATCH
    assert reserve(lines, [], declaration="A", items=[DeclaredItem(1, 2, Decimal("1"))]).failure is FailureReason.COMMODITY_MISMATCH
    assert reserve(lines, [], declaration="A", items=[DeclaredItem(1, 1, Decimal("1000.001"))]).failure is FailureReason.QUANTITY_EXCEEDED


def test_check_tells_validity_and_what_remains(ched_api, ched):
    answer = ched_api.get(f"/v1/customs/documents/N853/{CHED_NUMBER}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["valid"] and body["document_id"] == ched.id and body["lifecycle"] == "issued"
    assert body["lines"] == [{"line": 1, "class_code": "04069021", "unit": "KGM", "certified": "2400", "reserved": "0", "written_off": "0", "available": "2400"}]
    assert ched_api.get(f"/v1/customs/documents/C640/{CHED_NUMBER}").status_code == 404  # a CHED-P is not a CHED-A
    assert ched_api.get(f"/v1/customs/documents/X123/{CHED_NUMBER}").json()["where"] == "code"
    # Another country's customs does not see a French import.
    assert ched_api.get(f"/v1/customs/documents/N853/{CHED_NUMBER}", headers=ched_api.headers_of("NL")).status_code == 404


def test_reserve_write_off_and_release_move_the_quantities(ched_api, ched, ched_broker):
    assert reserve_items(ched_api, "26FR0001", item("1000")).status_code == 200
    answer = reserve_items(ched_api, "26FR0002", item("400"))
    assert Decimal(line(answer)["available"]) == Decimal("1000")
    # Written off when the goods of the first declaration are released; repeating changes nothing.
    first = clearance(ched_api, "26FR0001", "released")
    assert first.json()["outcome"] == "processed" and first.json()["outcome_code"] == "01"
    assert clearance(ched_api, "26FR0001", "released").json()["outcome"] == "nothing_to_process"
    # The second declaration is invalidated: its quantity comes back.
    assert clearance(ched_api, "26FR0002", "invalidated").json()["changed"][0]["state"] == "released"
    after = ched_api.get(f"/v1/customs/documents/N853/{CHED_NUMBER}").json()["lines"][0]
    assert (Decimal(after["written_off"]), Decimal(after["reserved"]), Decimal(after["available"])) == (1000, 0, 1400)
    with ched_broker.database.sessions() as session:
        events = [e.event for e in session.query(TraceEvent).filter_by(document_id=ched.id).order_by(TraceEvent.id)]
    assert events.count("customs.reserved") == 2 and "customs.written_off" in events and "customs.released" in events


def test_a_refused_reservation_names_the_goods_item_and_reserves_nothing(ched_api, ched):
    reserve_items(ched_api, "26FR0001", item("2000"))
    too_much = reserve_items(ched_api, "26FR0002", item("100", goods_item=1), item("500", goods_item=2))
    assert too_much.status_code == 409
    assert too_much.json()["failure"] == {"code": "04", "goods_item": 2, "line": 1} and too_much.json()["where"] == "items[1].quantity"
    wrong_code = reserve_items(ched_api, "26FR0002", item("10", class_code="0402"))
    assert wrong_code.status_code == 422 and wrong_code.json()["failure"]["code"] == "03"
    assert Decimal(line(ched_api.get(f"/v1/customs/documents/N853/{CHED_NUMBER}"))["available"]) == 400  # nothing of 26FR0002 held
    assert ched_api.get("/v1/customs/declarations/26FR0002").json()["movements"] == []


def test_reserving_a_goods_item_again_replaces_its_reservation(ched_api, ched):
    reserve_items(ched_api, "26FR0001", item("1000"))
    again = reserve_items(ched_api, "26FR0001", item("1500"))
    assert again.status_code == 200 and Decimal(line(again)["reserved"]) == 1500


def test_writing_everything_off_makes_the_document_used_and_no_longer_valid(ched_api, ched):
    reserve_items(ched_api, "26FR0001", item("2400"))
    clearance(ched_api, "26FR0001", "released")
    body = ched_api.get(f"/v1/customs/documents/N853/{CHED_NUMBER}").json()
    assert body["lifecycle"] == "used" and not body["valid"] and "the document is used" in body["reasons"]
    refused = reserve_items(ched_api, "26FR0003", item("1"))
    assert refused.status_code == 409 and refused.json()["where"] == "number"


def test_a_rejected_certificate_is_not_valid_for_clearance(ched_api, ched, ched_broker):
    ched_broker.report_non_conformity(document_id=ched.id, tenant="FR", actor="test", counterpart="traces_nt", cause_code="REFUSED_ENTRY", cause_text="temperature")
    body = ched_api.get(f"/v1/customs/documents/N853/{CHED_NUMBER}").json()
    assert not body["valid"] and body["reasons"] == ["refused by traces_nt: REFUSED_ENTRY (temperature)"]


def six_declarations_of_700_at_once(broker) -> list[bool]:
    """Six declarations reserving 700 of the CHED's line 1 at the same time: which were accepted."""
    results: list[bool] = []

    def take(declaration: str) -> None:
        answer = broker.customs.reserve("N853", CHED_NUMBER, tenant="FR", declaration=declaration, items=[DeclaredItem(1, 1, Decimal("700"))])
        results.append(answer.accepted)

    threads = [threading.Thread(target=take, args=(f"26FR{n:04d}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_reservations_never_take_more_than_remains(ched_broker, ched):
    results = six_declarations_of_700_at_once(ched_broker)
    assert results.count(True) == 3  # 3 × 700 ≤ 2400 < 4 × 700
    standing = ched_broker.customs.check("N853", CHED_NUMBER, tenant="FR")
    assert standing.balances[0].available == Decimal("300")


def test_bad_input_is_named(ched_api, ched):
    answer = reserve_items(ched_api, "26FR0001", item("-1"))
    assert answer.status_code == 422 and "quantity" in answer.text
    assert ched_api.post("/v1/customs/declarations/X/clearance", json={"code": "N853", "number": CHED_NUMBER, "clearance": "maybe"}).status_code == 422
    assert clearance(ched_api, "26FR0009", "released").json()["outcome"] == "nothing_to_process"


def test_ched_quantities_go_through_traces_first(with_traces):
    api, broker, traces = with_traces
    assert reserve_items(api, "26FR0001", item("1000")).status_code == 200
    assert clearance(api, "26FR0001", "released").json()["outcome"] == "processed"
    assert [c[0] for c in traces.calls] == ["reserve", "clear"]
    assert traces.calls[0][1].startswith("R-")  # the reference TRACES-NT gave, not our number
    assert traces.calls[1][3] is Clearance.RELEASED


def test_a_refusal_by_traces_is_the_answer_and_nothing_is_reserved(with_traces):
    api, broker, traces = with_traces
    traces.refuse = FailureReason.QUANTITY_EXCEEDED  # consumed elsewhere in the EU
    refused = reserve_items(api, "26FR0001", item("10"))
    assert refused.status_code == 409 and refused.json()["failure"]["code"] == "04"
    assert Decimal(line(api.get(f"/v1/customs/documents/N853/{CHED_NUMBER}"))["reserved"]) == 0


def test_traces_not_answering_is_a_bad_gateway_and_the_quantity_is_held_pending(with_traces):
    api, broker, traces = with_traces
    traces.down = True
    answer = reserve_items(api, "26FR0001", item("10"))
    assert answer.status_code == 502 and "traces_nt" in answer.json()["message"] and "unknown" in answer.json()["message"]
    standing = api.get(f"/v1/customs/documents/N853/{CHED_NUMBER}").json()
    assert Decimal(standing["lines"][0]["reserved"]) == 10  # held: nothing else may take it while the outcome is unknown
    assert [m["state"] for m in standing["declarations"]] == ["pending"]
    traces.down = False
    assert reserve_items(api, "26FR0001", item("10")).status_code == 200  # the repeat settles it
    standing = api.get(f"/v1/customs/documents/N853/{CHED_NUMBER}").json()
    assert Decimal(standing["lines"][0]["reserved"]) == 10 and [m["state"] for m in standing["declarations"]] == ["reserved"]


def test_what_the_registry_refuses_is_never_sent_to_traces(with_traces):
    api, broker, traces = with_traces  # TRACES-NT accepts anything; here 3000 kg exceed the 2400 certified
    assert reserve_items(api, "26FR0001", item("3000")).status_code == 409
    assert traces.calls == []


def test_concurrent_reservations_through_traces_never_take_more_than_remains(with_traces):
    api, broker, traces = with_traces  # what is in flight to TRACES-NT is held (pending) against the others
    results = six_declarations_of_700_at_once(broker)
    assert results.count(True) == 3 and [c[0] for c in traces.calls] == ["reserve"] * 3
    assert broker.customs.check("N853", CHED_NUMBER, tenant="FR").balances[0].available == Decimal("300")
