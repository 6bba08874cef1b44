"""The AS4 WS-Security signature (connectors/as4/signature.py, keyinfo.py, swa.py) on the real vectors of
samples/as4 (README "check" column), tampered copies of them, and our own sign → verify round trips."""

from __future__ import annotations

import base64
import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree

from connectors.as4 import ns, swa
from connectors.as4.dsig import ECDSA_SHA256
from connectors.as4.errors import As4Error, EbmsError
from connectors.as4.keyinfo import check_trust, encode_pkipath, names_match, parse_pkipath
from connectors.as4.packaging import Part, read_packet, write_packet
from connectors.as4.signature import MAX_REFERENCES, require_valid, verify
from connectors.as4.signing import sign

DS = f"{{{ns.DS}}}"
WSSE = f"{{{ns.WSSE}}}"
WSU_ID = f"{{{ns.WSU}}}Id"
EB_MESSAGING = f"{{{ns.EB}}}Messaging"
UTC = timezone.utc


@pytest.fixture(scope="module")
def samples(standards):
    return standards / "samples/as4"


@pytest.fixture(scope="module")
def load(samples):
    """A fresh packet of a sample (each call parses again: tests may alter the tree)."""
    return lambda name: read_packet((samples / name).read_bytes())


@pytest.fixture(scope="module")
def access_point_a(samples):
    return x509.load_der_x509_certificate((samples / "keys/as4net-AccessPointA.cer").read_bytes())


@pytest.fixture(scope="module")
def access_point_b(samples):
    return x509.load_der_x509_certificate((samples / "keys/as4net-AccessPointB.cer").read_bytes())


def common_name(certificate: x509.Certificate) -> str:
    return certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


# --- real vectors that verify ------------------------------------------------------------------------------------

SIG_OK = [
    # file, candidate certificate, key reference, signature method, signer CN, what the references point at
    ("phase4-helger.as4in", None, "BST", ns.RSA_SHA256, "POP000306", ("eb:Messaging", "Body")),
    ("phase4-governikus.as4in", None, "BST", ns.RSA_SHA256, "POP000260", ("eb:Messaging", "Body")),
    ("phase4-dataport1-mustunderstand.as4in", None, "BST", ns.RSA_SHA256, "PDE000357", ("eb:Messaging", "Body")),
    ("phase4-TestReceipt12.xml", None, "BST", ns.RSA_SHA256, "PDE000576", ("eb:Messaging", "Body")),
    ("phase4-TestReceipt11.xml", None, "BST", ns.RSA_SHA256, "ph-as4", ("Body",)),
    ("as4net-as4-soap-signed-pullrequest.xml", None, "BST", ns.RSA_SHA256, "AccessPointA", ("eb:Messaging", "Body")),
    ("as4net-as4-multihop-message.as4.mime", None, "BST", ns.RSA_SHA256, "UK-Ebms-Institution", ("eb:Messaging", "Body")),
    ("as4net-signed_holodeck_message.as4.mime", "B", "SKI", ns.RSA_SHA384, "AccessPointB",
     ("eb:Messaging", "Body", "cid:cdcc838c-96ed-414a-b127-0937f5cd654-341439240@CLT-FGHEYSELS.ad.codit.eu",
      "cid:cdcc838c-96ed-414a-b127-0937f5cd654-445037483@CLT-FGHEYSELS.ad.codit.eu")),
]


@pytest.mark.interop
@pytest.mark.parametrize("name, candidate, key_reference, method, signer, whats", SIG_OK, ids=[row[0] for row in SIG_OK])
def test_real_signatures_verify(load, access_point_a, access_point_b, name, candidate, key_reference, method, signer, whats):
    candidates = {"A": [access_point_a], "B": [access_point_b], None: []}[candidate]
    check = verify(load(name), candidates=candidates)
    assert check.present and check.valid and check.signed_info_ok, check.reason
    assert check.reason is None and check.structure_ok and not check.weak
    assert check.key_reference == key_reference
    assert check.signature_method == method
    assert common_name(check.certificate) == signer
    assert tuple(reference.what for reference in check.references) == whats
    assert all(reference.ok and reference.digest_method == ns.SHA256 for reference in check.references)
    assert check.covers_body
    assert check.covers_messaging == ("eb:Messaging" in whats)
    assert check.trusted_signer is None  # no trust anchors given: not evaluated
    assert [element.get("URI") for element in check.reference_elements] == [r.uri for r in check.references]


@pytest.mark.interop
def test_holodeck_attachment_digests_prove_the_swa_content_transform(load, access_point_b):
    """Both gzip parts (sent as application/gzip) are digested as is: the SwA content rule for non-text types."""
    packet = load("as4net-signed_holodeck_message.as4.mime")
    check = verify(packet, candidates=[access_point_b])
    attachments = [reference for reference in check.references if reference.uri.startswith("cid:")]
    assert [reference.transforms for reference in attachments] == [(ns.SWA_CONTENT_SIGNATURE,)] * 2
    assert check.signed_attachments == tuple(reference.uri for reference in attachments)
    for reference in attachments:
        part = packet.attachment(reference.uri)
        assert part.content_type == "application/gzip" and part.data[:2] == b"\x1f\x8b"
        assert swa.content_octets(part.data, part.content_type) is part.data


@pytest.mark.interop
def test_ski_reference_needs_the_certificate_as_candidate(load, access_point_a):
    check = verify(load("as4net-signed_holodeck_message.as4.mime"), candidates=[access_point_a])
    assert not check.valid and not check.signed_info_ok and check.certificate is None
    assert check.key_reference == "SKI"
    assert "subject key identifier MWGFZIgHwpqzD4SfUXHbVqkFoo4= matches none of the 1 known certificates" in check.reason
    assert all(reference.ok for reference in check.references)  # the digests do not depend on the key


# --- sign then encrypt: attachment references hold only after decryption -------------------------------------------

ENCRYPTED = [
    ("as4net-as4-encrypted-signed-issuerserial.as4.mime", "IssuerSerial", ns.RSA_SHA384, "AccessPointA", 2),
    ("phase4-dump-raw.as4out.eml", "BST", ns.RSA_SHA256, "POP000306", 1),
    ("as4net-rssbus_message.as4.mime", "BST", ns.RSA_SHA256, "21X-NL-A-A0A0A-Z", 1),
    ("as4net-c3_minderreceiveagent_request.as4.mime", "BST", ns.RSA_SHA256, "as4-net-c2", 2),
    ("as4net-as4_flame_envelope.as4", "BST", ns.RSA_SHA256, "flame-c2", 2),
]


@pytest.mark.interop
@pytest.mark.parametrize("name, key_reference, method, signer, encrypted_parts", ENCRYPTED,
                         ids=[row[0] for row in ENCRYPTED])
def test_encrypted_vectors_verify_header_and_body_and_say_the_parts_are_encrypted(
        load, access_point_a, name, key_reference, method, signer, encrypted_parts):
    check = verify(load(name), candidates=[access_point_a])
    assert check.present and check.signed_info_ok and not check.valid
    assert check.valid_but_encrypted
    assert (check.key_reference, check.signature_method, common_name(check.certificate)) == (key_reference, method, signer)
    assert [reference.what for reference in check.references[:2]] == ["eb:Messaging", "Body"]
    assert all(reference.ok and not reference.encrypted for reference in check.references[:2])
    parts = check.references[2:]
    assert len(parts) == encrypted_parts
    assert all(not reference.ok and reference.encrypted and "encrypted (xenc:EncryptedData" in reference.reason
               for reference in parts)
    assert check.covers_messaging and check.covers_body and check.signed_attachments == ()


@pytest.mark.interop
def test_issuerserial_vector_verifies_whole_after_decryption(load, samples, access_point_a):
    """README: DEC-OK with AccessPointB.pfx, then the attachment digests match the decrypted (gzip) bytes."""
    from connectors.as4.encryption import decrypt
    from connectors.as4.keys import load_key_pair

    key_pair = load_key_pair(samples / "keys/as4net-AccessPointB.pfx", "Pz4cZK4SULUwmraZb")
    decrypted, _ = decrypt(load("as4net-as4-encrypted-signed-issuerserial.as4.mime"), key_pair)
    check = verify(decrypted, candidates=[access_point_a], trusted=[access_point_a], now=datetime(2020, 1, 1, tzinfo=UTC))
    assert check.valid, check.reason
    assert check.signed_attachments == ("cid:b545c3a0-e57f-46aa-862f-381eb4b7009-291596031@CLT-SMOREELS.mshome.net",
                                        "cid:b545c3a0-e57f-46aa-862f-381eb4b7009-1650194442@CLT-SMOREELS.mshome.net")
    assert check.trusted_signer is True
    require_valid(check, attachments=[part.content_id for part in decrypted.attachments])


# --- negative and illustrative vectors ------------------------------------------------------------------------------

@pytest.mark.interop
def test_dataport_rewritten_receipt_fails_on_its_messaging_digest(load):
    check = verify(load("phase4-dataport1.as4in"))
    assert check.present and check.signed_info_ok and not check.valid
    assert [(reference.what, reference.ok) for reference in check.references] == [("eb:Messaging", False), ("Body", True)]
    assert check.reason == "reference #id-4b28412d2948bca-f4a2-48fe-8503-d3693f501057 (eb:Messaging): digest mismatch"
    assert not check.covers_messaging and check.covers_body
    with pytest.raises(As4Error) as raised:
        require_valid(check, require_trusted=False, message_id="m@x")
    assert raised.value.error is EbmsError.FAILED_AUTHENTICATION and raised.value.ref_to_message_id == "m@x"


@pytest.mark.interop
@pytest.mark.parametrize("name, expected", [
    ("oasis-UserMessage_No_MPC_P2P_WSSecurity.xml", "misspelling of xmldsig#sha1: an illustrative signature"),
    ("domibus-bst_X509PKIPathv1_incoming_message.xml", "SignatureValue does not verify"),
    ("domibus-is_incoming_message.xml",
     "ds:X509IssuerSerial (issuer CN=ICA CERTIFICATE,O=EU.TEST,ST=BRUXELLES,C=BE, serial 4096)"),
    ("domibus-ski_incoming_message.xml", "subject key identifier LRBA5KkV6Zp22xk85ZQ+DTgEI4o= matches none"),
    ("oxalis-eDeliveryAS4-example.xml", "ds:SignatureValue is not valid base64"),
    ("as4net-as4-pullrequest-warning.xml",
     "reference #header-62500991-114d-493f-b160-b0014dab1010 (eb:Messaging): digest mismatch"),
])
def test_illustrative_vectors_are_not_valid_and_say_why(load, name, expected):
    check = verify(load(name))
    assert check.present and not check.valid and not check.signed_info_ok
    assert expected in check.reason


@pytest.mark.interop
def test_domibus_pkipath_signer_is_the_last_certificate_and_resolves_the_other_references(load):
    check = verify(load("domibus-bst_X509PKIPathv1_incoming_message.xml"))
    assert check.key_reference == "PKIPath"
    assert [common_name(certificate) for certificate in check.chain] == [
        "CA CERTIFICATE", "ICA CERTIFICATE", "LEAF CERTIFICATE"]
    assert check.certificate == check.chain[-1]
    assert [(reference.what, reference.ok) for reference in check.references[:2]] == [
        ("Body", True), ("eb:Messaging", False)]
    # The same leaf, named by IssuerSerial (issuer ICA, serial 4096: the ICA itself has serial 4096 too) and by SKI.
    for name, kind in (("domibus-is_incoming_message.xml", "IssuerSerial"), ("domibus-ski_incoming_message.xml", "SKI")):
        other = verify(load(name), candidates=list(check.chain))
        assert other.key_reference == kind and other.certificate == check.chain[-1]
    # Trust through the PKIPath's intermediate, at a date the three certificates are valid, and not after.
    at_2019 = verify(load("domibus-bst_X509PKIPathv1_incoming_message.xml"), trusted=[check.chain[0]],
                     now=datetime(2019, 1, 1, tzinfo=UTC))
    assert at_2019.trusted_signer is True
    at_2030 = verify(load("domibus-bst_X509PKIPathv1_incoming_message.xml"), trusted=[check.chain[0]],
                     now=datetime(2030, 1, 1, tzinfo=UTC))
    assert at_2030.trusted_signer is False and "valid from 2018-11-14 to 2027-11-16" in at_2030.trust_reason


@pytest.mark.interop
@pytest.mark.parametrize("name", ["phase4-PullRequest.xml", "phase4-test-2023-03-15.xml",
                                  "jentrata-simple-as4-user-message.txt.mime",
                                  "oasis-UserMessage_No_MPC_P2P_WSSecurity.as4receipt.xml"])
def test_unsigned_messages_are_not_present(load, name):
    check = verify(load(name))
    assert not check.present and not check.valid and check.references == ()
    with pytest.raises(As4Error) as raised:
        require_valid(check)
    assert raised.value.error is EbmsError.POLICY_NONCOMPLIANCE


# --- tampering ------------------------------------------------------------------------------------------------------

@pytest.mark.interop
def test_one_flipped_byte_in_an_attachment_fails_that_reference_only(load, access_point_b):
    packet = load("as4net-signed_holodeck_message.as4.mime")
    first, second = packet.attachments
    altered = bytearray(second.data)
    altered[len(altered) // 2] ^= 0x01
    tampered = dataclasses.replace(packet, attachments=(first, dataclasses.replace(second, data=bytes(altered))))
    check = verify(tampered, candidates=[access_point_b])
    assert check.signed_info_ok and not check.valid
    assert [reference.ok for reference in check.references] == [True, True, True, False]
    assert check.reason == f"reference cid:{second.content_id}: digest mismatch"
    assert check.signed_attachments == (f"cid:{first.content_id}",)


@pytest.mark.interop
def test_moving_the_messaging_id_to_a_wrapper_is_refused(load):
    packet = load("phase4-helger.as4in")
    messaging = packet.root.find(f".//{EB_MESSAGING}")
    wrapper = etree.Element("{urn:attacker}Wrapper")
    wrapper.set(WSU_ID, messaging.get(WSU_ID))
    del messaging.attrib[WSU_ID]
    messaging.addprevious(wrapper)
    wrapper.append(messaging)
    check = verify(packet)
    assert not check.valid and check.signed_info_ok and not check.covers_messaging
    assert check.reason.startswith("reference #phase4-msg-a9255f87-075b-4348-b125-beb6cee397e9 (Wrapper): digest mismatch")


@pytest.mark.interop
def test_signed_messaging_hidden_under_a_forged_one_is_refused(load):
    """Classic wrapping: the signed eb:Messaging (with its id) moved out of the header, a forged one in its place."""
    packet = load("phase4-helger.as4in")
    header = packet.root.find(f"{{{ns.S12}}}Header")
    original = header.find(EB_MESSAGING)
    forged = etree.fromstring(etree.tostring(original))
    del forged.attrib[WSU_ID]
    forged.find(f".//{{{ns.EB}}}RefToMessageId").text = "someone-else@phase4"
    header.replace(original, forged)
    hiding = etree.SubElement(header.find(f"{WSSE}Security"), "{urn:attacker}Hiding")
    hiding.append(original)
    check = verify(packet)
    assert not check.valid and not check.covers_messaging
    assert ("reference #phase4-msg-a9255f87-075b-4348-b125-beb6cee397e9 (eb:Messaging): it points at eb:Messaging "
            "inside Hiding, where SOAP processing does not read it: possible signature wrapping") in check.reason


@pytest.mark.interop
def test_duplicate_ids_are_refused(load):
    packet = load("phase4-helger.as4in")
    header = packet.root.find(f"{{{ns.S12}}}Header")
    header.append(etree.fromstring(etree.tostring(header.find(EB_MESSAGING))))
    check = verify(packet)
    assert not check.valid and not check.structure_ok
    assert "2 eb:Messaging header blocks (possible signature wrapping)" in check.reason
    assert "2 elements carry that id (eb:Messaging, eb:Messaging): possible signature wrapping" in check.reason


@pytest.mark.interop
def test_another_certificate_in_the_token_fails_the_signature_value(load, access_point_b):
    packet = load("as4net-as4-soap-signed-pullrequest.xml")
    token = packet.root.find(f".//{WSSE}BinarySecurityToken")
    token.text = base64.b64encode(access_point_b.public_bytes(Encoding.DER)).decode()
    check = verify(packet)
    assert not check.valid and not check.signed_info_ok and common_name(check.certificate) == "AccessPointB"
    assert all(reference.ok for reference in check.references)
    assert check.reason == "SignatureValue does not verify over the canonical SignedInfo (wrong key or altered SignedInfo)"


@pytest.mark.interop
def test_trust_is_separate_from_validity(load, access_point_a, access_point_b):
    at = datetime(2024, 6, 1, tzinfo=UTC)
    untrusted = verify(load("as4net-as4-soap-signed-pullrequest.xml"), trusted=[access_point_b], now=at)
    assert untrusted.valid and untrusted.trusted_signer is False
    assert "the signer CN=AccessPointA (issuer CN=AccessPointA, serial 8207205864034169939) is neither" in untrusted.trust_reason
    with pytest.raises(As4Error) as raised:
        require_valid(untrusted)
    assert raised.value.error is EbmsError.FAILED_AUTHENTICATION and "not trusted" in raised.value.message
    trusted = verify(load("as4net-as4-soap-signed-pullrequest.xml"), trusted=[access_point_a], now=at)
    assert trusted.valid and trusted.trusted_signer is True and trusted.trust_reason is None
    require_valid(trusted)
    expired = verify(load("as4net-as4-soap-signed-pullrequest.xml"), trusted=[access_point_a],
                     now=datetime(2067, 1, 1, tzinfo=UTC))
    assert expired.valid and expired.trusted_signer is False
    assert "valid from 2016-11-15 to 2066-11-15" in expired.trust_reason


@pytest.mark.interop
def test_an_altered_body_fails_the_body_reference(load):
    packet = load("phase4-governikus.as4in")
    etree.SubElement(packet.root.find(f"{{{ns.S12}}}Body"), "{urn:x}Injected")
    check = verify(packet)
    assert check.signed_info_ok and not check.valid and not check.covers_body
    assert [(reference.what, reference.ok) for reference in check.references] == [("eb:Messaging", True), ("Body", False)]


@pytest.mark.interop
def test_unsupported_digest_and_unknown_token_are_reasons_not_exceptions(load):
    packet = load("phase4-helger.as4in")
    signed_info = packet.root.find(f".//{DS}SignedInfo")
    signed_info.findall(f"{DS}Reference")[1].find(f"{DS}DigestMethod").set("Algorithm", "urn:unknown-digest")
    packet.root.find(f".//{WSSE}SecurityTokenReference/{WSSE}Reference").set("URI", "#nowhere")
    check = verify(packet)
    assert not check.valid and check.certificate is None
    assert "no key to verify the SignatureValue: wsse:Reference #nowhere: no element has that id" in check.reason
    assert ("reference #id-c80f8255-da5a-4c42-8e4b-9b66bac931d7 (Body): DigestMethod urn:unknown-digest is not supported"
            in check.reason)


@pytest.mark.interop
def test_work_is_bounded(load):
    packet = load("phase4-helger.as4in")
    signed_info = packet.root.find(f".//{DS}SignedInfo")
    reference = signed_info.find(f"{DS}Reference")
    for _ in range(MAX_REFERENCES):
        signed_info.append(etree.fromstring(etree.tostring(reference)))
    check = verify(packet)
    assert not check.valid and check.reason == f"{MAX_REFERENCES + 2} references, more than the {MAX_REFERENCES} checked"

    packet = load("phase4-helger.as4in")
    transforms = packet.root.find(f".//{DS}Reference/{DS}Transforms")
    for _ in range(10):
        transforms.append(etree.fromstring(etree.tostring(transforms[0])))
    check = verify(packet)
    assert check.references[0].reason == "11 transforms, more than the 10 applied"


def test_a_missing_unencrypted_part_is_named(load, access_point_b):
    packet = load("as4net-signed_holodeck_message.as4.mime")
    check = verify(dataclasses.replace(packet, attachments=packet.attachments[:1]), candidates=[access_point_b])
    assert not check.references[3].ok and not check.references[3].encrypted
    assert check.references[3].reason.startswith("the part is not in the message (no MIME part has the Content-ID")


# --- require_valid --------------------------------------------------------------------------------------------------

@pytest.mark.interop
def test_require_valid_wants_messaging_body_parts_and_strong_algorithms(load):
    receipt11 = verify(load("phase4-TestReceipt11.xml"))
    assert receipt11.valid and not receipt11.covers_messaging
    with pytest.raises(As4Error) as raised:
        require_valid(receipt11, require_trusted=False)
    assert raised.value.error is EbmsError.POLICY_NONCOMPLIANCE
    assert raised.value.message == "the eb:Messaging header is not signed"

    helger = verify(load("phase4-helger.as4in"))
    assert require_valid(helger, require_trusted=False) is helger
    with pytest.raises(As4Error) as raised:
        require_valid(helger, require_trusted=False, attachments=["cid:payload@x"])
    assert raised.value.message == "payload part(s) not signed: cid:payload@x"
    with pytest.raises(As4Error) as raised:
        require_valid(dataclasses.replace(helger, weak=True), require_trusted=False)
    assert raised.value.error is EbmsError.POLICY_NONCOMPLIANCE and "weak algorithm" in raised.value.message
    with pytest.raises(As4Error) as raised:
        require_valid(helger)
    assert raised.value.message == "the signer is not trusted: no trust anchors configured"


# --- our own signatures ---------------------------------------------------------------------------------------------

def _certificate(key, subject: str, *, issuer=None, issuer_key=None, ca=False) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hub, Test")])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki():
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _certificate(ca_key, "Hub Test CA", ca=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {"ca": ca, "key": key, "certificate": _certificate(key, "hub-ap", issuer=ca, issuer_key=ca_key)}


ENVELOPE = (
    b'<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Header>'
    b'<eb:Messaging xmlns:eb="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/" S12:mustUnderstand="true">'
    b'<eb:UserMessage><eb:MessageInfo><eb:Timestamp>2026-01-01T00:00:00Z</eb:Timestamp><eb:MessageId>m1@hub</eb:MessageId>'
    b'</eb:MessageInfo><eb:PayloadInfo><eb:PartInfo href="cid:invoice@hub"/><eb:PartInfo href="cid:note@hub"/>'
    b'</eb:PayloadInfo></eb:UserMessage></eb:Messaging></S12:Header><S12:Body/></S12:Envelope>')
PARTS = (Part(content_id="invoice@hub", content_type="application/gzip", headers=(),
              data=b"\x1f\x8b\x08\x00binary\r\n\x00"),
         Part(content_id="note@hub", content_type="text/plain; charset=UTF-8", headers=(),
              data=b"line one\nline two\r\nthree\r"))


@pytest.mark.parametrize("key_reference", ["BST", "PKIPath", "IssuerSerial", "SKI"])
def test_sign_then_verify_round_trip(pki, key_reference):
    signed = sign(etree.fromstring(ENVELOPE), PARTS, key=pki["key"], certificate=pki["certificate"],
                  key_reference=key_reference, chain=[pki["ca"]])
    body, content_type = write_packet(etree.tostring(signed.root), PARTS)
    check = verify(read_packet(body, content_type), candidates=[pki["certificate"]], trusted=[pki["ca"]])
    assert check.valid, check.reason
    assert check.key_reference == key_reference and check.certificate == pki["certificate"]
    assert check.trusted_signer is True
    assert [reference.what for reference in check.references] == ["eb:Messaging", "Body", "cid:invoice@hub", "cid:note@hub"]
    assert [element.findtext(f"{DS}DigestValue") for element in signed.references] == [
        reference.digest_value for reference in check.references]
    require_valid(check, attachments=["invoice@hub", "cid:note@hub"])


def test_sign_makes_what_phase4_makes(pki, load):
    """Same shape as phase4's own output (phase4-dump-raw.as4out.eml): Security first with mustUnderstand, token,
    exc-c14n SignedInfo with PrefixList=S12, the same transforms per reference, a STR to the X509v3 token."""
    signed = sign(etree.fromstring(ENVELOPE), PARTS[:1], key=pki["key"], certificate=pki["certificate"])
    ours = signed.root.find(f"{{{ns.S12}}}Header/{WSSE}Security")
    theirs = load("phase4-dump-raw.as4out.eml").root.find(f"{{{ns.S12}}}Header/{WSSE}Security")
    assert ours.getparent()[0] is ours and ours.get(f"{{{ns.S12}}}mustUnderstand") == "true"

    def shape(security):
        signature = security.find(f"{DS}Signature")
        info = signature.find(f"{DS}SignedInfo")
        return {
            "c14n": (info.find(f"{DS}CanonicalizationMethod").get("Algorithm"),
                     info.find(f"{DS}CanonicalizationMethod")[0].get("PrefixList")),
            "method": info.find(f"{DS}SignatureMethod").get("Algorithm"),
            "references": [(reference.get("URI")[:4] == "cid:",
                            [(transform.get("Algorithm"), [inclusive.get("PrefixList") for inclusive in transform])
                             for transform in reference.iter(f"{DS}Transform")],
                            reference.find(f"{DS}DigestMethod").get("Algorithm"))
                           for reference in info.iter(f"{DS}Reference")],
            "key_info": [etree.QName(element).localname for element in signature.find(f"{DS}KeyInfo").iter()],
            "token": signature.getprevious().get("ValueType"),
        }
    assert shape(ours) == shape(theirs)
    messaging = signed.root.find(f".//{EB_MESSAGING}")
    assert messaging.get(WSU_ID).startswith("msg-") and messaging.nsmap["wsu"] == ns.WSU


def test_sign_keeps_existing_ids_and_signs_with_ecdsa():
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _certificate(key, "hub-ec")
    body = b'<S12:Body xmlns:wsu="%s" wsu:Id="body-1"/>' % ns.WSU.encode()
    root = etree.fromstring(ENVELOPE.replace(b"<S12:Body/>", body))
    signed = sign(root, (), key=key, certificate=certificate, signature_method=ECDSA_SHA256)
    assert signed.references[1].get("URI") == "#body-1"
    check = verify(read_packet(etree.tostring(signed.root)))
    assert check.valid and check.signature_method == ECDSA_SHA256, check.reason


def test_sign_refuses_sha1_and_unsigned_shapes(pki):
    with pytest.raises(ValueError, match="SHA-2"):
        sign(etree.fromstring(ENVELOPE), (), key=pki["key"], certificate=pki["certificate"], signature_method=ns.RSA_SHA1)
    with pytest.raises(ValueError, match="SHA-2"):
        sign(etree.fromstring(ENVELOPE), (), key=pki["key"], certificate=pki["certificate"], digest_method=ns.SHA1)
    signed = sign(etree.fromstring(ENVELOPE), (), key=pki["key"], certificate=pki["certificate"])
    with pytest.raises(ValueError, match="already signed"):
        sign(signed.root, (), key=pki["key"], certificate=pki["certificate"])


# --- SwA canonicalization and key-reference helpers -----------------------------------------------------------------

def test_swa_content_canonicalization_by_media_type():
    assert swa.content_octets(b"a\nb\rc\r\nd", "text/plain; charset=us-ascii") == b"a\r\nb\r\nc\r\nd"
    assert swa.content_octets(b"a\nb", "application/octet-stream") == b"a\nb"
    assert swa.content_octets(b"a\nb", "") == b"a\nb"
    xml = b'<?xml version="1.0"?>\n<!--c--><r b="2"  a="1"><e/></r>'
    assert swa.content_octets(xml, "Application/XML") == b'<r a="1" b="2"><e></e></r>'
    assert swa.content_octets(xml, "application/ubl+xml") == b'<r a="1" b="2"><e></e></r>'
    with pytest.raises(swa.AttachmentContentError, match="typed text/xml"):
        swa.content_octets(b'<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>', "text/xml")


def test_swa_mime_header_canonicalization():
    headers = [("content-type", 'Text/Plain; Charset="UTF-8" (note);  format=flowed'), ("Content-ID", "  <a@b>"),
               ("Content-Transfer-Encoding", "binary"), ("Content-Description", "=?utf-8?q?caf=C3=A9?= (x)"),
               ("Content-Disposition", "attachment;\r\n filename*=utf-8''r%C3%A9sum%C3%A9.txt")]
    assert swa.canonical_headers(headers) == (
        'Content-Description:café \r\nContent-Disposition:attachment;filename="résumé.txt"\r\n'
        'Content-ID:<a@b>\r\nContent-Type:text/plain;charset="utf-8";format="flowed"\r\n').encode()
    assert swa.canonical_headers([]) == b'Content-Type:text/plain;charset="us-ascii"\r\n'


def test_issuer_names_match_as_java_and_dotnet_write_them(access_point_a):
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "EU.TEST"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "ICA Certificate"),
                      x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ca@eu.test")])
    assert names_match("CN=ICA Certificate,O=EU.TEST,C=BE,1.2.840.113549.1.9.1=#160a63614065752e74657374", name)
    assert names_match("E=ca@eu.test, CN=ica  certificate, O=EU.TEST, C=BE", name)
    assert names_match("C=BE,O=EU.TEST,CN=ICA Certificate,EMAILADDRESS=ca@eu.test", name)
    assert not names_match("CN=ICA Certificate,O=EU.TEST,C=FR,E=ca@eu.test", name)
    assert not names_match("CN=ICA Certificate,O=EU.TEST,C=BE", name)
    assert names_match("CN=AccessPointA", access_point_a.issuer)


def test_pkipath_round_trip_and_garbage(access_point_a, access_point_b):
    assert parse_pkipath(encode_pkipath([access_point_a, access_point_b])) == (access_point_a, access_point_b)
    for garbage in (b"", b"\x30\x03\x02\x01\x01", b"\x31\x00", encode_pkipath([access_point_a])[:-1]):
        with pytest.raises(ValueError):
            parse_pkipath(garbage)


def test_check_trust_walks_intermediates_only_if_they_are_cas(pki):
    now = datetime.now(UTC)
    assert check_trust(pki["certificate"], trusted=[pki["ca"]], now=now) == (True, None)
    assert check_trust(pki["certificate"], trusted=[pki["certificate"]], now=now) == (True, None)
    other = _certificate(rsa.generate_private_key(public_exponent=65537, key_size=2048), "other", ca=True)
    trusted, reason = check_trust(pki["certificate"], trusted=[other], intermediates=[pki["ca"]], now=now)
    assert not trusted and "is neither a trusted certificate nor issued by one" in reason


def test_enveloped_signature_over_the_whole_envelope(pki):
    """The rare enveloped-signature transform (URI=""): the digest is over the envelope without its ds:Signature,
    computed here by hand with lxml; verify must not alter the received tree while removing it."""
    import copy
    import hashlib

    from cryptography.hazmat.primitives.asymmetric import padding

    signed = sign(etree.fromstring(ENVELOPE), (), key=pki["key"], certificate=pki["certificate"])
    signature = signed.signature
    without = copy.deepcopy(signed.root)
    removed = without.find(f".//{DS}Signature")
    removed.getparent().remove(removed)
    digest = hashlib.sha256(etree.tostring(without, method="c14n", exclusive=True)).digest()
    signed_info = signature.find(f"{DS}SignedInfo")
    reference = etree.SubElement(signed_info, f"{DS}Reference", URI="")
    transforms = etree.SubElement(reference, f"{DS}Transforms")
    etree.SubElement(transforms, f"{DS}Transform", Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature")
    etree.SubElement(transforms, f"{DS}Transform", Algorithm=ns.EXC_C14N)
    etree.SubElement(reference, f"{DS}DigestMethod", Algorithm=ns.SHA256)
    etree.SubElement(reference, f"{DS}DigestValue").text = base64.b64encode(digest).decode()
    octets = etree.tostring(signed_info, method="c14n", exclusive=True, inclusive_ns_prefixes=["S12"])
    value = pki["key"].sign(octets, padding.PKCS1v15(), hashes.SHA256())
    signature.find(f"{DS}SignatureValue").text = base64.b64encode(value).decode()

    packet = read_packet(etree.tostring(signed.root))
    check = verify(packet)
    assert check.valid, check.reason
    assert check.references[-1].what == "S12:Envelope"
    assert check.references[-1].transforms[0].endswith("#enveloped-signature")
    assert packet.root.find(f".//{DS}Signature") is not None

    packet.root.find(f".//{{{ns.EB}}}MessageId").text = "m2@hub"
    check = verify(packet)
    assert [reference.ok for reference in check.references] == [False, True, False]


def test_a_part_sent_without_content_type_is_digested_as_is(pki):
    """The reader gives such a part MIME's text/plain default; the SwA transform must not CRLF-normalize it."""
    part = Part(content_id="raw@hub", content_type="", headers=(), data=b"\x1f\x8b one\ntwo\n")
    signed = sign(etree.fromstring(ENVELOPE), [part], key=pki["key"], certificate=pki["certificate"])
    body = (b"--B\r\nContent-Type: application/soap+xml; charset=UTF-8\r\nContent-ID: <root@hub>\r\n\r\n"
            + etree.tostring(signed.root) + b"\r\n--B\r\nContent-ID: <raw@hub>\r\n\r\n" + part.data + b"\r\n--B--\r\n")
    packet = read_packet(body, 'multipart/related; boundary="B"; type="application/soap+xml"')
    assert packet.attachment("cid:raw@hub").content_type.startswith("text/plain")
    check = verify(packet)
    assert check.valid, check.reason


def test_an_envelope_built_in_memory_verifies_once_sent(pki):
    """lxml's exclusive C14N of a tree built in memory drops the SignedInfo's InclusiveNamespaces prefix that the
    receiver's parsed copy renders: sign() must canonicalize what the receiver will see."""
    from connectors.as4.ebms import MessageInfo, Party, PartyId, UserMessage, utc_now
    from connectors.as4.envelope import build_envelope

    message = UserMessage(mpc=None, info=MessageInfo(utc_now(), "m2@hub"), from_party=Party((PartyId("a"),), "r"),
                          to_party=Party((PartyId("b"),), "r"), agreement_ref=None, agreement_ref_type=None,
                          agreement_pmode=None, service="s", service_type=None, action="a", conversation_id="c")
    signed = sign(build_envelope(message), (), key=pki["key"], certificate=pki["certificate"])
    body, content_type = write_packet(etree.tostring(signed.root), ())
    check = verify(read_packet(body, content_type), candidates=[pki["certificate"]], trusted=[pki["ca"]])
    assert check.valid, check.reason
