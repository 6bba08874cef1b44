"""Validation: one report with every finding, from schema, code lists and business rules."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from hub.mapping.sps_certificate import record_from_data
from hub.report import Severity
from hub.validation.validator import validate_certificate, validate_record
from hub.standards import PROJECT_ROOT
from tests.support.standards import standard_file

EXAMPLES = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def example(name: str = "phyto-FR-apples") -> dict:
    return json.loads((EXAMPLES / f"{name}.record.json").read_text(encoding="utf-8"))


def report_for(data: dict, profile: str = "full"):
    return validate_record(record_from_data(data), profile=profile, now=NOW)[1]


def rules_of(report) -> dict[str, list]:
    found: dict[str, list] = {}
    for f in report.findings:
        found.setdefault(f.rule, []).append(f)
    return found


@pytest.mark.parametrize(("name", "profile"), [("phyto-FR-apples", "full"), ("phyto-FR-apples", "ephyto"), ("ched-P-FR-cheese", "full")])
def test_worked_examples_are_valid(name, profile):
    report = report_for(example(name), profile)
    assert report.valid, [(f.rule, f.xpath, f.message_en) for f in report.severe]


@pytest.mark.interop
@pytest.mark.parametrize(
    "sample",
    [
        "samples/ephyto/NO-ephyto-SPSCertificate.xml",
        "samples/traces/CreateAndSubmitChedForDecision-0101-Horse.xml",
        "samples/traces/CreateAndSubmitChedForDecision-01061900-Rats.xml",
    ],
)
def test_real_documents_have_no_severe_finding(sample):
    report = validate_certificate(standard_file(sample).read_bytes(), now=NOW).report
    assert report.valid, [(f.rule, f.xpath, f.message_en) for f in report.severe]


def test_every_problem_is_reported_not_only_the_first():
    data = example()
    del data["consignment"]["consignor"]
    data["consignment"]["import_country"] = {"id": "XX"}
    data["consignment"]["items"][0]["line_items"][0]["scientific_names"] = []
    found = rules_of(report_for(data))
    assert {"BR-EPHYTO-CONSIGNOR", "CL-COUNTRY", "BR-EPHYTO-SCIENTIFIC-NAME"} <= set(found)
    country = found["CL-COUNTRY"][0]
    assert country.severity is Severity.SEVERE
    assert country.xpath == "/rsm:SPSCertificate/rsm:SPSConsignment/ram:ImportSPSCountry/ram:ID"
    assert country.field == "consignment.import_country.id"
    assert "XX" in country.message_en and "XX" in country.message_fr
    assert found["BR-EPHYTO-SCIENTIFIC-NAME"][0].xpath.endswith("ram:IncludedSPSTradeLineItem")


def test_messages_are_in_english_and_french():
    data = example()
    data["consignment"]["export_country"] = {"id": "EC"}
    report = report_for(data)
    finding = rules_of(report)["BR-COUNTRIES-DIFFER"][0]
    assert finding.message_en != finding.message_fr
    assert "pays" in finding.message_fr


def test_replacement_must_name_the_replaced_certificate():
    data = example()
    data["notes"].append({"subject": "ADRP", "content": ["1"]})
    assert "BR-REPLACEMENT-NUMBER" in rules_of(report_for(data))
    data["notes"].append({"subject": "ADRPN", "content": ["FR-2026-PC-000100"]})
    assert "BR-REPLACEMENT-NUMBER" not in rules_of(report_for(data))


def test_dates_must_be_coherent():
    data = example()
    data["issue_date_time"] = "2027-03-01T10:00:00+01:00"
    data["consignment"]["items"][0]["line_items"][0]["applied_processes"][0]["period"] = {"start": "2026-11-17", "end": "2026-11-15"}
    found = rules_of(report_for(data))
    assert found["BR-DATE-FUTURE"][0].field == "issue_date_time"
    assert found["BR-TREATMENT-PERIOD"][0].field.endswith("applied_processes[0].period.end")


def test_codes_from_the_lists():
    data = example()
    line = data["consignment"]["items"][0]["line_items"][0]
    line["packages"][0]["type_code"] = "ZZ9"
    line["net_weight"]["unit"] = "BANANA"
    data["consignment"]["transport_movements"][0]["mode_code"] = "42"
    found = rules_of(report_for(data))
    assert found["CL-PACKAGE-TYPE"][0].severity is Severity.SEVERE
    assert found["CL-TRANSPORT-MODE"][0].severity is Severity.SEVERE
    # Our Rec 20 list is partial: an unknown unit is a warning, not a refusal.
    assert found["CL-UNIT"][0].severity is Severity.WARNING


def test_schema_errors_join_the_same_report():
    xml = (EXAMPLES / "phyto-FR-apples.full.xml").read_text().replace("<ram:SequenceNumeric>1</ram:SequenceNumeric>", "<ram:SequenceNumeric>one</ram:SequenceNumeric>")
    report = validate_certificate(xml.encode(), now=NOW).report
    assert not report.valid
    assert any(f.rule == "XSD" and "SequenceNumeric" in f.xpath for f in report.findings)


def test_languages_come_from_iso_639():
    data = example()
    data["consignment"]["items"][0]["line_items"][0]["common_names"] = [{"value": "Pomme", "language": "french"}]
    finding = rules_of(report_for(data))["CL-LANGUAGE"][0]
    assert finding.field == "consignment.items[0].line_items[0].common_names[0]"
    assert finding.xpath.endswith("ram:IncludedSPSTradeLineItem/ram:CommonName")
