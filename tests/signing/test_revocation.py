"""Revocation: a signer its CA has revoked (a CRL beside ``ca.pem``) is no longer trusted, from the moment the CRL
file appears or changes; a CRL that cannot be read fails closed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from hub.errors import UntrustedCertificateError
from hub.signing import Signer, TrustStore, Verifier
from hub.signing.pki import init_dev_pki

DOCUMENT = b"<rsm:SPSCertificate xmlns:rsm='urn:un:unece:uncefact:data:standard:SPSCertificate:17'><x>1</x></rsm:SPSCertificate>"


def crl(pki, *serials: int) -> bytes:
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    now = datetime.now(timezone.utc)
    builder = x509.CertificateRevocationListBuilder().issuer_name(ca.subject).last_update(now).next_update(now + timedelta(days=7))
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - timedelta(minutes=1)).build())
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def own_pki(tmp_path):
    return init_dev_pki(tmp_path / "pki", authorities=("FR", "US"), rsa_key_bits=2048)


def test_a_revoked_signer_is_refused_once_the_crl_says_so(own_pki):
    verifier = Verifier(own_pki.trust_store())
    signed = Signer(own_pki.key_provider("FR")).sign(DOCUMENT)
    verifier.verify(signed)  # no CRL yet
    fr = x509.load_pem_x509_certificate(own_pki.signing_certs["FR"].read_bytes())
    us = x509.load_pem_x509_certificate(own_pki.signing_certs["US"].read_bytes())
    (own_pki.ca_cert.parent / "crl.pem").write_bytes(crl(own_pki, us.serial_number))
    verifier.verify(signed)  # the CRL revokes another certificate
    (own_pki.ca_cert.parent / "crl.pem").write_bytes(crl(own_pki, us.serial_number, fr.serial_number) + b"\n")
    with pytest.raises(UntrustedCertificateError, match="revoked by its CA"):
        verifier.verify(signed)


def test_a_crl_signed_by_someone_else_revokes_nothing(own_pki, tmp_path):
    stranger = init_dev_pki(tmp_path / "stranger", authorities=("FR",), rsa_key_bits=2048)
    fr = x509.load_pem_x509_certificate(own_pki.signing_certs["FR"].read_bytes())
    forged = crl(stranger, fr.serial_number)  # same serial, but not the issuer's CRL
    path = tmp_path / "crl.pem"
    path.write_bytes(forged)
    verifier = Verifier(TrustStore.from_paths(ca_bundle=own_pki.ca_cert, crls=[path]))
    verifier.verify(Signer(own_pki.key_provider("FR")).sign(DOCUMENT))


def test_an_unreadable_crl_fails_closed(own_pki, tmp_path):
    path = tmp_path / "crl.pem"
    path.write_bytes(b"-----BEGIN X509 CRL-----\nnot a crl\n-----END X509 CRL-----\n")
    verifier = Verifier(TrustStore.from_paths(ca_bundle=own_pki.ca_cert, crls=[path]))
    with pytest.raises(UntrustedCertificateError, match="revocation cannot be checked"):
        verifier.verify(Signer(own_pki.key_provider("FR")).sign(DOCUMENT))
