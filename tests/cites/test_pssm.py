"""The French simplified re-export procedure (PSSM): its rules one by one, the approvals API, and the completion of a
certificate at the sale — stored as the next version and completed, a changed box refused and flagged as a possible
fraud, a late completion accepted with an alert. On SQLite and PostgreSQL (``database_url``)."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select

from hub.api.app import create_app
from hub.api.auth import create_client
from hub.errors import ValidationFailed
from hub.mapping.cites_permit import permit_from_data, render_permit, to_xml
from hub.standards import PROJECT_ROOT
from hub.store.models import Document, NonConformity, TraceEvent
from hub.validation.pssm_rules import Approval, approval_findings
from hub.report import Severity
from hub.validation.validator import validate_permit_record
from tests.support.broker import PERMIT_NUMBER as NUMBER
from tests.support.broker import ScriptedConnector, make_broker, permit_record

APPROVAL = "PSSM-75-2026-001"
ACCOUNT, SUB_ACCOUNT, SPECIMEN = "FR-CITES-004217", "PARIS-04", "PYRE-SAC-01"
IMPORTER = {
    "name": {"value": "Hakone Leather Co., Ltd.", "language": "EN"},
    "address": {"city_name": {"value": "Tokyo", "language": "EN"}, "country_id": "JP", "country_name": {"value": "Japan", "language": "EN"}},
}


def pssm(**changes) -> dict:
    """The worked re-export certificate issued under the simplified procedure: importer, quantity and description
    left blank, the line of Annex B with the approval's specimen code, the re-exporter the approval's account."""
    data = permit_record()
    data["simplified_procedure"] = {"approval_number": APPROVAL, "holder_account": ACCOUNT, "specimen_code": SPECIMEN}
    consignment = data["consignment"]
    del consignment["consignee"]
    consignment["consignor"]["id"] = ACCOUNT
    line = consignment["items"][0]
    del line["quantity"], line["descriptions"]
    line.update(eu_annex="B", specimen_code=SPECIMEN)
    data.update(copy.deepcopy(changes))
    return data


def line(data: dict, index: int = 0) -> dict:
    return data["consignment"]["items"][index]


def findings(data: dict) -> dict[str, list]:
    _, report = validate_permit_record(permit_from_data(data))
    found: dict[str, list] = {}
    for finding in report.findings:
        found.setdefault(finding.rule, []).append(finding)
    return found


def approval(**changes) -> Approval:
    values = {"number": APPROVAL, "holder_account": ACCOUNT, "specimen_code": SPECIMEN, "valid_from": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    return Approval(**{**values, **changes})


def approval_rules(data: dict, found: Approval | None) -> dict[str, list]:
    result: dict[str, list] = {}
    for finding in approval_findings(permit_from_data(data), found, tenant="FR"):
        result.setdefault(finding.rule, []).append(finding)
    return result


# --- the record and its rules ---------------------------------------------------------------------------------------


def test_the_national_data_is_kept_in_the_record_and_never_written_to_the_xml():
    permit = permit_from_data(pssm())
    rendered = render_permit(permit)
    assert rendered.findings == []
    xml = to_xml(rendered.root)
    assert APPROVAL.encode() not in xml and SPECIMEN.encode() not in xml and b"simplified" not in xml
    assert permit.model_dump(mode="json", exclude_none=True)["simplified_procedure"]["approval_number"] == APPROVAL


def test_blank_boxes_at_issue_break_no_rule_but_are_required_once_completed():
    assert findings(pssm()) == {}
    completed = pssm()
    completed["simplified_procedure"]["sale_date"] = "2026-11-20"
    found = findings(completed)
    assert [f.field for f in found["CITES-QUANTITY"]] == ["consignment.items[0].quantity"]
    assert {f.field for f in found["PSSM-COMPLETED"]} == {"consignment.consignee.name", "consignment.consignee.address.country_id", "consignment.items[0].descriptions"}
    assert "CITES-QUANTITY" in findings({k: v for k, v in pssm().items() if k != "simplified_procedure"})  # not under the procedure: required


def test_a_quantity_given_at_issue_is_still_judged():
    data = pssm()
    line(data)["quantity"] = {"value": "-1", "unit": "PCS"}
    assert "CITES-QUANTITY" in findings(data)


def test_pssm_annex_b():
    data = pssm()
    line(data)["eu_annex"] = "A"
    [finding] = findings(data)["PSSM-ANNEX-B"]
    assert finding.severity is Severity.SEVERE and finding.field == "consignment.items[0].eu_annex"
    assert "Annex A" in finding.message_en and "l'annexe A" in finding.message_fr
    del line(data)["eu_annex"]
    assert "(no annex)" in findings(data)["PSSM-ANNEX-B"][0].message_en
    assert "PSSM-ANNEX-B" not in findings(pssm())


def test_pssm_importer_not_eu():
    data = pssm()
    data["consignment"]["consignee"] = {**IMPORTER, "address": {**IMPORTER["address"], "country_id": "DE"}}
    [finding] = findings(data)["PSSM-IMPORTER-NOT-EU"]
    assert finding.field == "consignment.consignee.address.country_id" and "DE" in finding.message_en and "UE" in finding.message_fr
    data["consignment"]["consignee"] = IMPORTER
    assert "PSSM-IMPORTER-NOT-EU" not in findings(data)
    assert "PSSM-IMPORTER-NOT-EU" not in findings(pssm())  # blank at issue


def test_the_procedure_is_for_reexport_certificates_only():
    data = pssm(kind="cites_export")
    assert "PSSM-REEXPORT" in findings(data)


def test_pssm_approval_exists_and_is_in_force_at_issue():
    [missing] = approval_rules(pssm(), None)["PSSM-APPROVAL"]
    assert missing.field == "simplified_procedure.approval_number" and "does not exist for FR" in missing.message_en and "agrément" in missing.message_fr
    ended = approval(valid_until=datetime(2026, 2, 1, tzinfo=timezone.utc))  # the example is issued on 2026-03-12
    assert "not in force at issue" in approval_rules(pssm(), ended)["PSSM-APPROVAL"][0].message_en
    assert approval_rules(pssm(), approval()) == {}


def test_pssm_entity_is_the_account_or_the_account_and_sub_account():
    data = pssm()
    data["consignment"]["consignor"]["id"] = "FR-CITES-999999"
    [finding] = approval_rules(data, approval())["PSSM-ENTITY"]
    assert finding.field == "consignment.consignor.id" and ACCOUNT in finding.message_en
    sub = pssm()
    sub["consignment"]["consignor"]["id"] = f"{ACCOUNT}/{SUB_ACCOUNT}"
    sub["simplified_procedure"]["holder_sub_account"] = SUB_ACCOUNT
    assert approval_rules(sub, approval(holder_sub_account=SUB_ACCOUNT)) == {}
    assert "PSSM-ENTITY" in approval_rules(pssm(), approval(holder_sub_account=SUB_ACCOUNT))  # the account alone is not the sub-account


def test_pssm_specimen_code_of_every_line_is_the_approvals():
    data = pssm()
    line(data)["specimen_code"] = "CROC-CEI-02"
    [finding] = approval_rules(data, approval())["PSSM-SPECIMEN-CODE"]
    assert finding.field == "consignment.items[0].specimen_code" and SPECIMEN in finding.message_en and "CROC-CEI-02" in finding.message_fr
    assert "PSSM-SPECIMEN-CODE" not in approval_rules(pssm(), approval())


def test_permits_outside_the_procedure_are_not_concerned():
    assert approval_findings(permit_from_data(permit_record()), None, tenant="FR") == []


# --- the broker and the API ------------------------------------------------------------------------------------------


def add_approval(api, **changes):
    body = {"approval_number": APPROVAL, "holder_account": ACCOUNT, "specimen_code": SPECIMEN, "valid_from": "2026-01-01T00:00:00Z", **changes}
    return api.post("/v1/cites/approvals", json=body)


def submit(broker, data: dict):
    return broker.submit(json.dumps(data).encode(), "application/json", tenant="FR", actor="test").document


def hours_ago(hours: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(hours=hours)).isoformat(timespec="seconds")


def completion(sale_date: str | None = None, **changes) -> dict:
    body = {
        "sale_date": sale_date or hours_ago(2),
        "consignee": IMPORTER,
        "items": [{"quantity": {"value": "12", "unit": "PCS"}, "descriptions": [{"value": "Handbags of reticulated python skin", "language": "EN"}]}],
    }
    body.update(changes)
    return body


def test_approvals_are_recorded_and_listed_per_authority(permit_api):
    created = add_approval(permit_api, holder_sub_account=SUB_ACCOUNT, valid_until="2027-12-31T23:59:59Z")
    assert created.status_code == 201, created.text
    assert created.json()["tenant"] == "FR" and created.json()["holder_sub_account"] == SUB_ACCOUNT
    assert add_approval(permit_api).status_code == 409
    assert add_approval(permit_api, approval_number="X", valid_until="2025-01-01T00:00:00Z").status_code == 422
    assert add_approval(permit_api, approval_number="Y", tenant="NL").status_code == 403
    listed = permit_api.get("/v1/cites/approvals").json()["items"]
    assert [a["approval_number"] for a in listed] == [APPROVAL] and listed[0]["valid_until"].startswith("2027-12-31")
    assert permit_api.get("/v1/cites/approvals", headers=permit_api.headers_of("NL")).json()["items"] == []


def test_a_certificate_under_an_unknown_approval_is_refused_and_not_stored(permit_broker):
    with pytest.raises(ValidationFailed) as refused:
        submit(permit_broker, pssm())
    assert [f.rule for f in refused.value.report.severe] == ["PSSM-APPROVAL"]
    with permit_broker.database.sessions() as session:
        assert session.scalars(select(Document)).first() is None


def test_a_certificate_under_an_approval_of_another_entity_or_specimen_is_refused(permit_api, permit_broker):
    add_approval(permit_api, holder_sub_account=SUB_ACCOUNT, specimen_code="CROC-CEI-02")
    with pytest.raises(ValidationFailed) as refused:
        submit(permit_broker, pssm())
    assert {f.rule for f in refused.value.report.severe} == {"PSSM-ENTITY", "PSSM-SPECIMEN-CODE"}


def test_a_certificate_with_blank_boxes_is_issued_under_its_approval(permit_api, permit_broker):
    add_approval(permit_api)
    document = submit(permit_broker, pssm())
    assert (document.kind, document.importing_country, document.lifecycle) == ("cites_reexport", None, "issued")
    record = permit_api.get(f"/v1/documents/{document.id}").json()["record"]
    assert record["simplified_procedure"]["approval_number"] == APPROVAL and record["consignment"]["items"][0]["eu_annex"] == "B"
    signed = permit_api.get(f"/v1/documents/{document.id}/xml").content
    assert etree.fromstring(signed) is not None and SPECIMEN.encode() not in signed


def test_completion_stores_the_next_version_and_completes_the_permit(permit_api, permit_broker):
    add_approval(permit_api)
    issued = submit(permit_broker, pssm())
    answer = permit_api.post(f"/v1/cites/permits/{issued.id}/completion", json=completion())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["version"], body["lifecycle"], body["warnings"]) == (2, "completed", [])
    with permit_broker.database.sessions() as session:
        versions = session.scalars(select(Document).where(Document.certificate_number == NUMBER).order_by(Document.version)).all()
        assert [(d.version, d.lifecycle) for d in versions] == [(1, "completed"), (2, "completed")]
        completed = versions[1]
        assert completed.importing_country == "JP"
        assert completed.record["consignment"]["items"][0]["quantity"] == {"value": "12", "unit": "PCS"}
        assert completed.record["simplified_procedure"]["sale_date"]
        events = [e.event for e in session.scalars(select(TraceEvent).where(TraceEvent.document_id.in_([d.id for d in versions])))]
    assert events.count("document.completed") == 2 and "permit.completion_late" not in events
    assert permit_api.post(f"/v1/cites/permits/{issued.id}/completion", json=completion()).status_code == 409  # already completed


def test_a_completion_leaving_the_quantity_blank_is_invalid(permit_api, permit_broker):
    add_approval(permit_api)
    issued = submit(permit_broker, pssm())
    answer = permit_api.post(f"/v1/cites/permits/{issued.id}/completion", json=completion(items=[{"descriptions": ["Handbags"]}]))
    assert answer.status_code == 422, answer.text
    assert [f["rule"] for f in answer.json()["report"]["findings"] if f["severity"] == "SEVERE"] == ["CITES-QUANTITY"]
    assert permit_api.get(f"/v1/documents/{issued.id}").json()["lifecycle"] == "issued"


def test_a_completion_to_an_eu_importer_is_invalid(permit_api, permit_broker):
    add_approval(permit_api)
    issued = submit(permit_broker, pssm())
    german = {**IMPORTER, "address": {**IMPORTER["address"], "country_id": "DE"}}
    answer = permit_api.post(f"/v1/cites/permits/{issued.id}/completion", json=completion(consignee=german))
    assert answer.status_code == 422 and "PSSM-IMPORTER-NOT-EU" in {f["rule"] for f in answer.json()["report"]["findings"]}


def test_a_changed_box_is_refused_and_flagged_as_a_possible_fraud(permit_api, permit_broker):
    add_approval(permit_api)
    data = pssm()
    line(data)["quantity"] = {"value": "12", "unit": "PCS"}  # filled at issue
    issued = submit(permit_broker, data)
    answer = permit_api.post(f"/v1/cites/permits/{issued.id}/completion", json=completion(items=[{"quantity": {"value": "20", "unit": "PCS"}, "descriptions": ["Handbags"]}]))
    assert answer.status_code == 409, answer.text
    assert [p["field"] for p in answer.json()["problems"]] == ["consignment.items[0].quantity.value"]
    assert "consignment.items[0].quantity.value" in answer.json()["message"]
    with permit_broker.database.sessions() as session:
        [flag] = session.scalars(select(TraceEvent).where(TraceEvent.document_id == issued.id, TraceEvent.event == "permit.fraud_suspected")).all()
        [nc] = session.scalars(select(NonConformity).where(NonConformity.document_id == issued.id)).all()
        assert flag.detail["fields"] == ["consignment.items[0].quantity.value"] and flag.detail["non_conformity"] == nc.id
        assert (nc.source, nc.cause_code, nc.tenant, nc.country) == ("fraud_suspected", "PSSM-BOX-CHANGED", "FR", "JP")
        assert [d.version for d in session.scalars(select(Document).where(Document.certificate_number == NUMBER))] == [1]
        assert session.get(Document, issued.id).lifecycle == "issued"


def test_a_box_emptied_or_a_description_replaced_is_a_change_too(permit_api, permit_broker):
    add_approval(permit_api)
    data = pssm()
    line(data)["descriptions"] = [{"value": "Handbags", "language": "EN"}]
    issued = submit(permit_broker, data)
    answer = permit_api.post(f"/v1/cites/permits/{issued.id}/completion", json=completion(items=[{"quantity": {"value": "12", "unit": "PCS"}, "descriptions": [{"value": "Belts", "language": "EN"}]}]))
    assert answer.status_code == 409 and answer.json()["where"] == "consignment.items[0].descriptions[0].value"
    kept = completion(items=[{"quantity": {"value": "12", "unit": "PCS"}, "descriptions": [{"value": "Handbags", "language": "EN"}, {"value": "Sacs", "language": "FR"}]}])
    assert permit_api.post(f"/v1/cites/permits/{issued.id}/completion", json=kept).status_code == 200  # adding is not changing


def test_a_late_completion_is_accepted_with_an_alert(permit_api, permit_broker):
    add_approval(permit_api)
    issued = submit(permit_broker, pssm())
    answer = permit_api.post(f"/v1/cites/permits/{issued.id}/completion", json=completion(sale_date=hours_ago(30)))
    assert answer.status_code == 200, answer.text
    [warning] = answer.json()["warnings"]
    assert (warning["rule"], warning["severity"]) == ("PSSM-COMPLETION-LATE", "WARNING") and "24 hours" in warning["message_en"]
    assert "PSSM-COMPLETION-LATE" in {f["rule"] for f in answer.json()["report"]["findings"]}
    with permit_broker.database.sessions() as session:
        [late] = session.scalars(select(TraceEvent).where(TraceEvent.event == "permit.completion_late")).all()
    assert late.document_id == answer.json()["id"]


def test_only_an_issued_simplified_procedure_certificate_of_ones_own_is_completed(permit_api, permit_broker):
    add_approval(permit_api)
    ordinary = submit(permit_broker, permit_record(permit_number="FR2607500002-R"))
    assert permit_api.post(f"/v1/cites/permits/{ordinary.id}/completion", json=completion()).status_code == 409
    issued = submit(permit_broker, pssm())
    assert permit_api.post(f"/v1/cites/permits/{issued.id}/completion", json=completion(), headers=permit_api.headers_of("NL")).status_code == 404
    future = (datetime.now(timezone.utc) + timedelta(days=2)).isoformat(timespec="seconds")
    assert permit_api.post(f"/v1/cites/permits/{issued.id}/completion", json=completion(sale_date=future)).status_code == 422


def test_with_the_default_routes_a_certificate_awaiting_its_sale_is_kept_and_goes_abroad_once_completed(database_url, pki):
    routes = yaml.safe_load((PROJECT_ROOT / "config" / "routes.yaml").read_text(encoding="utf-8"))
    destinations = {d for rule in routes["rules"] for d in rule["to"]}
    broker = make_broker(database_url, pki, connectors={name: ScriptedConnector(name) for name in destinations}, routes=routes)
    try:
        with broker.database.transaction() as session:
            key = create_client(session, name="fr-cites-default", tenant="FR")[1]
        with TestClient(create_app(broker)) as api:
            api.headers["Authorization"] = f"Bearer {key}"
            add_approval(api)
            issued = submit(broker, pssm())
            assert issued.messages == []  # no country of import yet: stored, sent nowhere
            answer = api.post(f"/v1/cites/permits/{issued.id}/completion", json=completion())
            assert answer.status_code in (200, 201), answer.text
            assert [m["destination"] for m in answer.json()["messages"]] == ["foreign_authority"]
    finally:
        broker.close()
