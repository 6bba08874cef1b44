"""Verifying signed documents, and handing back only what was signed.

:meth:`Verifier.verify` accepts exactly one shape of signature, the one the hub writes: a single ``ds:Signature``
as a direct child of the root, with a single ``ds:Reference URI=""`` (the whole document) and the enveloped-signature
transform, no ``ds:Object``. Anything else (a second signature, a reference to an ``Id``, a signed original moved into
a forged wrapper) is a wrapping attempt or an interop fault, and ends in :class:`~hub.errors.SignatureInvalid`.

The order of the checks is deliberate: safe parsing, shape, algorithms against the policy, trust in the signer's
certificate (chain to an anchor, or a pinned certificate), and only then signxml's cryptographic check, which is
handed the already-trusted certificate. Callers must use :attr:`VerifiedDocument.signed_root` and never the bytes
they passed in.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

import cryptography.exceptions
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, SignXMLException

from hub.stages import stage
from hub.errors import (
    ConfigurationError,
    KeyMaterialError,
    SignatureInvalid,
    SignatureMissing,
    UntrustedCertificateError,
    WeakAlgorithmError,
)
from hub.namespaces import XMLDSIG
from hub.signing.entitlement import check_signing_usage
from hub.signing.policy import ENVELOPED_SIGNATURE, SigningPolicy
from hub.signing.trust import TrustStore
from hub.xmlsafe import parse_xml

_NS = {"ds": XMLDSIG}


def _ds(name: str) -> str:
    return f"{{{XMLDSIG}}}{name}"


@dataclass(frozen=True)
class VerifiedDocument:
    """The outcome of a successful verification.

    ``signed_root`` is the signed document re-read from its canonical form: the signature and anything unsigned
    (comments under exclusive c14n) are gone. It is the only tree a caller may trust.
    """

    signed_root: etree._Element
    signer_certificate: x509.Certificate
    signer_subject: str
    signature_algorithm: str
    digest_algorithm: str


@dataclass(frozen=True)
class _Trusted:
    """A signer certificate found trusted, with its chain up to the trust anchor."""

    signer: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    valid_from: datetime  # the window in which every certificate of the chain is valid
    valid_until: datetime

    @classmethod
    def of(cls, signer: x509.Certificate, chain: Sequence[x509.Certificate]) -> "_Trusted":
        return cls(signer, tuple(chain), max(c.not_valid_before_utc for c in chain), min(c.not_valid_after_utc for c in chain))


#: How many verified chains a verifier keeps (signers are the counterparts' few authorities).
_CHAINS_KEPT = 256


class Verifier:
    """Verifies enveloped whole-document signatures against a trust store, under a frozen policy."""

    def __init__(self, trust: TrustStore, policy: SigningPolicy = SigningPolicy()) -> None:
        self._trust = trust
        self._policy = policy
        try:
            self._config = SignatureConfiguration(
                require_x509=True,
                location="./",
                expect_references=1,
                signature_methods=frozenset(SignatureMethod(uri) for uri in policy.accepted_signature_methods),
                digest_algorithms=frozenset(DigestAlgorithm(uri) for uri in policy.accepted_digest_methods),
            )
        except InvalidInput as exc:
            raise ConfigurationError(f"the policy names an algorithm signxml does not know: {exc}") from None
        self._chain_policy = None
        # The chains verified already, by the certificates a signature carries (as written there): the same signer
        # comes again and again, and building and checking its chain costs more than the check of the signature.
        # The trust store and the policy never change; the time does (a chain is kept for the window in which every
        # certificate of it is valid) and so may the revocation lists (read again at every use).
        self._chains: dict[tuple[str, ...], _Trusted] = {}
        if trust.verification_store is not None:
            self._chain_policy = (
                x509.verification.PolicyBuilder()
                .store(trust.verification_store)
                .extension_policies(
                    ee_policy=_signer_extension_policy(),
                    ca_policy=x509.verification.ExtensionPolicy.webpki_defaults_ca(),
                )
            )

    def verify(self, document: bytes) -> VerifiedDocument:
        """Verify ``document`` and return what its signature covers.

        Raises :class:`~hub.errors.HostileXMLError` / :class:`~hub.errors.MalformedXMLError` (parsing),
        :class:`SignatureMissing`, :class:`WeakAlgorithmError`, :class:`UntrustedCertificateError` or
        :class:`SignatureInvalid`; no third-party exception escapes.
        """
        with stage("verify"):
            return self._verify(document)

    def _verify(self, document: bytes) -> VerifiedDocument:
        root = parse_xml(document, source="signed document")
        signature = _the_signature(root)
        signature_method, digest_method = self._check_algorithms(signature)
        _check_reference(signature)
        certificate = self._trusted_signer(signature)
        try:
            result = XMLVerifier().verify(root, x509_cert=certificate, expect_config=self._config)
        except InvalidCertificate as exc:
            raise UntrustedCertificateError(f"signer certificate refused: {exc}") from None
        except InvalidDigest:
            raise SignatureInvalid("digest mismatch: the document was changed after it was signed") from None
        except InvalidInput as exc:
            if "forbidden by configuration" in str(exc):
                raise WeakAlgorithmError(str(exc)) from None
            raise SignatureInvalid(f"signature cannot be verified: {exc}") from None
        except etree.DocumentInvalid as exc:
            raise SignatureInvalid(f"ds:Signature does not follow the XML-DSig schema: {exc}") from None
        except (SignXMLException, cryptography.exceptions.InvalidSignature) as exc:
            raise SignatureInvalid(_reason("the signature value does not verify with the signer's key", exc)) from None
        except (etree.LxmlError, ValueError, TypeError) as exc:
            raise SignatureInvalid(_reason("the signature cannot be processed", exc)) from None
        if result.signed_xml is None:
            raise SignatureInvalid("the signed content is not XML")
        return VerifiedDocument(
            signed_root=result.signed_xml,
            signer_certificate=certificate,
            signer_subject=certificate.subject.rfc4514_string(),
            signature_algorithm=signature_method,
            digest_algorithm=digest_method,
        )

    def _check_algorithms(self, signature: etree._Element) -> tuple[str, str]:
        signed_info = signature.find("ds:SignedInfo", _NS)
        if signed_info is None:
            raise SignatureInvalid("ds:Signature has no ds:SignedInfo")
        method = signed_info.find("ds:SignatureMethod", _NS)
        c14n = signed_info.find("ds:CanonicalizationMethod", _NS)
        self._policy.check_signature_method(method.get("Algorithm") if method is not None else None)
        self._policy.check_canonicalization_method(c14n.get("Algorithm") if c14n is not None else None)
        digests = [d.get("Algorithm") for d in signed_info.iterfind("ds:Reference/ds:DigestMethod", _NS)]
        for digest in digests:
            self._policy.check_digest_method(digest)
        for transform in signed_info.iterfind("ds:Reference/ds:Transforms/ds:Transform", _NS):
            if transform.get("Algorithm") != ENVELOPED_SIGNATURE:
                self._policy.check_canonicalization_method(transform.get("Algorithm"))
        return method.get("Algorithm"), digests[0] if digests else ""

    def _trusted_signer(self, signature: etree._Element) -> x509.Certificate:
        texts = tuple("".join((element.text or "").split()) for element in signature.iterfind(_X509_CERTIFICATE, _NS))
        now = datetime.now(timezone.utc)
        known = self._chains.get(texts)
        if known is not None and known.valid_from <= now <= known.valid_until:
            self._not_revoked(known.chain)  # a revocation list may have changed since
            return known.signer
        certificates = _certificates_in(signature)
        for certificate in certificates:
            pinned = self._trust.pinned_match(certificate)
            if pinned is not None:
                return self._checked_key(pinned)
        if self._chain_policy is None:
            raise UntrustedCertificateError(
                f"signer certificate {certificates[0].subject.rfc4514_string()} is not one of the pinned certificates"
            )
        verifier = self._chain_policy.time(now).build_client_verifier()
        reasons = []
        # Leaf candidates first: signers put the chain in X509Data in no guaranteed order.
        for leaf in sorted(certificates, key=_is_ca):
            others = [cert for cert in certificates if cert is not leaf]
            try:
                chain = verifier.verify(leaf, others).chain
            except (x509.verification.VerificationError, ValueError) as exc:
                reasons.append(f"{leaf.subject.rfc4514_string()}: {exc}")
                continue
            self._not_revoked(chain)
            self._keep(texts, _Trusted.of(self._checked_key(leaf), chain))
            return leaf
        raise UntrustedCertificateError(f"signer certificate does not chain to a trust anchor ({'; '.join(reasons)})")

    def _keep(self, texts: tuple[str, ...], trusted: "_Trusted") -> None:
        if len(self._chains) >= _CHAINS_KEPT:
            self._chains.clear()  # a burst of new signers: start again rather than track their age
        self._chains[texts] = trusted

    def _not_revoked(self, chain: Sequence[x509.Certificate]) -> None:
        for certificate, issuer in zip(chain, chain[1:]):
            try:
                reason = self._trust.revocation(certificate, issuer)
            except KeyMaterialError as exc:
                raise UntrustedCertificateError(f"revocation cannot be checked: {exc}") from None
            if reason:
                raise UntrustedCertificateError(f"signer certificate {certificate.subject.rfc4514_string()} is {reason}")

    def _checked_key(self, certificate: x509.Certificate) -> x509.Certificate:
        check_signing_usage(certificate)
        key = certificate.public_key()
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < self._policy.min_rsa_key_bits:
            minimum = self._policy.min_rsa_key_bits
            raise WeakAlgorithmError(f"signer's RSA key has {key.key_size} bits; the policy requires {minimum}")
        return certificate


#: What a ds:KeyInfo may hold to name the signer; anything else there is outside the signature and is not kept.
_KEY_INFO = frozenset(_ds(name) for name in ("X509Data", "KeyName", "KeyValue"))
_X509_DATA = frozenset(_ds(name) for name in ("X509Certificate", "X509IssuerSerial", "X509SubjectName", "X509SKI"))


def without_unsigned(document: bytes) -> bytes:
    """``document`` (verified) without what its signature does not cover, to keep and forward: the enveloped signature covers everything but the
    ds:Signature itself, whose ds:SignedInfo is covered by the signature value, so only ds:KeyInfo can carry unsigned
    content (a forged certificate tucked in there rides along otherwise). Comments and processing instructions
    around the document go too."""
    root = parse_xml(document, source="signed document")
    for key_info in root.findall(f"{_ds('Signature')}/{_ds('KeyInfo')}"):
        for child in list(key_info):
            if child.tag not in _KEY_INFO:
                key_info.remove(child)
        for data in key_info.findall(_ds("X509Data")):
            for child in list(data):
                if child.tag not in _X509_DATA:
                    data.remove(child)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _the_signature(root: etree._Element) -> etree._Element:
    at_root = root.findall("ds:Signature", _NS)
    if len(at_root) == 1:
        return at_root[0]
    if len(at_root) > 1:
        raise SignatureInvalid(f"{len(at_root)} ds:Signature elements under the root; exactly one is accepted")
    elsewhere = next(root.iter(_ds("Signature")), None)
    if elsewhere is None:
        raise SignatureMissing("the document carries no ds:Signature")
    raise SignatureInvalid(
        f"the only ds:Signature is at {root.getroottree().getpath(elsewhere)}, not directly under the root: "
        "it does not cover this document (signature wrapping?)"
    )


def _check_reference(signature: etree._Element) -> None:
    references = signature.findall("ds:SignedInfo/ds:Reference", _NS)
    if len(references) != 1:
        raise SignatureInvalid(f"{len(references)} ds:Reference elements; exactly one (the whole document) is accepted")
    uri = references[0].get("URI")
    if uri != "":
        raise SignatureInvalid(f'ds:Reference URI is {uri!r}; only URI="" (the whole document) is accepted')
    transforms = [t.get("Algorithm") for t in references[0].iterfind("ds:Transforms/ds:Transform", _NS)]
    if ENVELOPED_SIGNATURE not in transforms:
        raise SignatureInvalid("ds:Reference lacks the enveloped-signature transform")
    if signature.find("ds:Object", _NS) is not None:
        raise SignatureInvalid("ds:Object in an enveloped signature is not accepted (signature-wrapping hazard)")


def _reason(summary: str, exc: BaseException) -> str:
    detail = str(exc).strip().rstrip(":").strip()
    return f"{summary}: {detail}" if detail else summary


_X509_CERTIFICATE = "ds:KeyInfo/ds:X509Data/ds:X509Certificate"


def _certificates_in(signature: etree._Element) -> list[x509.Certificate]:
    certificates = []
    for element in signature.iterfind(_X509_CERTIFICATE, _NS):
        try:
            der = base64.b64decode("".join((element.text or "").split()), validate=True)
            certificates.append(x509.load_der_x509_certificate(der))
        except (binascii.Error, ValueError) as exc:
            raise SignatureInvalid(f"ds:X509Certificate is not a valid certificate: {exc}") from None
    if not certificates:
        raise UntrustedCertificateError("the signature carries no ds:KeyInfo/ds:X509Data/ds:X509Certificate")
    return certificates


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (x509.ExtensionNotFound, ValueError):
        return False


def _signer_extension_policy() -> x509.verification.ExtensionPolicy:
    """A signer certificate must allow digital signatures; other extensions are the issuing authority's business."""

    def digital_signature(_policy: object, _certificate: x509.Certificate, key_usage: x509.KeyUsage) -> None:
        if not key_usage.digital_signature:
            raise ValueError("the certificate's KeyUsage does not allow digitalSignature")

    return x509.verification.ExtensionPolicy.permit_all().require_present(
        x509.KeyUsage, x509.verification.Criticality.AGNOSTIC, digital_signature
    )
