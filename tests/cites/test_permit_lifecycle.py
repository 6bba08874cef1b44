"""The permit lifecycle in the broker: permits past their validity expire by themselves; the authority requests and
confirms cancellation; an expired permit is duplicated into a new request that refers to it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from hub.store.lifecycle import DUPLICATED_DOCUMENT_CODE
from hub.store.models import Document, TraceEvent
from tests.support.broker import current_validity
from tests.support.broker import PERMIT_NUMBER as NUMBER
from tests.support.broker import permit_record as permit


def submit(broker, data):
    return broker.submit(json.dumps(data).encode(), "application/json", tenant="FR", actor="test").document


def past_validity() -> dict:
    start = datetime.now(timezone.utc) - timedelta(days=200)
    return {"start": start.isoformat(timespec="seconds"), "end": (start + timedelta(days=150)).isoformat(timespec="seconds")}


def lifecycle_of(broker, document_id: str) -> str:
    with broker.database.sessions() as session:
        return session.get(Document, document_id).lifecycle


def test_permits_past_their_validity_expire_and_others_do_not(permit_broker):
    old = submit(permit_broker, permit(permit_number="FR2507500001-R", validity=past_validity()))
    current = submit(permit_broker, permit())
    assert permit_broker.expire_permits(every=0) == 1
    assert (lifecycle_of(permit_broker, old.id), lifecycle_of(permit_broker, current.id)) == ("expired", "issued")
    with permit_broker.database.sessions() as session:
        event = session.scalars(select(TraceEvent).where(TraceEvent.document_id == old.id, TraceEvent.event == "document.expired")).one()
    assert event.actor == "hub" and "validity ended" in event.detail["reason"]
    assert permit_broker.expire_permits(every=0) == 0  # once
    assert permit_broker.expire_permits() == 0  # and not looked at again within the minute


def test_cancellation_is_requested_then_confirmed_when_the_sheets_are_back(permit_api, permit_broker):
    document = submit(permit_broker, permit())
    asked = permit_api.post(f"/v1/documents/{document.id}/lifecycle", json={"lifecycle": "cancellation_requested", "reason": "sale abandoned"})
    assert asked.status_code == 200 and asked.json()["lifecycle"] == "cancellation_requested"
    assert permit_api.post(f"/v1/documents/{document.id}/lifecycle", json={"lifecycle": "cancelled"}).json()["lifecycle"] == "cancelled"
    assert permit_api.post(f"/v1/documents/{document.id}/lifecycle", json={"lifecycle": "expired"}).status_code == 409


@pytest.mark.parametrize("target, status", [("cancelled", 409), ("used", 422), ("sold", 422)])
def test_moves_the_lifecycle_does_not_allow_by_hand_are_refused(permit_api, permit_broker, target, status):
    document = submit(permit_broker, permit())
    answer = permit_api.post(f"/v1/documents/{document.id}/lifecycle", json={"lifecycle": target})
    assert answer.status_code == status and answer.json()["where"] == "lifecycle"
    assert lifecycle_of(permit_broker, document.id) == "issued"


def test_another_authority_cannot_move_a_permit(permit_api, permit_broker):
    document = submit(permit_broker, permit())
    answer = permit_api.post(f"/v1/documents/{document.id}/lifecycle", json={"lifecycle": "expired"}, headers=permit_api.headers_of("NL"))
    assert answer.status_code == 404


def test_an_expired_permit_is_duplicated_into_a_request_referring_to_it(permit_api, permit_broker):
    old = submit(permit_broker, permit(validity=past_validity()))
    assert permit_api.post(f"/v1/documents/{old.id}/duplicate").status_code == 409  # not expired yet
    permit_broker.expire_permits(every=0)
    record = permit_api.post(f"/v1/documents/{old.id}/duplicate").json()["record"]
    assert "permit_number" not in record and "validity" not in record and "first_signatory" not in record
    assert record["referenced_documents"][-1]["id"] == NUMBER and record["referenced_documents"][-1]["type_code"] == DUPLICATED_DOCUMENT_CODE
    record.update(permit_number="FR2607599999-R", validity=current_validity(), first_signatory=permit()["first_signatory"])
    answer = permit_api.post("/v1/documents", content=json.dumps(record), headers={"Content-Type": "application/json"})
    assert answer.status_code == 202, answer.text


def test_a_use_customs_did_not_write_back_is_entered_by_hand(permit_api, permit_broker):
    document = submit(permit_broker, permit())
    url = f"/v1/customs/documents/C401/{NUMBER}/write-offs"
    too_much = permit_api.post(url, json={"purchase_date": "2026-11-21", "items": [{"goods_item": 1, "line": 1, "quantity": "13", "unit": "PCS"}]})
    assert too_much.status_code == 409 and too_much.json()["where"] == "items[0].quantity"
    entered = permit_api.post(url, json={"purchase_date": "2026-11-21", "items": [{"goods_item": 1, "line": 1, "quantity": "12", "unit": "PCS"}]})
    assert entered.status_code == 200, entered.text
    assert entered.json()["standing"]["lifecycle"] == "used" and entered.json()["changed"][0]["declaration"] == "EXA:inconnu:2026-11-21"
    assert lifecycle_of(permit_broker, document.id) == "used"
