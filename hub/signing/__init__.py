"""Signing and verifying documents with XML-DSig (enveloped, whole document), over signxml.

Configure once, sign many: a :class:`Signer` holds one loaded key under one frozen :class:`SigningPolicy`; a
:class:`Verifier` holds a :class:`TrustStore` and hands back a :class:`VerifiedDocument` carrying only what was signed.
:func:`init_dev_pki` makes the development PKI the hub and its sandboxes use.
"""

from hub.signing.entitlement import SignerRegistry
from hub.signing.keys import KeyProvider, PemKeyProvider
from hub.signing.pki import DevPki, init_dev_pki
from hub.signing.policy import KeyKind, SigningPolicy
from hub.signing.signer import Signer
from hub.signing.trust import TrustStore
from hub.signing.verifier import VerifiedDocument, Verifier

__all__ = [
    "DevPki",
    "KeyKind",
    "KeyProvider",
    "PemKeyProvider",
    "Signer",
    "SignerRegistry",
    "SigningPolicy",
    "TrustStore",
    "VerifiedDocument",
    "Verifier",
    "init_dev_pki",
]
