"""Generators of hostile bodies: XML that attacks the parser, signatures that lie, certificates that should sign
nothing, JSON that attacks the reader, and the good documents they are made from.

Everything is built when a test asks, from the worked examples of ``mappings/`` and the development PKI of the test
session (``tests/conftest.py``); nothing is read from the network, and the URLs a payload points at are the
loopback address of a :class:`Canary` that counts who calls it.
"""

from __future__ import annotations

import copy
import itertools
import json
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree
from signxml import XMLSigner

from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml
from hub.namespaces import RSM_SPS_ACKNOWLEDGEMENT, XMLDSIG
from hub.signing import KeyKind, Signer
from hub.signing.policy import EXCLUSIVE_C14N
from tests.support.broker import example_record

DS = {"ds": XMLDSIG}
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
SHA1_SIGNATURE = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA1_DIGEST = "http://www.w3.org/2000/09/xmldsig#sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

_numbers = itertools.count(1)


def fresh_number(prefix: str = "FR-2026-HX") -> str:
    """A certificate number no other case of the session uses."""
    return f"{prefix}-{next(_numbers):06d}"


# --- good documents, the raw material ---------------------------------------------------------------------------------


def record(**changes) -> dict:
    """The worked phytosanitary certificate (FR → EC) under a fresh number, with ``changes``."""
    return example_record(**{"certificate_number": fresh_number(), **copy.deepcopy(changes)})


def unsigned_xml(*, number: str | None = None, exporting: str = "FR", importing: str = "EC", **changes) -> bytes:
    """The worked certificate rendered by the hub as unsigned SPSCertificate XML, issued by ``exporting``."""
    data = record(certificate_number=number or fresh_number(), **changes)
    data.pop("issuer", None)
    data["consignment"].update(export_country={"id": exporting}, import_country={"id": importing})
    return to_xml(render_certificate(record_from_data(data)).root)


def record_body(data: dict) -> bytes:
    return json.dumps(data).encode()


# --- XML that attacks the parser ----------------------------------------------------------------------------------------


def xxe_file(path: str = "/etc/passwd") -> bytes:
    return (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{path}">]>'
            f'<rsm:SPSCertificate xmlns:rsm="urn:un:unece:uncefact:data:standard:SPSCertificate:17">&x;</rsm:SPSCertificate>').encode()


def xxe_network(url: str) -> bytes:
    return (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "{url}">]>'
            f'<rsm:SPSCertificate xmlns:rsm="urn:un:unece:uncefact:data:standard:SPSCertificate:17">&x;</rsm:SPSCertificate>').encode()


def xxe_parameter(url: str) -> bytes:
    """A parameter entity fetching a remote DTD (the out-of-band exfiltration pattern)."""
    return f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "{url}"> %p;]><r>x</r>'.encode()


def external_dtd(url: str) -> bytes:
    return f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "{url}"><r>x</r>'.encode()


def billion_laughs(levels: int = 10) -> bytes:
    entities = ['<!ENTITY l0 "lol">'] + [f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, levels)]
    return f'<?xml version="1.0"?><!DOCTYPE r [{"".join(entities)}]><r>&l{levels - 1};</r>'.encode()


def quadratic_blowup(size: int = 50_000, references: int = 2_000) -> bytes:
    return (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "{"A" * size}">]><r>{"&a;" * references}</r>').encode()


def in_utf16(document: bytes) -> bytes:
    """``document`` re-encoded in UTF-16 (with its BOM and a matching declaration): byte-level filters see nothing."""
    text = document.decode("utf-8").replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>', 1)
    return text.encode("utf-16")


def xinclude(url: str, valid: bytes) -> bytes:
    """A valid certificate whose consignor name is an XInclude of ``url``."""
    root = etree.fromstring(valid)
    name = root.find(f".//{{{RAM}}}ConsignorSPSParty/{{{RAM}}}Name")
    name.text = None
    etree.SubElement(name, "{http://www.w3.org/2001/XInclude}include", href=url, parse="text")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def schema_location(url: str, valid: bytes) -> bytes:
    """A valid certificate naming a remote schema in ``xsi:schemaLocation``."""
    root = etree.fromstring(valid)
    root.set("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation", f"{etree.QName(root).namespace} {url}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def deep_xml(depth: int = 5_000) -> bytes:
    return b"<r>" + b"<a>" * depth + b"</a>" * depth + b"</r>"


def with_markup_in_number(document: bytes, number: str, markup: str) -> bytes:
    """The certificate number ``number`` in ``document`` with ``markup`` (a comment or a processing instruction)
    spliced into its text: ``FR-…<!--x-->02``."""
    head, tail = number[:-2], number[-2:]
    return document.replace(f">{number}<".encode(), f">{head}{markup}{tail}<".encode(), 1)


# --- signatures that lie ------------------------------------------------------------------------------------------------


def serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _split(signed: bytes) -> tuple[etree._Element, etree._Element, etree._Element]:
    """(forged copy without signature, the genuine signature, the genuine content without its signature)."""
    genuine = etree.fromstring(signed)
    signature = genuine.find("ds:Signature", DS)
    genuine.remove(signature)
    forged = copy.deepcopy(genuine)
    forged.find(f".//{{{RAM}}}ID").text = "FR-2026-FORGED-0001"
    return forged, signature, genuine


def wrapped_in_forged_root(signed: bytes) -> bytes:
    """XSW: the signed original moved into a wrapper inside a forged copy that carries the genuine signature."""
    forged, signature, genuine = _split(signed)
    etree.SubElement(forged, "{urn:example:attacker}Wrapper").append(genuine)
    forged.append(signature)
    return serialize(forged)


def hidden_in_signature_object(signed: bytes) -> bytes:
    """XSW: the signed original hidden in a ds:Object of the genuine signature, on a forged copy."""
    forged, signature, genuine = _split(signed)
    etree.SubElement(signature, f"{{{XMLDSIG}}}Object").append(genuine)
    forged.append(signature)
    return serialize(forged)


def nested_whole(signed: bytes) -> bytes:
    """XSW: the whole signed document nested below a forged root without a signature of its own."""
    forged, _, _ = _split(signed)
    forged.append(etree.fromstring(signed))
    return serialize(forged)


def duplicated_signature(signed: bytes) -> bytes:
    root = etree.fromstring(signed)
    root.append(copy.deepcopy(root.find("ds:Signature", DS)))
    return serialize(root)


def second_signature(signed: bytes, attacker: Signer) -> bytes:
    """A forged copy signed by ``attacker``, with the genuine signature added beside the attacker's."""
    forged, signature, _ = _split(signed)
    attacked = etree.fromstring(attacker.sign(forged))
    attacked.append(signature)
    return serialize(attacked)


def reference_to_id(provider, document: bytes) -> bytes:
    """Signed with ``ds:Reference URI="#signed"`` pointing at one element (``Id="signed"``) rather than the whole
    document, and a second element carrying the same ``Id`` (duplicate IDs)."""
    root = etree.fromstring(document)
    target = root.find(f".//{{{RAM}}}ConsignorSPSParty")
    target.set("Id", "signed")
    signed = XMLSigner(c14n_algorithm=EXCLUSIVE_C14N).sign(root, key=provider.private_key, cert=[provider.certificate], reference_uri="signed")
    twin = copy.deepcopy(signed.find(f".//{{{RAM}}}ConsignorSPSParty"))
    signed.find(f".//{{{RAM}}}ConsigneeSPSParty").addnext(twin)
    return serialize(signed)


def appended_after_signing(signed: bytes) -> bytes:
    """An element added to the signed document after its signature (outside nothing: the digest must break)."""
    root = etree.fromstring(signed)
    root.insert(0, etree.Element("{urn:example:attacker}Extra"))
    return serialize(root)


def tampered_value(signed: bytes) -> bytes:
    """A value changed after signing (the net weight)."""
    assert b"18500" in signed
    return signed.replace(b"18500", b"28500", 1)


def tampered_signature_value(signed: bytes) -> bytes:
    root = etree.fromstring(signed)
    value = root.find("ds:Signature/ds:SignatureValue", DS)
    value.text = value.text.strip()[:-8] + "AAAAAAA="
    return serialize(root)


class _LegacySigner(XMLSigner):
    """signxml refuses SHA-1 and short keys itself; a legacy counterpart would not."""

    def check_deprecated_methods(self) -> None:
        pass


def legacy_signed(provider, document: bytes, *, signature: str = SHA1_SIGNATURE, digest: str = SHA1_DIGEST) -> bytes:
    """``document`` signed as a legacy system would: SHA-1 (or the algorithms given), the whole document."""
    signer = _LegacySigner(signature_algorithm=signature, digest_algorithm=digest, c14n_algorithm=EXCLUSIVE_C14N)
    root = etree.fromstring(document)
    return serialize(signer.sign(root, key=provider.private_key, cert=[provider.certificate]))


# --- certificates that should sign nothing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedKey:
    """A signing identity made for one case (a :class:`~hub.signing.KeyProvider`)."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    key_kind: KeyKind = KeyKind.RSA


def issue(pki, *, country: str = "FR", days: tuple[int, int] = (-1, 365), key_bits: int = 2048, usage: str = "signing",
          self_signed: bool = False) -> IssuedKey:
    """A certificate for ``country``'s NPPO issued by the development CA of ``pki`` (or by itself), valid from
    ``days[0]`` to ``days[1]`` days from now; ``usage`` is ``signing`` (digitalSignature), ``encipher`` (keyEncipherment
    only), ``ca`` (a CA certificate: keyCertSign only), ``email`` (digitalSignature, ExtendedKeyUsage emailProtection
    and clientAuth) or ``code-signing`` (digitalSignature, ExtendedKeyUsage codeSigning and timeStamping)."""
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{country} issuing authority (hostile corpus)"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{country} NPPO signing ({usage}, {days[0]}..{days[1]} days)")])
    issuer, signing_key = (subject, key) if self_signed else (ca_cert.subject, ca_key)
    now = datetime.now(timezone.utc)
    flags = dict.fromkeys(["digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
                           "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"], False)
    flags.update({"signing": {"digital_signature": True, "content_commitment": True}, "encipher": {"key_encipherment": True},
                  "ca": {"key_cert_sign": True, "crl_sign": True}, "email": {"digital_signature": True},
                  "code-signing": {"digital_signature": True}}[usage])
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=days[0])).not_valid_after(now + timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=usage == "ca", path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**flags), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
    )
    if usage == "email":
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if usage == "code-signing":
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.TIME_STAMPING]), critical=False)
    return IssuedKey(key, builder.sign(signing_key, hashes.SHA256()))


def crl_revoking(pki, certificate: x509.Certificate) -> bytes:
    """A CRL of the development CA revoking ``certificate`` (PEM)."""
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    now = datetime.now(timezone.utc)
    revoked = x509.RevokedCertificateBuilder().serial_number(certificate.serial_number).revocation_date(now - timedelta(minutes=1)).build()
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject).last_update(now - timedelta(minutes=1))
           .next_update(now + timedelta(days=7)).add_revoked_certificate(revoked).sign(ca_key, hashes.SHA256()))
    return crl.public_bytes(serialization.Encoding.PEM)


# --- acknowledgements -------------------------------------------------------------------------------------------------


def acknowledgement(*, message_id: str | None, certificate_number: str | None, status: str = "41", reason: str = "[BAD] refused") -> bytes:
    """An unsigned ``SPSAcknowledgement`` (41: rejected) naming a message and/or a certificate."""
    references = ""
    if certificate_number is not None:
        references += f"<ram:ReferenceSPSReferencedDocument><ram:TypeCode>851</ram:TypeCode><ram:ID>{certificate_number}</ram:ID></ram:ReferenceSPSReferencedDocument>"
    if message_id is not None:
        references += ("<ram:ReferenceSPSReferencedDocument><ram:TypeCode>851</ram:TypeCode><ram:RelationshipTypeCode>ACW</ram:RelationshipTypeCode>"
                       f"<ram:ID>{message_id}</ram:ID></ram:ReferenceSPSReferencedDocument>")
    return (f'<?xml version="1.0" encoding="UTF-8"?><rsm:SPSAcknowledgement xmlns:rsm="{RSM_SPS_ACKNOWLEDGEMENT}" xmlns:ram="{RAM}" '
            f'xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21"><rsm:SPSAcknowledgementDocument>'
            f"<ram:IssueDateTime><udt:DateTime>2026-01-01T00:00:00+00:00</udt:DateTime></ram:IssueDateTime>"
            f"<ram:StatusCode>{status}</ram:StatusCode><ram:ReasonInformation>{reason}</ram:ReasonInformation>{references}"
            f"</rsm:SPSAcknowledgementDocument></rsm:SPSAcknowledgement>").encode()


# --- JSON that attacks the reader ---------------------------------------------------------------------------------------


def deep_json(depth: int = 5_000, *, opener: str = "[", closer: str = "]") -> bytes:
    return (opener * depth + closer * depth).encode()


def deep_objects(depth: int = 5_000) -> bytes:
    return ('{"a":' * depth + "1" + "}" * depth).encode()


def record_with_raw(field_path: str, raw_json_string: str) -> bytes:
    """A record whose string at ``field_path`` (dotted, with list indexes) is replaced by ``raw_json_string`` (already
    JSON-escaped, e.g. ``"FR\\u0000"``): escapes like lone surrogates survive only written raw."""
    data = record()
    marker = "@@HOSTILE@@"
    node = data
    parts = field_path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if last.isdigit():
        node[int(last)] = marker
    else:
        node[last] = marker
    return json.dumps(data).replace(f'"{marker}"', raw_json_string).encode()


# --- a canary on loopback: does anything call out? -----------------------------------------------------------------------


@dataclass
class Canary:
    """A TCP listener on a free loopback port, counting connections: the URL hostile payloads point at. Nothing may
    ever connect to it."""

    hits: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(8)
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"canary-{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/evil"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(0.5)
                try:
                    self.hits.append(connection.recv(4096))
                except OSError:
                    self.hits.append(b"")
                connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nCANARY-WAS-READ")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._socket.close()
