"""Producing the WS-Security 1.1 XML signature of an AS4 message (AS4 profile §5.1.4–5.1.6, CEF eDelivery AS4 1.15
§1.4.2.6): a detached signature in ``wsse:Security`` over ``eb:Messaging``, the SOAP Body and every payload part, as
phase4 and Domibus write it. :mod:`connectors.as4.signature` verifies what this writes (and what others write).

Built on lxml and ``cryptography`` for the reasons :mod:`connectors.as4.signature` gives (``cid:`` references with
the SwA transforms, WS-Security token references). SHA-1 is never produced.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree

from connectors.as4 import ns, swa
from connectors.as4.dsig import (DIGESTS, EB_MESSAGING, SECURITY, SIGNATURE_METHODS, WEAK_DIGESTS, canonical, digest,
                                 security_header)
from connectors.as4.keyinfo import binary_security_token, write_token_reference

if TYPE_CHECKING:
    from connectors.as4.packaging import Part

__all__ = ["sign", "SignedEnvelope"]

_DS = f"{{{ns.DS}}}"


@dataclass(frozen=True, slots=True)
class SignedEnvelope:
    """What :func:`sign` made: the signed envelope, its ``ds:Signature`` and the ``ds:Reference``
    elements it signed, in order (keep their digests to check the receipt)."""

    root: etree._Element
    signature: etree._Element
    references: tuple[etree._Element, ...]


def sign(envelope_root: etree._Element, attachments: Sequence[Part] = (), *, key, certificate: x509.Certificate,
         signature_method: str = ns.RSA_SHA256, digest_method: str = ns.SHA256, key_reference: str = "BST",
         chain: Sequence[x509.Certificate] = ()) -> SignedEnvelope:
    """Sign an AS4 envelope the way phase4 and Domibus do; return the signed envelope (a copy of ``envelope_root``,
    parsed again from its bytes) with its ``ds:Reference`` elements.

    The copy is parsed from bytes because lxml's exclusive C14N of a tree built in memory leaves out an
    InclusiveNamespaces prefix declared on an ancestor (``S12`` in the SignedInfo's PrefixList), which the same C14N
    of the parsed bytes (what the receiver has) renders: a signature computed in memory would not verify.

    Adds (as the first header block) ``wsse:Security`` with mustUnderstand, holding — for ``key_reference="BST"`` —
    a ``wsse:BinarySecurityToken`` (X509v3), then ``ds:Signature``: SignedInfo in exclusive C14N with
    ``InclusiveNamespaces PrefixList="<soap prefix>"``, references to ``eb:Messaging`` and the Body by ``wsu:Id``
    (ids added when missing; an element that must gain the ``wsu`` declaration is replaced by a copy) and to every
    part of ``attachments`` (``cid:``, SwA Attachment-Content-Signature-Transform over its ``data`` as its
    ``content_type`` says), the KeyInfo a SecurityTokenReference to the token. ``key_reference``
    ``"IssuerSerial"`` or ``"SKI"`` names the certificate instead (no token: the receiver must know it); ``"PKIPath"``
    sends ``chain`` (issuer first) + ``certificate``. SHA-1 is refused. Raises ValueError for arguments that cannot
    make a signature.
    """
    spec = SIGNATURE_METHODS.get(signature_method)
    if spec is None or spec[2] or digest_method not in DIGESTS or digest_method in WEAK_DIGESTS:
        raise ValueError(f"the hub signs with SHA-2 algorithms only (not {signature_method} / {digest_method})")
    if key_reference not in ("BST", "PKIPath", "IssuerSerial", "SKI"):
        raise ValueError(f"key_reference {key_reference!r} is not one of BST, PKIPath, IssuerSerial, SKI")
    envelope_root = etree.fromstring(etree.tostring(envelope_root))
    soap = etree.QName(envelope_root).namespace
    if soap not in (ns.S12, ns.S11):
        raise ValueError("not a SOAP envelope")
    header = envelope_root.find(f"{{{soap}}}Header")
    messaging = header.find(EB_MESSAGING) if header is not None else None
    body = envelope_root.find(f"{{{soap}}}Body")
    if messaging is None or body is None:
        raise ValueError("an AS4 envelope needs eb:Messaging in its Header and a Body")
    if any(child.tag == SECURITY and child.find(_DS + "Signature") is not None for child in header):
        raise ValueError("the envelope is already signed")
    soap_prefix = envelope_root.prefix or "#default"
    messaging, messaging_id = _ensure_id(messaging, "msg")
    body, body_id = _ensure_id(body, "id")

    security = security_header(envelope_root)
    token_id = f"X509-{uuid.uuid4()}"
    if key_reference in ("BST", "PKIPath"):
        security.append(binary_security_token(certificate, token_id, chain=chain if key_reference == "PKIPath" else None))

    signature = etree.SubElement(security, _DS + "Signature", nsmap={"ds": ns.DS}, Id=f"SIG-{uuid.uuid4()}")
    signed_info = etree.SubElement(signature, _DS + "SignedInfo")
    _c14n_method(etree.SubElement(signed_info, _DS + "CanonicalizationMethod"), soap_prefix)
    etree.SubElement(signed_info, _DS + "SignatureMethod", Algorithm=signature_method)
    references = [
        _reference(signed_info, "#" + messaging_id, [(ns.EXC_C14N, soap_prefix)], digest_method,
                   canonical(messaging, ns.EXC_C14N, [soap_prefix])),
        _reference(signed_info, "#" + body_id, [(ns.EXC_C14N, None)], digest_method, canonical(body, ns.EXC_C14N)),
    ]
    for part in attachments:
        uri = "cid:" + part.content_id.strip().strip("<>")
        references.append(_reference(signed_info, uri, [(ns.SWA_CONTENT_SIGNATURE, None)], digest_method,
                                     swa.content_octets(part.data, part.content_type, where=uri)))
    value = _signature_value(key, signature_method, canonical(signed_info, ns.EXC_C14N, [soap_prefix]))
    etree.SubElement(signature, _DS + "SignatureValue").text = base64.b64encode(value).decode("ascii")
    key_info = etree.SubElement(signature, _DS + "KeyInfo", Id=f"KI-{uuid.uuid4()}")
    write_token_reference(key_info, key_reference, certificate, token_id=token_id, reference_id=f"STR-{uuid.uuid4()}")
    return SignedEnvelope(root=envelope_root, signature=signature, references=tuple(references))


def _ensure_id(element, prefix: str) -> tuple[etree._Element, str]:
    """``element`` with a ``wsu:Id`` (its own, or a new one declared with the ``wsu`` prefix)."""
    existing = element.get(f"{{{ns.WSU}}}Id")
    if existing:
        return element, existing
    new_id = f"{prefix}-{uuid.uuid4()}"
    if ns.WSU not in element.nsmap.values() and "wsu" not in element.nsmap:
        parent = element.getparent()
        inherited = parent.nsmap if parent is not None else {}
        own = {p: u for p, u in element.nsmap.items() if inherited.get(p) != u}
        replacement = etree.Element(element.tag, nsmap={**own, "wsu": ns.WSU})
        for name, value in element.attrib.items():
            replacement.set(name, value)
        replacement.text, replacement.tail = element.text, element.tail
        replacement.extend(list(element))
        parent.replace(element, replacement)
        element = replacement
    element.set(f"{{{ns.WSU}}}Id", new_id)
    return element, new_id


def _c14n_method(element, prefix: str | None) -> None:
    element.set("Algorithm", ns.EXC_C14N)
    if prefix:
        etree.SubElement(element, f"{{{ns.EXC_C14N}}}InclusiveNamespaces", nsmap={"ec": ns.EXC_C14N}, PrefixList=prefix)


def _reference(signed_info, uri: str, transforms, digest_method: str, octets: bytes) -> etree._Element:
    reference = etree.SubElement(signed_info, _DS + "Reference", URI=uri)
    transforms_element = etree.SubElement(reference, _DS + "Transforms")
    for algorithm, prefix in transforms:
        transform = etree.SubElement(transforms_element, _DS + "Transform")
        if algorithm == ns.EXC_C14N:
            _c14n_method(transform, prefix)
        else:
            transform.set("Algorithm", algorithm)
    etree.SubElement(reference, _DS + "DigestMethod", Algorithm=digest_method)
    value = digest(digest_method, octets)
    etree.SubElement(reference, _DS + "DigestValue").text = base64.b64encode(value).decode("ascii")
    return reference


def _signature_value(key, method: str, octets: bytes) -> bytes:
    family, hash_algorithm, _ = SIGNATURE_METHODS[method]
    if family == "rsa" and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(octets, padding.PKCS1v15(), hash_algorithm)
    if family == "ec" and isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(octets, ec.ECDSA(hash_algorithm)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if family == "ed25519" and isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(octets)
    raise ValueError(f"signature method {method} does not fit a {type(key).__name__}")
