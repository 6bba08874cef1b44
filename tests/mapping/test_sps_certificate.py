"""The mapping engine, both directions, on worked examples, real documents and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from hub.errors import RecordError, UnknownDocumentError
from hub.validation.validator import validate_certificate
from hub.mapping.fidelity import canonical, compare
from hub.mapping.sps_certificate import parse_certificate, record_from_data, render_certificate, to_xml
from hub.records import dump_record
from hub.records.sps import ChedCertificate, PhytosanitaryCertificate
from hub.standards import PROJECT_ROOT
from tests.support.standards import standard_file

NS = {"rsm": "urn:un:unece:uncefact:data:standard:SPSCertificate:17", "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"}
EXAMPLES = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples"
RECORDS = sorted(EXAMPLES.glob("*.record.json"))
REAL_DOCUMENTS = [
    "samples/ephyto/NO-ephyto-SPSCertificate.xml",
    "samples/traces/CreateAndSubmitChedForDecision-0101-Horse.xml",
    "samples/traces/CreateAndSubmitChedForDecision-01061900-Rats.xml",
]


def load_record(path: Path):
    return record_from_data(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("record_file", RECORDS, ids=lambda p: p.name)
@pytest.mark.parametrize("profile", ["full", "ephyto"])
def test_worked_example_renders_expected_xml(record_file, profile):
    expected = record_file.with_name(record_file.name.replace(".record.json", f".{profile}.xml"))
    rendered = to_xml(render_certificate(load_record(record_file), profile).root)
    assert rendered.decode() == expected.read_text(encoding="utf-8")


@pytest.mark.parametrize("record_file", RECORDS, ids=lambda p: p.name)
def test_worked_example_parses_back_to_the_record(record_file):
    expected_xml = record_file.with_name(record_file.name.replace(".record.json", ".full.xml")).read_bytes()
    parsed = parse_certificate(expected_xml)
    assert parsed.findings == []
    assert _without_date_styles(dump_record(parsed.record)) == _without_date_styles(dump_record(load_record(record_file)))


def _without_date_styles(data):
    """A parsed date remembers the element it was read from; a hand-written record leaves that to the profile."""
    if isinstance(data, dict):
        if set(data) >= {"value", "format"}:
            data = {k: v for k, v in data.items() if k != "format"}
            return data["value"] if set(data) == {"value"} else data
        return {k: _without_date_styles(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_without_date_styles(v) for v in data]
    return data


@pytest.mark.interop
@pytest.mark.parametrize("sample", REAL_DOCUMENTS)
def test_real_documents_round_trip_at_100_percent(sample):
    parsed = parse_certificate(standard_file(sample).read_bytes(), source=sample)
    assert parsed.findings == [], [f.xpath for f in parsed.findings]
    rendered = render_certificate(parsed.record, "full")
    fidelity = compare(parsed.element, rendered.root)
    assert fidelity.lost == [] and fidelity.added == []
    assert fidelity.share == 1.0
    assert canonical(parsed.element) == canonical(rendered.root)
    assert rendered.findings == []


@pytest.mark.interop
def test_traces_ched_is_read_from_its_soap_envelope():
    parsed = parse_certificate(standard_file(REAL_DOCUMENTS[1]).read_bytes())
    assert parsed.wrappers == ("Envelope",)
    assert isinstance(parsed.record, ChedCertificate)
    assert parsed.record.ched_type == "A"
    assert parsed.record.consignment.export_country.id.value == "RS"
    assert parsed.record.line_items()[0].scientific_names[0].language == "la"


@pytest.mark.interop
def test_ephyto_sample_reads_into_friendly_fields():
    record = parse_certificate(standard_file(REAL_DOCUMENTS[0]).read_bytes()).record
    assert isinstance(record, PhytosanitaryCertificate)
    assert record.certificate_number.value == "123ABC"
    assert record.issue_date_time.format == "DateTimeString"
    assert [n.subject for n in record.notes].count("ADEDL") == 2
    first_line = record.line_items()[0]
    assert first_line.net_weight.value == "10" and first_line.net_weight.unit == "KGM"
    assert first_line.packages[0].item_quantity.value == "100.0000"


def test_hub_envelope_content_string_is_unwrapped():
    inner = (EXAMPLES / "phyto-FR-apples.full.xml").read_text(encoding="utf-8").split("?>", 1)[1]
    envelope = etree.Element("{http://ephyto.ippc.int/HUB.Entities}Envelope")
    for name, value in [("From", "FR"), ("To", "EC"), ("CertificateType", "851"), ("CertificateStatus", "70"), ("NPPOCertificateNumber", "FR-2026-PC-000123")]:
        etree.SubElement(envelope, f"{{http://ephyto.ippc.int/HUB.Entities}}{name}").text = value
    etree.SubElement(envelope, "{http://ephyto.ippc.int/HUB.Entities}Content").text = inner
    parsed = parse_certificate(etree.tostring(envelope))
    assert parsed.wrappers == ("Envelope/Content",)
    assert parsed.record.certificate_number.value == "FR-2026-PC-000123"


def test_unmodelled_content_is_kept_as_extensions_and_written_back_in_place():
    root = etree.fromstring((EXAMPLES / "phyto-FR-apples.full.xml").read_bytes())
    ns = {"rsm": "urn:un:unece:uncefact:data:standard:SPSCertificate:17", "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"}
    consignor = root.find("rsm:SPSConsignment/ram:ConsignorSPSParty", ns)
    etree.SubElement(consignor, f"{{{ns['ram']}}}FavouriteColour").text = "blue"
    consignor.find("ram:Name", ns).set("nickname", "VdL")
    parsed = parse_certificate(etree.tostring(root))
    assert {f.xpath for f in parsed.findings} == {
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:ConsignorSPSParty/ram:FavouriteColour",
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:ConsignorSPSParty/ram:Name/@nickname",
    }
    assert all(f.rule == "MAP-EXTENSION" and f.severity.value == "INFO" and f.message_fr for f in parsed.findings)
    assert [e.parent for e in parsed.record.extensions] == [
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:ConsignorSPSParty/ram:Name",
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:ConsignorSPSParty",
    ]
    back = render_certificate(parsed.record).root
    written = back.find("rsm:SPSConsignment/ram:ConsignorSPSParty", ns)
    assert written.find("ram:Name", ns).get("nickname") == "VdL"
    colour = written.find("ram:FavouriteColour", ns)
    assert colour.text == "blue" and colour.getprevious().tag == consignor.find("ram:FavouriteColour", ns).getprevious().tag
    assert compare(root, back).share == 1.0


def test_ephyto_profile_reports_what_it_cannot_carry():
    record = load_record(EXAMPLES / "ched-P-FR-cheese.record.json")
    findings = render_certificate(record, "ephyto").findings
    fields = {f.field for f in findings}
    assert "consignment.consignor.id" in fields
    assert "consignment.transport_movements[0].mode_code.name" in fields
    dropped = next(f for f in findings if f.field == "consignment.consignor.id")
    assert dropped.xpath == "/rsm:SPSCertificate/rsm:SPSConsignment/ram:ConsignorSPSParty/ram:ID"
    assert render_certificate(record, "full").findings == []


def test_unknown_field_is_an_error_with_its_path():
    data = json.loads((EXAMPLES / "phyto-FR-apples.record.json").read_text())
    data["consignment"]["items"][0]["line_items"][0]["colour"] = "red"
    data["consignment"]["items"][0]["line_items"][0]["net_weight"] = {"value": "heavy", "unit": "KGM"}
    with pytest.raises(RecordError) as caught:
        record_from_data(data)
    paths = {p.path for p in caught.value.problems}
    assert "consignment.items[0].line_items[0].colour" in paths
    assert "consignment.items[0].line_items[0].net_weight.value" in paths


def test_bad_date_and_unknown_kind_are_refused():
    with pytest.raises(RecordError, match="issue_date_time"):
        record_from_data({"kind": "phytosanitary", "status": "issued", "issue_date_time": "22/11/2026"})
    with pytest.raises(RecordError):
        record_from_data({"kind": "invoice", "status": "issued"})


def test_ched_type_and_its_note_must_agree():
    with pytest.raises(RecordError, match="ched_type"):
        record_from_data({"kind": "ched", "status": "issued"})
    record = record_from_data({"kind": "ched", "status": "issued", "ched_type": "PP"})
    assert record.notes[0].content_code.value == "PP"


@pytest.mark.parametrize(("code", "kind"), [("851", "phytosanitary"), ("657", "phytosanitary_reexport"), ("852", "sanitary"), ("853", "veterinary"), ("855", "inspection_application"), ("856", "inspection"), ("332", "trade_data"), ("999", "sps_other")])
def test_the_record_kind_follows_the_type_code_and_an_unknown_code_is_carried(code, kind):
    xml = (EXAMPLES / "phyto-FR-apples.full.xml").read_text().replace("<ram:TypeCode>851</ram:TypeCode>", f'<ram:TypeCode name="as named">{code}</ram:TypeCode>', 1)
    parsed = parse_certificate(xml.encode())
    assert parsed.record.kind.value == kind and parsed.record.type_code.value == code and parsed.record.type_code.name == "as named"
    back = render_certificate(parsed.record).root.find("rsm:SPSExchangedDocument/ram:TypeCode", NS)
    assert (back.text, back.get("name")) == (code, "as named")
    rules = {f.rule: f.severity.value for f in validate_certificate(xml.encode()).report.findings}
    assert (rules.get("BR-DOCUMENT-KIND") == "WARNING") == (kind == "sps_other")


def test_a_kind_and_a_type_code_that_disagree_are_refused():
    with pytest.raises(RecordError, match="type_code"):
        record_from_data({"kind": "phytosanitary", "type_code": "853", "status": "issued"})
    with pytest.raises(RecordError, match="give that kind"):
        record_from_data({"kind": "sps_other", "type_code": "851", "status": "issued"})
    assert record_from_data({"kind": "sps_other", "status": "issued"}).type_code is None


def test_not_a_certificate_is_refused():
    with pytest.raises(UnknownDocumentError, match="SPSCertificate"):
        parse_certificate(b"<invoice><total>3</total></invoice>")


def test_malformed_value_in_xml_points_at_the_element():
    xml = (EXAMPLES / "phyto-FR-apples.full.xml").read_text().replace(">18500<", ">lots<")
    with pytest.raises(RecordError) as caught:
        parse_certificate(xml.encode())
    assert caught.value.problems[0].path.endswith("ram:IncludedSPSTradeLineItem/ram:NetWeightMeasure")


def test_every_signatory_is_read_in_order_and_a_record_may_still_give_one():
    root = etree.fromstring((EXAMPLES / "phyto-FR-apples.full.xml").read_bytes())
    document = root.find("rsm:SPSExchangedDocument", NS)
    decision = etree.SubElement(document, f"{{{NS['ram']}}}SignatorySPSAuthentication")
    clause = etree.SubElement(decision, f"{{{NS['ram']}}}IncludedSPSClause")
    etree.SubElement(clause, f"{{{NS['ram']}}}ID", schemeID="ched_decision_clause").text = "DECISION_CONCLUSION"
    etree.SubElement(clause, f"{{{NS['ram']}}}Content").text = "ACCEPTABLE_FOR_INTERNAL_MARKET"
    parsed = parse_certificate(etree.tostring(root))
    assert len(parsed.record.signatories) == 2 and parsed.record.extensions == []
    assert parsed.record.signatories[1].clauses[0].id.scheme_id == "ched_decision_clause"
    assert parsed.record.signatory is parsed.record.signatories[0]
    assert compare(root, render_certificate(parsed.record).root).share == 1.0
    legacy = json.loads((EXAMPLES / "phyto-FR-apples.record.json").read_text())
    assert "signatory" in legacy and len(record_from_data(legacy).signatories) == 1


@pytest.mark.parametrize(("extension", "why"), [
    ({"parent": "/rsm:SPSCertificate", "attribute": "bad name", "value": "x"}, "attribute name"),
    ({"parent": "/rsm:SPSCertificate", "text": "\x01"}, "XML compatible"),
    ({"parent": "/rsm:SPSCertificate", "xml": "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>"}, "DTD"),
    ({"parent": "/rsm:SPSCertificate/rsm:Nowhere", "xml": "<ok/>"}, "no rsm:Nowhere"),
    ({"parent": "/rsm:SPSCertificate", "xml": '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>'}, "signature"),
])
def test_an_extension_that_cannot_be_placed_safely_is_reported_never_written(extension, why):
    data = json.loads((EXAMPLES / "phyto-FR-apples.record.json").read_text())
    data["extensions"] = [extension]
    rendered = render_certificate(record_from_data(data))
    [finding] = [f for f in rendered.findings if f.rule == "MAP-EXTENSION-UNPLACED"]
    assert why in finding.message_en and finding.severity.value == "WARNING"
    assert b"passwd" not in to_xml(rendered.root) and rendered.root.find(".//{*}Signature") is None


def test_a_comment_or_processing_instruction_inside_a_value_never_cuts_it_short():
    xml = (EXAMPLES / "phyto-FR-apples.full.xml").read_text().replace("FR-2026-PC-000123", "FR-2026-PC<!--x-->-000<?pi y?>123", 1)
    parsed = parse_certificate(xml.encode())
    assert parsed.record.certificate_number.value == "FR-2026-PC-000123" and parsed.record.extensions == []
    assert b"<ram:ID>FR-2026-PC-000123</ram:ID>" in to_xml(render_certificate(parsed.record).root)
