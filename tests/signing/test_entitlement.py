"""Who may sign what: a TLS certificate never signs a document, and a trusted signer speaks only for its own issuing
authority (its country, or what the signer registry grants it) — on submission, on reception, in /v1/verify and in
``hub verify``."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography import x509

from hub.connector import InboundDocument, InboundOutcome
from hub.errors import NotEntitled, WrongKeyUsage
from hub.signing import PemKeyProvider, Signer, SignerRegistry
from hub.signing.entitlement import fingerprint
from hub.standards import PROJECT_ROOT
from hub.store.models import Document
from tests.support.broker import example_record, make_broker

INBOUND = {"rules": [{"name": "to-authority", "when": {}, "to": ["authority"]},
                     {"name": "received", "when": {"direction": "inbound"}, "to": ["customs"]}]}


def certificate_of(pki, country: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pki.signing_certs[country].read_bytes())


def unsigned_certificate(broker, *, number: str, exporting: str, importing: str) -> bytes:
    """An unsigned phytosanitary certificate issued by ``exporting`` for ``importing`` (rendered by the hub)."""
    from hub.mapping.sps_certificate import record_from_data, render_certificate, to_xml

    data = example_record(certificate_number=number)
    data.pop("issuer", None)
    data["consignment"].update(export_country={"id": exporting}, import_country={"id": importing})
    return to_xml(render_certificate(record_from_data(data)).root)


def test_a_signer_speaks_for_its_own_country_by_default_and_a_registry_may_say_otherwise(pki):
    fr, us = certificate_of(pki, "FR"), certificate_of(pki, "US")
    default = SignerRegistry()
    default.check(fr, country="FR", family="sps")
    with pytest.raises(NotEntitled, match="signs for US, not for the issuing authority of EC"):
        default.check(us, country="EC", family="sps")
    registry = SignerRegistry({fingerprint(us): _grant("EC", {"cites"})}, by_subject_country=False)
    registry.check(us, country="EC", family="cites")
    with pytest.raises(NotEntitled, match="signs cites documents, not sps"):
        registry.check(us, country="EC", family="sps")
    with pytest.raises(NotEntitled, match="no issuing authority"):
        registry.check(fr, country="FR", family="sps")


def test_a_tls_certificate_never_signs_a_document(pki):
    server = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    with pytest.raises(WrongKeyUsage, match="TLS certificate"):
        SignerRegistry().check(server, country="FR", family="sps")


def test_the_registry_file_is_read(tmp_path, pki):
    us = certificate_of(pki, "US")
    path = tmp_path / "signers.yaml"
    path.write_text(f"by_subject_country: false\nsigners:\n  - fingerprint: {fingerprint(us)}\n    country: ec\n    families: [sps]\n")
    SignerRegistry.load(path).check(us, country="EC", family="sps")
    assert SignerRegistry.load(tmp_path / "absent.yaml").by_subject_country is True


def test_a_certificate_signed_with_another_countrys_key_is_refused_on_submission(database_url, pki):
    broker = make_broker(database_url, pki)
    try:
        body = broker.signer_for("US").sign(unsigned_certificate(broker, number="FR-2026-NL-KEY", exporting="FR", importing="EC"))
        with pytest.raises(NotEntitled, match="not for the issuing authority of FR"):
            broker.submit(body, "application/xml", tenant="FR", actor="test")
        with broker.database.sessions() as session:
            assert session.query(Document).count() == 0
    finally:
        broker.close()


@pytest.mark.parametrize("signed_by", ["US", "tls"])
def test_a_received_certificate_signed_by_a_signer_not_entitled_is_refused_and_not_stored(database_url, pki, signed_by):
    broker = make_broker(database_url, pki, routes=INBOUND)
    try:
        document = unsigned_certificate(broker, number=f"EC-2026-{signed_by}", exporting="EC", importing="FR")
        signer = broker.signer_for("US") if signed_by == "US" else Signer(PemKeyProvider(pki.server_key, pki.server_cert))
        verdict = broker.receive_document("authority", InboundDocument(signer.sign(document), "HUB-X"))
        assert verdict.outcome is InboundOutcome.FAILED and verdict.refusal in ("NOT_ENTITLED", "SIGNATURE_REFUSED"), verdict
        assert ("not for the issuing authority of EC" if signed_by == "US" else "TLS certificate") in verdict.reason
        with broker.database.sessions() as session:
            assert session.query(Document).count() == 0
    finally:
        broker.close()


def test_verify_says_a_document_signed_by_another_country_is_not_genuine(database_url, pki, tmp_path):
    from fastapi.testclient import TestClient

    from hub.api.app import create_app
    from hub.api.auth import create_client

    broker = make_broker(database_url, pki)
    try:
        with broker.database.transaction() as session:
            key = create_client(session, name="checker", tenant="FR")[1]
        forged = broker.signer_for("US").sign(unsigned_certificate(broker, number="EC-2026-FORGED", exporting="EC", importing="FR"))
        answer = TestClient(create_app(broker)).post("/v1/verify", content=forged, headers={"Authorization": f"Bearer {key}"}).json()
        assert answer["genuine"] is False and "not for the issuing authority of EC" in answer["reason"]
        (tmp_path / "forged.xml").write_bytes(forged)
        cli = subprocess.run([sys.executable, "-m", "hub", "verify", "--certs-dir", str(pki.directory), str(tmp_path / "forged.xml")],
                             capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
        assert cli.returncode == 1 and "not for the issuing authority of EC" in cli.stderr
    finally:
        broker.close()


def _grant(country, families):
    from hub.signing.entitlement import Grant

    return Grant(country, frozenset(families))


def test_forged_content_in_key_info_is_neither_read_nor_kept_nor_forwarded(database_url, pki):
    from lxml import etree

    from hub.store.models import Payload

    broker = make_broker(database_url, pki)
    try:
        signed = broker.signer_for("FR").sign(unsigned_certificate(broker, number="FR-2026-KEYINFO", exporting="FR", importing="EC"))
        root = etree.fromstring(signed)
        key_info = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature/{http://www.w3.org/2000/09/xmldsig#}KeyInfo")
        forged = etree.fromstring(unsigned_certificate(broker, number="FR-2026-FORGED-COPY", exporting="FR", importing="EC"))
        key_info.append(forged)
        key_info.find("{*}X509Data").append(etree.fromstring('<x:smuggled xmlns:x="urn:example:evil">FR-2026-FORGED-COPY</x:smuggled>'))
        stored = broker.submit(etree.tostring(root), "application/xml", tenant="FR", actor="test")
        with broker.database.sessions() as session:
            kept = session.get(Payload, stored.document.payload_digest).content
            forwarded = [session.get(Payload, m.payload_digest).content for m in stored.document.messages]
        assert stored.document.certificate_number == "FR-2026-KEYINFO"
        for body in (kept, *forwarded):
            assert b"FORGED" not in body and b"X509Certificate" in body
            assert broker.verifier.verify(body).signer_subject.endswith("C=FR")
    finally:
        broker.close()


@pytest.mark.parametrize(("purposes", "signs"), [
    (None, True),  # no ExtendedKeyUsage: the KeyUsage alone decides
    (["1.3.6.1.5.5.7.3.36"], True),  # id-kp-documentSigning (RFC 9336)
    (["1.3.6.1.4.1.311.10.3.12"], True),  # Microsoft document signing
    (["1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.2"], True),  # emailProtection + clientAuth, as eIDAS signing certificates
    (["2.5.29.37.0"], True),  # anyExtendedKeyUsage
    (["1.3.6.1.5.5.7.3.3", "1.3.6.1.5.5.7.3.8"], False),  # codeSigning + timeStamping
    (["1.3.6.1.5.5.7.3.9"], False),  # OCSP signing
    (["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"], False),  # TLS server and client
])
def test_an_extended_key_usage_must_name_a_document_signing_purpose(purposes, signs):
    from datetime import datetime, timedelta, timezone

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from hub.signing.entitlement import check_signing_usage

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"), x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1)))
    if purposes:
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.ObjectIdentifier(p) for p in purposes]), critical=False)
    certificate = builder.sign(key, hashes.SHA256())
    if signs:
        check_signing_usage(certificate)
    else:
        with pytest.raises(WrongKeyUsage):
            check_signing_usage(certificate)
