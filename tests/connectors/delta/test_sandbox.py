"""The DELTA-G sandbox lodges declarations against the hub's customs registry: reserve, release (write-off),
invalidate, and refusals that hold nothing."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from fastapi.testclient import TestClient

from connectors.delta.sandbox import create_delta_sandbox
from hub.api.app import create_app
from hub.api.auth import create_client
from tests.support.broker import CHED_NUMBER, example_record


@pytest.fixture
def delta(ched_broker):
    ched_broker.submit(json.dumps(example_record("ched-P-FR-cheese")).encode(), "application/json", tenant="FR", actor="test")
    with ched_broker.database.transaction() as session:
        key = create_client(session, name="delta-g", tenant="FR")[1]
    hub = httpx.ASGITransport(app=create_app(ched_broker))
    with TestClient(create_delta_sandbox(hub_url="http://hub", api_key=key, transport=hub)) as client:
        yield client


def declaration(quantity: str, mrn: str | None = None, **item) -> dict:
    body = {"documents": [{"code": "N853", "number": CHED_NUMBER, "items": [{"goods_item": 1, "line": 1, "quantity": quantity, "unit": "KGM", **item}]}]}
    return {**body, "mrn": mrn} if mrn else body


def available(broker) -> Decimal:
    return broker.customs.check("N853", CHED_NUMBER, tenant="FR").balances[0].available


def test_a_declaration_is_lodged_released_and_written_off(delta, ched_broker):
    lodged = delta.post("/declarations", json=declaration("2400"))
    assert lodged.status_code == 201, lodged.text
    mrn = lodged.json()["mrn"]
    assert len(mrn) == 18 and [e["step"] for e in lodged.json()["exchanges"]] == ["check", "reserve"]
    released = delta.post(f"/declarations/{mrn}/release")
    assert released.json()["status"] == "released" and released.json()["exchanges"][-1]["answer"]["outcome"] == "processed"
    standing = ched_broker.customs.check("N853", CHED_NUMBER, tenant="FR")
    assert standing.lifecycle == "used" and standing.balances[0].written_off == Decimal("2400")
    # The certificate is used up: the next declaration is refused at the check.
    refused = delta.post("/declarations", json=declaration("1"))
    assert refused.status_code == 409 and "the document is used" in refused.json()["reasons"][0]


def test_an_invalidated_declaration_gives_its_quantity_back(delta, ched_broker):
    mrn = delta.post("/declarations", json=declaration("1000", mrn="26FR00069000000001")).json()["mrn"]
    assert available(ched_broker) == Decimal("1400")
    assert delta.post(f"/declarations/{mrn}/invalidate").json()["status"] == "invalidated"
    assert available(ched_broker) == Decimal("2400")
    assert delta.post(f"/declarations/{mrn}/release").status_code == 409  # decided already


def test_a_refused_declaration_holds_nothing_and_says_why(delta, ched_broker):
    body = declaration("100")
    body["documents"].append({"code": "N853", "number": CHED_NUMBER, "items": [{"goods_item": 2, "line": 1, "quantity": "2400"}]})
    refused = delta.post("/declarations", json=body)
    assert refused.status_code == 409 and refused.json()["status"] == "refused"
    assert "exceeds the quantity remaining" in refused.json()["reasons"][0]
    assert available(ched_broker) == Decimal("2400")
    unknown = delta.post("/declarations", json={"documents": [{"code": "C640", "number": "CHEDA.FR.2026.9", "items": [{"goods_item": 1, "quantity": "1"}]}]})
    assert unknown.status_code == 409 and "no CHED-A" in unknown.json()["reasons"][0]


def test_bad_declarations_are_named(delta):
    assert delta.post("/declarations", json={"documents": []}).status_code == 422
    assert delta.post("/declarations/nope/release").status_code == 404
    assert delta.post("/declarations/x/sideways").status_code == 404
