"""The CITES permit rules, one by one, on the worked example (a French re-export certificate) and the real EPIX
permit: each names its rule, its place (XPath and record field) and says it in English and French."""

from __future__ import annotations

import copy
import json

import pytest

from hub.mapping.cites_permit import permit_from_data
from hub.standards import PROJECT_ROOT
from hub.report import Severity
from hub.validation.validator import validate_permit, validate_permit_record
from tests.support.standards import standard_file

EXAMPLE = PROJECT_ROOT / "mappings" / "CITESEPermit" / "2" / "examples" / "reexport-FR-python.record.json"


def example(**changes) -> dict:
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data.update(copy.deepcopy(changes))
    return data


def findings(data: dict) -> dict[str, list]:
    _, report = validate_permit_record(permit_from_data(data))
    found: dict[str, list] = {}
    for finding in report.findings:
        found.setdefault(finding.rule, []).append(finding)
    return found


def item(data: dict, index: int = 0) -> dict:
    return data["consignment"]["items"][index]


def test_the_worked_example_breaks_no_rule():
    assert findings(example()) == {}


def test_the_real_epix_permit_is_read_and_judged():
    report = validate_permit(standard_file("samples/cites/epix-v2-GetNonFinalCitesCertificateResponse.xml").read_bytes()).report
    assert not [f for f in report.findings if f.rule.startswith(("XSD", "RECORD"))]  # it is read and schema-valid
    assert {f.rule for f in report.severe} == {"CITES-REEXPORT-ORIGIN"}  # the template's second line names no origin permit


def test_validity_of_an_export_or_reexport_is_six_months_at_most():
    data = example(validity={"start": "2026-03-12T10:15:00+01:00", "end": "2026-09-13T00:00:00+02:00"})
    [finding] = findings(data)["CITES-VALIDITY-6M"]
    assert finding.severity is Severity.SEVERE and finding.field == "validity.end" and finding.xpath.endswith("ram:EndDateTime")
    assert "6 months" in finding.message_en and "6 mois" in finding.message_fr
    assert "CITES-VALIDITY-6M" not in findings(example(validity={"start": "2026-03-12T10:15:00+01:00", "end": "2026-09-12T10:15:00+01:00"}))
    assert "CITES-VALIDITY-6M" not in findings({**data, "kind": "cites_import", "type_code": "I"})  # not for import permits


def test_validity_given_as_dates_compares_with_date_times():
    assert "CITES-VALIDITY-6M" in findings(example(validity={"start": "2026-03-12", "end": "2026-12-31T00:00:00+01:00"}))
    assert "CITES-VALIDITY-6M" not in findings(example(validity={"start": "2026-03-12T10:15:00+01:00", "end": "2026-09-01"}))


def test_a_permit_needs_its_last_day_of_validity():
    assert findings(example(validity={"start": "2026-03-12T10:15:00+01:00"}))["CITES-VALIDITY-END"][0].field == "validity.end"


def test_importing_and_exporting_countries_differ():
    data = example()
    data["consignment"]["consignee"]["address"]["country_id"] = "FR"
    [finding] = findings(data)["CITES-COUNTRIES-DIFFER"]
    assert "FR" in finding.message_en and "FR" in finding.message_fr


@pytest.mark.parametrize("remove, missing", [("origin_country", "country of origin"), ("origin_permit", "origin permit number")])
def test_a_reexport_certificate_names_the_origin_country_and_permit(remove, missing):
    data = example()
    del item(data)[remove]
    [finding] = findings(data)["CITES-REEXPORT-ORIGIN"]
    assert missing in finding.message_en and finding.field == f"consignment.items[0].{remove}"


@pytest.mark.parametrize("quantity", [{"value": "0", "unit": "PCS"}, {"value": "-2", "unit": "PCS"}, {"value": "3"}, None])
def test_quantities_are_positive_with_a_unit(quantity):
    data = example()
    if quantity is None:
        del item(data)["quantity"]
    else:
        item(data)["quantity"] = quantity
    [finding] = findings(data)["CITES-QUANTITY"]
    assert finding.field == "consignment.items[0].quantity"


@pytest.mark.parametrize("field, value, rule", [
    ("appendix", "IV", "CITES-APPENDIX"), ("source", "Q", "CITES-SOURCE"), ("term_code", "XYZ", "CITES-TERM"),
])
def test_line_codes_come_from_the_cites_code_lists(field, value, rule):
    data = example()
    item(data)[field] = value
    [finding] = findings(data)[rule]
    assert repr(value) in finding.message_en and finding.field == f"consignment.items[0].{field}"
    assert finding.severity is (Severity.WARNING if rule == "CITES-TERM" else Severity.SEVERE)


def test_the_purpose_code_comes_from_its_code_list():
    [finding] = findings(example(purpose_code="K"))["CITES-PURPOSE"]
    assert finding.field == "purpose_code" and "'K'" in finding.message_fr


def test_species_names_are_present():
    data = example()
    del item(data)["scientific_name"]
    [finding] = findings(data)["CITES-SPECIES"]
    assert "Box 7" in finding.message_en and "case 7" in finding.message_fr


def test_a_permit_without_number_or_lines_is_refused():
    data = example(permit_number="")
    data["consignment"]["items"] = []
    found = findings(data)
    assert found["CITES-PERMIT-NUMBER"][0].field == "permit_number" and found["CITES-LINES"][0].field == "consignment.items"
