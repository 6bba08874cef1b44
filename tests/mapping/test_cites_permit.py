"""CITES permits ⇄ CITESEPermit 2: the real EPIX document, the worked example, SOAP wrappers and bad input."""

from __future__ import annotations

import json

import pytest
from lxml import etree

from hub.errors import HostileXMLError, InputError, RecordError, UnknownDocumentError
from hub.mapping.cites_permit import cites_spec, parse_permit, permit_from_data, render_permit, to_xml
from hub.mapping.engine import render
from hub.mapping.fidelity import canonical, compare
from hub.namespaces import CITES_DATA_EXCHANGE_V2, CITES_EPERMIT, CITES_RAM_DRAFT
from hub.records import dump_record
from hub.records.cites import PERMIT_KIND_CODES, PermitKind
from hub.standards import PROJECT_ROOT
from tests.support.standards import standard_file

EXAMPLES = PROJECT_ROOT / "mappings" / "CITESEPermit" / "2" / "examples"
EXAMPLE = EXAMPLES / "reexport-FR-python.record.json"
EPIX_SAMPLE = "samples/cites/epix-v2-GetNonFinalCitesCertificateResponse.xml"
NS = {"rsm": CITES_EPERMIT, "ram": CITES_RAM_DRAFT, "v2": CITES_DATA_EXCHANGE_V2}


def example_data() -> dict:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def epix_bytes() -> bytes:
    return standard_file(EPIX_SAMPLE).read_bytes()


def without_date_styles(data):
    """A parsed date remembers how it was written; a hand-written record leaves that to the profile."""
    if isinstance(data, dict):
        if set(data) >= {"value", "format"}:
            data = {k: v for k, v in data.items() if k != "format"}
            return data["value"] if set(data) == {"value"} else data
        return {k: without_date_styles(v) for k, v in data.items()}
    if isinstance(data, list):
        return [without_date_styles(v) for v in data]
    return data


# ------------------------------------------------------------------------------------------ the real EPIX document


@pytest.mark.interop
def test_real_epix_permit_round_trips_at_100_percent():
    parsed = parse_permit(epix_bytes(), source=EPIX_SAMPLE)
    assert parsed.findings == [], [f.xpath for f in parsed.findings]
    rendered = render_permit(parsed.record, parsed.profile)
    assert rendered.findings == []
    fidelity = compare(parsed.element, rendered.root)
    assert fidelity.lost == [] and fidelity.added == []
    assert fidelity.share == 1.0 and fidelity.total > 500
    assert canonical(parsed.element) == canonical(rendered.root)


@pytest.mark.interop
def test_real_epix_permit_keeps_its_tricky_leaves():
    parsed = parse_permit(epix_bytes())
    root = render_permit(parsed.record, parsed.profile).root
    assert root.tag == "CITESEPermit"  # unqualified, as EPIX carries it
    header = root.find("rsm:HeaderExchangedDocument", NS)
    information = header.find("ram:Information", NS)
    assert information.text == parsed.element.find("rsm:HeaderExchangedDocument/ram:Information", NS).text
    assert information.text.count("\n") == 2 and information.text.endswith("the IATA Live Animals Regulations")
    assert information.get("languageID") == "EN"
    assert header.find("ram:ID", NS).attrib == {"schemeID": "?", "schemeAgencyID": "?"}
    assert header.find("ram:IssueDateTime", NS).text == "2014-01-06T12:03:52.00+01:00"
    assert header.find("ram:EffectiveSpecifiedPeriod/ram:EndDateTime", NS).text == "2014-07-05T12:03:52.000+02:00"
    empty_name = header.find("ram:Name", NS)
    assert (empty_name.text or "") == "" and empty_name.get("languageID") == "EN"
    assert (header.find("ram:ReferenceReferencedDocument/ram:IssueDateTime", NS).text or "") == ""
    unit_quantity = root.find("rsm:SpecifiedSupplyChainConsignment/ram:ExaminationTransportEvent/ram:UnitQuantity", NS)
    assert (unit_quantity.text or "") == "" and unit_quantity.get("unitCode") == "?"
    assert header.find("ram:CopyIndicator", NS).text == "false"


@pytest.mark.interop
def test_real_epix_permit_reads_into_its_boxes():
    parsed = parse_permit(epix_bytes())
    permit = parsed.record
    assert parsed.response == "GetNonFinalCitesCertificateResponse" and parsed.profile == "epix"
    assert permit.kind is PermitKind.CITES_REEXPORT and permit.type_code.value == "R"
    assert permit.permit_number.value == "XA000000"
    assert permit.purpose_code.value == "T" and permit.copy_indicator is False
    assert permit.business_process_context.value.value == "CITES Permitting"
    assert permit.issuing_authority.name.value == "Authority name"
    assert permit.security_stamp.value == ""
    assert permit.exporting_country() == "XA" and permit.importing_country() == "XB"
    first, second = permit.consignment.items
    assert (first.appendix.value, first.source.value, first.term_code.value) == ("II", "W", "LPS")
    assert first.scientific_name.value == "Alligator mississippiensis"
    assert first.common_names[0].value == "American Alligator"
    assert (first.quantity.value, first.quantity.unit) == ("5", "PCS")
    assert first.origin_country.id.value == "XC" and first.origin_permit.id.value == "XC12345"
    assert first.last_reexport_country.id.value == "XA" and first.last_reexport_certificate.id.value == "XA12345"
    assert first.other_documents == []
    assert second.appendix.value == "I" and second.source.value == "D"
    assert second.last_reexport_certificate.id.value == "FR1202501030-R"
    assert second.customs_endorsement.actual_quantity.value == ""


@pytest.mark.interop
def test_soap_wrapped_and_bare_permits_parse_the_same():
    wrapped = parse_permit(epix_bytes())
    bare_bytes = etree.tostring(etree.fromstring(epix_bytes()).find(".//CITESEPermit"))
    bare = parse_permit(bare_bytes)
    assert bare.wrappers == () and bare.response is None and bare.profile == "epix"
    assert wrapped.wrappers == ("Envelope",)
    assert dump_record(bare.record) == dump_record(wrapped.record)

    standalone = parse_permit(to_xml(render_permit(wrapped.record, "standard").root))
    assert standalone.element.tag == f"{{{CITES_EPERMIT}}}CITESEPermit" and standalone.profile == "standard"
    assert standalone.findings == []
    assert dump_record(standalone.record) == dump_record(wrapped.record)


@pytest.mark.interop
def test_final_certificate_response_is_read_too():
    envelope = etree.fromstring(epix_bytes())
    response = envelope.find(".//v2:GetNonFinalCitesCertificateResponse", NS)
    response.tag = f"{{{CITES_DATA_EXCHANGE_V2}}}GetFinalCitesCertificateResponse"
    parsed = parse_permit(etree.tostring(envelope))
    assert parsed.response == "GetFinalCitesCertificateResponse"
    assert parsed.record.permit_number.value == "XA000000"


# ------------------------------------------------------------------------------------------------ the worked example


def test_worked_example_renders_expected_xml():
    rendered = render_permit(permit_from_data(example_data()))
    assert rendered.findings == []
    assert to_xml(rendered.root).decode() == EXAMPLE.with_name("reexport-FR-python.xml").read_text(encoding="utf-8")


def test_worked_example_parses_back_to_the_record():
    parsed = parse_permit(EXAMPLE.with_name("reexport-FR-python.xml").read_bytes())
    assert parsed.findings == [] and parsed.profile == "standard" and parsed.response is None
    assert without_date_styles(dump_record(parsed.record)) == without_date_styles(dump_record(permit_from_data(example_data())))


def test_worked_example_fills_in_what_the_standard_fixes():
    permit = permit_from_data(example_data())
    assert permit.type_code.value == "R" and (permit.type_code.list_id, permit.type_code.list_agency_id) == ("1001", "6")
    assert permit.business_process_context.value.value == "CITES PERMITTING"
    assert permit.business_process_context.version.id.value == "1"
    assert permit.first_signatory.type_code.value == "A" and permit.third_signatory.type_code.value == "C"
    line = permit.consignment.items[0]
    assert line.origin_permit.type_code.value == "861" and line.last_reexport_certificate.type_code.value == "811"


def test_epix_profile_differs_only_in_the_root_element():
    permit = permit_from_data(example_data())
    standard, epix = render_permit(permit, "standard").root, render_permit(permit, "epix").root
    assert epix.tag == "CITESEPermit" and standard.tag == f"{{{CITES_EPERMIT}}}CITESEPermit"
    epix.tag = standard.tag
    assert etree.tostring(epix) == etree.tostring(standard)


def test_permit_kinds_and_their_type_codes():
    assert [kind.value for kind in PermitKind] == ["cites_export", "cites_import", "cites_reexport", "cites_other"]
    assert {kind.value: code for kind, code in PERMIT_KIND_CODES.items()} == {
        "cites_export": "E", "cites_import": "I", "cites_reexport": "R", "cites_other": "O",
    }
    data = example_data() | {"kind": "cites_export"}
    data["consignment"]["items"][0].pop("last_reexport_certificate")
    root = render_permit(permit_from_data(data)).root
    assert root.find("rsm:HeaderExchangedDocument/ram:TypeCode", NS).text == "E"
    assert parse_permit(etree.tostring(root)).record.kind is PermitKind.CITES_EXPORT


def test_customs_endorsement_round_trips():
    data = example_data()
    endorsement = {
        "actual_date_time": "2026-04-02T16:40:00+02:00",
        "location": {"id": "FRCDG", "name": {"value": "Roissy-Charles de Gaulle", "language": "FR"}},
        "certifying_parties": [{"name": {"value": "Bureau de douane de Roissy Fret", "language": "FR"}}],
    }
    data["consignment"]["customs_endorsement"] = endorsement
    data["consignment"]["items"][0]["customs_endorsement"] = {"actual_quantity": {"value": "10", "unit": "PCS"}}
    permit = permit_from_data(data)
    root = render_permit(permit).root
    event = root.find("rsm:SpecifiedSupplyChainConsignment/ram:ExaminationTransportEvent", NS)
    assert event.find("ram:OccurrenceLogisticsLocation/ram:ID", NS).text == "FRCDG"
    back = parse_permit(etree.tostring(root)).record
    assert back.consignment.items[0].customs_endorsement.actual_quantity.value == "10"
    assert without_date_styles(dump_record(back)) == without_date_styles(dump_record(permit))


def test_line_without_trade_line_values_writes_no_empty_containers():
    data = example_data()
    data["consignment"]["items"] = [{"id": "A", "quantity": {"value": "1", "unit": "PCS"}}]
    item = render_permit(permit_from_data(data)).root.find("rsm:SpecifiedSupplyChainConsignment/ram:IncludedSupplyChainConsignmentItem", NS)
    assert [etree.QName(child).localname for child in item] == ["ID", "TransportLogisticsPackage"]


# ------------------------------------------------------------------------------------------------------- bad input


def test_bad_record_names_the_field_paths():
    data = example_data()
    line = data["consignment"]["items"][0]
    line["colour"] = "green"
    line["quantity"] = {"value": "a dozen", "unit": "PCS"}
    data["validity"]["end"] = "11/09/2026"
    line["origin_permit"]["type_code"] = "811"
    with pytest.raises(RecordError) as caught:
        permit_from_data(data)
    paths = {p.path for p in caught.value.problems}
    assert {
        "consignment.items[0].colour",
        "consignment.items[0].quantity.value",
        "validity.end.value",
        "consignment.items[0].origin_permit",
    } <= paths


def test_kind_is_required_and_must_agree_with_the_type_code():
    with pytest.raises(RecordError) as caught:
        permit_from_data({})
    assert [p.path for p in caught.value.problems] == ["type_code"]
    with pytest.raises(RecordError, match="contradicts"):
        permit_from_data({"kind": "cites_import", "type_code": "E"})
    with pytest.raises(RecordError, match="not a CITES permit type code"):
        permit_from_data({"type_code": "X"})
    assert permit_from_data({"type_code": "O"}).kind is PermitKind.CITES_OTHER


def test_unknown_permit_type_in_xml_points_at_the_element():
    xml = EXAMPLE.with_name("reexport-FR-python.xml").read_text(encoding="utf-8")
    xml = xml.replace('listAgencyID="6">R</ram:TypeCode>', 'listAgencyID="6">X</ram:TypeCode>', 1)
    with pytest.raises(RecordError) as caught:
        parse_permit(xml.encode())
    assert caught.value.problems[0].path == "/rsm:CITESEPermit/rsm:HeaderExchangedDocument/ram:TypeCode"


def test_malformed_indicator_in_xml_points_at_the_element():
    xml = EXAMPLE.with_name("reexport-FR-python.xml").read_text(encoding="utf-8").replace(">false<", ">maybe<")
    with pytest.raises(InputError) as caught:
        parse_permit(xml.encode())
    assert caught.value.where == "/rsm:CITESEPermit/rsm:HeaderExchangedDocument/ram:CopyIndicator"


def test_repetition_the_record_does_not_hold_is_kept_and_written_back():
    root = etree.fromstring(EXAMPLE.with_name("reexport-FR-python.xml").read_bytes())
    product = root.find(".//ram:SpecifiedTradeProduct", NS)
    etree.SubElement(product, f"{{{CITES_RAM_DRAFT}}}ScientificName").text = "Python reticulatus"
    parsed = parse_permit(etree.tostring(root))
    assert [f.xpath for f in parsed.findings] == [
        "/rsm:CITESEPermit/rsm:SpecifiedSupplyChainConsignment/ram:IncludedSupplyChainConsignmentItem"
        "/ram:IncludedSupplyChainTradeLineItem/ram:SpecifiedTradeProduct/ram:ScientificName[2]"
    ]
    assert parsed.findings[0].rule == "MAP-EXTENSION"
    back = render_permit(parsed.record, parsed.profile).root
    names = back.findall(".//ram:SpecifiedTradeProduct/ram:ScientificName", NS)
    assert [n.text for n in names][-1] == "Python reticulatus" and len(names) == 2


def test_other_associated_documents_are_kept_apart():
    data = example_data()
    data["consignment"]["items"][0]["other_documents"] = [{"type_code": "853", "id": "VET-2025-77"}]
    back = parse_permit(to_xml(render_permit(permit_from_data(data)).root)).record.consignment.items[0]
    assert back.origin_permit.type_code.value == "861" and back.last_reexport_certificate.type_code.value == "811"
    assert [d.id.value for d in back.other_documents] == ["VET-2025-77"]


def test_engine_reports_a_document_that_would_not_read_back_as_its_field():
    data = json.loads(json.dumps(dump_record(permit_from_data(example_data()))))
    data["consignment"]["items"][0]["origin_permit"]["type_code"] = "811"  # bypassing the record model
    findings = render(cites_spec(), data, "standard", ignore=("kind",)).findings
    assert [(f.rule, f.field) for f in findings] == [("MAP-SELECTOR", "consignment.items[0].origin_permit")]


def test_not_a_permit_is_refused():
    with pytest.raises(UnknownDocumentError, match="CITESEPermit"):
        parse_permit(b"<invoice><total>3</total></invoice>")
    sps = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples" / "phyto-FR-apples.full.xml"
    with pytest.raises(UnknownDocumentError, match="CITESEPermit"):
        parse_permit(sps.read_bytes())
    empty_v1 = b'<CBFShip xmlns="urn:un:unece:uncefact:data:draft:CBFShip:1"/>'
    with pytest.raises(RecordError, match="kind"):  # a toolkit v1 permit is read; an empty one names no kind
        parse_permit(empty_v1)


def test_hostile_xml_is_refused():
    hostile = b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x "boom">]><CITESEPermit>&x;</CITESEPermit>'
    with pytest.raises(HostileXMLError):
        parse_permit(hostile)


def test_epix_response_without_a_permit_is_refused_clearly():
    wrapper = (
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v2="urn:CitesDataExchange/v2/">'
        b"<soapenv:Body><v2:GetNonFinalCitesCertificateResponse><Composite>false</Composite>"
        b"</v2:GetNonFinalCitesCertificateResponse></soapenv:Body></soapenv:Envelope>"
    )
    with pytest.raises(UnknownDocumentError) as caught:
        parse_permit(wrapper)
    assert "CITESEPermit" in caught.value.message and "Envelope" in caught.value.message


@pytest.mark.interop
def test_parsing_a_tree_leaves_it_unchanged():
    root = etree.fromstring(epix_bytes())
    before = etree.tostring(root)
    parse_permit(root)
    assert etree.tostring(root) == before


V1_EXAMPLE = PROJECT_ROOT / "mappings" / "CBFShip" / "1" / "examples" / "reexport-FR-python.xml"


def test_a_toolkit_v1_permit_reads_into_the_same_record_as_its_v2_form_and_writes_back_whole():
    v1 = parse_permit(V1_EXAMPLE.read_bytes())
    v2 = parse_permit((EXAMPLES / "reexport-FR-python.xml").read_bytes())
    assert v1.profile == "v1" and v1.element.tag == "{urn:un:unece:uncefact:data:draft:CBFShip:1}CBFShip"
    assert dump_record(v1.record) == dump_record(v2.record)
    assert compare(v1.element, render_permit(v1.record, "v1").root).share == 1.0
    # The address's country is where v1 puts it, not flattened as in v2.
    rendered = render_permit(v1.record, "v1").root
    assert rendered.find(".//{*}PostalTradeAddress/{*}CountryIdentificationTradeCountry/{*}ID") is not None
    assert rendered.find(".//{*}PostalTradeAddress/{*}CountryID") is None


def test_a_toolkit_v1_permit_inside_an_epix_v1_response_is_read_with_its_unqualified_root():
    permit = etree.fromstring(V1_EXAMPLE.read_bytes())
    bare = etree.Element("CBFShip", nsmap=permit.nsmap)
    bare.extend(list(permit))
    envelope = etree.Element("{http://schemas.xmlsoap.org/soap/envelope/}Envelope")
    body = etree.SubElement(envelope, "{http://schemas.xmlsoap.org/soap/envelope/}Body")
    etree.SubElement(body, "{urn:CitesDataExchange/v1/}GetFinalCitesCertificateResponse").append(bare)
    parsed = parse_permit(etree.tostring(envelope))
    assert (parsed.profile, parsed.response, parsed.wrappers) == ("v1-epix", "GetFinalCitesCertificateResponse", ("Envelope",))
    assert render_permit(parsed.record, "v1-epix").root.tag == "CBFShip"
