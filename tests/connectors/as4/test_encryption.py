"""WS-Security / SwA decryption of real AS4 messages (Holodeck with the AS4.NET keys, Flame, Minder, Domibus) and our
own encryption, round trip."""

from __future__ import annotations

import base64
import gzip
import hashlib
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from lxml import etree

from connectors.as4 import ns
from connectors.as4.encryption import AES128_CBC, DecryptionCheck, decrypt, decrypt_key, encrypt
from connectors.as4.errors import As4Error, EbmsError
from connectors.as4.keys import KeyPair, load_certificates, load_key_pair
from connectors.as4.packaging import Part, read_packet, write_packet
from hub.errors import ConfigurationError
from hub.xmlsafe import parse_xml

HOLODECK = "as4net-as4-encrypted-signed-issuerserial.as4.mime"
JPEG_CID = "b545c3a0-e57f-46aa-862f-381eb4b7009-291596031@CLT-SMOREELS.mshome.net"
XML_CID = "b545c3a0-e57f-46aa-862f-381eb4b7009-1650194442@CLT-SMOREELS.mshome.net"
EK_ID = "EK-501d4b2b-3eb6fa47-3710-465d-96b6-75176b467e6f"
XENC = {"xenc": ns.XENC, "ds": ns.DS, "wsse": ns.WSSE, "S12": ns.S12}
KEY_FAILURE = "the EncryptedKey cannot be decrypted with our private key"


@pytest.fixture(scope="module")
def samples(standards: Path) -> Path:
    return standards / "samples/as4"


@pytest.fixture(scope="module")
def access_point_a(samples) -> KeyPair:
    return load_key_pair(samples / "keys/as4net-AccessPointA.pfx", "Pz4cZK4SULUwmraZa")


@pytest.fixture(scope="module")
def access_point_b(samples) -> KeyPair:
    return load_key_pair(samples / "keys/as4net-AccessPointB.pfx", "Pz4cZK4SULUwmraZb")


@pytest.fixture(scope="module")
def c3(samples) -> KeyPair:
    return load_key_pair(samples / "keys/as4net-as4-net-c3.pfx", "123456")


@pytest.fixture(scope="module")
def holodeck_raw(samples) -> bytes:
    return (samples / HOLODECK).read_bytes()


def _failure(excinfo) -> As4Error:
    assert excinfo.value.error is EbmsError.FAILED_DECRYPTION and excinfo.value.code == "EBMS:0102"
    return excinfo.value


def _encrypted_key(root):
    return root.find(f".//{{{ns.XENC}}}EncryptedKey")


# --- real vectors ----------------------------------------------------------------------------------------------------

def test_holodeck_message_decrypts_with_access_point_b(holodeck_raw, access_point_b):
    packet = read_packet(holodeck_raw)
    decrypted, check = decrypt(packet, access_point_b)
    assert check.encrypted_key_id == EK_ID
    assert check.key_transport == ns.RSA_OAEP_MGF1P and check.digest_method == ns.SHA256 and check.mgf == ns.MGF1_SHA1
    assert check.key_reference == "IssuerSerial"
    assert [(p.content_id, p.encrypted_data_id, p.content_type, p.ciphertext_bytes, p.plaintext_bytes)
            for p in check.parts] == [
        (JPEG_CID, "ED-501d4b2b-485d4c9d-4130-4851-92fe-2860758b0f6f", "application/gzip", 296413, 296385),
        (XML_CID, "ED-501d4b2b-76c6871e-1634-4ed4-ad7b-ed844b70d714", "application/gzip", 192, 164),
    ]
    assert {p.algorithm for p in check.parts} == {ns.AES128_GCM} and {p.type for p in check.parts} == {ns.SWA_CONTENT_ONLY}
    jpeg, xml = decrypted.attachments
    assert (jpeg.content_id, jpeg.content_type, jpeg.header("Content-Type")) == (JPEG_CID, "application/gzip", "application/gzip")
    picture = gzip.decompress(jpeg.data)
    assert len(picture) == 296454 and picture[:4] == b"\xff\xd8\xff\xe0" and picture[6:10] == b"JFIF"
    document = gzip.decompress(xml.data)
    assert document.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<example-document>')
    # sign then encrypt: the signature's attachment digests are over these decrypted (compressed) bytes
    signed = {ref.get("URI"): ref.findtext(f"{{{ns.DS}}}DigestValue")
              for ref in packet.root.iter(f"{{{ns.DS}}}Reference")}
    for part in decrypted.attachments:
        assert base64.b64encode(hashlib.sha256(part.data).digest()).decode() == signed["cid:" + part.content_id]
    # the envelope is left as received, EncryptedKey and EncryptedData included
    assert decrypted.envelope is packet.envelope and decrypted.root is packet.root
    assert len(decrypted.root.findall(f".//{{{ns.XENC}}}EncryptedData")) == 2


def test_wrong_access_point_is_told_whom_the_message_is_for(holodeck_raw, access_point_a):
    with pytest.raises(As4Error) as caught:
        decrypt(read_packet(holodeck_raw), access_point_a)
    error = _failure(caught)
    assert error.message == ("the message was encrypted for issuer 'CN=AccessPointB' serial 5956198424360021449, "
                             "not for us (CN=AccessPointA serial 8207205864034169939 (0x71e5da3fec427453))")
    assert error.where == f"xenc:EncryptedKey[@Id='{EK_ID}']"


def test_flipped_ciphertext_byte_fails_the_gcm_tag(holodeck_raw, access_point_b):
    packet = read_packet(holodeck_raw)
    xml = packet.attachments[1]
    data = bytearray(xml.data)
    data[40] ^= 0x01
    tampered = replace(packet, attachments=(packet.attachments[0], replace(xml, data=bytes(data))))
    with pytest.raises(As4Error) as caught:
        decrypt(tampered, access_point_b)
    error = _failure(caught)
    assert error.where == f"cid:{XML_CID}"
    assert "aes128-gcm: the authentication tag does not match" in error.message


def test_rsa_1_5_key_transport_is_refused(holodeck_raw, access_point_b):
    raw = holodeck_raw.replace(ns.RSA_OAEP_MGF1P.encode(), b"http://www.w3.org/2001/04/xmlenc#rsa-1_5")
    with pytest.raises(As4Error) as caught:
        decrypt(read_packet(raw), access_point_b)
    assert "rsa-1_5 (RSA PKCS#1 v1.5) is refused" in _failure(caught).message
    assert "Bleichenbacher" in caught.value.message


def test_every_key_failure_gets_the_same_answer(holodeck_raw, access_point_b):
    """A wrong OAEP digest, a damaged CipherValue and a key of the wrong length all read alike (no oracle)."""
    cipher_value = parse_xml(holodeck_raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n--MIME", 1)[0]) \
        .findtext(".//xenc:CipherValue", namespaces=XENC)
    damaged = base64.b64decode(cipher_value)
    damaged = base64.b64encode(damaged[:100] + bytes([damaged[100] ^ 1]) + damaged[101:])
    variants = [
        holodeck_raw.replace(b'<ds:DigestMethod xmlns:ds="http://www.w3.org/2000/09/xmldsig#" '
                             b'Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/></xenc:EncryptionMethod>',
                             b"</xenc:EncryptionMethod>"),
        holodeck_raw.replace(cipher_value.encode(), damaged),
        holodeck_raw.replace(b'Algorithm="http://www.w3.org/2009/xmlenc11#aes128-gcm"',
                             b'Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"'),
    ]
    messages = set()
    for raw in variants:
        assert raw != holodeck_raw
        with pytest.raises(As4Error) as caught:
            decrypt(read_packet(raw), access_point_b)
        messages.add((_failure(caught).message, caught.value.where))
    assert messages == {(KEY_FAILURE, f"xenc:EncryptedKey[@Id='{EK_ID}']")}


def test_flame_encrypted_key_with_sha1_defaults(samples, c3):
    root = parse_xml((samples / "as4net-as4_flame_envelope.as4").read_bytes())
    encrypted_key = _encrypted_key(root)
    method = encrypted_key.find(f"{{{ns.XENC}}}EncryptionMethod")
    assert method.get("Algorithm") == ns.RSA_OAEP and len(method) == 0  # no MGF, no DigestMethod: SHA-1 both
    key = decrypt_key(encrypted_key, c3)
    assert len(key) == 16 and key.hex() == "94ca6cb178bcc49d9d8fdf1c0a17e432"
    # the defaults matter: read as SHA-256 (the eDelivery choice) the same key does not unwrap
    etree.SubElement(method, f"{{{ns.DS}}}DigestMethod", Algorithm=ns.SHA256)
    with pytest.raises(As4Error) as caught:
        decrypt_key(encrypted_key, c3)
    assert _failure(caught).message == KEY_FAILURE


def test_flame_envelope_without_its_parts_names_the_missing_one(samples, c3):
    """The published Flame message is the envelope only: the key unwraps, then the first payload is not there."""
    with pytest.raises(As4Error) as caught:
        decrypt(read_packet((samples / "as4net-as4_flame_envelope.as4").read_bytes()), c3)
    assert _failure(caught).message == "CipherReference 'cid:xmlpayload@minder' names no MIME part"
    assert caught.value.where == "xenc:EncryptedData[@Id='XWSSGID-1496415376817-179439787']"


@pytest.mark.parametrize("name, recipient", [
    ("phase4-dump-raw.as4out.eml", "CN=POP000306,OU=PEPPOL TEST AP,O=Helger IT Consulting GmbH,C=AT serial "
                                   "153091343950626366827949350472174601176 (0x732c5202b9ed5daa93769d8de81d03d8)"),
    ("as4net-rssbus_message.as4.mime", "CN=12xbkw-handel-test1,OU=MARKT,O=BKW Energie AG,C=CH serial "
                                       "443044220363811133130798 (0x5dd179ae00010001082e)"),
])
def test_peppol_and_entsog_messages_name_their_recipient(samples, access_point_b, name, recipient):
    with pytest.raises(As4Error) as caught:
        decrypt(read_packet((samples / name).read_bytes()), access_point_b)
    assert _failure(caught).message == (f"the message was encrypted for {recipient}, not for us "
                                        "(CN=AccessPointB serial 5956198424360021449 (0x52a8aae8dfb86dc9))")


def test_minder_message_is_for_another_as4_net_c3_key(samples, c3):
    """Same subject as our c3 store, but the 2017-11 certificate (another key): the BST names it, not us."""
    packet = read_packet((samples / "as4net-c3_minderreceiveagent_request.as4.mime").read_bytes())
    with pytest.raises(As4Error) as caught:
        decrypt(packet, c3)
    message = _failure(caught).message
    assert "encrypted for CN=as4-net-c3,OU=as4-net-c3,O=as4-net-c3,L=as4-net-c3,ST=as4-net-c3,C=EU serial 574098845 " \
           "(0x22380d9d), not for us" in message and "serial 950643864 (0x38a9ac98)" in message


def test_unencrypted_message_is_handed_back_as_is(samples, access_point_b):
    packet = read_packet((samples / "as4net-signed_holodeck_message.as4.mime").read_bytes())
    same, check = decrypt(packet, access_point_b)
    assert same is packet and check == DecryptionCheck() and not check.encrypted


@pytest.mark.parametrize("name, kind", [
    ("domibus-is_incoming_message.xml", "IssuerSerial"),
    ("domibus-ski_incoming_message.xml", "SKI"),
    ("domibus-bst_X509PKIPathv1_incoming_message.xml", "BST"),
])
def test_domibus_key_references_name_red_gw(samples, access_point_b, name, kind):
    """The red_gw private key is in a JKS store nothing installed reads; its certificate is public. With red_gw's
    certificate the reference matches and only the unwrap fails (AccessPointB's key); with ours it is not for us."""
    red_gw = load_certificates(samples / "keys/derived/domibus-red_gw.pem")[0]
    encrypted_key = _encrypted_key(parse_xml((samples / name).read_bytes()))
    with pytest.raises(As4Error) as caught:
        decrypt_key(encrypted_key, KeyPair(private_key=access_point_b.private_key, certificate=red_gw))
    assert _failure(caught).message == KEY_FAILURE
    with pytest.raises(As4Error) as caught:
        decrypt_key(encrypted_key, access_point_b)
    named = {"IssuerSerial": "issuer 'C=BE,O=eDelivery,CN=red_gw' serial 10922018999856918860",
             "SKI": "subject key identifier 7AJeAnEL5EE5l3lLc+EoFpOfJCo=",
             "BST": "C=BE,O=eDelivery,CN=red_gw serial 10922018999856918860 (0x9792ce69bc89f14c)"}[kind]
    assert _failure(caught).message.startswith(f"encrypted for {named}, not for us (CN=AccessPointB")


def test_pkipath_token_names_its_end_entity(samples, access_point_b):
    """Domibus references its signing key by an X509PKIPathv1 token (CA, ICA, leaf): pointed at from the
    EncryptedKey, the recipient is the last certificate of the path."""
    root = parse_xml((samples / "domibus-bst_X509PKIPathv1_incoming_message.xml").read_bytes())
    encrypted_key = _encrypted_key(root)
    encrypted_key.find(".//wsse:Reference", namespaces=XENC).set("URI", "#X509-5f905b9f-f1e2-4f05-8369-123f330455d1")
    with pytest.raises(As4Error) as caught:
        decrypt_key(encrypted_key, access_point_b)
    assert _failure(caught).message.startswith(
        "encrypted for CN=LEAF CERTIFICATE,O=EU.TEST,ST=BRUXELLES,C=BE serial 4096 (0x1000), not for us")


def test_oxalis_example_is_for_another_ski(samples, access_point_b):
    with pytest.raises(As4Error) as caught:
        decrypt_key(_encrypted_key(parse_xml((samples / "oxalis-eDeliveryAS4-example.xml").read_bytes())), access_point_b)
    assert _failure(caught).message.startswith("encrypted for subject key identifier 4vme0kfzKtcEqOZrJMlCYlohbxI=")


def test_encrypted_data_outside_the_reference_list_is_refused(holodeck_raw, access_point_b):
    raw = holodeck_raw.replace(b'<xenc:DataReference URI="#ED-501d4b2b-485d4c9d-4130-4851-92fe-2860758b0f6f"/>', b"")
    with pytest.raises(As4Error) as caught:
        decrypt(read_packet(raw), access_point_b)
    assert _failure(caught).where == "xenc:EncryptedData[@Id='ED-501d4b2b-485d4c9d-4130-4851-92fe-2860758b0f6f']"
    assert "not in the ReferenceList" in caught.value.message


def test_duplicate_ids_are_refused(holodeck_raw, access_point_b):
    raw = holodeck_raw.replace(b'<eb3:UserMessage>',
                               b'<eb3:UserMessage Id="ED-501d4b2b-485d4c9d-4130-4851-92fe-2860758b0f6f">')
    with pytest.raises(As4Error) as caught:
        decrypt(read_packet(raw), access_point_b)
    assert _failure(caught).message == "2 elements carry the Id 'ED-501d4b2b-485d4c9d-4130-4851-92fe-2860758b0f6f'"


def test_missing_part_and_bounds(holodeck_raw, access_point_b):
    packet = read_packet(holodeck_raw)
    with pytest.raises(As4Error) as caught:
        decrypt(replace(packet, attachments=packet.attachments[:1]), access_point_b)
    assert _failure(caught).message == f"CipherReference 'cid:{XML_CID}' names no MIME part"
    with pytest.raises(As4Error) as caught:
        decrypt(packet, access_point_b, max_size=296413 + 191)
    assert _failure(caught).message == f"the encrypted parts are more than {296413 + 191} bytes"
    with pytest.raises(As4Error) as caught:
        decrypt(packet, access_point_b, max_encrypted_data=1)
    assert _failure(caught).message == "2 xenc:EncryptedData elements, more than the 1 accepted"


def test_unknown_data_algorithm_is_named(holodeck_raw, access_point_b):
    raw = holodeck_raw.replace(b"http://www.w3.org/2009/xmlenc11#aes128-gcm", b"http://example.org/rot13", 1)
    with pytest.raises(As4Error) as caught:
        decrypt(read_packet(raw), access_point_b)
    assert "data encryption algorithm 'http://example.org/rot13' is not supported" in _failure(caught).message


# --- our own encryption ----------------------------------------------------------------------------------------------

def _identity(name: str, *, with_ski: bool = True) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"), x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
               .not_valid_after(now + timedelta(days=30)))
    if with_ski:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    return KeyPair(private_key=key, certificate=builder.sign(key, hashes.SHA256()))


@pytest.fixture(scope="module")
def recipient() -> KeyPair:
    return _identity("hub-as4-recipient")


@pytest.fixture(scope="module")
def stranger() -> KeyPair:
    return _identity("someone-else")


SIGNED_ENVELOPE = f"""<S12:Envelope xmlns:S12="{ns.S12}" xmlns:eb="{ns.EB}" xmlns:wsu="{ns.WSU}"><S12:Header>
<wsse:Security xmlns:wsse="{ns.WSSE}" S12:mustUnderstand="true"><wsse:BinarySecurityToken wsu:Id="X509-signer"
>AAAA</wsse:BinarySecurityToken><ds:Signature xmlns:ds="{ns.DS}" Id="SIG-1"/></wsse:Security>
<eb:Messaging wsu:Id="messaging" S12:mustUnderstand="true"/></S12:Header><S12:Body wsu:Id="body"/></S12:Envelope>"""
XML_PAYLOAD = b'<?xml version="1.0" encoding="UTF-8"?><SPSCertificate>\xc3\xa9t\xc3\xa9</SPSCertificate>'


def _attachments() -> tuple[Part, ...]:
    binary = gzip.compress(bytes(range(256)) * 300, mtime=0)
    return (Part(content_id="payload-1@hub.example", content_type="application/gzip",
                 headers=(("Content-Type", "application/gzip"), ("Content-Transfer-Encoding", "binary"),
                          ("Content-ID", "<payload-1@hub.example>")), data=binary),
            Part(content_id="payload-2@hub.example", content_type="application/xml; charset=UTF-8",
                 headers=(("Content-Type", "application/xml; charset=UTF-8"), ("Content-ID", "<payload-2@hub.example>"),
                          ("Content-Transfer-Encoding", "8bit")), data=XML_PAYLOAD))


def _on_the_wire(root, parts):
    body, content_type = write_packet(etree.tostring(root, xml_declaration=True, encoding="UTF-8"), parts)
    return read_packet(body, content_type)


@pytest.mark.parametrize("key_reference, expected", [("BST", "BST"), ("IssuerSerial", "IssuerSerial"), ("SKI", "SKI")])
def test_round_trip_for_each_key_reference(recipient, key_reference, expected):
    originals = _attachments()
    root, parts = encrypt(parse_xml(SIGNED_ENVELOPE), originals, recipient_certificate=recipient.certificate,
                          key_reference=key_reference)
    assert [part.content_type for part in parts] == ["application/octet-stream"] * 2
    assert [len(part.data) for part in parts] == [len(original.data) + 28 for original in originals]
    assert all(original.data not in part.data for original, part in zip(originals, parts))
    assert parts[1].header("Content-Transfer-Encoding") == "binary"
    packet = _on_the_wire(root, parts)
    decrypted, check = decrypt(packet, recipient)
    assert check.key_reference == expected
    assert (check.key_transport, check.digest_method, check.mgf) == (ns.RSA_OAEP, ns.SHA256, ns.MGF1_SHA256)
    assert [(p.content_id, p.content_type) for p in check.parts] == [
        ("payload-1@hub.example", "application/gzip"), ("payload-2@hub.example", "application/xml; charset=UTF-8")]
    assert [part.data for part in decrypted.attachments] == [original.data for original in originals]
    assert [part.content_type for part in decrypted.attachments] == ["application/gzip", "application/xml; charset=UTF-8"]


def test_encryption_comes_first_in_the_security_header(recipient):
    """As phase4/WSS4J write it: recipient token, EncryptedKey, EncryptedData…, then the signer's token and the
    signature that were already there."""
    root, _ = encrypt(parse_xml(SIGNED_ENVELOPE), _attachments(), recipient_certificate=recipient.certificate)
    security = root.find(".//wsse:Security", namespaces=XENC)
    names = [etree.QName(child).localname for child in security]
    assert names == ["BinarySecurityToken", "EncryptedKey", "EncryptedData", "EncryptedData", "BinarySecurityToken",
                     "Signature"]
    token, encrypted_key, first = security[0], security[1], security[2]
    reference = encrypted_key.find("ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", namespaces=XENC)
    assert reference.get("URI") == "#" + token.get(f"{{{ns.WSU}}}Id") and reference.get("ValueType") == ns.X509V3
    method = encrypted_key.find("xenc:EncryptionMethod", namespaces=XENC)
    assert [(etree.QName(child).localname, child.get("Algorithm")) for child in method] == [
        ("DigestMethod", ns.SHA256), ("MGF", ns.MGF1_SHA256)]
    assert encrypted_key.xpath("xenc:ReferenceList/xenc:DataReference/@URI", namespaces=XENC) == \
        ["#" + security[2].get("Id"), "#" + security[3].get("Id")]
    assert (first.get("Type"), first.get("MimeType")) == (ns.SWA_CONTENT_ONLY, "application/gzip")
    assert first.find("xenc:EncryptionMethod", namespaces=XENC).get("Algorithm") == ns.AES128_GCM
    cipher_reference = first.find("xenc:CipherData/xenc:CipherReference", namespaces=XENC)
    assert cipher_reference.get("URI") == "cid:payload-1@hub.example"
    assert cipher_reference.find("xenc:Transforms/ds:Transform", namespaces=XENC).get("Algorithm") == ns.SWA_CIPHERTEXT
    # the signed parts of the envelope are untouched, and the caller's tree too
    assert etree.tostring(root.find(f"{{{ns.S12}}}Body")) == etree.tostring(parse_xml(SIGNED_ENVELOPE)[1])


def test_security_header_is_created_when_absent(recipient):
    bare = parse_xml(f'<S12:Envelope xmlns:S12="{ns.S12}"><S12:Body/></S12:Envelope>')
    root, parts = encrypt(bare, _attachments()[:1], recipient_certificate=recipient.certificate, key_reference="SKI",
                          data_method=ns.AES256_GCM, key_transport=ns.RSA_OAEP_MGF1P, digest=ns.SHA1)
    assert len(bare) == 1  # the caller's envelope is not modified
    security = root.find("S12:Header/wsse:Security", namespaces=XENC)
    assert security.get(f"{{{ns.S12}}}mustUnderstand") == "true"
    decrypted, check = decrypt(_on_the_wire(root, parts), recipient)
    assert (check.key_transport, check.digest_method, check.mgf) == (ns.RSA_OAEP_MGF1P, ns.SHA1, ns.MGF1_SHA1)
    assert check.parts[0].algorithm == ns.AES256_GCM and decrypted.attachments[0].data == _attachments()[0].data


def test_ski_is_computed_for_a_certificate_without_the_extension(recipient):
    plain = _identity("no-ski", with_ski=False)
    root, parts = encrypt(parse_xml(SIGNED_ENVELOPE), _attachments(), recipient_certificate=plain.certificate,
                          key_reference="SKI")
    assert decrypt(_on_the_wire(root, parts), plain)[1].key_reference == "SKI"
    with pytest.raises(As4Error):
        decrypt(_on_the_wire(root, parts), recipient)


def test_another_recipient_cannot_decrypt(recipient, stranger):
    for key_reference in ("BST", "IssuerSerial", "SKI"):
        root, parts = encrypt(parse_xml(SIGNED_ENVELOPE), _attachments(), recipient_certificate=recipient.certificate,
                              key_reference=key_reference)
        with pytest.raises(As4Error) as caught:
            decrypt(_on_the_wire(root, parts), stranger)
        certificate = recipient.certificate
        named = {"BST": f"CN=hub-as4-recipient,C=FR serial {certificate.serial_number} ",
                 "IssuerSerial": f"issuer 'CN=hub-as4-recipient,C=FR' serial {certificate.serial_number}",
                 "SKI": "subject key identifier " + base64.b64encode(
                     certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest).decode()}
        assert _failure(caught).message.startswith(f"the message was encrypted for {named[key_reference]}")
        assert "not for us (CN=someone-else,C=FR serial" in caught.value.message
        # a stranger holding our certificate but not our key gets the one key-failure answer
        impostor = KeyPair(private_key=stranger.private_key, certificate=recipient.certificate)
        with pytest.raises(As4Error) as caught:
            decrypt(_on_the_wire(root, parts), impostor)
        assert _failure(caught).message == KEY_FAILURE


def _content_key_and_packet(recipient, *, type_=None, algorithm=None):
    root, parts = encrypt(parse_xml(SIGNED_ENVELOPE), _attachments()[1:], recipient_certificate=recipient.certificate)
    key = decrypt_key(root.find(".//xenc:EncryptedKey", namespaces=XENC), recipient)
    data = root.find(".//xenc:EncryptedData", namespaces=XENC)
    if type_:
        data.set("Type", type_)
    if algorithm:
        data.find("xenc:EncryptionMethod", namespaces=XENC).set("Algorithm", algorithm)
    return key, root, parts


def test_attachment_complete_restores_the_mime_headers(recipient):
    key, root, parts = _content_key_and_packet(recipient, type_=ns.SWA_COMPLETE)
    inner = (b"Content-Type: text/xml;\r\n charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
             b"Content-Description: phytosanitary certificate\r\n\r\n" + base64.encodebytes(XML_PAYLOAD))
    iv = b"\x01" * 12
    parts = (replace(parts[0], data=iv + AESGCM(key).encrypt(iv, inner, None)),)
    decrypted, check = decrypt(_on_the_wire(root, parts), recipient)
    part = decrypted.attachments[0]
    assert check.parts[0].type == ns.SWA_COMPLETE
    assert (part.content_type, part.data) == ("text/xml; charset=utf-8", XML_PAYLOAD)
    assert part.header("Content-Description") == "phytosanitary certificate"
    assert part.header("Content-ID") == "<payload-2@hub.example>"


def test_aes_cbc_is_read(recipient):
    key, root, parts = _content_key_and_packet(recipient, algorithm=AES128_CBC)
    padded = XML_PAYLOAD + bytes(15 - len(XML_PAYLOAD) % 16) + bytes([16 - len(XML_PAYLOAD) % 16])
    iv = b"\x02" * 16
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    parts = (replace(parts[0], data=iv + encryptor.update(padded) + encryptor.finalize()),)
    decrypted, check = decrypt(_on_the_wire(root, parts), recipient)
    assert check.parts[0].algorithm == AES128_CBC and decrypted.attachments[0].data == XML_PAYLOAD


def test_nothing_to_encrypt_leaves_the_envelope_alone(recipient):
    root, parts = encrypt(parse_xml(SIGNED_ENVELOPE), (), recipient_certificate=recipient.certificate)
    assert parts == () and root.find(".//xenc:EncryptedKey", namespaces=XENC) is None


def test_encrypt_refuses_what_it_must_not_write(recipient):
    envelope = parse_xml(SIGNED_ENVELOPE)
    for options in ({"data_method": AES128_CBC}, {"key_transport": "http://www.w3.org/2001/04/xmlenc#rsa-1_5"},
                    {"digest": "http://example.org/md5"}, {"key_reference": "Thumbprint"}):
        with pytest.raises(ConfigurationError):
            encrypt(envelope, _attachments(), recipient_certificate=recipient.certificate, **options)


def test_a_mime_type_that_would_break_the_headers_is_refused(recipient):
    root, parts = encrypt(parse_xml(SIGNED_ENVELOPE), _attachments()[:1], recipient_certificate=recipient.certificate)
    root.find(".//xenc:EncryptedData", namespaces=XENC).set("MimeType", "text/plain\r\nX-Injected: yes")
    with pytest.raises(As4Error) as caught:
        decrypt(_on_the_wire(root, parts), recipient)
    assert _failure(caught).message == "EncryptedData@MimeType 'text/plain\\r\\nX-Injected: yes' is not a media type"
