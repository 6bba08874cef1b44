"""The development PKI: layout, permissions, chains, TLS usability and ``if_missing``."""

from __future__ import annotations

import dataclasses
import json
import ssl
import stat
from ipaddress import ip_address

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from hub.errors import ConfigurationError
from hub.signing import Signer, Verifier, init_dev_pki
from hub.signing.pki import CA_COMMON_NAME


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def country_of(certificate: x509.Certificate) -> str:
    return certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value


def test_layout_follows_the_index(rsa_and_ec_pki):
    relative = sorted(str(p.relative_to(rsa_and_ec_pki.directory)) for p in rsa_and_ec_pki.directory.rglob("*") if p.is_file())

    assert relative == sorted([
        "ca.key", "ca.pem", "pki.json",
        "signing/DE.key", "signing/DE.pem", "signing/FR.key", "signing/FR.pem",
        "tls/client-DE.key", "tls/client-DE.pem", "tls/client-FR.key", "tls/client-FR.pem",
        "tls/server.key", "tls/server.pem",
        "as4/DE.key", "as4/DE.pem", "as4/FR.key", "as4/FR.pem",
    ])
    index = json.loads(rsa_and_ec_pki.index.read_text())
    assert index["signing"]["FR"]["cert"] == "signing/FR.pem"
    assert index["tls"]["clients"]["DE"]["key"] == "tls/client-DE.key"
    assert index["as4"]["DE"]["key"] == "as4/DE.key"


def test_access_points_have_rsa_keys_that_sign_and_take_wrapped_keys_but_sign_no_documents(rsa_and_ec_pki):
    """AS4 wants RSA (RSA-OAEP key transport) even where the authority signs documents with ECDSA; an access point
    key is no document-signing key."""
    for country in ("FR", "DE"):
        certificate = load(rsa_and_ec_pki.access_point_certs[country])
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        assert isinstance(certificate.public_key(), rsa.RSAPublicKey)
        assert usage.digital_signature and usage.key_encipherment and not usage.content_commitment
        assert country_of(certificate) == country


def test_private_keys_are_readable_by_the_owner_only(rsa_and_ec_pki):
    for key in rsa_and_ec_pki.key_files():
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_signing_certificates_name_their_authority_and_key_kind(rsa_and_ec_pki):
    fr, de = load(rsa_and_ec_pki.signing_certs["FR"]), load(rsa_and_ec_pki.signing_certs["DE"])

    assert fr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "FR NPPO signing (development)"
    assert country_of(fr) == "FR"
    assert isinstance(fr.public_key(), rsa.RSAPublicKey) and fr.public_key().key_size == 3072
    assert isinstance(de.public_key(), ec.EllipticCurvePublicKey) and de.public_key().curve.name == "secp256r1"
    assert load(rsa_and_ec_pki.ca_cert).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CA_COMMON_NAME


def test_every_certificate_chains_to_the_development_ca(rsa_and_ec_pki):
    store = x509.verification.Store([load(rsa_and_ec_pki.ca_cert)])
    builder = x509.verification.PolicyBuilder().store(store)

    server = builder.build_server_verifier(x509.DNSName("localhost")).verify(load(rsa_and_ec_pki.server_cert), [])
    assert server[-1] == load(rsa_and_ec_pki.ca_cert)
    builder.build_server_verifier(x509.IPAddress(ip_address("127.0.0.1"))).verify(load(rsa_and_ec_pki.server_cert), [])
    for country in ("FR", "DE"):
        client = builder.build_client_verifier().verify(load(rsa_and_ec_pki.client_certs[country]), [])
        assert client.chain[-1] == load(rsa_and_ec_pki.ca_cert)


def test_signing_identities_sign_documents_the_ca_vouches_for(rsa_and_ec_pki):
    verifier = Verifier(rsa_and_ec_pki.trust_store())
    for country in ("FR", "DE"):
        signed = Signer(rsa_and_ec_pki.key_provider(country)).sign(b"<Note>chain</Note>")
        assert verifier.verify(signed).signer_subject.endswith(f"C={country}")


def test_client_certificates_carry_the_country_in_their_subject(rsa_and_ec_pki):
    for country in ("FR", "DE"):
        assert country_of(load(rsa_and_ec_pki.client_certs[country])) == country


def test_tls_certificates_complete_a_mutual_handshake_in_memory(rsa_and_ec_pki):
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(rsa_and_ec_pki.server_cert, rsa_and_ec_pki.server_key)
    server_context.load_verify_locations(rsa_and_ec_pki.ca_cert)
    server_context.verify_mode = ssl.CERT_REQUIRED
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.load_cert_chain(rsa_and_ec_pki.client_certs["FR"], rsa_and_ec_pki.client_keys["FR"])
    client_context.load_verify_locations(rsa_and_ec_pki.ca_cert)

    server, client = _handshake(server_context, client_context, server_hostname="localhost")

    subject = dict(part for rdn in server.getpeercert()["subject"] for part in rdn)
    assert subject["countryName"] == "FR"
    assert dict(part for rdn in client.getpeercert()["subject"] for part in rdn)["commonName"] == "localhost"


def _handshake(server_context, client_context, *, server_hostname):
    """Drive a TLS handshake through memory BIOs: no sockets needed."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_context.wrap_bio(to_server, to_client, server_side=True)
    client = client_context.wrap_bio(to_client, to_server, server_hostname=server_hostname)
    done = {"server": False, "client": False}
    for _ in range(10):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        if all(done.values()):
            # TLS 1.3 client authentication completes when the server reads the client's first data.
            client.write(b"ping")
            assert server.read(4) == b"ping"
            return server, client
    raise AssertionError("TLS handshake did not complete")


def test_if_missing_leaves_a_complete_pki_untouched(tmp_path):
    first = init_dev_pki(tmp_path, rsa_key_bits=2048)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}

    again = init_dev_pki(tmp_path, if_missing=True, rsa_key_bits=2048)

    assert first.generated and not again.generated
    assert again == dataclasses.replace(first, generated=False)
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


def test_if_missing_regenerates_when_a_key_is_missing(tmp_path):
    first = init_dev_pki(tmp_path, rsa_key_bits=2048)
    old_ca = first.ca_cert.read_bytes()
    first.client_keys["FR"].unlink()

    again = init_dev_pki(tmp_path, if_missing=True, rsa_key_bits=2048)

    assert again.generated
    assert again.ca_cert.read_bytes() != old_ca
    assert all(path.is_file() for path in again.key_files())


def test_if_missing_regenerates_when_an_authority_is_added(tmp_path):
    init_dev_pki(tmp_path, rsa_key_bits=2048)

    again = init_dev_pki(tmp_path, authorities=("FR", "IT"), if_missing=True, rsa_key_bits=2048)

    assert again.generated and set(again.signing_certs) == {"FR", "IT"}


def test_without_if_missing_a_fresh_pki_replaces_the_old_one(tmp_path):
    init_dev_pki(tmp_path, authorities=("FR", "IT"), rsa_key_bits=2048)

    again = init_dev_pki(tmp_path, authorities=("FR",), rsa_key_bits=2048)

    assert again.generated
    assert not (tmp_path / "signing" / "IT.key").exists()  # a key chaining to the old CA would only mislead


@pytest.mark.parametrize(
    ("authorities", "ec_authorities"),
    [(("fr",), ()), (("../x",), ()), ((), ()), (("FR",), ("NL",)), ("FR", ())],
)
def test_authorities_must_be_country_codes(tmp_path, authorities, ec_authorities):
    with pytest.raises(ConfigurationError):
        init_dev_pki(tmp_path, authorities=authorities, ec_authorities=ec_authorities)
