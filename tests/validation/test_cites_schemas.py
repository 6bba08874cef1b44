"""The CITES ePermit (toolkit v2, CITESEPermit 2) profile accepts the real EPIX permit in both root forms and refuses
broken ones at the right place; the hand-written CITES code lists hold what the real permit uses; none of our
schemas or code lists is a copy of a standards file."""

from __future__ import annotations

import hashlib
import json
from copy import deepcopy
from pathlib import Path

import pytest
from lxml import etree

from hub.namespaces import CITES_EPERMIT, CITES_RAM_DRAFT
from hub.standards import PROJECT_ROOT
from hub.codelists import (
    CITES_CODE_LIST_DIR,
    CodeList,
    UnknownCodeError,
    UnknownCodeListError,
    available_cites_lists,
    available_lists,
    load_cites_code_list,
    load_code_list,
)
from hub.report import Area, Severity
from hub.validation.schemas import (
    CITES_PERMIT_ROOT,
    EPIX_CITES_PERMIT_ROOT,
    SCHEMA_FILES,
    XSD_DIR,
    cites_permit_findings,
    load_schema,
    schema_findings,
)
from hub.xmlsafe import parse_xml
from tests.support.standards import standard_file

EPIX_SAMPLE = "samples/cites/epix-v2-GetNonFinalCitesCertificateResponse.xml"
EPIX_V2 = "urn:CitesDataExchange/v2/"
NS = {"rsm": CITES_EPERMIT, "ram": CITES_RAM_DRAFT}
CITES_LISTS = ("CITESAppendix", "CITESPermitType", "CITESPurpose", "CITESSource", "CITESTerm", "EUAnnex")
SIGNATURE = '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/><ds:SignatureValue>AA==</ds:SignatureValue></ds:Signature>'


def permit_in_envelope() -> etree._Element:
    """The un-namespaced CITESEPermit element of the real EPIX response, still inside its SOAP envelope."""
    envelope = parse_xml(standard_file(EPIX_SAMPLE).read_bytes(), source=EPIX_SAMPLE)
    response = envelope.find(f".//{{{EPIX_V2}}}GetNonFinalCitesCertificateResponse")
    assert response is not None, f"no GetNonFinalCitesCertificateResponse in {EPIX_SAMPLE}"
    permit = response.find(EPIX_CITES_PERMIT_ROOT)
    assert permit is not None, f"no un-namespaced CITESEPermit in {EPIX_SAMPLE}"
    return permit


def extracted_permit() -> etree._Element:
    """The EPIX permit taken out of its SOAP wrapper: a document of its own whose root has no namespace."""
    return parse_xml(etree.tostring(permit_in_envelope()))


def rerooted(permit: etree._Element) -> etree._Element:
    """A copy of ``permit`` whose root is ``rsm:CITESEPermit``, as the hub renders it; the children are unchanged."""
    root = etree.Element(CITES_PERMIT_ROOT, nsmap={"rsm": CITES_EPERMIT, "ram": CITES_RAM_DRAFT})
    root.extend(deepcopy(child) for child in permit)
    return root


def only(findings):
    assert len(findings) == 1, "\n".join(f"{f.xpath}: {f.message_en}" for f in findings)
    return findings[0]


def describe(findings) -> str:
    return "\n".join(f"{f.line} {f.xpath}: {f.message_en}" for f in findings)


# --- the schemas -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CITESEPermit2", "CITESEPermit2EPIX"])
def test_cites_schemas_are_registered_and_compiled_once(name):
    assert name in SCHEMA_FILES and (XSD_DIR / SCHEMA_FILES[name]).is_file()
    assert isinstance(load_schema(name), etree.XMLSchema)
    assert load_schema(name) is load_schema(name)


def test_profile_declares_the_structure_facts_section_4_names():
    """Every element FACTS.md §4 names for the v2 structure and the permit-box mapping is declared in our files."""
    declared = {
        element.get("name")
        for path in (XSD_DIR / "CITESEPermit_2p0.xsd", XSD_DIR / "ReusableAggregateBusinessInformationEntity_draft1_profile.xsd")
        for element in etree.parse(str(path)).iter("{http://www.w3.org/2001/XMLSchema}element")
    }
    facts = """SpecifiedExchangedDocumentContext BusinessProcessSpecifiedDocumentContextParameter Value
        SpecifiedDocumentVersion BIMSpecifiedDocumentContextParameter HeaderExchangedDocument ID Name TypeCode
        IssueDateTime CopyIndicator Purpose PurposeCode Information ReferenceReferencedDocument EffectiveSpecifiedPeriod
        StartDateTime EndDateTime IssueLogisticsLocation FirstSignatoryDocumentAuthentication
        SecondSignatoryDocumentAuthentication ThirdSignatoryDocumentAuthentication FourthSignatoryDocumentAuthentication
        ProviderTradeParty SpecifiedSupplyChainConsignment ConsignorTradeParty ConsigneeTradeParty
        TransportContractReferencedDocument ExaminationTransportEvent IncludedSupplyChainConsignmentItem
        PhysicalLogisticsShippingMarks OriginTradeCountry ExportTradeCountry AssociatedReferencedDocument
        TransportLogisticsPackage ItemQuantity IncludedSupplyChainTradeLineItem TypeExtensionCode SpecifiedTradeProduct
        ScientificName CommonName Description ApplicableCrossBorderRegulatoryProcedure CategoryCode
        UsedToDateQuotaQuantity AnnualQuotaQuantity AcquisitionDateTime PreviousReferencedDocument PostalTradeAddress
        CountryID CountryName ActualOccurrenceDateTime OccurrenceLogisticsLocation UnitQuantity""".split()
    assert set(facts) - declared == set()
    # v1 (CBFShip) names are not part of v2.
    assert not {"CountryIdentificationTradeCountry", "ApplicableCrossBorderGovernmentProcedure"} & declared


# --- the real EPIX permit ----------------------------------------------------------------------------------------------


@pytest.mark.interop
def test_real_epix_permit_extracted_from_its_soap_wrapper_validates(standards):
    permit = extracted_permit()
    assert permit.tag == "CITESEPermit" and permit.getparent() is None  # no namespace on the root, as EPIX writes it
    assert {child.tag for child in permit} == {
        f"{{{CITES_EPERMIT}}}SpecifiedExchangedDocumentContext",
        f"{{{CITES_EPERMIT}}}HeaderExchangedDocument",
        f"{{{CITES_EPERMIT}}}SpecifiedSupplyChainConsignment",
    }
    findings = cites_permit_findings(permit)
    assert findings == [], describe(findings)
    assert cites_permit_findings(permit.getroottree()) == []


@pytest.mark.interop
def test_real_epix_permit_validates_inside_its_soap_envelope(standards):
    permit = permit_in_envelope()
    assert permit.getparent() is not None
    findings = cites_permit_findings(permit)
    assert findings == [], describe(findings)


@pytest.mark.interop
def test_same_permit_rerooted_in_the_namespace_validates(standards):
    permit = rerooted(permit_in_envelope())
    assert permit.tag == f"{{{CITES_EPERMIT}}}CITESEPermit"
    assert cites_permit_findings(permit) == []
    assert schema_findings(load_schema("CITESEPermit2"), permit) == []  # the strict schema the hub's output meets
    assert schema_findings(load_schema("CITESEPermit2EPIX"), permit) == []  # the EPIX schema knows both roots


@pytest.mark.interop
def test_strict_schema_knows_only_the_namespaced_root(standards):
    finding = only(schema_findings(load_schema("CITESEPermit2"), extracted_permit()))
    assert finding.xpath == "/CITESEPermit"
    assert "No matching global declaration available for the validation root." in finding.message_en


def test_a_root_that_is_no_permit_is_reported_on_the_root():
    finding = only(cites_permit_findings(parse_xml(b'<CBFShip xmlns="urn:un:unece:uncefact:data:draft:CBFShip:1"/>')))
    assert finding.xpath == "/*[local-name()='CBFShip']"
    assert "No matching global declaration" in finding.message_en


# --- broken permits are refused where they break -----------------------------------------------------------------------


@pytest.mark.interop
@pytest.mark.parametrize("form", ["epix", "hub"])
def test_missing_document_context_is_reported_where_it_was_expected(form, standards):
    permit = extracted_permit() if form == "epix" else rerooted(extracted_permit())
    root_name = "/CITESEPermit" if form == "epix" else "/rsm:CITESEPermit"
    permit.remove(permit.find("rsm:SpecifiedExchangedDocumentContext", NS))
    finding = only(cites_permit_findings(permit))
    assert finding.xpath == f"{root_name}/rsm:HeaderExchangedDocument"
    assert "Expected is ( rsm:SpecifiedExchangedDocumentContext )" in finding.message_en
    assert (finding.rule, finding.severity, finding.area) == ("XSD", Severity.SEVERE, Area.SCHEMA)


@pytest.mark.interop
def test_missing_consignment_is_reported_on_the_root(standards):
    permit = extracted_permit()
    permit.remove(permit.find("rsm:SpecifiedSupplyChainConsignment", NS))
    finding = only(cites_permit_findings(permit))
    assert finding.xpath == "/CITESEPermit"
    assert "Missing child element(s). Expected is ( rsm:SpecifiedSupplyChainConsignment )" in finding.message_en


@pytest.mark.interop
def test_unknown_element_is_refused_where_it_stands_with_its_line(standards):
    permit = permit_in_envelope()  # in the SOAP file, so that the line is the file's
    line_item = permit.findall(".//ram:IncludedSupplyChainConsignmentItem", NS)[1].find("ram:IncludedSupplyChainTradeLineItem", NS)
    type_code = line_item.find("ram:TypeCode", NS)
    type_code.addnext(etree.Element(f"{{{CITES_RAM_DRAFT}}}AppendixCode"))
    line_item.find("ram:AppendixCode", NS).tail = type_code.tail
    finding = only(cites_permit_findings(permit))
    assert finding.xpath == (
        "/CITESEPermit/rsm:SpecifiedSupplyChainConsignment/ram:IncludedSupplyChainConsignmentItem[2]"
        "/ram:IncludedSupplyChainTradeLineItem/ram:AppendixCode"
    )
    assert finding.message_en.startswith("Element 'ram:AppendixCode': This element is not expected.")
    assert finding.message_fr.startswith("Non conforme au schéma : Élément 'ram:AppendixCode': Cet élément n'est pas attendu.")


@pytest.mark.interop
def test_element_in_the_wrong_namespace_is_refused(standards):
    permit = extracted_permit()
    header = permit.find("rsm:HeaderExchangedDocument", NS)
    header.find("ram:ID", NS).tag = f"{{{CITES_EPERMIT}}}ID"
    finding = only(cites_permit_findings(permit))
    assert finding.xpath == "/CITESEPermit/rsm:HeaderExchangedDocument/rsm:ID"


@pytest.mark.interop
def test_other_elements_after_the_consignment_are_refused_but_a_signature_is_not(standards):
    permit = rerooted(extracted_permit())
    permit.append(etree.fromstring(SIGNATURE))
    assert cites_permit_findings(permit) == []
    permit.append(etree.Element(f"{{{CITES_EPERMIT}}}Extra"))
    assert [f.xpath for f in cites_permit_findings(permit)] == ["/rsm:CITESEPermit/rsm:Extra"]


@pytest.mark.interop
def test_unknown_attribute_points_at_the_attribute_and_its_line_in_the_soap_file(standards):
    permit = permit_in_envelope()
    purpose_code = permit.find(".//ram:PurposeCode", NS)
    purpose_code.set("colour", "blue")
    finding = only(cites_permit_findings(permit))
    assert finding.xpath == "/CITESEPermit/rsm:HeaderExchangedDocument/ram:PurposeCode/@colour"
    assert finding.line == purpose_code.sourceline > permit.sourceline


# --- values: what the template carries passes, what is wrong does not ---------------------------------------------------


def _header_issue_date(permit: etree._Element) -> etree._Element:
    return permit.find("rsm:HeaderExchangedDocument/ram:IssueDateTime", NS)


@pytest.mark.interop
@pytest.mark.parametrize(
    "value",
    ["2014-01-06T12:03:52.00+01:00", "2014-07-05T12:03:52.000+02:00", "2014-01-06T12:03:52Z", "2014-01-06T12:03:52", "", "  \n "],
    ids=["two-digit-fraction", "three-digit-fraction", "utc", "no-offset", "empty", "whitespace"],
)
def test_date_times_as_epix_writes_them_and_empty_ones_are_accepted(value, standards):
    permit = extracted_permit()
    _header_issue_date(permit).text = value
    assert cites_permit_findings(permit) == []


@pytest.mark.interop
@pytest.mark.parametrize("value", ["yesterday", "2014-01-06", "06/01/2014 12:03", "2014-01-06 12:03:52"])
def test_other_date_times_are_refused(value, standards):
    permit = extracted_permit()
    _header_issue_date(permit).text = value
    finding = only(cites_permit_findings(permit))
    assert finding.xpath == "/CITESEPermit/rsm:HeaderExchangedDocument/ram:IssueDateTime"
    assert "is not a valid value of the union type 'ram:DateTimeType'" in finding.message_en
    assert "n'est pas une valeur valide du type union" in finding.message_fr


@pytest.mark.interop
def test_quantities_may_be_empty_but_not_words(standards):
    permit = extracted_permit()
    quantity = permit.find(".//ram:TransportLogisticsPackage/ram:ItemQuantity", NS)
    assert (quantity.text, quantity.get("unitCode")) == ("5", "PCS")
    quantity.text = ""
    assert cites_permit_findings(permit) == []  # the template's UnitQuantity and quota quantities are empty too
    quantity.text = "five"
    finding = only(cites_permit_findings(permit))
    assert finding.xpath.endswith("/ram:IncludedSupplyChainConsignmentItem[1]/ram:TransportLogisticsPackage/ram:ItemQuantity")


@pytest.mark.interop
def test_copy_indicator_is_a_boolean(standards):
    permit = extracted_permit()
    permit.find(".//ram:CopyIndicator", NS).text = "perhaps"
    finding = only(cites_permit_findings(permit))
    assert finding.xpath == "/CITESEPermit/rsm:HeaderExchangedDocument/ram:CopyIndicator"


@pytest.mark.interop
def test_every_error_is_a_finding(standards):
    permit = extracted_permit()
    _header_issue_date(permit).text = "soon"
    permit.find(".//ram:CopyIndicator", NS).text = "perhaps"
    permit.find(".//ram:ConsignorTradeParty", NS).append(etree.Element(f"{{{CITES_RAM_DRAFT}}}Colour"))
    assert [f.xpath for f in cites_permit_findings(permit)] == [
        "/CITESEPermit/rsm:HeaderExchangedDocument/ram:IssueDateTime",
        "/CITESEPermit/rsm:HeaderExchangedDocument/ram:CopyIndicator",
        "/CITESEPermit/rsm:SpecifiedSupplyChainConsignment/ram:ConsignorTradeParty/ram:Colour",
    ]


# --- code lists ----------------------------------------------------------------------------------------------------------


def test_cites_lists_are_their_own_family():
    assert available_cites_lists() == CITES_LISTS
    assert not set(CITES_LISTS) & set(available_lists())  # the derived UN/CEFACT family is untouched
    with pytest.raises(UnknownCodeListError):
        load_code_list("CITESSource")
    with pytest.raises(UnknownCodeListError) as caught:
        load_cites_code_list("UNCL1001")
    message = str(caught.value)
    assert "'UNCL1001'" in message and "CITESSource" in message and str(CITES_CODE_LIST_DIR) in message


def test_cites_list_ids_cannot_reach_outside_the_folder():
    with pytest.raises(UnknownCodeListError):
        load_cites_code_list("../UNCL1001")


@pytest.mark.parametrize("list_id", CITES_LISTS)
def test_every_cites_list_records_its_provenance(list_id):
    data = json.loads((CITES_CODE_LIST_DIR / f"{list_id}.json").read_text(encoding="utf-8"))
    assert data["list"] == list_id
    assert data["title"] and data["agency"] and data["version"] and data["written_by"] and data["used_in"]
    assert data["source"] and all(isinstance(source, str) and source for source in data["source"])
    code_list = load_cites_code_list(list_id)
    assert isinstance(code_list, CodeList) and load_cites_code_list(list_id) is code_list
    for entry in code_list.codes.values():
        assert entry.name == " ".join(entry.name.split()) and entry.name
        assert not entry.supplement
        assert not (entry.inferred or entry.uncertain) or entry.note, f"{list_id} {entry.code}: say why it is marked"


@pytest.mark.parametrize(
    ("list_id", "codes"),
    [
        ("CITESAppendix", {"I", "II", "III"}),
        ("CITESSource", {"W", "R", "D", "A", "C", "F", "U", "I", "O", "X", "Y"}),
        ("CITESPurpose", {"B", "E", "G", "H", "L", "M", "N", "P", "Q", "S", "T", "Z"}),
        ("CITESPermitType", {"E", "I", "R", "O"}),
        ("EUAnnex", {"A", "B", "C", "D"}),
    ],
)
def test_closed_lists_hold_exactly_their_codes(list_id, codes):
    assert set(load_cites_code_list(list_id)) == codes


@pytest.mark.parametrize(
    ("list_id", "code", "name"),
    [
        ("CITESAppendix", "II", "Appendix II"),
        ("CITESSource", "W", "Wild"),
        ("CITESSource", "D", "Captive-bred or artificially propagated for commercial purposes (Appendix I)"),
        ("CITESSource", "O", "Pre-Convention"),
        ("CITESPurpose", "T", "Commercial"),
        ("CITESPurpose", "Q", "Circus or travelling exhibition"),
        ("CITESPermitType", "R", "Re-export certificate"),
        ("CITESTerm", "LIV", "live"),
        ("CITESTerm", "SKI", "skins"),
        ("CITESTerm", "LPS", "leather products (small)"),
        ("CITESTerm", "LPL", "leather products (large)"),
        ("CITESTerm", "GAR", "garments"),
        ("CITESTerm", "BOD", "bodies"),
        ("CITESTerm", "HOR", "horns"),
        ("CITESTerm", "IVC", "ivory carvings"),
        ("CITESTerm", "TIM", "timber"),
        ("EUAnnex", "A", "Annex A"),
    ],
)
def test_well_known_cites_code(list_id, code, name):
    assert load_cites_code_list(list_id).name_of(code) == name


def test_inferred_and_uncertain_codes_are_marked():
    permit_types = load_cites_code_list("CITESPermitType")
    assert {code for code, entry in permit_types.codes.items() if entry.inferred} == {"E", "I", "R"}
    assert not permit_types.codes["O"].inferred and "O for Other" in permit_types.codes["O"].note
    terms = load_cites_code_list("CITESTerm")
    assert terms.codes["WAT"].uncertain and "LPS" in terms.codes["WAT"].note
    assert not terms.codes["LPS"].uncertain
    assert all(len(code) == 3 and code.isupper() for code in terms)
    assert len(terms) >= 100
    assert "CoP18" in load_cites_code_list("CITESSource").codes["Y"].note


def test_unknown_codes_fail_clearly():
    with pytest.raises(UnknownCodeError, match=r"code 'Y' is not in CITESPurpose \(CITES purpose-of-transaction code"):
        load_cites_code_list("CITESPurpose").name_of("Y")
    with pytest.raises(KeyError, match="'IV' is not in CITESAppendix"):
        load_cites_code_list("CITESAppendix").name_of("IV")
    assert "w" not in load_cites_code_list("CITESSource")  # codes are case-sensitive, as written on permits
    assert 1 not in load_cites_code_list("CITESAppendix")


@pytest.mark.interop
def test_codes_the_real_permit_uses_are_in_the_lists(standards):
    permit = extracted_permit()

    def values(path: str) -> set[str]:
        return {e.text.strip() for e in permit.findall(path, NS) if e.text and e.text.strip()}

    used = {
        "CITESPermitType": values("rsm:HeaderExchangedDocument/ram:TypeCode"),
        "CITESPurpose": values("rsm:HeaderExchangedDocument/ram:PurposeCode"),
        "CITESAppendix": values(".//ram:IncludedSupplyChainTradeLineItem/ram:TypeCode"),
        "CITESSource": values(".//ram:IncludedSupplyChainTradeLineItem/ram:TypeExtensionCode"),
        "CITESTerm": values(".//ram:SpecifiedTradeProduct/ram:TypeCode"),
    }
    assert used == {
        "CITESPermitType": {"R"},
        "CITESPurpose": {"T"},
        "CITESAppendix": {"I", "II"},
        "CITESSource": {"W", "D"},
        "CITESTerm": {"LPS"},
    }
    for list_id, codes in used.items():
        assert codes <= set(load_cites_code_list(list_id)), list_id


# --- written by us, not copied --------------------------------------------------------------------------------------------


def _digests(path: Path) -> tuple[str, str]:
    """The file's SHA-256, and that of its text with all whitespace removed (a re-indented copy is still a copy)."""
    data = path.read_bytes()
    squeezed = b"".join(data.split())
    return hashlib.sha256(data).hexdigest(), hashlib.sha256(squeezed).hexdigest()


@pytest.mark.interop
def test_no_schema_or_code_list_of_ours_is_a_copy_of_a_standards_file(standards):
    theirs: dict[str, Path] = {}
    for path in standards.rglob("*"):
        if path.is_file():
            for digest in _digests(path):
                theirs[digest] = path
    ours = [p for folder in ("xsd", "un_cefact") for p in (PROJECT_ROOT / folder).rglob("*") if p.is_file()]
    assert any(p.name == "CITESEPermit_2p0.xsd" for p in ours) and any(p.parent == CITES_CODE_LIST_DIR for p in ours)
    copies = {str(p.relative_to(PROJECT_ROOT)): str(theirs[d]) for p in ours for d in _digests(p) if d in theirs}
    assert copies == {}
