"""Loading AS4 key material: the AS4.NET sample PKCS#12 stores (3DES and RC2-40 encrypted), DER and PEM certificates,
PEM keys, and the errors that name the file and the reason."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.as4.keyinfo import (describe_certificate, names_match, parse_pkipath, same_public_key,
                                    subject_key_identifiers)
from connectors.as4.keys import KeyPair, load_certificates, load_key_pair
from hub.errors import KeyMaterialError

PASSWORD_A = "Pz4cZK4SULUwmraZa"
PASSWORD_B = "Pz4cZK4SULUwmraZb"


@pytest.fixture(scope="module")
def keys(standards: Path) -> Path:
    return standards / "samples/as4/keys"


def test_the_published_passwords_are_the_ones_used_here(keys):
    readme = (keys / "as4net-README.txt").read_text()
    assert f"AccessPointA.pfx: {PASSWORD_A}" in readme and f"AccessPointB.pfx: {PASSWORD_B}" in readme
    assert "123456" in (keys / "as4net-interoptesting-readme.txt").read_text()


@pytest.mark.parametrize("name, password, subject, serial", [
    ("as4net-AccessPointA.pfx", PASSWORD_A, "CN=AccessPointA", 0x71E5DA3FEC427453),
    ("as4net-AccessPointB.pfx", PASSWORD_B, "CN=AccessPointB", 0x52A8AAE8DFB86DC9),
])
def test_access_point_stores_load(keys, name, password, subject, serial):
    pair = load_key_pair(keys / name, password)
    assert isinstance(pair, KeyPair)
    assert isinstance(pair.private_key, rsa.RSAPrivateKey) and pair.private_key.key_size == 2048
    assert pair.certificate.subject.rfc4514_string() == subject
    assert pair.certificate.serial_number == serial
    assert pair.chain == ()
    # the store's certificate is the published .cer, byte for byte
    assert load_certificates(keys / name.replace(".pfx", ".cer")) == [pair.certificate]
    assert "PRIVATE" not in repr(pair) and subject in repr(pair)


def test_rc2_encrypted_interop_store_loads_with_bytes_password(keys):
    # as4-net-c3.pfx keeps its certificate under pbeWithSHA1And40BitRC2-CBC: OpenSSL's legacy provider reads it
    pair = load_key_pair(keys / "as4net-as4-net-c3.pfx", b"123456")
    assert pair.certificate.serial_number == 0x38A9AC98
    assert pair.certificate.subject.rfc4514_string() == \
        "CN=as4-net-c3,OU=as4-net-c3,O=as4-net-c3,L=as4-net-c3,ST=as4-net-c3,C=EU"


def test_without_the_legacy_provider_the_error_names_rc2_not_just_the_password(keys):
    path = keys / "as4net-as4-net-c3.pfx"
    script = ("from connectors.as4.keys import load_key_pair\n"
              "try:\n    load_key_pair(__import__('sys').argv[1], '123456')\n"
              "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60,
                            env={"CRYPTOGRAPHY_OPENSSL_NO_LEGACY": "1", "PYTHONPATH": str(Path.cwd())},
                            cwd=Path(__file__).resolve().parents[3])
    assert result.stdout.startswith("KeyMaterialError " + str(path)), result.stdout + result.stderr
    assert "pbeWithSHA1And40BitRC2-CBC" in result.stdout and "legacy provider" in result.stdout


def test_wrong_password_names_the_file(keys):
    path = keys / "as4net-AccessPointA.pfx"
    with pytest.raises(KeyMaterialError) as caught:
        load_key_pair(path, PASSWORD_B)
    assert str(caught.value).startswith(f"{path}: wrong password for the PKCS#12 store")


def test_missing_password_and_missing_file_and_wrong_kind(keys, tmp_path):
    with pytest.raises(KeyMaterialError, match="password-protected and no password was given"):
        load_key_pair(keys / "as4net-AccessPointB.pfx")
    with pytest.raises(KeyMaterialError, match="absent.pfx: cannot read the key file"):
        load_key_pair(tmp_path / "absent.pfx", "x")
    with pytest.raises(KeyMaterialError, match="AccessPointA.cer: not a PKCS#12 store"):
        load_key_pair(keys / "as4net-AccessPointA.cer")
    with pytest.raises(KeyMaterialError, match="as4net-AccessPointA.pem: no PEM private key"):
        load_key_pair(keys / "derived/as4net-AccessPointA.pem")
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    with pytest.raises(KeyMaterialError, match="empty.pem: the certificate file is empty"):
        load_certificates(empty)
    junk = tmp_path / "junk.cer"
    junk.write_bytes(b"\x30\x03\x02\x01\x01")
    with pytest.raises(KeyMaterialError, match="junk.cer: neither a PEM, a DER certificate nor a PKCS#7 bundle"):
        load_certificates(junk)


def test_certificates_in_der_and_pem(keys):
    der = load_certificates(keys / "as4net-AccessPointB.cer")
    pem = load_certificates(keys / "derived/as4net-AccessPointB.pem")
    assert der == pem and der[0].serial_number == 0x52A8AAE8DFB86DC9
    red = load_certificates(keys / "derived/domibus-red_gw.pem")
    assert red[0].subject.rfc4514_string() == "C=BE,O=eDelivery,CN=red_gw"


def _pem_key(pair: KeyPair, password: bytes | None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return pair.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def test_pem_key_with_separate_or_embedded_certificate(keys, tmp_path):
    pair = load_key_pair(keys / "as4net-AccessPointA.pfx", PASSWORD_A)
    key_file = tmp_path / "a.key"
    key_file.write_bytes(_pem_key(pair, b"secret"))
    loaded = load_key_pair(key_file, "secret", certificate_path=keys / "as4net-AccessPointA.cer")
    assert loaded.certificate == pair.certificate
    both = tmp_path / "a.pem"
    both.write_bytes(_pem_key(pair, None) + pair.certificate.public_bytes(serialization.Encoding.PEM))
    assert load_key_pair(both).certificate == pair.certificate
    with pytest.raises(KeyMaterialError, match="a.key: wrong password for the private key"):
        load_key_pair(key_file, "not-it", certificate_path=keys / "as4net-AccessPointA.cer")
    with pytest.raises(KeyMaterialError, match="a.key: no certificate in the file"):
        load_key_pair(key_file, "secret")


def test_certificate_of_another_key_is_refused(keys, tmp_path):
    pair = load_key_pair(keys / "as4net-AccessPointA.pfx", PASSWORD_A)
    key_file = tmp_path / "a.key"
    key_file.write_bytes(_pem_key(pair, None))
    with pytest.raises(KeyMaterialError) as caught:
        load_key_pair(key_file, certificate_path=keys / "as4net-AccessPointB.cer")
    assert "(CN=AccessPointB) does not hold the public key of the private key in" in str(caught.value)
    assert str(caught.value).startswith(str(keys / "as4net-AccessPointB.cer"))


@pytest.mark.parametrize("written, expected", [
    ("C=BE,O=eDelivery,CN=red_gw", True),  # as Domibus writes it (domibus-is_incoming_message.xml)
    ("CN=red_gw, O=eDelivery, C=BE", True),  # .NET order and spacing
    ("cn=RED_GW;o=edelivery;c=be", True),
    ("OID.2.5.4.3=red_gw,O=eDelivery,C=BE", True),
    ("CN=red\\5fgw,O=eDelivery,C=BE", True),  # RFC 4514 hex escape
    ("CN=blue_gw,O=eDelivery,C=BE", False),
    ("CN=red_gw,O=eDelivery", False),
    ("CN=red_gw,O=eDelivery,C=BE,OU=extra", False),
    ("not a name", False),
])
def test_issuer_names_compare_as_attributes(keys, written, expected):
    red_gw = load_certificates(keys / "derived/domibus-red_gw.pem")[0]
    assert names_match(written, red_gw.issuer) is expected


def test_subject_key_identifier_of_red_gw_is_the_one_domibus_references(keys):
    red_gw = load_certificates(keys / "derived/domibus-red_gw.pem")[0]
    assert base64.b64encode(subject_key_identifiers(red_gw)[0]).decode() == "7AJeAnEL5EE5l3lLc+EoFpOfJCo="
    a, b = load_certificates(keys / "as4net-AccessPointA.cer")[0], load_certificates(keys / "as4net-AccessPointB.cer")[0]
    assert same_public_key(a, load_certificates(keys / "derived/as4net-AccessPointA.pem")[0]) and not same_public_key(a, b)
    assert describe_certificate(b) == "CN=AccessPointB serial 5956198424360021449 (0x52a8aae8dfb86dc9)"


def test_pkipath_reading_is_bounded(keys):
    der = (keys / "as4net-AccessPointA.cer").read_bytes()
    body = der * 2
    path = bytes([0x30, 0x82]) + len(body).to_bytes(2, "big") + body
    assert [certificate.subject.rfc4514_string() for certificate in parse_pkipath(path)] == ["CN=AccessPointA"] * 2
    with pytest.raises(ValueError, match="truncated"):
        parse_pkipath(path[:-1])
    with pytest.raises(ValueError, match="more than 1 certificates"):
        parse_pkipath(path, max_certificates=1)
    with pytest.raises(ValueError, match="trailing bytes"):
        parse_pkipath(path + b"\x00")
