"""Resolving (and writing) WS-Security token references to X.509 certificates, telling certificates apart, and
checking a signer against trust anchors.

A signature's (or an ``xenc:EncryptedKey``'s) ``ds:KeyInfo`` names its key through a ``wsse:SecurityTokenReference`` (WSS X.509 Token Profile 1.1
§3.2), in one of the forms real AS4 traffic uses (FACTS.md § Security; all in samples/as4):

* ``wsse:Reference URI="#id"`` to a ``wsse:BinarySecurityToken`` in the message: ValueType ``#X509v3`` (one DER
  certificate: phase4, Holodeck, AS4.NET, RSSBus, Flame) or ``#X509PKIPathv1`` (a DER ``SEQUENCE OF Certificate``,
  issuer first, the signer LAST: Domibus) — ``"BST"`` / ``"PKIPath"``;
* ``ds:X509Data/ds:X509IssuerSerial`` — ``"IssuerSerial"``; ``wsse:KeyIdentifier`` ValueType
  ``#X509SubjectKeyIdentifier`` (or ``ds:X509Data/ds:X509SKI``) — ``"SKI"``; ``wsse:KeyIdentifier`` ValueType
  ``#ThumbprintSHA1`` — ``"Thumbprint"``. These carry no certificate: they are matched against the certificates the
  caller knows (its counterparts', its trust anchors);
* ``ds:X509Data/ds:X509Certificate`` inline (or a ``wsse:KeyIdentifier`` of ValueType ``#X509v3``) —
  ``"X509Certificate"``.

Nothing here raises for what a message says: an unresolvable reference is a :class:`ResolvedKey` with a reason.
The same vocabulary is written by :func:`binary_security_token` and :func:`write_token_reference` (signing and
encryption), and certificates are told apart by :func:`names_match`, :func:`subject_key_identifiers` and
:func:`same_public_key`, named in messages by :func:`describe_certificate`.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree

from connectors.as4 import ns
from connectors.as4.dsig import read_base64
from connectors.as4.quoting import split_outside_quotes

__all__ = ["ResolvedKey", "resolve_key_info", "check_trust", "parse_pkipath", "encode_pkipath", "subject_key_identifiers",
           "names_match", "same_public_key", "describe_certificate", "binary_security_token", "write_token_reference",
           "MAX_TOKEN_CHARS", "MAX_PKIPATH_CERTIFICATES"]

#: Largest BinarySecurityToken / KeyIdentifier text read (a PKIPath of a few certificates is ~10 kB).
MAX_TOKEN_CHARS = 256 * 1024
#: Most certificates accepted in a PKIPath, and longest chain walked to a trust anchor.
MAX_PKIPATH_CERTIFICATES = 16
MAX_CHAIN_LENGTH = 8
_DER = Encoding.DER

THUMBPRINT_SHA1 = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"

_STR = f"{{{ns.WSSE}}}SecurityTokenReference"
_WSSE_REFERENCE = f"{{{ns.WSSE}}}Reference"
_KEY_IDENTIFIER = f"{{{ns.WSSE}}}KeyIdentifier"
_BST = f"{{{ns.WSSE}}}BinarySecurityToken"
_X509_DATA = f"{{{ns.DS}}}X509Data"
_ISSUER_SERIAL = f"{{{ns.DS}}}X509IssuerSerial"
_ISSUER_NAME = f"{{{ns.DS}}}X509IssuerName"
_SERIAL_NUMBER = f"{{{ns.DS}}}X509SerialNumber"
_X509_SKI = f"{{{ns.DS}}}X509SKI"
_X509_CERTIFICATE = f"{{{ns.DS}}}X509Certificate"


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    """What a ``ds:KeyInfo`` names: the signer's certificate (None when it could not be found, ``reason`` says why),
    the kind of reference, the certificates of a PKIPath (issuer first, signer last) and the token's id. ``named``
    is what an IssuerSerial, SKI or thumbprint reference gives, in words (``issuer 'CN=…' serial 12``), found or not."""

    certificate: x509.Certificate | None
    key_reference: str
    chain: tuple[x509.Certificate, ...] = ()
    token_id: str | None = None
    reason: str | None = None
    named: str | None = None


def resolve_key_info(key_info: etree._Element | None, *, ids: Mapping[str, Sequence[etree._Element]],
                     candidates: Sequence[x509.Certificate] = ()) -> ResolvedKey:
    """The certificate ``key_info`` refers to.

    ``ids`` maps every id in the envelope (``wsu:Id``, ``Id``, ``id``) to the elements carrying it (a reference to
    an id carried twice is refused); ``candidates`` are the certificates an IssuerSerial, SKI or thumbprint reference
    is matched against.
    """
    if key_info is None:
        return ResolvedKey(None, "", reason="the signature has no ds:KeyInfo")
    token_reference = key_info.find(_STR)
    if token_reference is None:
        x509_data = key_info.find(_X509_DATA)
        if x509_data is not None:
            return _from_x509_data(x509_data, candidates)
        return ResolvedKey(None, "", reason="ds:KeyInfo holds neither a wsse:SecurityTokenReference nor ds:X509Data")
    reference = token_reference.find(_WSSE_REFERENCE)
    if reference is not None:
        return _from_token(reference, ids)
    identifier = token_reference.find(_KEY_IDENTIFIER)
    if identifier is not None:
        return _from_key_identifier(identifier, candidates)
    x509_data = token_reference.find(_X509_DATA)
    if x509_data is not None:
        return _from_x509_data(x509_data, candidates)
    children = ", ".join(_name(child) for child in token_reference if isinstance(child.tag, str)) or "nothing"
    return ResolvedKey(None, "", reason=f"wsse:SecurityTokenReference holds {children}: no supported token reference")


def _from_token(reference: etree._Element, ids: Mapping[str, Sequence[etree._Element]]) -> ResolvedKey:
    uri = (reference.get("URI") or "").strip()
    if not uri.startswith("#") or len(uri) < 2:
        return ResolvedKey(None, "BST", reason=f"wsse:Reference URI={uri!r} is not a reference to a token in the message")
    token_id = uri[1:]
    found = ids.get(token_id, ())
    if not found:
        return ResolvedKey(None, "BST", token_id=token_id, reason=f"wsse:Reference {uri}: no element has that id")
    if len(found) > 1:
        return ResolvedKey(None, "BST", token_id=token_id,
                           reason=f"wsse:Reference {uri}: {len(found)} elements carry that id (possible token substitution)")
    token = found[0]
    if token.tag != _BST:
        return ResolvedKey(None, "BST", token_id=token_id,
                           reason=f"wsse:Reference {uri} points at {_name(token)}, not a wsse:BinarySecurityToken")
    value_type = (token.get("ValueType") or ns.X509V3).strip()
    encoding = (token.get("EncodingType") or ns.BASE64_BINARY).strip()
    if encoding != ns.BASE64_BINARY:
        return ResolvedKey(None, "BST", token_id=token_id,
                           reason=f"BinarySecurityToken {uri}: EncodingType {encoding} is not supported")
    der, problem = read_base64(token.text, f"BinarySecurityToken {uri}", max_chars=MAX_TOKEN_CHARS)
    if der is None:
        return ResolvedKey(None, "BST", token_id=token_id, reason=problem)
    if value_type == ns.X509V3:
        try:
            return ResolvedKey(x509.load_der_x509_certificate(der), "BST", token_id=token_id)
        except ValueError as exc:
            return ResolvedKey(None, "BST", token_id=token_id,
                               reason=f"BinarySecurityToken {uri} is not a DER X.509 certificate: {exc}")
    if value_type == ns.X509_PKIPATH:
        try:
            chain = parse_pkipath(der)
        except ValueError as exc:
            return ResolvedKey(None, "PKIPath", token_id=token_id,
                               reason=f"BinarySecurityToken {uri} (X509PKIPathv1): {exc}")
        return ResolvedKey(chain[-1], "PKIPath", chain=chain, token_id=token_id)
    return ResolvedKey(None, "BST", token_id=token_id,
                       reason=f"BinarySecurityToken {uri}: ValueType {value_type} is not supported")


def _from_key_identifier(identifier: etree._Element, candidates: Sequence[x509.Certificate]) -> ResolvedKey:
    value_type = (identifier.get("ValueType") or "").strip()
    encoding = (identifier.get("EncodingType") or ns.BASE64_BINARY).strip()
    kind = {ns.X509_SKI: "SKI", THUMBPRINT_SHA1: "Thumbprint", ns.X509V3: "X509Certificate"}.get(value_type)
    if kind is None:
        return ResolvedKey(None, "", reason=f"wsse:KeyIdentifier ValueType {value_type or '(none)'} is not supported")
    if encoding != ns.BASE64_BINARY:
        return ResolvedKey(None, kind, reason=f"wsse:KeyIdentifier EncodingType {encoding} is not supported")
    value, problem = read_base64(identifier.text, f"wsse:KeyIdentifier ({kind})", max_chars=MAX_TOKEN_CHARS)
    if value is None:
        return ResolvedKey(None, kind, reason=problem)
    if kind == "SKI":
        return _match_ski(value, candidates)
    if kind == "X509Certificate":
        return _inline_certificate(value, "wsse:KeyIdentifier (X509v3)")
    named = f"SHA-1 thumbprint {base64.b64encode(value).decode()}"
    for certificate in candidates:
        if hashlib.sha1(certificate.public_bytes(_DER)).digest() == value:
            return ResolvedKey(certificate, kind, named=named)
    return ResolvedKey(None, kind, named=named, reason=f"wsse:KeyIdentifier ThumbprintSHA1 {value.hex()} matches none "
                                                       f"of the {len(candidates)} known certificates")


def _from_x509_data(x509_data: etree._Element, candidates: Sequence[x509.Certificate]) -> ResolvedKey:
    issuer_serial = x509_data.find(_ISSUER_SERIAL)
    if issuer_serial is not None:
        return _match_issuer_serial(issuer_serial, candidates)
    ski = x509_data.find(_X509_SKI)
    if ski is not None:
        value, problem = read_base64(ski.text, "ds:X509SKI", max_chars=MAX_TOKEN_CHARS)
        return _match_ski(value, candidates) if value is not None else ResolvedKey(None, "SKI", reason=problem)
    inline = x509_data.find(_X509_CERTIFICATE)
    if inline is not None:
        der, problem = read_base64(inline.text, "ds:X509Certificate", max_chars=MAX_TOKEN_CHARS)
        if der is None:
            return ResolvedKey(None, "X509Certificate", reason=problem)
        return _inline_certificate(der, "ds:X509Certificate")
    return ResolvedKey(None, "", reason="ds:X509Data holds no X509IssuerSerial, X509SKI or X509Certificate")


def _inline_certificate(der: bytes, what: str) -> ResolvedKey:
    try:
        return ResolvedKey(x509.load_der_x509_certificate(der), "X509Certificate")
    except ValueError as exc:
        return ResolvedKey(None, "X509Certificate", reason=f"{what} is not a DER X.509 certificate: {exc}")


def _match_issuer_serial(issuer_serial: etree._Element, candidates: Sequence[x509.Certificate]) -> ResolvedKey:
    issuer = " ".join((issuer_serial.findtext(_ISSUER_NAME) or "").split())
    serial_text = (issuer_serial.findtext(_SERIAL_NUMBER) or "").strip()
    if not issuer or not serial_text.isdigit() or len(serial_text) > 60:
        return ResolvedKey(None, "IssuerSerial", reason=f"ds:X509IssuerSerial is incomplete or malformed "
                                                        f"(issuer {issuer!r}, serial {serial_text[:60]!r})")
    serial = int(serial_text)
    named = f"issuer {issuer!r} serial {serial}"
    for certificate in candidates:
        if certificate.serial_number == serial and names_match(issuer, certificate.issuer):
            return ResolvedKey(certificate, "IssuerSerial", named=named)
    return ResolvedKey(None, "IssuerSerial", named=named, reason=f"ds:X509IssuerSerial (issuer {issuer}, serial {serial}) "
                                                                 f"matches none of the {len(candidates)} known certificates")


def _match_ski(value: bytes, candidates: Sequence[x509.Certificate]) -> ResolvedKey:
    named = f"subject key identifier {base64.b64encode(value).decode()}"
    for certificate in candidates:
        if value in subject_key_identifiers(certificate):
            return ResolvedKey(certificate, "SKI", named=named)
    return ResolvedKey(None, "SKI", named=named, reason=f"{named} matches none of the {len(candidates)} known certificates")


# --- telling certificates apart ---------------------------------------------------------------------------------------

def subject_key_identifiers(certificate: x509.Certificate) -> tuple[bytes, ...]:
    """The identifiers a ``#X509SubjectKeyIdentifier`` reference may carry: the certificate's SubjectKeyIdentifier
    extension value first, then the SHA-1 of its public key (RFC 5280 §4.2.1.2 method 1), which WSS4J uses when the
    extension is absent."""
    found: list[bytes] = []
    try:
        found.append(certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)
    except (x509.ExtensionNotFound, ValueError):
        pass
    try:
        computed = x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest
    except (ValueError, TypeError, UnsupportedAlgorithm):
        computed = None
    if computed is not None and computed not in found:
        found.append(computed)
    return tuple(found)


def same_public_key(first: x509.Certificate, second: x509.Certificate) -> bool:
    """Whether two certificates certify the same public key (a renewed certificate may keep its key)."""
    return _spki(first) is not None and _spki(first) == _spki(second)


def _spki(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.public_key().public_bytes(_DER, PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # a key type someone else chose that we cannot read
        return None


def describe_certificate(certificate: x509.Certificate) -> str:
    """Subject and serial number, as error messages name a certificate."""
    return f"{certificate.subject.rfc4514_string()} serial {certificate.serial_number} ({certificate.serial_number:#x})"


# --- writing token references (the forms read above) -----------------------------------------------------------------

def binary_security_token(certificate: x509.Certificate, token_id: str, *,
                          chain: Sequence[x509.Certificate] | None = None) -> etree._Element:
    """A ``wsse:BinarySecurityToken`` with ``wsu:Id`` ``token_id``: ``certificate`` (X509v3), or with ``chain`` given
    (issuer first) the PKIPath of ``chain`` + ``certificate`` (X509PKIPathv1)."""
    token = etree.Element(_BST, nsmap={"wsse": ns.WSSE, "wsu": ns.WSU}, EncodingType=ns.BASE64_BINARY,
                          ValueType=ns.X509V3 if chain is None else ns.X509_PKIPATH)
    token.set(f"{{{ns.WSU}}}Id", token_id)
    der = certificate.public_bytes(_DER) if chain is None else encode_pkipath([*chain, certificate])
    token.text = base64.b64encode(der).decode("ascii")
    return token


def write_token_reference(key_info: etree._Element, kind: str, certificate: x509.Certificate, *,
                          token_id: str | None = None, reference_id: str | None = None) -> etree._Element:
    """Append to ``key_info`` the ``wsse:SecurityTokenReference`` (with ``wsu:Id`` ``reference_id`` when given) that
    names ``certificate`` as ``kind`` says: ``"BST"``/``"PKIPath"`` a ``wsse:Reference`` to the token ``token_id``,
    ``"IssuerSerial"`` its issuer and serial number, ``"SKI"`` its subject key identifier."""
    token_reference = etree.SubElement(key_info, _STR)
    if reference_id is not None:
        token_reference.set(f"{{{ns.WSU}}}Id", reference_id)
    if kind in ("BST", "PKIPath"):
        etree.SubElement(token_reference, _WSSE_REFERENCE, URI=f"#{token_id}",
                         ValueType=ns.X509V3 if kind == "BST" else ns.X509_PKIPATH)
    elif kind == "IssuerSerial":
        x509_data = etree.SubElement(token_reference, _X509_DATA, nsmap={"ds": ns.DS})
        issuer_serial = etree.SubElement(x509_data, _ISSUER_SERIAL)
        etree.SubElement(issuer_serial, _ISSUER_NAME).text = certificate.issuer.rfc4514_string()
        etree.SubElement(issuer_serial, _SERIAL_NUMBER).text = str(certificate.serial_number)
    elif kind == "SKI":
        identifier = etree.SubElement(token_reference, _KEY_IDENTIFIER, EncodingType=ns.BASE64_BINARY,
                                      ValueType=ns.X509_SKI)
        identifier.text = base64.b64encode(subject_key_identifiers(certificate)[0]).decode("ascii")
    else:
        raise ValueError(f"key reference {kind!r} is not one of BST, PKIPath, IssuerSerial, SKI")
    return token_reference


# --- PKIPath (WSS X.509 Token Profile §3.1: PkiPath, a DER SEQUENCE OF Certificate) ----------------------------------

def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def parse_pkipath(der: bytes, *, max_certificates: int = MAX_PKIPATH_CERTIFICATES) -> tuple[x509.Certificate, ...]:
    """The certificates of a PKIPath, in its order (issuer first, end entity last). Raises ValueError saying what is
    wrong."""
    tag, start, end = _tlv(der, 0)
    if tag != 0x30:
        raise ValueError("not a DER SEQUENCE of certificates")
    if end != len(der):
        raise ValueError("trailing bytes after the PkiPath")
    certificates = []
    pos = start
    while pos < end:
        _, _, item_end = _tlv(der, pos)
        if len(certificates) == max_certificates:
            raise ValueError(f"more than {max_certificates} certificates")
        certificates.append(x509.load_der_x509_certificate(der[pos:item_end]))
        pos = item_end
    if not certificates:
        raise ValueError("no certificate")
    return tuple(certificates)


def encode_pkipath(certificates: Sequence[x509.Certificate]) -> bytes:
    """The DER PKIPath of ``certificates`` (give them issuer first, end entity last)."""
    content = b"".join(certificate.public_bytes(_DER) for certificate in certificates)
    length = len(content)
    if length < 0x80:
        header = bytes([0x30, length])
    else:
        size = (length.bit_length() + 7) // 8
        header = bytes([0x30, 0x80 | size]) + length.to_bytes(size, "big")
    return header + content


# --- distinguished names (RFC 4514 strings as X509IssuerName carries them) -------------------------------------------

_KEYWORDS = {
    "CN": "2.5.4.3", "C": "2.5.4.6", "L": "2.5.4.7", "ST": "2.5.4.8", "S": "2.5.4.8", "O": "2.5.4.10", "OU": "2.5.4.11",
    "STREET": "2.5.4.9", "T": "2.5.4.12", "TITLE": "2.5.4.12", "SN": "2.5.4.4", "SURNAME": "2.5.4.4",
    "G": "2.5.4.42", "GN": "2.5.4.42", "GIVENNAME": "2.5.4.42", "SERIALNUMBER": "2.5.4.5", "POSTALCODE": "2.5.4.17",
    "DNQUALIFIER": "2.5.4.46", "ORGANIZATIONIDENTIFIER": "2.5.4.97", "DC": "0.9.2342.19200300.100.1.25",
    "UID": "0.9.2342.19200300.100.1.1", "E": "1.2.840.113549.1.9.1", "EMAIL": "1.2.840.113549.1.9.1",
    "EMAILADDRESS": "1.2.840.113549.1.9.1",
}
_STRING_TAGS = {0x0C: "utf-8", 0x13: "latin-1", 0x16: "latin-1", 0x14: "latin-1", 0x1A: "latin-1",
                0x1E: "utf-16-be", 0x1C: "utf-32-be"}

_Rdn = frozenset[tuple[str, str]]


def names_match(text: str, name: x509.Name) -> bool:
    """Whether the RFC 4514 (or RFC 2253/1779, as Java and .NET write them) string ``text`` names ``name``: same
    attributes, values compared case- and white-space-insensitively, the order of RDNs ignored (some writers
    reverse it)."""
    parsed = _parse_dn(text)
    if parsed is None:
        return " ".join(text.split()).casefold() == " ".join(name.rfc4514_string().split()).casefold()
    return Counter(parsed) == Counter(_name_rdns(name))


def _normal(value: str) -> str:
    return " ".join(value.split()).casefold()


def _name_rdns(name: x509.Name) -> list[_Rdn]:
    def text(value: str | bytes) -> str:
        return value if isinstance(value, str) else value.decode("latin-1")

    return [frozenset((attribute.oid.dotted_string, _normal(text(attribute.value))) for attribute in rdn) for rdn in name.rdns]


def _parse_dn(text: str) -> list[_Rdn] | None:
    rdn_texts, balanced = split_outside_quotes(text, ",;")
    if not balanced:
        return None
    rdns = []
    for rdn_text in rdn_texts:
        avas, balanced = split_outside_quotes(rdn_text, "+")
        if not balanced:
            return None
        rdn = set()
        for ava in avas:
            if "=" not in ava:
                return None
            key, value = ava.split("=", 1)
            key = key.strip()
            if key.upper().startswith("OID."):
                key = key[4:]
            oid = _KEYWORDS.get(key.upper()) or (key if key.replace(".", "").isdigit() and "." in key else None)
            decoded = _dn_value(value.strip())
            if oid is None or decoded is None:
                return None
            rdn.add((oid, _normal(decoded)))
        rdns.append(frozenset(rdn))
    return rdns


def _dn_value(value: str) -> str | None:
    if value.startswith("#"):
        try:
            der = bytes.fromhex(value[1:])
            tag, start, end = _tlv(der, 0)
        except ValueError:
            return None
        encoding = _STRING_TAGS.get(tag)
        return der[start:end].decode(encoding, errors="replace") if encoding else None
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    out = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            pair = value[index + 1:index + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out.append(int(pair, 16))
                index += 3
                continue
            out.extend(value[index + 1].encode("utf-8"))
            index += 2
            continue
        out.extend(char.encode("utf-8"))
        index += 1
    return out.decode("utf-8", errors="replace")


# --- trust -----------------------------------------------------------------------------------------------------------

def check_trust(certificate: x509.Certificate, *, trusted: Sequence[x509.Certificate],
                intermediates: Sequence[x509.Certificate] = (), now: datetime | None = None) -> tuple[bool, str | None]:
    """Whether ``certificate`` is one of ``trusted`` (same SHA-256 fingerprint) or chains to one through
    ``intermediates`` (CA certificates, at most :data:`MAX_CHAIN_LENGTH` deep), every certificate on the way being
    valid at ``now`` and each signature verified. Returns (trusted, reason when not)."""
    moment = now or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    anchors = {anchor.fingerprint(hashes.SHA256()): anchor for anchor in trusted}
    path = _path_to_anchor(certificate, anchors, intermediates)
    if path is None:
        # Who signed comes first: an untrusted signer is named as such even when its certificate has also expired.
        return False, (f"the signer {certificate.subject.rfc4514_string()} (issuer {certificate.issuer.rfc4514_string()}, "
                       f"serial {certificate.serial_number}) is neither a trusted certificate nor issued by one")
    for link in path:
        expired = _outside_validity(link, moment)
        if expired:
            return False, expired
    return True, None


def _path_to_anchor(certificate: x509.Certificate, anchors: dict, intermediates: Sequence[x509.Certificate]) -> list[x509.Certificate] | None:
    """The certificates from ``certificate`` to a trust anchor (the anchor included), or None."""
    current, path = certificate, [certificate]
    seen = {certificate.fingerprint(hashes.SHA256())}
    for _ in range(MAX_CHAIN_LENGTH):
        if current.fingerprint(hashes.SHA256()) in anchors:
            return path
        for anchor in anchors.values():
            if _issued_by(current, anchor):
                return [*path, anchor]
        parent = next((candidate for candidate in intermediates
                       if candidate.fingerprint(hashes.SHA256()) not in seen and _is_ca(candidate)
                       and _issued_by(current, candidate)), None)
        if parent is None:
            return None
        seen.add(parent.fingerprint(hashes.SHA256()))
        current = parent
        path.append(parent)
    return None


def _outside_validity(certificate: x509.Certificate, moment: datetime) -> str | None:
    if certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc:
        return None
    return (f"certificate {certificate.subject.rfc4514_string()} is valid from {certificate.not_valid_before_utc:%Y-%m-%d} "
            f"to {certificate.not_valid_after_utc:%Y-%m-%d}, not at {moment:%Y-%m-%d %H:%M}")


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _name(element: etree._Element) -> str:
    qname = etree.QName(element)
    prefix = element.prefix
    return f"{prefix}:{qname.localname}" if prefix else qname.localname
