"""XML Signature and WS-Security plumbing shared by signature verification (:mod:`connectors.as4.signature`), signing
(:mod:`connectors.as4.signing`) and encryption (:mod:`connectors.as4.encryption`): the algorithm URIs and what each
means, canonicalization, digests, the id index that same-document references are resolved through, base64 read from
a message, and the ``wsse:Security`` header block.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from lxml import etree

from connectors.as4 import ns

__all__ = ["C14N", "DIGESTS", "WEAK_DIGESTS", "SIGNATURE_METHODS", "canonical", "prefix_list", "digest", "index_ids",
           "read_base64", "security_header", "SECURITY", "EB_MESSAGING"]

C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_10_COMMENTS = C14N_10 + "#WithComments"
EXC_C14N_COMMENTS = ns.EXC_C14N + "WithComments"
ENVELOPED_SIGNATURE = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA224 = "http://www.w3.org/2001/04/xmldsig-more#sha224"
RSA_SHA224 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha224"
_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
ECDSA_SHA1, ECDSA_SHA224, ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512 = (
    _MORE + "ecdsa-sha1", _MORE + "ecdsa-sha224", _MORE + "ecdsa-sha256", _MORE + "ecdsa-sha384", _MORE + "ecdsa-sha512")
EDDSA_ED25519 = "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519"

#: canonicalization URI → (exclusive, with comments)
C14N = {ns.EXC_C14N: (True, False), EXC_C14N_COMMENTS: (True, True),
        C14N_10: (False, False), C14N_10_COMMENTS: (False, True)}
#: digest URI → hash algorithm (XMLDSig DigestMethod, and the RSA-OAEP DigestMethod of XML Encryption)
DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    ns.SHA1: hashes.SHA1, SHA224: hashes.SHA224, ns.SHA256: hashes.SHA256, ns.SHA384: hashes.SHA384,
    ns.SHA512: hashes.SHA512}
#: digests read but never written, and that mark a signature weak
WEAK_DIGESTS = frozenset({ns.SHA1})
#: signature URI → (key family, hash, weak)
SIGNATURE_METHODS: dict[str, tuple[str, hashes.HashAlgorithm | None, bool]] = {
    ns.RSA_SHA1: ("rsa", hashes.SHA1(), True), RSA_SHA224: ("rsa", hashes.SHA224(), False),
    ns.RSA_SHA256: ("rsa", hashes.SHA256(), False), ns.RSA_SHA384: ("rsa", hashes.SHA384(), False),
    ns.RSA_SHA512: ("rsa", hashes.SHA512(), False),
    ECDSA_SHA1: ("ec", hashes.SHA1(), True), ECDSA_SHA224: ("ec", hashes.SHA224(), False),
    ECDSA_SHA256: ("ec", hashes.SHA256(), False), ECDSA_SHA384: ("ec", hashes.SHA384(), False),
    ECDSA_SHA512: ("ec", hashes.SHA512(), False), EDDSA_ED25519: ("ed25519", None, False),
}

#: The attributes an element's id may be in (WS-Security ``wsu:Id``, XMLDSig/XMLEnc ``Id``, and the two others seen).
ID_ATTRIBUTES = (f"{{{ns.WSU}}}Id", "Id", "id", "{http://www.w3.org/XML/1998/namespace}id")
#: The tags of the ``wsse:Security`` and ``eb:Messaging`` header blocks.
SECURITY = f"{{{ns.WSSE}}}Security"
EB_MESSAGING = f"{{{ns.EB}}}Messaging"


def canonical(node: etree._Element | etree._ElementTree, algorithm: str, prefixes: Sequence[str] = ()) -> bytes:
    """``node`` canonicalized with ``algorithm`` (a key of :data:`C14N`); ``prefixes`` is the exclusive C14N
    InclusiveNamespaces PrefixList."""
    exclusive, comments = C14N[algorithm]
    return etree.tostring(node, method="c14n", exclusive=exclusive, with_comments=comments,
                          inclusive_ns_prefixes=list(prefixes) if exclusive and prefixes else None)


def prefix_list(element: etree._Element | None) -> tuple[str, ...]:
    """The ``ec:InclusiveNamespaces/@PrefixList`` of a CanonicalizationMethod or Transform element."""
    if element is None:
        return ()
    inclusive = element.find(f"{{{ns.EXC_C14N}}}InclusiveNamespaces")
    return tuple((inclusive.get("PrefixList") or "").split()) if inclusive is not None else ()


def digest(method: str, octets: bytes) -> bytes:
    """The digest of ``octets`` with the DigestMethod ``method`` (a key of :data:`DIGESTS`)."""
    return hashlib.new(DIGESTS[method].name, octets).digest()


def index_ids(root: etree._Element) -> dict[str, list[etree._Element]]:
    """Every id in the tree of ``root`` (any of :data:`ID_ATTRIBUTES`) → the elements carrying it, in document order.
    A reference to an id carried twice must be refused, not resolved to the first (signature wrapping)."""
    ids: dict[str, list[etree._Element]] = {}
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for value in {element.get(name) for name in ID_ATTRIBUTES} - {None}:
            ids.setdefault(value.strip(), []).append(element)
    return ids


def read_base64(text: str | None, what: str, *, max_chars: int) -> tuple[bytes | None, str | None]:
    """(the bytes, None) of base64 ``text`` as a message carries it, lenient about white space (Domibus wraps it with
    ``&#xd;``) and strict about everything else; (None, why not) when it is empty, longer than ``max_chars`` or not
    base64. ``what`` names it in that reason."""
    raw = text or ""
    if len(raw) > max_chars:
        return None, f"{what} is {len(raw)} characters, more than the {max_chars} read"
    compact = "".join(raw.split())
    if not compact:
        return None, f"{what} is empty"
    try:
        return base64.b64decode(compact, validate=True), None
    except (binascii.Error, ValueError):
        return None, f"{what} is not valid base64"


def security_header(root: etree._Element) -> etree._Element:
    """The ``wsse:Security`` header block of the SOAP envelope ``root`` addressed to the ultimate receiver (no role or
    actor), created (with its Header when absent) as the first header block, mustUnderstand, when there is none.
    Raises ValueError when ``root`` is not a SOAP 1.1/1.2 envelope."""
    soap = etree.QName(root).namespace
    if soap not in (ns.S12, ns.S11) or etree.QName(root).localname != "Envelope":
        raise ValueError(f"not a SOAP envelope: {root.tag}")
    header = root.find(f"{{{soap}}}Header")
    if header is None:
        header = etree.Element(f"{{{soap}}}Header")
        root.insert(0, header)
    role = f"{{{soap}}}role" if soap == ns.S12 else f"{{{soap}}}actor"
    for security in header.findall(SECURITY):
        if security.get(role) is None:
            return security
    security = etree.Element(SECURITY, nsmap={"wsse": ns.WSSE, "wsu": ns.WSU})
    security.set(f"{{{soap}}}mustUnderstand", "true" if soap == ns.S12 else "1")
    header.insert(0, security)
    return security
