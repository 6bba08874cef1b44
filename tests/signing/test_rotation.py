"""Signing-key rotation without downtime: a running hub signs with the new key at its next document, documents
signed with the previous key still verify (API and `hub verify`), and a pair caught half-way is never used."""

from __future__ import annotations

import base64
import json
import shutil

import pytest
from cryptography import x509
from lxml import etree
from typer.testing import CliRunner

from hub.cli import app as hub_cli
from hub.errors import ConfigurationError, KeyMaterialError
from hub.namespaces import XMLDSIG
from hub.signing import Verifier, init_dev_pki
from hub.signing.keyring import Keyring
from hub.signing.pki import rotate_signing_key
from tests.support.api import api_client
from tests.support.broker import example_record, make_broker


@pytest.fixture
def own_pki(tmp_path):
    """A PKI of this test's own: rotating the session's shared one would change it under other tests."""
    return init_dev_pki(tmp_path / "pki", authorities=("FR", "US", "JP"), rsa_key_bits=2048)


def _signer_serial(signed: bytes) -> int:
    root = etree.fromstring(signed)
    der = root.find(f".//{{{XMLDSIG}}}X509Certificate").text
    return x509.load_der_x509_certificate(base64.b64decode(der)).serial_number


def test_a_running_hub_signs_with_the_new_key_at_once_and_both_verify(database_url, own_pki, tmp_path):
    broker = make_broker(database_url, own_pki)
    try:
        with api_client(broker) as api:
            first = api.post("/v1/documents", content=json.dumps(example_record()), headers={"Content-Type": "application/json"})
            assert first.status_code == 202, first.text
            signed_before = api.get(f"/v1/documents/{first.json()['id']}/xml").content
            rotation = rotate_signing_key(own_pki.directory, "FR")
            second = api.post("/v1/documents", content=json.dumps(example_record(certificate_number="FR-2026-PC-000777")), headers={"Content-Type": "application/json"})
            assert second.status_code == 202, second.text
            signed_after = api.get(f"/v1/documents/{second.json()['id']}/xml").content
            assert _signer_serial(signed_before) != _signer_serial(signed_after) == rotation.certificate.serial_number
            for signed in (signed_before, signed_after):
                answer = api.post("/v1/verify", content=signed, headers={**api.headers_of("EC"), "Content-Type": "application/xml"}).json()
                assert (answer["genuine"], answer["signature"]) == (True, "valid"), answer
    finally:
        broker.close()
    for name, signed in (("before.xml", signed_before), ("after.xml", signed_after)):
        (tmp_path / name).write_bytes(signed)
        verified = CliRunner().invoke(hub_cli, ["verify", "--certs-dir", str(own_pki.directory), str(tmp_path / name)])
        assert verified.exit_code == 0, verified.output
    assert rotation.retired.is_file()
    assert x509.load_pem_x509_certificate(rotation.retired.read_bytes()).serial_number == _signer_serial(signed_before)


def test_a_pair_caught_half_way_is_not_used(own_pki, tmp_path):
    keyring = Keyring(own_pki.directory / "signing")
    before = keyring.signer_for("FR")
    assert keyring.signer_for("FR") is before  # unchanged files: the same signer, nothing reloaded
    # The next pair made aside (in a copy of the PKI), then installed one file at a time.
    shutil.copytree(own_pki.directory, tmp_path / "aside")
    rotate_signing_key(tmp_path / "aside", "FR")
    shutil.copyfile(tmp_path / "aside" / "signing" / "FR.key", own_pki.directory / "signing" / "FR.key")
    assert keyring.signer_for("FR") is before  # the new key beside the old certificate: keep signing with the old pair
    shutil.copyfile(tmp_path / "aside" / "signing" / "FR.pem", own_pki.directory / "signing" / "FR.pem")
    after = keyring.signer_for("FR")
    assert after is not before
    verifier = Verifier(own_pki.trust_store())
    signed = after.sign(b"<doc><a>1</a></doc>")
    assert "C=FR" in verifier.verify(signed).signer_subject


def test_a_pair_given_by_the_authoritys_ca_is_checked_then_installed(own_pki, tmp_path):
    shutil.copytree(own_pki.directory, tmp_path / "aside")
    rotate_signing_key(tmp_path / "aside", "FR")
    new_key, new_cert = tmp_path / "aside" / "signing" / "FR.key", tmp_path / "aside" / "signing" / "FR.pem"
    stranger = init_dev_pki(tmp_path / "stranger", authorities=("FR",), rsa_key_bits=2048)
    refusals = [
        ({"key_path": own_pki.client_keys["FR"], "cert_path": own_pki.client_certs["FR"]}, KeyMaterialError, "TLS"),
        ({"key_path": own_pki.signing_keys["US"], "cert_path": own_pki.signing_certs["US"]}, KeyMaterialError, "names US"),
        ({"key_path": own_pki.signing_keys["US"], "cert_path": new_cert}, KeyMaterialError, "does not match"),
        ({"key_path": stranger.signing_keys["FR"], "cert_path": stranger.signing_certs["FR"]}, KeyMaterialError, "trust anchor"),
        ({"key_path": new_key}, ConfigurationError, "together"),
        ({"key_path": own_pki.signing_keys["FR"], "cert_path": own_pki.signing_certs["FR"]}, KeyMaterialError, "in use already"),
    ]
    before = (own_pki.signing_certs["FR"].read_bytes(), own_pki.signing_keys["FR"].read_bytes())
    for options, error, says in refusals:
        with pytest.raises(error, match=says):
            rotate_signing_key(own_pki.directory, "FR", **options)
    assert (own_pki.signing_certs["FR"].read_bytes(), own_pki.signing_keys["FR"].read_bytes()) == before  # nothing changed
    rotation = rotate_signing_key(own_pki.directory, "FR", key_path=new_key, cert_path=new_cert)
    assert own_pki.signing_certs["FR"].read_bytes() == new_cert.read_bytes()
    assert rotation.retired.read_bytes() == before[0]


def test_hub_certs_rotate_says_what_it_did_and_refuses_clearly(own_pki, tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'absent.db'}")
    runner = CliRunner()
    rotated = runner.invoke(hub_cli, ["certs", "rotate", "--country", "fr", "--dir", str(own_pki.directory)])
    assert rotated.exit_code == 0, rotated.output
    assert "FR now signs with certificate" in rotated.stdout and "retired" in rotated.stdout
    for args, says in ((["--country", "DE"], "no signing certificate"), (["--country", "F1"], "ISO 3166"),
                       (["--country", "FR", "--key", str(own_pki.signing_keys["US"])], "together")):
        refused = runner.invoke(hub_cli, ["certs", "rotate", "--dir", str(own_pki.directory), *args])
        assert refused.exit_code == 2 and says in refused.stderr, refused.output
        assert "Traceback" not in refused.output
