"""Verifying the WS-Security 1.1 XML signature of an AS4 message (AS4 profile §5.1.4–5.1.6, CEF eDelivery AS4 1.15
§1.4.2.6: a detached signature in ``wsse:Security`` over ``eb:Messaging``, the SOAP Body and every payload part);
:mod:`connectors.as4.signing` produces one.

Decision: the signature is implemented with lxml (exclusive C14N through
``etree.tostring(el, method="c14n", exclusive=True, inclusive_ns_prefixes=[...])``, :mod:`connectors.as4.dsig`) and
``cryptography``, not with signxml or python-xmlsec: neither resolves ``cid:`` references to MIME parts nor implements
the SwA Attachment-Content/Complete-Signature-Transforms (:mod:`connectors.as4.swa`), and the WS-Security token
references (BinarySecurityToken X509v3/PKIPath, IssuerSerial, SubjectKeyIdentifier: :mod:`connectors.as4.keyinfo`)
are outside signxml.

:func:`verify` never raises for what a message holds: it answers a :class:`SignatureCheck` saying what was signed,
by whom, and every reason it does not hold; :func:`require_valid` turns that into an :class:`As4Error` when policy
demands. Signature wrapping is refused: a referenced id carried by two elements, a signed element that is not where
SOAP processing reads it (the Body, a SOAP header block, a token of the ``wsse:Security`` header), or more than one
``eb:Messaging`` or Body. Algorithms: C14N exclusive and inclusive 1.0 (with or without comments), enveloped-signature,
the SwA transforms; digests SHA-1/224/256/384/512; signatures RSA PKCS#1 v1.5 with SHA-1/224/256/384/512, ECDSA with
SHA-1/224/256/384/512, Ed25519. SHA-1 verifies but marks the result ``weak``; signing never produces it.
Limitation: inclusive C14N 1.0 of a signed subtree does not import ``xml:*`` attributes from its ancestors (lxml's
subtree serialization; AS4 signs with exclusive C14N, which does not import them either).
"""

from __future__ import annotations

import copy
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from connectors.as4 import ns, swa
from connectors.as4.dsig import (C14N, C14N_10, DIGESTS, EB_MESSAGING, ENVELOPED_SIGNATURE, SECURITY, SIGNATURE_METHODS,
                                 WEAK_DIGESTS, canonical, digest, index_ids, prefix_list, read_base64)
from connectors.as4.errors import As4Error, EbmsError
from connectors.as4.keyinfo import ResolvedKey, check_trust, resolve_key_info
from hub.errors import InputError
from hub.xmlsafe import parse_xml

if TYPE_CHECKING:
    from connectors.as4.packaging import Packet

__all__ = ["verify", "require_valid", "SignatureCheck", "ReferenceCheck", "MAX_REFERENCES", "MAX_TRANSFORMS"]

MAX_REFERENCES = 64
MAX_TRANSFORMS = 10
MAX_SIGNATURE_VALUE_CHARS = 16 * 1024
MAX_DIGEST_VALUE_CHARS = 1024

#: The OASIS AS4 profile's examples write this (``xmlds``, sic): no real signature uses it.
SHA1_TYPO = "http://www.w3.org/2000/09/xmlds#sha1"
_SWA_SHORT = {ns.SWA_CONTENT_SIGNATURE: "Attachment-Content-Signature-Transform",
              ns.SWA_COMPLETE_SIGNATURE: "Attachment-Complete-Signature-Transform"}

_DS = f"{{{ns.DS}}}"
_LABELS = {ns.EB: "eb", ns.WSSE: "wsse", ns.WSU: "wsu", ns.WSA: "wsa", ns.DS: "ds", ns.XENC: "xenc", ns.EBBP: "ebbp",
           ns.EBINT[0]: "ebint", ns.EBINT[1]: "ebint", ns.S12: "S12", ns.S11: "S11"}


@dataclass(frozen=True, slots=True)
class ReferenceCheck:
    """One ``ds:Reference``: what it points at (``eb:Messaging``, ``Body``, the ``cid:`` URI, or the element's
    name), its transforms and digest as written, and whether the digest of what it points at matches.
    ``encrypted`` says an ``xenc:EncryptedData`` replaces the part (its digest is over the plaintext)."""

    uri: str
    what: str
    transforms: tuple[str, ...]
    digest_method: str
    digest_value: str
    ok: bool
    reason: str | None = None
    encrypted: bool = False
    element: etree._Element | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The outcome of :func:`verify`.

    ``valid``: the SignatureValue verifies over the canonical SignedInfo (``signed_info_ok``) AND every reference's
    digest matches AND no wrapping was found; ``reason`` lists every problem when not. ``trusted_signer`` is None
    when no trust anchors were given, else whether the signer chains to one (``trust_reason`` says why not).
    ``weak``: SHA-1 (or an RSA key under 2048 bits) was used. ``covers_messaging``/``covers_body``: the
    ``eb:Messaging`` header block and the SOAP Body that processing reads are among the verified references.
    ``structure_ok``: no wrapping found outside the references (one ``eb:Messaging``, one Body, references present).
    """

    present: bool
    valid: bool
    reason: str | None = None
    signature_method: str | None = None
    certificate: x509.Certificate | None = None
    key_reference: str | None = None
    references: tuple[ReferenceCheck, ...] = ()
    signed_info_ok: bool = False
    weak: bool = False
    trusted_signer: bool | None = None
    trust_reason: str | None = None
    chain: tuple[x509.Certificate, ...] = ()
    covers_messaging: bool = False
    covers_body: bool = False
    structure_ok: bool = True

    @property
    def reference_elements(self) -> tuple[etree._Element, ...]:
        """The received ``ds:Reference`` elements, in SignedInfo order (a receipt's NonRepudiationInformation
        copies each)."""
        return tuple(check.element for check in self.references if check.element is not None)

    @property
    def signed_attachments(self) -> tuple[str, ...]:
        """The ``cid:`` URIs whose reference verified."""
        return tuple(check.uri for check in self.references if check.ok and check.uri.startswith("cid:"))

    @property
    def valid_but_encrypted(self) -> bool:
        """Not ``valid`` only because references to encrypted parts cannot match before decryption (sign then
        encrypt: decrypt the parts, then verify again)."""
        failing = [check for check in self.references if not check.ok]
        return self.signed_info_ok and self.structure_ok and bool(failing) and all(check.encrypted for check in failing)


class _Problem(Exception):
    """A reason a reference or the signature does not hold (internal: always caught in this module)."""


# --- verify ----------------------------------------------------------------------------------------------------------

def verify(packet: Packet, *, trusted: Sequence[x509.Certificate] = (), candidates: Sequence[x509.Certificate] = (),
           now: datetime | None = None) -> SignatureCheck:
    """Check the WS-Security signature of ``packet`` (a ``connectors.as4.packaging.Packet``: its ``root`` and
    ``attachment(href)``).

    ``candidates`` (and ``trusted``) are matched against IssuerSerial / SKI / thumbprint references; ``trusted``,
    when given, must contain the signer or its issuer (checked at ``now``, default: the current time).
    """
    root = packet.root
    soap = etree.QName(root).namespace if isinstance(root.tag, str) else None
    if soap not in (ns.S12, ns.S11) or etree.QName(root).localname != "Envelope":
        return SignatureCheck(present=False, valid=False, reason="not a SOAP envelope")
    header = root.find(f"{{{soap}}}Header")
    security, signature, problem = _find_signature(header, soap)
    if problem:
        return SignatureCheck(present=True, valid=False, reason=problem, structure_ok=False)
    if signature is None:
        return SignatureCheck(present=False, valid=False, reason="no wsse:Security header with a ds:Signature")
    try:
        return _verify(packet, root, soap, header, security, signature, trusted, candidates, now)
    except (InputError, etree.Error, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return SignatureCheck(present=True, valid=False, reason=f"the signature could not be checked: {exc}")


def _find_signature(header, soap):
    if header is None:
        return None, None, None
    securities = [child for child in header if child.tag == SECURITY]
    signed = [(block, [child for child in block if child.tag == _DS + "Signature"]) for block in securities]
    signed = [(block, signatures) for block, signatures in signed if signatures]
    if not signed:
        return None, None, None
    if len(signed) > 1:
        signed = [(block, signatures) for block, signatures in signed
                  if block.get(f"{{{soap}}}role") is None and block.get(f"{{{soap}}}actor") is None] or signed
    if len(signed) > 1:
        return None, None, f"several wsse:Security headers carry a ds:Signature ({len(signed)})"
    block, signatures = signed[0]
    if len(signatures) > 1:
        return None, None, f"several ds:Signature elements in one wsse:Security header ({len(signatures)})"
    return block, signatures[0], None


def _verify(packet, root, soap, header, security, signature, trusted, candidates, now) -> SignatureCheck:
    problems: list[str] = []
    signed_info = signature.find(_DS + "SignedInfo")
    if signed_info is None:
        return SignatureCheck(present=True, valid=False, reason="ds:Signature has no ds:SignedInfo")
    c14n_method = signed_info.find(_DS + "CanonicalizationMethod")
    method_element = signed_info.find(_DS + "SignatureMethod")
    c14n_uri = (c14n_method.get("Algorithm") or "") if c14n_method is not None else ""
    method = (method_element.get("Algorithm") or "") if method_element is not None else ""
    reference_elements = signed_info.findall(_DS + "Reference")
    if not reference_elements:
        problems.append("ds:SignedInfo has no ds:Reference")
    if len(reference_elements) > MAX_REFERENCES:
        return SignatureCheck(present=True, valid=False, signature_method=method,
                              reason=f"{len(reference_elements)} references, more than the {MAX_REFERENCES} checked")

    body_tag = f"{{{soap}}}Body"
    messagings = [child for child in header if child.tag == EB_MESSAGING] if header is not None else []
    bodies = [child for child in root if child.tag == body_tag]
    if len(messagings) > 1:
        problems.append(f"{len(messagings)} eb:Messaging header blocks (possible signature wrapping)")
    if len(bodies) > 1:
        problems.append(f"{len(bodies)} SOAP Body elements (possible signature wrapping)")
    context = _Context(packet=packet, root=root, header=header, security=security, signature=signature,
                       body=bodies[0] if bodies else None, ids=index_ids(root), encrypted=_encrypted_parts(root))

    structure_ok = not problems
    pool = list(candidates) + [certificate for certificate in trusted if certificate not in candidates]
    key = resolve_key_info(signature.find(_DS + "KeyInfo"), ids=context.ids, candidates=pool)
    signed_info_ok, weak, problem = _check_signature_value(signature, signed_info, c14n_method, c14n_uri, method, key)
    if problem:
        problems.append(problem)
    checks = [_check_reference(element, context, index) for index, element in enumerate(reference_elements)]
    problems.extend(f"reference {check.uri}{'' if check.what == check.uri else f' ({check.what})'}: {check.reason}"
                    for check in checks if not check.ok)
    weak = weak or any(check.digest_method in WEAK_DIGESTS for check in checks)

    messaging = messagings[0] if len(messagings) == 1 else None
    covered = {id(context.targets[index]) for index, check in enumerate(checks) if check.ok and index in context.targets}
    trusted_signer = trust_reason = None
    if trusted and key.certificate is not None:
        trusted_signer, trust_reason = check_trust(key.certificate, trusted=trusted,
                                                   intermediates=list(key.chain) + list(candidates), now=now)
    elif trusted:
        trusted_signer, trust_reason = False, "no signer certificate to check"
    valid = signed_info_ok and not problems
    return SignatureCheck(
        present=True, valid=valid, reason=None if valid else "; ".join(problems), signature_method=method,
        certificate=key.certificate, key_reference=key.key_reference or None, references=tuple(checks),
        signed_info_ok=signed_info_ok, weak=weak, trusted_signer=trusted_signer, trust_reason=trust_reason,
        chain=key.chain, covers_messaging=messaging is not None and id(messaging) in covered,
        covers_body=bool(bodies) and id(bodies[0]) in covered, structure_ok=structure_ok)


@dataclass(slots=True)
class _Context:
    packet: object
    root: etree._Element
    header: etree._Element | None
    security: etree._Element
    signature: etree._Element
    body: etree._Element | None
    ids: Mapping[str, list[etree._Element]]
    encrypted: Mapping[str, str]
    targets: dict[int, etree._Element] = field(default_factory=dict)


def _encrypted_parts(root) -> dict[str, str]:
    """``cid:`` URI → Id of the ``xenc:EncryptedData`` whose CipherReference names that part."""
    found = {}
    for data in root.iter(f"{{{ns.XENC}}}EncryptedData"):
        reference = data.find(f"{{{ns.XENC}}}CipherData/{{{ns.XENC}}}CipherReference")
        uri = (reference.get("URI") or "").strip() if reference is not None else ""
        if uri.startswith("cid:"):
            found[uri] = data.get("Id") or "(no Id)"
    return found


def _check_signature_value(signature, signed_info, c14n_method, c14n_uri, method, key: ResolvedKey):
    """(SignatureValue verifies, weak, problem)."""
    if c14n_uri not in C14N:
        return False, False, f"CanonicalizationMethod {c14n_uri or '(none)'} is not supported"
    spec = SIGNATURE_METHODS.get(method)
    if spec is None:
        return False, False, f"SignatureMethod {method or '(none)'} is not supported"
    family, hash_algorithm, weak = spec
    value, problem = read_base64(signature.findtext(_DS + "SignatureValue"), "ds:SignatureValue",
                                 max_chars=MAX_SIGNATURE_VALUE_CHARS)
    if value is None:
        return False, weak, problem
    if key.certificate is None:
        return False, weak, f"no key to verify the SignatureValue: {key.reason}"
    try:
        octets = canonical(signed_info, c14n_uri, prefix_list(c14n_method))
    except etree.C14NError as exc:
        return False, weak, f"ds:SignedInfo cannot be canonicalized: {exc}"
    public_key = key.certificate.public_key()
    try:
        if family == "rsa" and isinstance(public_key, rsa.RSAPublicKey):
            weak = weak or public_key.key_size < 2048
            public_key.verify(value, octets, padding.PKCS1v15(), hash_algorithm)
        elif family == "ec" and isinstance(public_key, ec.EllipticCurvePublicKey):
            size = (public_key.curve.key_size + 7) // 8
            if len(value) != 2 * size:
                return False, weak, f"ds:SignatureValue is {len(value)} bytes, not the {2 * size} of an ECDSA r||s"
            der = encode_dss_signature(int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big"))
            public_key.verify(der, octets, ec.ECDSA(hash_algorithm))
        elif family == "ed25519" and isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(value, octets)
        else:
            return False, weak, f"SignatureMethod {method} does not fit the signer's {type(public_key).__name__}"
    except InvalidSignature:
        return False, weak, "SignatureValue does not verify over the canonical SignedInfo (wrong key or altered SignedInfo)"
    return True, weak, None


def _check_reference(element, context: _Context, index: int) -> ReferenceCheck:
    uri = (element.get("URI") or "").strip() if element.get("URI") is not None else None
    transforms_element = element.find(_DS + "Transforms")
    transforms = list(transforms_element.iterfind(_DS + "Transform")) if transforms_element is not None else []
    digest_element = element.find(_DS + "DigestMethod")
    digest_method = (digest_element.get("Algorithm") or "") if digest_element is not None else ""
    digest_value = "".join((element.findtext(_DS + "DigestValue") or "").split())
    shown = uri if uri is not None else "(no URI)"
    partial = dict(uri=shown, transforms=tuple(t.get("Algorithm") or "" for t in transforms[:MAX_TRANSFORMS]),
                   digest_method=digest_method, digest_value=digest_value, element=element)
    what = shown
    encrypted = False
    try:
        if uri is None:
            raise _Problem("a reference without URI is not supported")
        target = part = None
        if uri.startswith("cid:"):
            encrypted = uri in context.encrypted
            part = _attachment(context, uri)
        else:
            target, misplaced = _same_document(context, uri)
            what = _label(target, context)
            if misplaced:
                raise _Problem(misplaced)
            context.targets[index] = target
        if len(transforms) > MAX_TRANSFORMS:
            raise _Problem(f"{len(transforms)} transforms, more than the {MAX_TRANSFORMS} applied")
        if digest_method == SHA1_TYPO:
            raise _Problem(f"DigestMethod {SHA1_TYPO} is the OASIS examples' misspelling of xmldsig#sha1: "
                           "an illustrative signature, not a real one")
        if digest_method not in DIGESTS:
            raise _Problem(f"DigestMethod {digest_method or '(none)'} is not supported")
        expected, problem = read_base64(digest_value, "DigestValue", max_chars=MAX_DIGEST_VALUE_CHARS)
        if expected is None:
            raise _Problem(problem)
        octets = _digest_input(target, part, transforms, context, uri)
        if not hmac.compare_digest(digest(digest_method, octets), expected):
            if encrypted:
                raise _Problem(f"digest mismatch: the part is encrypted (xenc:EncryptedData {context.encrypted[uri]}) and "
                               "the digest is over its plaintext: decrypt it first")
            raise _Problem("digest mismatch")
    except _Problem as problem:
        return ReferenceCheck(what=what, ok=False, reason=str(problem), encrypted=encrypted, **partial)
    except (etree.Error, InputError) as exc:
        return ReferenceCheck(what=what, ok=False, reason=f"cannot be canonicalized: {exc}", encrypted=encrypted, **partial)
    return ReferenceCheck(what=what, ok=True, encrypted=encrypted, **partial)


def _attachment(context: _Context, uri: str):
    try:
        return context.packet.attachment(uri)
    except (As4Error, KeyError, LookupError) as exc:
        detail = exc.message if isinstance(exc, As4Error) else str(exc)
        if uri in context.encrypted:
            raise _Problem(f"the part is not in the message ({detail}); it is encrypted "
                           f"(xenc:EncryptedData {context.encrypted[uri]})") from None
        raise _Problem(f"the part is not in the message ({detail})") from None


def _same_document(context: _Context, uri: str) -> tuple[etree._Element, str | None]:
    """The element ``#id`` names, and why it is not where SOAP processing reads it (None when it is)."""
    if uri == "":
        return context.root, None
    if not uri.startswith("#") or len(uri) < 2:
        raise _Problem(f"URI {uri!r} is neither #id nor cid: (external references are not dereferenced)")
    found = context.ids.get(uri[1:], [])
    if not found:
        raise _Problem("no element carries that id")
    if len(found) > 1:
        names = ", ".join(_label(element, context) for element in found[:4])
        raise _Problem(f"{len(found)} elements carry that id ({names}): possible signature wrapping")
    target = found[0]
    parent = target.getparent()
    allowed = (target is context.root or target is context.body or parent is context.header
               or parent is context.security or (context.body is not None and parent is context.body))
    if target.tag == EB_MESSAGING:
        allowed = parent is context.header
    elif target.tag == f"{{{etree.QName(context.root).namespace}}}Body":
        allowed = target is context.body
    if not allowed:
        where = _label(parent, context) if parent is not None else "nothing"
        return target, (f"it points at {_label(target, context)} inside {where}, where SOAP processing does not read it: "
                        "possible signature wrapping")
    return target, None


def _label(element, context: _Context) -> str:
    if element is context.body:
        return "Body"
    qname = etree.QName(element)
    prefix = _LABELS.get(qname.namespace or "")
    return f"{prefix}:{qname.localname}" if prefix else qname.localname


def _digest_input(target, part, transforms, context: _Context, uri: str) -> bytes:
    """The octets a reference digests: its target through its transforms (XMLDSig §4.3.3, SwA §5.3)."""
    state = "part" if part is not None else "nodes"
    node, octets, without_signature = target, b"", False
    for transform in transforms:
        algorithm = transform.get("Algorithm") or ""
        if algorithm == ENVELOPED_SIGNATURE:
            if state != "nodes":
                raise _Problem("enveloped-signature transform on octets")
            without_signature = True
        elif algorithm in C14N:
            if state == "part":
                raise _Problem(f"a cid: reference must begin with the SwA {_SWA_SHORT[ns.SWA_CONTENT_SIGNATURE]}")
            if state == "nodes":
                source = _without(node, context.signature) if without_signature else node
                octets = canonical(source, algorithm, prefix_list(transform))
            else:
                octets = canonical(parse_xml(octets, source=uri).getroottree(), algorithm, prefix_list(transform))
            state = "octets"
        elif algorithm in _SWA_SHORT:
            if state != "part":
                raise _Problem(f"the SwA {_SWA_SHORT[algorithm]} applies to a cid: reference only, as its first transform")
            try:
                if algorithm == ns.SWA_CONTENT_SIGNATURE:
                    octets = swa.content_octets(part.data, _sent_content_type(part), where=uri)
                else:
                    octets = swa.complete_octets(part.data, _sent_content_type(part), part.headers, where=uri)
            except swa.AttachmentContentError as exc:
                raise _Problem(exc.message) from None
            state = "octets"
        else:
            raise _Problem(f"transform {algorithm or '(none)'} is not supported")
    if state == "part":
        raise _Problem("no SwA Attachment-Content- or Attachment-Complete-Signature-Transform, which the SwA profile "
                       "requires on a cid: reference")
    if state == "nodes":
        source = _without(node, context.signature) if without_signature else node
        return canonical(source, C14N_10)
    return octets


def _sent_content_type(part) -> str:
    """The Content-Type the sender gave the part: '' when its headers have none (the reader may have filled in
    MIME's text/plain default, which would wrongly turn on the SwA text canonicalization)."""
    headers = getattr(part, "headers", ())
    if headers and not any(name.strip().lower() == "content-type" for name, _ in headers):
        return ""
    return part.content_type


def _without(node, signature) -> etree._Element:
    """``node`` with ``signature`` removed (enveloped-signature), on a copy: the received tree is never changed."""
    if not any(ancestor is node for ancestor in signature.iterancestors()):
        return node
    copied = copy.deepcopy(node.getroottree().getroot())
    copied_node, copied_signature = _follow(copied, _steps(node)), _follow(copied, _steps(signature))
    _remove(copied_signature)
    return copied_node


def _steps(element) -> list[int]:
    """The child positions leading from the root to ``element``."""
    steps = []
    while (parent := element.getparent()) is not None:
        steps.append(parent.index(element))
        element = parent
    return steps[::-1]


def _follow(root, steps: list[int]) -> etree._Element:
    for step in steps:
        root = root[step]
    return root


def _remove(element) -> None:
    parent, previous, tail = element.getparent(), element.getprevious(), element.tail
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


# --- policy ----------------------------------------------------------------------------------------------------------

def require_valid(check: SignatureCheck, *, attachments: Iterable[str] = (), require_trusted: bool = True,
                  allow_weak: bool = False, message_id: str | None = None) -> SignatureCheck:
    """Raise :class:`As4Error` unless ``check`` is what the AS4 profile demands of a signed message.

    EBMS:0103 PolicyNoncompliance: no signature, a weak algorithm (unless ``allow_weak``), ``eb:Messaging`` or the
    Body not signed, or a part of ``attachments`` (``cid:`` URIs) not signed. EBMS:0101 FailedAuthentication: the
    signature does not verify, or the signer is not trusted (``require_trusted``; a check made without trust anchors
    does not pass). Returns ``check``.
    """
    def fail(error: EbmsError, text: str):
        raise As4Error(error, text, where="wsse:Security/ds:Signature", ref_to_message_id=message_id)

    if not check.present:
        fail(EbmsError.POLICY_NONCOMPLIANCE, f"the message is not signed: {check.reason}")
    if not check.valid:
        fail(EbmsError.FAILED_AUTHENTICATION, f"the signature is not valid: {check.reason}")
    if check.weak and not allow_weak:
        fail(EbmsError.POLICY_NONCOMPLIANCE, f"the signature uses a weak algorithm ({check.signature_method})")
    if not check.covers_messaging:
        fail(EbmsError.POLICY_NONCOMPLIANCE, "the eb:Messaging header is not signed")
    if not check.covers_body:
        fail(EbmsError.POLICY_NONCOMPLIANCE, "the SOAP Body is not signed")
    signed = set(check.signed_attachments)
    missing = [uri for uri in attachments if (uri if uri.startswith("cid:") else "cid:" + uri) not in signed]
    if missing:
        fail(EbmsError.POLICY_NONCOMPLIANCE, f"payload part(s) not signed: {', '.join(missing)}")
    if require_trusted and check.trusted_signer is not True:
        fail(EbmsError.FAILED_AUTHENTICATION,
             f"the signer is not trusted: {check.trust_reason or 'no trust anchors configured'}")
    return check
