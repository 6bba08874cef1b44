"""A verifier keeps the chains it found trusted, by the certificates a signature carries: the same signer comes back
with every answer. What it keeps must never let through what a full verification refuses: a signature value made
with another key, other certificates, a chain past its validity, a certificate revoked since (test_revocation.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from lxml import etree

import hub.signing.verifier as verifier_module
from hub.errors import SignatureInvalid, UntrustedCertificateError
from hub.namespaces import XMLDSIG
from hub.signing import Signer, TrustStore, Verifier
from hub.signing.pki import init_dev_pki

DOCUMENT = b"<rsm:SPSCertificate xmlns:rsm='urn:un:unece:uncefact:data:standard:SPSCertificate:17'><x>1</x></rsm:SPSCertificate>"
CERTIFICATE = f"{{{XMLDSIG}}}X509Certificate"


@pytest.fixture(scope="module")
def pkis(tmp_path_factory):
    root = tmp_path_factory.mktemp("chains")
    return init_dev_pki(root / "own", authorities=("FR",), rsa_key_bits=2048), init_dev_pki(root / "stranger", authorities=("FR",), rsa_key_bits=2048)


def with_certificates_of(signed: bytes, other: bytes) -> bytes:
    """``signed`` carrying ``other``'s certificates in place of its own (its signature value unchanged)."""
    root, donor = etree.fromstring(signed), etree.fromstring(other)
    for mine, theirs in zip(root.iter(CERTIFICATE), donor.iter(CERTIFICATE), strict=True):
        mine.text = theirs.text
    return etree.tostring(root)


def test_a_known_signer_is_trusted_again_and_its_signature_still_checked(pkis):
    own, stranger = pkis
    verifier = Verifier(TrustStore.from_paths(ca_bundle=own.ca_cert))
    genuine = Signer(own.key_provider("FR")).sign(DOCUMENT)
    first = verifier.verify(genuine)
    assert verifier.verify(genuine).signer_subject == first.signer_subject
    # The stranger's signature value under our FR certificate: the certificate is known, the signature is not its.
    forged = with_certificates_of(Signer(stranger.key_provider("FR")).sign(DOCUMENT), genuine)
    with pytest.raises(SignatureInvalid):
        verifier.verify(forged)
    # The stranger's own certificate, with the same subject, chains to no anchor of ours.
    with pytest.raises(UntrustedCertificateError):
        verifier.verify(Signer(stranger.key_provider("FR")).sign(DOCUMENT))
    assert verifier.verify(genuine).signer_subject == first.signer_subject


def test_a_known_chain_is_not_trusted_past_its_validity(pkis, monkeypatch):
    own, _ = pkis
    verifier = Verifier(TrustStore.from_paths(ca_bundle=own.ca_cert))
    signed = Signer(own.key_provider("FR")).sign(DOCUMENT)
    verifier.verify(signed)
    expiry = x509.load_pem_x509_certificate(own.signing_certs["FR"].read_bytes()).not_valid_after_utc

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):
            return expiry + timedelta(days=1)

    monkeypatch.setattr(verifier_module, "datetime", Later)
    with pytest.raises(UntrustedCertificateError, match="does not chain"):
        verifier.verify(signed)
    assert Later.now(timezone.utc) > expiry
