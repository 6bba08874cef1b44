"""The signing policy: which XML-DSig algorithms the hub writes and which it accepts.

One frozen :class:`SigningPolicy` is shared by the :class:`~hub.signing.signer.Signer` and the
:class:`~hub.signing.verifier.Verifier`. The hub signs with RSA-SHA256 or ECDSA-SHA256 (chosen by the key), a SHA-256
digest and exclusive canonicalization; it accepts the SHA-384 and SHA-512 variants from counterparts. SHA-1 is never
accepted, whatever the configuration says: a policy that lists it cannot be built.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hub.errors import ConfigurationError, WeakAlgorithmError

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ECDSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"

SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"

EXCLUSIVE_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXCLUSIVE_C14N_WITH_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
C14N_1_0 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_1_1 = "http://www.w3.org/2006/12/xml-c14n11"

ENVELOPED_SIGNATURE = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"


class KeyKind(str, Enum):
    """The family of a signing key; it decides the signature method."""

    RSA = "RSA"
    EC = "EC"


def uses_sha1(algorithm_uri: str) -> bool:
    """True for every XML-DSig identifier built on SHA-1 (``#sha1``, ``#rsa-sha1``, ``#sha1-rsa-MGF1``...)."""
    fragment = algorithm_uri.rpartition("#")[2].lower()
    return fragment == "sha1" or fragment.startswith("sha1-") or fragment.endswith("-sha1")


@dataclass(frozen=True)
class SigningPolicy:
    """Algorithms the hub signs with, and the wider set it accepts when verifying.

    ``rsa_signature_method`` / ``ec_signature_method`` are used for signing, picked by the key's kind;
    ``digest_method`` and ``canonicalization_method`` likewise. The ``accepted_*`` sets apply to verification;
    ``min_rsa_key_bits`` to both sides.
    """

    rsa_signature_method: str = RSA_SHA256
    ec_signature_method: str = ECDSA_SHA256
    digest_method: str = SHA256
    canonicalization_method: str = EXCLUSIVE_C14N
    accepted_signature_methods: frozenset[str] = frozenset(
        {RSA_SHA256, RSA_SHA384, RSA_SHA512, ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512}
    )
    accepted_digest_methods: frozenset[str] = frozenset({SHA256, SHA384, SHA512})
    accepted_canonicalization_methods: frozenset[str] = frozenset(
        {EXCLUSIVE_C14N, EXCLUSIVE_C14N_WITH_COMMENTS, C14N_1_0, C14N_1_1}
    )
    min_rsa_key_bits: int = 2048

    def __post_init__(self) -> None:
        every = {self.rsa_signature_method, self.ec_signature_method, self.digest_method}
        every |= self.accepted_signature_methods | self.accepted_digest_methods
        weak = sorted(uri for uri in every if uses_sha1(uri))
        if weak:
            raise ConfigurationError(f"a signing policy may not allow SHA-1 algorithms: {', '.join(weak)}")
        for name, chosen, accepted in (
            ("rsa_signature_method", self.rsa_signature_method, self.accepted_signature_methods),
            ("ec_signature_method", self.ec_signature_method, self.accepted_signature_methods),
            ("digest_method", self.digest_method, self.accepted_digest_methods),
            ("canonicalization_method", self.canonicalization_method, self.accepted_canonicalization_methods),
        ):
            if chosen not in accepted:
                raise ConfigurationError(f"{name} {chosen} is not among the algorithms the policy accepts")
        if not self.rsa_signature_method.rpartition("#")[2].startswith("rsa-"):
            raise ConfigurationError(f"rsa_signature_method {self.rsa_signature_method} is not an RSA method")
        if not self.ec_signature_method.rpartition("#")[2].startswith("ecdsa-"):
            raise ConfigurationError(f"ec_signature_method {self.ec_signature_method} is not an ECDSA method")

    def signature_method_for(self, kind: KeyKind) -> str:
        """The signature method the hub signs with for a key of this kind."""
        return self.rsa_signature_method if kind is KeyKind.RSA else self.ec_signature_method

    def check_signature_method(self, uri: str | None) -> None:
        """Raise :class:`WeakAlgorithmError` unless ``uri`` is an accepted signature method."""
        _check(uri, self.accepted_signature_methods, "signature method")

    def check_digest_method(self, uri: str | None) -> None:
        """Raise :class:`WeakAlgorithmError` unless ``uri`` is an accepted digest method."""
        _check(uri, self.accepted_digest_methods, "digest method")

    def check_canonicalization_method(self, uri: str | None) -> None:
        """Raise :class:`WeakAlgorithmError` unless ``uri`` is an accepted canonicalization method."""
        _check(uri, self.accepted_canonicalization_methods, "canonicalization method")


def _check(uri: str | None, accepted: frozenset[str], what: str) -> None:
    if uri is None:
        raise WeakAlgorithmError(f"the signature names no {what}")
    if uses_sha1(uri):
        raise WeakAlgorithmError(f"{what} {uri} uses SHA-1, which the signing policy forbids")
    if uri not in accepted:
        raise WeakAlgorithmError(f"{what} {uri} is not allowed by the signing policy")
