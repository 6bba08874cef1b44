"""Our XSD profiles accept the real documents and refuse broken ones at the right place; the IPPC Hub's own WSDL
schemas compile and judge documents written in the Hub profile's order."""

from __future__ import annotations

from copy import deepcopy

import pytest
from lxml import etree

from hub.errors import ConfigurationError
from hub.namespaces import RAM, RSM_SPS_CERTIFICATE
from hub.report import Area, Severity
from hub.validation.schemas import SCHEMA_FILES, XSD_DIR, load_schema, schema_findings, schema_from_wsdl
from hub.xmlsafe import parse_xml
from tests.support.standards import standard_file

EPHYTO_SAMPLE = "samples/ephyto/NO-ephyto-SPSCertificate.xml"
TRACES_SAMPLES = (
    "samples/traces/CreateAndSubmitChedForDecision-0101-Horse.xml",
    "samples/traces/CreateAndSubmitChedForDecision-01061900-Rats.xml",
)
HUB_WSDLS = ("ephyto-hub/ephyto-prod.wsdl", "ephyto-hub/ephyto-uat.wsdl", "ephyto-hub/ephyto-2022.wsdl")
NS = {"rsm": RSM_SPS_CERTIFICATE, "ram": RAM}
SPS_CERTIFICATE = f"{{{RSM_SPS_CERTIFICATE}}}SPSCertificate"

# A minimal ePhyto in the IPPC Hub profile's sibling order. UtilizedSPSTransportEquipment/ID and AffixedSPSSeal/ID
# are unqualified because the Hub's profile declares them so.
HUB_ORDERED_EPHYTO = """\
<rsm:SPSCertificate xmlns:rsm="urn:un:unece:uncefact:data:standard:SPSCertificate:17"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21">
  <rsm:SPSExchangedDocument>
    <ram:Name>Phytosanitary Certificate</ram:Name>
    <ram:ID>FR-2026-000123</ram:ID>
    <ram:TypeCode>851</ram:TypeCode>
    <ram:StatusCode>70</ram:StatusCode>
    <ram:IssueDateTime><udt:DateTimeString>2026-11-20T10:00:00+01:00</udt:DateTimeString></ram:IssueDateTime>
    <ram:IssuerSPSParty><ram:Name>Ministère de l'Agriculture</ram:Name></ram:IssuerSPSParty>
    <ram:IncludedSPSNote><ram:Subject>ADEDL</ram:Subject><ram:Content languageID="en">Free from Erwinia amylovora.</ram:Content></ram:IncludedSPSNote>
    <ram:SignatorySPSAuthentication>
      <ram:ActualDateTime><udt:DateTimeString>2026-11-20T10:00:00+01:00</udt:DateTimeString></ram:ActualDateTime>
      <ram:IssueSPSLocation><ram:Name>Angers</ram:Name></ram:IssueSPSLocation>
      <ram:ProviderSPSParty>
        <ram:Name>SRAL Pays de la Loire</ram:Name>
        <ram:SpecifiedSPSPerson><ram:Name>Jeanne Martin</ram:Name></ram:SpecifiedSPSPerson>
      </ram:ProviderSPSParty>
      <ram:IncludedSPSClause><ram:ID>1</ram:ID><ram:Content>Inspected and found free of quarantine pests.</ram:Content></ram:IncludedSPSClause>
    </ram:SignatorySPSAuthentication>
  </rsm:SPSExchangedDocument>
  <rsm:SPSConsignment>
    <ram:ConsignorSPSParty>
      <ram:Name>Vergers de Loire</ram:Name>
      <ram:SpecifiedSPSAddress><ram:LineOne>1 rue des Pommiers, Angers</ram:LineOne></ram:SpecifiedSPSAddress>
    </ram:ConsignorSPSParty>
    <ram:ConsigneeSPSParty><ram:Name>Fruits du Québec</ram:Name></ram:ConsigneeSPSParty>
    <ram:ExportSPSCountry><ram:ID>FR</ram:ID></ram:ExportSPSCountry>
    <ram:ImportSPSCountry><ram:ID>CA</ram:ID></ram:ImportSPSCountry>
    <ram:UnloadingBaseportSPSLocation><ram:Name>Montréal</ram:Name></ram:UnloadingBaseportSPSLocation>
    <ram:MainCarriageSPSTransportMovement>
      <ram:ModeCode>1</ram:ModeCode>
      <ram:UsedSPSTransportMeans><ram:Name>MSC Aurora</ram:Name></ram:UsedSPSTransportMeans>
    </ram:MainCarriageSPSTransportMovement>
    <ram:UtilizedSPSTransportEquipment><ID>MSCU1234567</ID><ram:AffixedSPSSeal><ID>SEAL-42</ID></ram:AffixedSPSSeal></ram:UtilizedSPSTransportEquipment>
    <ram:IncludedSPSConsignmentItem>
      <ram:IncludedSPSTradeLineItem>
        <ram:SequenceNumeric>1</ram:SequenceNumeric>
        <ram:Description languageID="en">Fresh apples</ram:Description>
        <ram:ScientificName>Malus domestica</ram:ScientificName>
        <ram:NetWeightMeasure unitCode="KGM">12000</ram:NetWeightMeasure>
        <ram:PhysicalSPSPackage><ram:LevelCode>1</ram:LevelCode><ram:TypeCode>CT</ram:TypeCode><ram:ItemQuantity>800</ram:ItemQuantity></ram:PhysicalSPSPackage>
        <ram:OriginSPSCountry><ram:ID>FR</ram:ID></ram:OriginSPSCountry>
      </ram:IncludedSPSTradeLineItem>
    </ram:IncludedSPSConsignmentItem>
  </rsm:SPSConsignment>
</rsm:SPSCertificate>
"""

SIGNATURE = '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/><ds:SignatureValue>AA==</ds:SignatureValue></ds:Signature>'

HUB_ENVELOPE = """\
<Envelope xmlns="http://ephyto.ippc.int/HUB.Entities">
  <From>FR</From>
  <To>CA</To>
  <CertificateType>851</CertificateType>
  <CertificateStatus>70</CertificateStatus>
  <NPPOCertificateNumber>FR-2026-000123</NPPOCertificateNumber>
  <hubDeliveryNumber>7f0c1c2e-hub-0001</hubDeliveryNumber>
  <HUBTrackingInfo>PendingDelivery</HUBTrackingInfo>
  <Forwardings><EnvelopeForwarding><Code>CA</Code></EnvelopeForwarding></Forwardings>
  <Content>&lt;rsm:SPSCertificate xmlns:rsm="urn:un:unece:uncefact:data:standard:SPSCertificate:17"/&gt;</Content>
</Envelope>
"""


def edit(old: str, new: str, document: str = HUB_ORDERED_EPHYTO) -> etree._Element:
    """``document`` with ``old`` (which must occur) replaced by ``new``, parsed."""
    assert old in document, f"test fixture does not contain {old!r}"
    return parse_xml(document.replace(old, new, 1).encode())


def certificate_in(relative: str) -> etree._Element:
    """The rsm:SPSCertificate element of a real sample (the root, or inside a SOAP envelope)."""
    root = parse_xml(standard_file(relative).read_bytes(), source=relative)
    found = next(root.iter(SPS_CERTIFICATE), None)
    assert found is not None, f"no rsm:SPSCertificate in {relative}"
    return found


def xpaths(findings) -> list[str]:
    return [f.xpath for f in findings]


# --- our schemas ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_our_schemas_compile_once(name):
    assert isinstance(load_schema(name), etree.XMLSchema)
    assert load_schema(name) is load_schema(name)


def test_unknown_schema_name_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="unknown schema 'CITESEPermit'"):
        load_schema("CITESEPermit")


def test_our_schema_files_import_each_other_locally():
    for path in XSD_DIR.rglob("*.xsd"):
        for location in etree.parse(str(path)).xpath("//@schemaLocation"):
            assert "://" not in location and (path.parent / location).is_file(), f"{path.name}: {location}"


@pytest.mark.interop
@pytest.mark.parametrize("relative", (EPHYTO_SAMPLE, *TRACES_SAMPLES))
def test_real_samples_validate_against_our_profile(relative, standards):
    findings = schema_findings(load_schema("SPSCertificate"), certificate_in(relative))
    assert findings == [], "\n".join(f"{f.line} {f.xpath}: {f.message_en}" for f in findings)


@pytest.mark.interop
def test_traces_certificate_is_validated_inside_its_soap_envelope(standards):
    certificate = certificate_in(TRACES_SAMPLES[0])
    assert certificate.getparent() is not None  # really embedded in the SOAP body
    sequence = certificate.find(".//ram:IncludedSPSTradeLineItem/ram:SequenceNumeric", NS)
    sequence.text = "abc"
    [finding] = schema_findings(load_schema("SPSCertificate"), certificate)
    assert finding.xpath == (
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:IncludedSPSConsignmentItem/ram:IncludedSPSTradeLineItem/ram:SequenceNumeric"
    )
    assert finding.line == sequence.sourceline > certificate.sourceline  # the line in the SOAP file
    assert "'abc'" in finding.message_en and "xs:integer" in finding.message_en


@pytest.mark.interop
def test_real_sample_prefixes_become_rsm_ram_with_positions(standards):
    certificate = deepcopy(certificate_in(EPHYTO_SAMPLE))  # written with ns0/ns1/ns2 prefixes
    second_line = certificate.findall(".//ram:IncludedSPSTradeLineItem", NS)[1]
    etree.SubElement(second_line, f"{{{RAM}}}GrossWeightMeasure", unitCode="KGM").text = "heavy"
    [finding] = schema_findings(load_schema("SPSCertificate"), certificate)
    assert finding.xpath == (
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:IncludedSPSConsignmentItem"
        "/ram:IncludedSPSTradeLineItem[2]/ram:GrossWeightMeasure"
    )


def test_hub_ordered_minimal_document_validates_against_our_profile():
    assert schema_findings(load_schema("SPSCertificate"), parse_xml(HUB_ORDERED_EPHYTO.encode())) == []


def test_sibling_order_is_not_enforced():
    swapped = edit(
        "<ram:ModeCode>1</ram:ModeCode>\n      <ram:UsedSPSTransportMeans><ram:Name>MSC Aurora</ram:Name></ram:UsedSPSTransportMeans>",
        "<ram:UsedSPSTransportMeans><ram:Name>MSC Aurora</ram:Name></ram:UsedSPSTransportMeans><ram:ID/><ram:ModeCode>1</ram:ModeCode>",
    )
    assert schema_findings(load_schema("SPSCertificate"), swapped) == []


def test_empty_texts_and_bare_dates_are_accepted():
    document = edit(
        "<ram:Name>Phytosanitary Certificate</ram:Name>",
        "<ram:Name/><ram:ReferenceSPSReferencedDocument><ram:IssueDateTime>2021-09-10</ram:IssueDateTime>"
        "<ram:TypeCode/><ram:ID/></ram:ReferenceSPSReferencedDocument>",
    )
    document.find(".//ram:ActualDateTime/*", NS).text = None
    assert schema_findings(load_schema("SPSCertificate"), document) == []


def test_enveloped_signature_is_accepted_after_the_consignment():
    signed = edit("</rsm:SPSConsignment>", "</rsm:SPSConsignment>" + SIGNATURE)
    assert schema_findings(load_schema("SPSCertificate"), signed) == []


def test_wrong_element_name_is_refused_where_it_stands():
    document = edit("ConsigneeSPSParty><ram:Name>Fruits du Québec</ram:Name></ram:ConsigneeSPSParty",
                    "ConsigneeParty><ram:Name>Fruits du Québec</ram:Name></ram:ConsigneeParty")
    line = HUB_ORDERED_EPHYTO[: HUB_ORDERED_EPHYTO.index("<ram:ConsigneeSPSParty>")].count("\n") + 1
    [finding] = schema_findings(load_schema("SPSCertificate"), document)
    assert finding.xpath == "/rsm:SPSCertificate/rsm:SPSConsignment/ram:ConsigneeParty"
    assert finding.message_en.startswith("Element 'ram:ConsigneeParty': This element is not expected.")
    assert (finding.rule, finding.severity, finding.area) == ("XSD", Severity.SEVERE, Area.SCHEMA)
    assert finding.line == line
    assert finding.message_fr.startswith("Non conforme au schéma : Élément 'ram:ConsigneeParty': Cet élément n'est pas attendu.")


def test_element_in_the_wrong_namespace_is_refused():
    document = edit("<ram:ID>FR-2026-000123</ram:ID>", "<rsm:ID>FR-2026-000123</rsm:ID>")
    [finding] = schema_findings(load_schema("SPSCertificate"), document)
    assert finding.xpath == "/rsm:SPSCertificate/rsm:SPSExchangedDocument/rsm:ID"
    assert "rsm:ID" in finding.message_en and "{urn:" not in finding.message_en


@pytest.mark.parametrize(
    ("old", "new", "xpath", "expected"),
    [
        ("<ram:SequenceNumeric>1</ram:SequenceNumeric>", "<ram:SequenceNumeric>abc</ram:SequenceNumeric>",
         "ram:IncludedSPSTradeLineItem/ram:SequenceNumeric", "'abc' is not a valid value of the atomic type 'xs:integer'"),
        ('unitCode="KGM">12000<', 'unitCode="KGM">heavy<',
         "ram:IncludedSPSTradeLineItem/ram:NetWeightMeasure", "'heavy' is not a valid value"),
        ('unitCode="KGM">12000<', 'unitCode="KGM"><',
         "ram:IncludedSPSTradeLineItem/ram:NetWeightMeasure", "'' is not a valid value"),
        ("<ram:ItemQuantity>800<", "<ram:ItemQuantity>many<",
         "ram:IncludedSPSTradeLineItem/ram:PhysicalSPSPackage/ram:ItemQuantity", "'many' is not a valid value"),
    ],
    ids=["sequence-not-integer", "measure-not-number", "empty-measure", "quantity-not-number"],
)
def test_non_numbers_are_refused_where_a_number_is_required(old, new, xpath, expected):
    [finding] = schema_findings(load_schema("SPSCertificate"), edit(old, new))
    assert finding.xpath == f"/rsm:SPSCertificate/rsm:SPSConsignment/ram:IncludedSPSConsignmentItem/{xpath}"
    assert expected in finding.message_en


def test_missing_consignment_is_reported_on_the_root():
    start = HUB_ORDERED_EPHYTO.index("  <rsm:SPSConsignment>")
    end = HUB_ORDERED_EPHYTO.index("</rsm:SPSConsignment>") + len("</rsm:SPSConsignment>")
    document = parse_xml((HUB_ORDERED_EPHYTO[:start] + HUB_ORDERED_EPHYTO[end:]).encode())
    [finding] = schema_findings(load_schema("SPSCertificate"), document)
    assert finding.xpath == "/rsm:SPSCertificate"
    assert "Missing child element(s). Expected is ( rsm:SPSConsignment )" in finding.message_en
    assert "Élément(s) enfant(s) manquant(s)" in finding.message_fr


def test_unknown_attribute_points_at_the_attribute():
    [finding] = schema_findings(load_schema("SPSCertificate"), edit('<ram:ModeCode>', '<ram:ModeCode colour="blue">'))
    assert finding.xpath == "/rsm:SPSCertificate/rsm:SPSConsignment/ram:MainCarriageSPSTransportMovement/ram:ModeCode/@colour"


def test_every_error_is_a_finding():
    document = edit("<ram:SequenceNumeric>1</ram:SequenceNumeric>", "<ram:SequenceNumeric>x</ram:SequenceNumeric>")
    document.find(".//ram:ExportSPSCountry", NS).append(etree.Element(f"{{{RAM}}}Colour"))
    assert xpaths(schema_findings(load_schema("SPSCertificate"), document)) == [
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:ExportSPSCountry/ram:Colour",
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:IncludedSPSConsignmentItem/ram:IncludedSPSTradeLineItem/ram:SequenceNumeric",
    ]


def test_other_elements_after_the_consignment_are_refused():
    document = edit("</rsm:SPSConsignment>", "</rsm:SPSConsignment><rsm:Extra/>")
    assert xpaths(schema_findings(load_schema("SPSCertificate"), document)) == ["/rsm:SPSCertificate/rsm:Extra"]


def test_acknowledgement_profile():
    ack = """<rsm:SPSAcknowledgement xmlns:rsm="urn:un:unece:uncefact:data:standard:SPSAcknowledgement:17"
        xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
        xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21">
      <rsm:SPSAcknowledgementDocument>
        <ram:StatusCode>39</ram:StatusCode>
        <ram:IssueDateTime><udt:DateTime>2026-11-21T08:00:00Z</udt:DateTime></ram:IssueDateTime>
        <ram:ReasonInformation languageID="fr">Accepté</ram:ReasonInformation>
        <ram:ReferenceSPSReferencedDocument><ram:TypeCode>851</ram:TypeCode><ram:ID>FR-2026-000123</ram:ID></ram:ReferenceSPSReferencedDocument>
      </rsm:SPSAcknowledgementDocument>
    </rsm:SPSAcknowledgement>"""
    schema = load_schema("SPSAcknowledgement")
    assert schema_findings(schema, parse_xml(ack.encode())) == []
    [finding] = schema_findings(schema, parse_xml(ack.replace("2026-11-21T08:00:00Z", "yesterday").encode()))
    assert finding.xpath == "/rsm:SPSAcknowledgement/rsm:SPSAcknowledgementDocument/ram:IssueDateTime/udt:DateTime"
    assert "xs:dateTime" in finding.message_en


# --- the IPPC Hub's own schemas, from its WSDLs ----------------------------------------------------------------------


@pytest.mark.interop
@pytest.mark.parametrize("relative", HUB_WSDLS)
def test_hub_wsdl_schema_compiles_and_accepts_a_hub_ordered_ephyto(relative, standards):
    schema = schema_from_wsdl(standard_file(relative))
    assert schema is schema_from_wsdl(str(standard_file(relative)))
    assert schema_findings(schema, parse_xml(HUB_ORDERED_EPHYTO.encode())) == []


@pytest.mark.interop
@pytest.mark.parametrize("relative", HUB_WSDLS)
def test_hub_wsdl_schema_refuses_an_out_of_order_ephyto(relative, standards):
    swapped = edit("<ram:TypeCode>851</ram:TypeCode>\n    <ram:StatusCode>70</ram:StatusCode>",
                   "<ram:StatusCode>70</ram:StatusCode>\n    <ram:TypeCode>851</ram:TypeCode>")
    assert schema_findings(load_schema("SPSCertificate"), swapped) == []  # our profile does not enforce order
    [finding] = schema_findings(schema_from_wsdl(standard_file(relative)), swapped)
    assert finding.xpath == "/rsm:SPSCertificate/rsm:SPSExchangedDocument/ram:StatusCode"
    assert "Expected is ( ram:TypeCode )" in finding.message_en


@pytest.mark.interop
def test_hub_schema_wants_unqualified_seal_ids_and_has_no_room_for_a_signature(standards):
    schema = schema_from_wsdl(standard_file(HUB_WSDLS[0]))
    qualified = edit("<ID>SEAL-42</ID>", "<ram:ID>SEAL-42</ram:ID>")
    assert xpaths(schema_findings(schema, qualified)) == [
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:UtilizedSPSTransportEquipment/ram:AffixedSPSSeal/ram:ID"
    ]
    assert schema_findings(load_schema("SPSCertificate"), qualified) == []  # ours takes both forms
    signed = edit("</rsm:SPSConsignment>", "</rsm:SPSConsignment>" + SIGNATURE)
    assert xpaths(schema_findings(schema, signed)) == ["/rsm:SPSCertificate/ds:Signature"]


@pytest.mark.interop
def test_hub_schema_refuses_the_real_ephyto_sample_where_it_leaves_the_hub_profile(standards):
    findings = schema_findings(schema_from_wsdl(standard_file(HUB_WSDLS[0])), certificate_in(EPHYTO_SAMPLE))
    assert xpaths(findings) == [
        "/rsm:SPSCertificate/rsm:SPSExchangedDocument/ram:SignatorySPSAuthentication/ram:IssueSPSLocation/ram:ID",
        "/rsm:SPSCertificate/rsm:SPSExchangedDocument/ram:ReferenceSPSReferencedDocument[1]",
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:ConsignorSPSParty",
    ]


@pytest.mark.interop
@pytest.mark.parametrize("relative", TRACES_SAMPLES)
def test_hub_schema_refuses_the_traces_samples_at_their_full_ram_extras(relative, standards):
    findings = schema_findings(schema_from_wsdl(standard_file(HUB_WSDLS[0])), certificate_in(relative))
    assert xpaths(findings) == [
        "/rsm:SPSCertificate/rsm:SPSExchangedDocument/ram:Description",
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:AvailabilityDueDateTime",
    ]


def test_wsdl_schemas_sharing_a_namespace_are_all_compiled(tmp_path):
    wsdl = tmp_path / "split.wsdl"
    wsdl.write_text("""<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:xs="http://www.w3.org/2001/XMLSchema"
        xmlns:a="urn:test:a" xmlns:b="urn:test:b"><wsdl:types>
      <xs:schema targetNamespace="urn:test:a" elementFormDefault="qualified"><xs:import namespace="urn:test:b"/>
        <xs:element name="Order"><xs:complexType><xs:sequence><xs:element ref="a:Line"/><xs:element ref="b:Total"/></xs:sequence></xs:complexType></xs:element>
      </xs:schema>
      <xs:schema targetNamespace="urn:test:a"><xs:element name="Line" type="xs:string"/></xs:schema>
      <xs:schema targetNamespace="urn:test:b"><xs:element name="Total" type="xs:int"/></xs:schema>
    </wsdl:types></wsdl:definitions>""")
    schema = schema_from_wsdl(wsdl)
    order = '<a:Order xmlns:a="urn:test:a" xmlns:b="urn:test:b"><a:Line>x</a:Line><b:Total>{}</b:Total></a:Order>'
    assert schema_findings(schema, parse_xml(order.format(3).encode())) == []
    assert xpaths(schema_findings(schema, parse_xml(order.format("three").encode()))) == ["/a:Order/b:Total"]


def test_wsdl_without_schemas_is_a_configuration_error(tmp_path):
    wsdl = tmp_path / "empty.wsdl"
    wsdl.write_bytes(b'<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"><wsdl:types/></wsdl:definitions>')
    with pytest.raises(ConfigurationError, match="no xs:schema"):
        schema_from_wsdl(wsdl)


# --- the Hub envelope ------------------------------------------------------------------------------------------------


def test_hand_written_hub_envelope_validates_against_our_envelope_schema():
    assert schema_findings(load_schema("HubEnvelope"), parse_xml(HUB_ENVELOPE.encode())) == []


def test_envelope_header_validates_standalone():
    header = HUB_ENVELOPE.replace("Envelope xmlns", "EnvelopeHeader xmlns").replace("</Envelope>", "</EnvelopeHeader>")
    header = header[: header.index("  <Content>")] + header[header.index("</EnvelopeHeader>"):]
    assert schema_findings(load_schema("HubEnvelope"), parse_xml(header.encode())) == []


@pytest.mark.parametrize(
    ("old", "new", "xpath"),
    [
        ("PendingDelivery", "Lost", "/*[local-name()='Envelope']/*[local-name()='HUBTrackingInfo']"),
        ("<CertificateType>851", "<CertificateType>phyto", "/*[local-name()='Envelope']/*[local-name()='CertificateType']"),
        ("  <NPPOCertificateNumber>FR-2026-000123</NPPOCertificateNumber>\n", "", "/*[local-name()='Envelope']/*[local-name()='hubDeliveryNumber']"),
    ],
    ids=["tracking-info-not-in-enumeration", "certificate-type-not-int", "certificate-number-missing"],
)
def test_broken_hub_envelope_is_refused(old, new, xpath):
    [finding] = schema_findings(load_schema("HubEnvelope"), edit(old, new, HUB_ENVELOPE))
    assert finding.xpath == xpath


@pytest.mark.interop
def test_our_envelope_is_what_the_real_hub_schema_accepts(standards):
    envelope = parse_xml(HUB_ENVELOPE.encode())
    assert schema_findings(schema_from_wsdl(standard_file(HUB_WSDLS[0])), envelope) == []


def test_each_thread_validates_with_its_own_compiled_schema():
    """lxml keeps a schema's error log on the schema object: threads sharing one would read each other's errors."""
    import threading

    from hub.validation.schemas import load_schema

    seen = []
    thread = threading.Thread(target=lambda: seen.append(load_schema("SPSCertificate")))
    thread.start()
    thread.join()
    assert load_schema("SPSCertificate") is load_schema("SPSCertificate")
    assert seen[0] is not load_schema("SPSCertificate")
