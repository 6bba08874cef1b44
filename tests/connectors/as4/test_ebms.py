"""The eb:Messaging header read from the 30 real messages of samples/as4, written back, and refused when it lacks
what ebMS3 requires."""

from __future__ import annotations

import copy
import re
from datetime import datetime, timezone

import pytest
from lxml import etree

from connectors.as4 import ns
from connectors.as4.ebms import (
    MAX_ITEMS, Error, MessageInfo, MessagePartNRInformation, Messaging, Party, PartyId, PartInfo, Property,
    PullRequest, Receipt, SignalMessage, UserMessage, kind, new_message_id, read_messaging, utc_now,
)
from connectors.as4.envelope import build_envelope, format_timestamp, non_repudiation_information
from connectors.as4.errors import As4Error, EbmsError
from connectors.as4.packaging import read_packet
from tests.connectors.as4.samples import ALL_SAMPLES, SAMPLES

#: file -> (kind, MessageIds of its UserMessages then its SignalMessages)
EXPECTED = {
    "as4net-as4-encrypted-signed-issuerserial.as4.mime": ("user-message", ("b545c3a0-e57f-46aa-862f-381eb4b70097@CLT-SMOREELS.mshome.net",)),
    "as4net-as4-multihop-message.as4.mime": ("error", ("1e022294-1809-4c9e-b98d-27ef93be5f13@TESTFX",)),
    "as4net-as4-pullrequest-warning.xml": ("error", ("b7346c9d-01a6-4dc1-9fa0-b3aff1d18061@UK:APUK01",)),
    "as4net-as4-soap-signed-pullrequest.xml": ("pull-request", ("5be59681-51f1-4889-86d6-8d38e8294436@10.124.29.152",)),
    "as4net-as4_flame_envelope.as4": ("user-message", ("b495f1e1-ef0f-4da3-a311-0f5ab6ab27a9@mindertestbed.org",)),
    "as4net-c3_minderreceiveagent_request.as4.mime": ("user-message", ("5c40387e-ee08-4626-bf61-ebec68de77a0@mindertestbed.org",)),
    "as4net-rssbus_message.as4.mime": ("user-message", ("Bkw-20180112-110916514-LvB0@Bkw",)),
    "as4net-signed_holodeck_message.as4.mime": ("user-message", ("cdcc838c-96ed-414a-b127-0937f5cd6549@CLT-FGHEYSELS.ad.codit.eu",)),
    "domibus-bst_X509PKIPathv1_incoming_message.xml": ("user-message", ("bb56ec56-c2d8-46ce-b749-a12f49c83588@domibus.eu",)),
    "domibus-is_incoming_message.xml": ("user-message", ("8307d3b0-a40e-4c33-af57-ea4fa17f6ca0@domibus.eu",)),
    "domibus-ski_incoming_message.xml": ("user-message", ("73a424e9-4b70-484d-8122-1aaedca6ffdf@domibus.eu",)),
    "jentrata-simple-as4-user-message.txt.mime": ("user-message", ("2011-921@5209999001264.jentrata.org",)),
    "oasis-UserMessage_No_MPC_P2P_NoWSSecurity.as4receipt.xml": ("receipt", ("someuniqueid@receiver.example.com",)),
    "oasis-UserMessage_No_MPC_P2P_WSSecurity.as4receipt.xml": ("receipt", ("someuniqueid@receiver.example.com",)),
    "oasis-UserMessage_No_MPC_P2P_WSSecurity.xml": ("user-message", ("orders123@buyer.example.com",)),
    "oxalis-eDeliveryAS4-example.xml": ("user-message", ("8196c8e2-820f-4aec-a1ca-288a4d1d4020@seller.eu",)),
    "phase4-BundledMessage.xml": ("bundle", ("UUID-1@requester.example.com", "UUID-2@receiver.example.com", "UUID-2@initiator.example.com")),
    "phase4-ErrorMessage.xml": ("error", ("UUID-2@receiver.example.com",)),
    "phase4-ErrorMessageWithFault.xml": ("error", ("28a699c5-c7ae-4731-b0b8-ebf3b4bc8477",)),
    "phase4-PullRequest.xml": ("pull-request", ("UUID-2@initiator.example.com",)),
    "phase4-TestReceipt11.xml": ("receipt", ("ph-as4@8e086db6-b26e-4c15-95c5-973f3bedbd96",)),
    "phase4-TestReceipt12.xml": ("receipt", ("d36e26c0-5d4d-4950-ad81-dc620681b5f9@phase4",)),
    "phase4-WrongCompression.mime": ("user-message", ("c42e883b-aab1-47bf-b2f4-4e89ce309591@ph-as4",)),
    "phase4-dataport1-mustunderstand.as4in": ("receipt", ("18acfd2d-1fb6-44dd-a196-a077132cf999@lppapqa002.dpaorinp.de",)),
    "phase4-dataport1.as4in": ("receipt", ("18acfd2d-1fb6-44dd-a196-a077132cf999@lppapqa002.dpaorinp.de",)),
    "phase4-dump-raw.as4out.eml": ("user-message", ("17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4",)),
    "phase4-governikus.as4in": ("receipt", ("03528358-a714-49bc-bce8-9bfabb01fa78@vt-peppol-c3",)),
    "phase4-helger.as4in": ("receipt", ("1384cf77-2de9-4303-a4e7-ca935a20f4fd@phase4",)),
    "phase4-sample_entsog.txt.mime": ("user-message", ("cb114d74-5f5d-47cd-acf1-9cdc017ab669@mindertestbed.org",)),
    "phase4-test-2023-03-15.xml": ("user-message", ("49267c79-d822-45d9-aa91-c57b3ca508db",)),
}
USER_PATH = "/S12:Envelope/S12:Header/eb:Messaging/eb:UserMessage"


@pytest.fixture
def packet(standards):
    return lambda name: read_packet((standards / SAMPLES / name).read_bytes())


def _ids(messaging: Messaging) -> tuple[str, ...]:
    return (tuple(u.info.message_id for u in messaging.user_messages)
            + tuple(s.info.message_id for s in messaging.signal_messages))


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_every_sample_header_is_read(packet, name):
    messaging = read_messaging(packet(name))
    assert (kind(messaging), _ids(messaging)) == EXPECTED[name]
    for user in messaging.user_messages:
        assert user.from_party.party_ids and user.to_party.party_ids and user.service and user.action


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_every_sample_header_round_trips(packet, name):
    """Written again (SOAP version kept) and read back: the same units."""
    original = packet(name)
    messaging = read_messaging(original)
    envelope = build_envelope(*messaging.user_messages, *messaging.signal_messages, soap_version=original.soap_version)
    again = read_messaging(read_packet(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")))
    assert again.user_messages == messaging.user_messages
    assert again.signal_messages == messaging.signal_messages
    assert again.must_understand


def test_peppol_user_message(packet):
    messaging = read_messaging(packet("phase4-dump-raw.as4out.eml"))
    assert messaging.element_id == "phase4-msg-7dd929c7-ded5-4413-be57-d21af2c87b69"
    assert messaging.must_understand and messaging.routing_input is None
    (user,) = messaging.user_messages
    assert user.info == MessageInfo(timestamp=datetime(2026, 1, 29, 15, 39, 3, 805000, tzinfo=timezone.utc),
                                    message_id="17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4")
    assert user.from_party == Party((PartyId("POP000306", "urn:fdc:peppol.eu:2017:identifiers:ap"),), ns.ROLE_INITIATOR)
    assert user.to_party == Party((PartyId("POP000306", "urn:fdc:peppol.eu:2017:identifiers:ap"),), ns.ROLE_RESPONDER)
    assert user.mpc is None
    assert (user.agreement_ref, user.agreement_pmode) == ("urn:fdc:peppol.eu:2017:agreements:tia:ap_provider", None)
    assert (user.service, user.service_type) == ("urn:fdc:peppol.eu:2017:poacc:billing:01:1.0", "cenbii-procid-ubl")
    assert user.action.startswith("busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##")
    assert user.conversation_id == "phase4@Conv-4045816466640743733"
    assert user.properties == (Property("originalSender", "9915:phase4-test-sender", "iso6523-actorid-upis"),
                               Property("finalRecipient", "9915:helger", "iso6523-actorid-upis"))
    assert user.property_value("finalRecipient") == "9915:helger"
    (part,) = user.parts
    assert part.href == "cid:phase4-att-ff0f8ad5-f982-48ba-b8e2-26997600f496@cid"
    assert (part.mime_type, part.compression_type, part.character_set) == ("application/xml", ns.GZIP, None)


def test_holodeck_agreement_pmode_and_parts(packet):
    (user,) = read_messaging(packet("as4net-signed_holodeck_message.as4.mime")).user_messages
    assert (user.agreement_ref, user.agreement_pmode) == ("http://agreements.holodeckb2b.org/examples/agreement0", "8.3.4-pmode")
    assert [p.mime_type for p in user.parts] == ["image/jpeg", "application/xml"]
    assert user.from_party == Party((PartyId("org:holodeckb2b:example:company:A"),), "Sender")


def test_bundle(packet):
    messaging = read_messaging(packet("phase4-BundledMessage.xml"))
    assert kind(messaging) == "bundle"
    assert (len(messaging.signal_messages), len(messaging.user_messages)) == (2, 1)
    errors, pull = messaging.signal_messages
    assert [(e.error_code, e.origin, e.ref_to_message_in_error) for e in errors.errors] == [
        ("EBMS:0001", "ebMS", "UUID-1@sender.example.com"),
        ("EBMS:0101", "Security", "UUID-23@esender.fxample.com"),  # written "0101" in the example
    ]
    assert errors.errors[1].ebms_error is EbmsError.FAILED_AUTHENTICATION
    assert pull.pull_request == PullRequest("http://msh.example.com/mpc123")
    (user,) = messaging.user_messages
    assert user.to_party.party_ids == (PartyId("QRS543", "someType"),)
    assert user.properties[1] == Property("ContextID", "987654321")
    assert user.parts == (PartInfo(href="cid:foo@example.com",
                                   properties=(Property("Description", "Purchase Order for 11 widgets"),
                                               Property("MimeType", "application/xml")),
                                   schema_location="http://registry.example.org/bar.xsd", schema_version="2.0"),)


def test_empty_mpc_warning(packet):
    messaging = read_messaging(packet("as4net-as4-pullrequest-warning.xml"))
    (signal,) = messaging.signal_messages
    (error,) = signal.errors
    assert error.ebms_error is EbmsError.EMPTY_MPC
    assert (error.error_code, error.severity, error.category, error.short_description) == (
        "EBMS:0006", "warning", "Communication", "EmptyMessagePartitionChannel")
    assert error.description == "There is no message available for pulling from this MPC at this moment."
    assert signal.info.ref_to_message_id == "f1113705-f3fa-4f87-930d-3337d518ff7d@11.1.3.12"
    assert messaging.element_id == "header-62500991-114d-493f-b160-b0014dab1010"


def test_pull_requests(packet):
    messaging = read_messaging(packet("phase4-PullRequest.xml"))
    assert messaging.signal_messages[0].pull_request.mpc == "http://msh.example.com/mpc123"
    signed = read_messaging(packet("as4net-as4-soap-signed-pullrequest.xml"))
    assert signed.signal_messages[0].pull_request.mpc == "http://example.holodeckb2b.org/mpc/2"
    assert signed.signal_messages[0].info.timestamp == datetime(2017, 6, 12, 11, 50, 36, 56218, tzinfo=timezone.utc)
    assert not signed.must_understand  # as4.NET left it out


def test_soap11_receipt(packet):
    original = packet("phase4-TestReceipt11.xml")
    assert original.soap_version == "1.1"
    messaging = read_messaging(original)
    assert messaging.must_understand  # S11:mustUnderstand="1"
    (signal,) = messaging.signal_messages
    assert signal.receipt.references == ()
    assert [etree.QName(c).localname for c in signal.receipt.content] == ["Envelope"]  # a copied S11 envelope


def test_receipt_references(packet):
    messaging = read_messaging(packet("phase4-dataport1-mustunderstand.as4in"))
    assert messaging.must_understand  # the prefix is literally "mustUnderstand"
    (signal,) = messaging.signal_messages
    assert signal.info.ref_to_message_id == "669beff6-bf89-4776-9a27-eddece68083d@phase4"
    assert signal.receipt.references[2] == MessagePartNRInformation(
        uri="cid:phase4-att-558f9b48-17d0-43f9-bfb6-e0c9574c26b0@cid", digest_method=ns.SHA256,
        digest_value="wjREvlHuhpOwKFpGkvrcZDRWmeqhIpHtS6IzPcH84OI=", transforms=(ns.SWA_CONTENT_SIGNATURE,))
    assert [r.uri for r in signal.receipt.references[:2]] == ["#phase4-msg-e87d1f6e-705d-49bf-a6de-524d66c9e394",
                                                             "#id-4599d632-a960-4d4d-b395-84feaec90c1a"]


def test_reception_awareness_receipt_holds_the_user_message(packet):
    (signal,) = read_messaging(packet("oasis-UserMessage_No_MPC_P2P_NoWSSecurity.as4receipt.xml")).signal_messages
    (content,) = signal.receipt.content
    assert content.tag == f"{{{ns.EB}}}UserMessage" and signal.receipt.references == ()


def test_error_with_fault(packet):
    (signal,) = read_messaging(packet("phase4-ErrorMessageWithFault.xml")).signal_messages
    (error,) = signal.errors
    assert error == Error(error_code="EBMS:0103", severity="failure", category="Processing", origin="ebMS",
                          short_description="PolicyNoncompliance", ref_to_message_in_error=None,
                          description="Certificate revoked CN=POP000000,OU=PEPPOL TEST AP,O=OpenPEPPOL AISBL,C=BE",
                          description_lang="", detail="java.lang.RuntimeException")
    # 2025-09-25T09:54:32.971659362+02:00: nanoseconds cut to microseconds, converted to UTC.
    assert signal.info.timestamp == datetime(2025, 9, 25, 7, 54, 32, 971659, tzinfo=timezone.utc)


def test_multihop_routing_input(packet, standards):
    messaging = read_messaging(packet("as4net-as4-multihop-message.as4.mime"))
    routed = messaging.routing_input
    assert routed.mpc == ns.DEFAULT_MPC + ".error"
    assert routed.info.message_id == messaging.signal_messages[0].info.ref_to_message_id == "5b09912c-22c5-4424-a21f-d3e9c0b5258a@TESTFX"
    assert routed.from_party == Party((PartyId("UK:UK100", "urn:eu:europa:ec:dgempl:eessi:ir"),), "urn:eu:europa:ec:dgempl:eessi:ir:institution")
    assert routed.parts[0].property_value("PartType") == "SED"
    # The AS4 profile's own namespace for ebint is read as well.
    raw = (standards / SAMPLES / "as4net-as4-multihop-message.as4.mime").read_bytes()
    assert ns.EBINT[1].encode() in raw
    other = read_messaging(read_packet(raw.replace(ns.EBINT[1].encode(), ns.EBINT[0].encode())))
    assert other.routing_input == routed


def test_lenient_values(packet):
    (rssbus,) = read_messaging(packet("as4net-rssbus_message.as4.mime")).user_messages
    assert rssbus.conversation_id == ""  # <eb3:ConversationId />
    (domibus,) = read_messaging(packet("domibus-is_incoming_message.xml")).user_messages
    assert domibus.property_value("originalSender") == "urn:oasis:names:tc:ebcore:partyid-type:unregistered:C1"
    (wrong,) = read_messaging(packet("phase4-WrongCompression.mime")).user_messages
    assert wrong.info.timestamp == datetime(2016, 12, 21, 10, 1, 16, 795000, tzinfo=timezone.utc)  # +01:00
    assert wrong.parts[0].compression_type == "application/rar"
    jentrata = read_messaging(packet("jentrata-simple-as4-user-message.txt.mime"))
    assert jentrata.element_id == "_9ecb9d3c-cef8-4006-ac18-f425c5c7ae3d"  # a plain id attribute
    assert jentrata.user_messages[0].parts[0].character_set == "utf-8"


# --- refusals ---------------------------------------------------------------------------------------------------------


def _without(root: etree._Element, xpath: str) -> etree._Element:
    root = copy.deepcopy(root)
    nodes = root.xpath(xpath, namespaces={"eb": ns.EB, "S12": ns.S12})
    assert nodes, xpath
    for node in nodes:
        node.getparent().remove(node)
    return root


def _refused(root, where: str, fragment: str, ref: str | None = None) -> None:
    with pytest.raises(As4Error) as caught:
        read_messaging(root)
    assert caught.value.error is EbmsError.INVALID_HEADER
    assert caught.value.where == where and fragment in caught.value.message
    assert caught.value.ref_to_message_id == ref


@pytest.mark.parametrize("xpath, where, fragment, ref", [
    ("//eb:MessageId", f"{USER_PATH}/eb:MessageInfo/eb:MessageId", "eb:MessageId is missing", None),
    ("//eb:Action", f"{USER_PATH}/eb:CollaborationInfo/eb:Action", "eb:Action is missing", "17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4"),
    ("//eb:Service", f"{USER_PATH}/eb:CollaborationInfo/eb:Service", "eb:Service is missing", "17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4"),
    ("//eb:ConversationId", f"{USER_PATH}/eb:CollaborationInfo/eb:ConversationId", "missing", "17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4"),
    ("//eb:To/eb:PartyId", f"{USER_PATH}/eb:PartyInfo/eb:To/eb:PartyId", "eb:To has no eb:PartyId", "17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4"),
    ("//eb:From", f"{USER_PATH}/eb:PartyInfo/eb:From", "eb:From is missing", "17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4"),
    ("//eb:Messaging", "/S12:Envelope/S12:Header/eb:Messaging", "no eb:Messaging", None),
    ("//eb:UserMessage", "/S12:Envelope/S12:Header/eb:Messaging", "holds no UserMessage and no SignalMessage", None),
    ("//S12:Header", "/S12:Envelope/S12:Header", "no SOAP Header", None),
])
def test_missing_required_elements(packet, xpath, where, fragment, ref):
    _refused(_without(packet("phase4-dump-raw.as4out.eml").root, xpath), where, fragment, ref)


def test_missing_message_id_of_a_signal_in_a_bundle(packet):
    root = copy.deepcopy(packet("phase4-BundledMessage.xml").root)
    root.xpath("//eb:SignalMessage[2]//eb:MessageId", namespaces={"eb": ns.EB})[0].text = " "
    _refused(root, "/S11:Envelope/S11:Header/eb:Messaging/eb:SignalMessage[2]/eb:MessageInfo/eb:MessageId", "eb:MessageId is empty")


@pytest.mark.parametrize("value, fragment", [
    ("yesterday", "'yesterday' is not an xsd:dateTime"),
    ("2026-02-30T10:00:00Z", "is not a valid time"),
    ("2026-01-01T10:00:00+99:00", "is not a valid time"),
])
def test_bad_timestamp(packet, value, fragment):
    root = copy.deepcopy(packet("phase4-dump-raw.as4out.eml").root)
    root.xpath("//eb:Timestamp", namespaces={"eb": ns.EB})[0].text = value
    _refused(root, f"{USER_PATH}/eb:MessageInfo/eb:Timestamp", fragment, "17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4")


def test_too_many_properties_and_too_long_values(packet):
    root = copy.deepcopy(packet("phase4-dump-raw.as4out.eml").root)
    properties = root.xpath("//eb:MessageProperties", namespaces={"eb": ns.EB})[0]
    for i in range(MAX_ITEMS):
        etree.SubElement(properties, f"{{{ns.EB}}}Property", name=f"p{i}").text = "x"
    _refused(root, f"{USER_PATH}/eb:MessageProperties", f"more than {MAX_ITEMS} eb:Property elements",
             "17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4")
    root = copy.deepcopy(packet("phase4-dump-raw.as4out.eml").root)
    root.xpath("//eb:Action", namespaces={"eb": ns.EB})[0].text = "a" * 5000
    _refused(root, f"{USER_PATH}/eb:CollaborationInfo/eb:Action", "5000 characters long",
             "17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4")


def test_not_an_envelope():
    _refused(etree.fromstring(b'<Envelope xmlns="urn:x"/>'), "/", "not a SOAP Envelope")
    with pytest.raises(TypeError):
        read_messaging(b"<bytes/>")


def test_error_without_code(packet):
    root = copy.deepcopy(packet("phase4-ErrorMessage.xml").root)
    del root.xpath("//eb:Error", namespaces={"eb": ns.EB})[0].attrib["errorCode"]
    _refused(root, "/S11:Envelope/S11:Header/eb:Messaging/eb:SignalMessage/eb:Error[1]/@errorCode",
             "eb:Error has no errorCode", "UUID-2@receiver.example.com")


def test_signal_without_content(packet):
    root = _without(packet("phase4-PullRequest.xml").root, "//eb:PullRequest")
    _refused(root, "/S11:Envelope/S11:Header/eb:Messaging/eb:SignalMessage", "holds no PullRequest, Receipt or Error",
             "UUID-2@initiator.example.com")


# --- writing ----------------------------------------------------------------------------------------------------------

_USER = UserMessage(
    mpc=None,
    info=MessageInfo(timestamp=datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=timezone.utc), message_id="m1@hub.example"),
    from_party=Party((PartyId("FR-NPPO", ns.PARTY_TYPE_UNREGISTERED),), ns.ROLE_INITIATOR),
    to_party=Party((PartyId("US-NPPO", ns.PARTY_TYPE_UNREGISTERED),), ns.ROLE_RESPONDER),
    agreement_ref="urn:agreement", agreement_ref_type=None, agreement_pmode="pm-1",
    service="urn:service", service_type="urn:types", action="Deliver", conversation_id="c1",
    properties=(Property("originalSender", "C1"), Property("finalRecipient", "C4", "urn:t")),
    parts=(PartInfo("cid:p1@hub.example", (Property("MimeType", "application/xml"), Property("CompressionType", ns.GZIP))),),
)


def test_build_envelope_shape():
    envelope = build_envelope(_USER, messaging_id="messaging-1", body_id="body-1")
    assert envelope.tag == f"{{{ns.S12}}}Envelope"
    header, body = envelope
    (messaging,) = header  # no wsse:Security: the signing code adds it
    assert messaging.tag == f"{{{ns.EB}}}Messaging"
    assert messaging.get(f"{{{ns.S12}}}mustUnderstand") == "true"
    assert messaging.get(f"{{{ns.WSU}}}Id") == "messaging-1"
    assert body.tag == f"{{{ns.S12}}}Body" and len(body) == 0 and body.get(f"{{{ns.WSU}}}Id") == "body-1"
    text = etree.tostring(envelope).decode()
    assert "<eb:Timestamp>2026-03-01T12:00:00.123Z</eb:Timestamp>" in text
    assert '<eb:AgreementRef pmode="pm-1">urn:agreement</eb:AgreementRef>' in text
    read = read_messaging(envelope)
    assert read.user_messages == (_USER,) and read.element_id == "messaging-1" and read.must_understand


def test_build_envelope_made_up_ids_and_soap11():
    envelope = build_envelope(_USER, soap_version="1.1")
    assert envelope.tag == f"{{{ns.S11}}}Envelope"
    messaging = envelope[0][0]
    assert messaging.get(f"{{{ns.S11}}}mustUnderstand") == "1"
    assert messaging.get(f"{{{ns.WSU}}}Id").startswith("messaging-")
    assert envelope[1].get(f"{{{ns.WSU}}}Id").startswith("body-")


def test_signals_are_written_before_user_messages():
    pull = SignalMessage(MessageInfo(None, "s1@hub"), pull_request=PullRequest())
    envelope = build_envelope(_USER, pull)
    assert [etree.QName(unit).localname for unit in envelope[0][0]] == ["SignalMessage", "UserMessage"]
    messaging = read_messaging(envelope)
    assert kind(messaging) == "bundle" and messaging.signal_messages[0].pull_request == PullRequest(None)
    assert messaging.signal_messages[0].info.timestamp is not None  # written as now


def test_receipt_copying_the_received_references(packet):
    received = packet("phase4-dump-raw.as4out.eml")
    references = received.root.xpath("//ds:SignedInfo/ds:Reference", namespaces={"ds": ns.DS})
    nri = etree.Element(f"{{{ns.EBBP}}}NonRepudiationInformation")
    for reference in references:
        etree.SubElement(nri, f"{{{ns.EBBP}}}MessagePartNRInformation").append(copy.deepcopy(reference))
    receipt = SignalMessage(MessageInfo(utc_now(), new_message_id("hub.example"), "17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4"),
                            receipt=Receipt(content=(nri,)))
    (signal,) = read_messaging(build_envelope(receipt)).signal_messages
    assert [r.uri for r in signal.receipt.references] == [r.get("URI") for r in references]
    assert signal.receipt.references[0].digest_value == references[0].findtext(f"{{{ns.DS}}}DigestValue")
    assert kind(read_messaging(build_envelope(receipt))) == "receipt"


def test_receipt_from_references_only(packet):
    (signal,) = read_messaging(packet("phase4-helger.as4in")).signal_messages
    rebuilt = SignalMessage(signal.info, receipt=Receipt(references=signal.receipt.references))
    (again,) = read_messaging(build_envelope(rebuilt)).signal_messages
    assert again == signal and len(again.receipt.references) == 3
    assert non_repudiation_information(signal.receipt.references).tag == f"{{{ns.EBBP}}}NonRepudiationInformation"


def test_error_of():
    error = Error.of(EbmsError.DECOMPRESSION_FAILURE, ref_to_message_in_error="m1@x", description="not gzip")
    assert (error.error_code, error.severity, error.category, error.short_description, error.origin) == (
        "EBMS:0303", "failure", "Communication", "DecompressionFailure", "ebMS")
    signal = SignalMessage(MessageInfo(utc_now(), "e1@hub", "m1@x"), errors=(error,))
    assert read_messaging(build_envelope(signal)).signal_messages == (signal,)


def test_new_message_id():
    first, second = new_message_id("hub.example.org"), new_message_id("hub.example.org")
    assert first != second
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}@hub\.example\.org", first)
    for bad in ("", "two words", "a..b", "<x>", ".lead"):
        with pytest.raises(ValueError):
            new_message_id(bad)


def test_timestamps():
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "2026-01-02T03:04:05Z"
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=timezone.utc)) == "2026-01-02T03:04:05.120Z"
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5, 5, tzinfo=timezone.utc)) == "2026-01-02T03:04:05.000005Z"
    assert utc_now().tzinfo is timezone.utc and utc_now().microsecond % 1000 == 0
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 1, 2))


def test_body_content_is_copied():
    fault = etree.Element(f"{{{ns.S12}}}Fault")
    holder = etree.Element("holder")
    holder.append(fault)
    envelope = build_envelope(_USER, body=fault)
    assert envelope[1][0].tag == f"{{{ns.S12}}}Fault" and fault.getparent() is holder


def test_kind_of_mixed_signal():
    info = MessageInfo(None, "x@y")
    assert kind(Messaging(signal_messages=(SignalMessage(info, errors=(Error("EBMS:0006", "warning"),)),))) == "error"
    assert kind(Messaging(signal_messages=(SignalMessage(info, receipt=Receipt(), errors=(Error("EBMS:0006", "warning"),)),))) == "bundle"
    with pytest.raises(ValueError):
        kind(Messaging())
