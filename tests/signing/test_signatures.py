"""Signing and verification with real keys and real signatures: no mocks.

A development PKI (RSA authority FR, EC authority DE: ``rsa_and_ec_pki``, tests/signing/conftest.py) is made once per
session in a temporary folder; a second, unrelated PKI (``stranger_pki``, tests/conftest.py) plays the attacker's or a
stranger's CA.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import XMLSigner

import hub.signing
from hub.errors import (
    ConfigurationError,
    HostileXMLError,
    HubError,
    InputError,
    KeyMaterialError,
    SignatureError,
    SignatureInvalid,
    SignatureMissing,
    UntrustedCertificateError,
    WeakAlgorithmError,
)
from hub.namespaces import RSM_SPS_ACKNOWLEDGEMENT, RSM_SPS_CERTIFICATE, XMLDSIG
from hub.signing import KeyKind, PemKeyProvider, Signer, SigningPolicy, TrustStore, Verifier
from hub.signing.policy import ECDSA_SHA256, EXCLUSIVE_C14N, RSA_SHA256, SHA256
from hub.xmlsafe import parse_xml
from tests.support.standards import standard_file

DS = {"ds": XMLDSIG}
EPHYTO_SAMPLE = "samples/ephyto/NO-ephyto-SPSCertificate.xml"
ACKNOWLEDGEMENT = f"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:SPSAcknowledgement xmlns:rsm="{RSM_SPS_ACKNOWLEDGEMENT}">
  <rsm:SPSAcknowledgementDocument>
    <rsm:ID>ACK-2024-0001</rsm:ID><rsm:StatusCode>39</rsm:StatusCode>
  </rsm:SPSAcknowledgementDocument>
</rsm:SPSAcknowledgement>""".encode()


@pytest.fixture(scope="session")
def rsa_signer(rsa_and_ec_pki):
    return Signer(rsa_and_ec_pki.key_provider("FR"))


@pytest.fixture(scope="session")
def ec_signer(rsa_and_ec_pki):
    return Signer(rsa_and_ec_pki.key_provider("DE"))


@pytest.fixture(scope="session")
def rsa_and_ec_verifier(rsa_and_ec_pki):
    return Verifier(rsa_and_ec_pki.trust_store())


@pytest.fixture(scope="session")
def ephyto() -> bytes:
    return standard_file(EPHYTO_SAMPLE).read_bytes()


@pytest.fixture(scope="session")
def signed_ephyto(rsa_signer, ephyto) -> bytes:
    return rsa_signer.sign(ephyto)


def c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def reparse(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# --- round trips ---------------------------------------------------------------------------------------------------


def test_rsa_signature_over_the_real_ephyto_hands_back_the_signed_root(signed_ephyto, ephyto, rsa_and_ec_verifier, rsa_and_ec_pki):
    result = rsa_and_ec_verifier.verify(signed_ephyto)

    assert result.signed_root.tag == f"{{{RSM_SPS_CERTIFICATE}}}SPSCertificate"
    assert result.signed_root.find(".//ds:Signature", DS) is None
    assert c14n(result.signed_root) == c14n(parse_xml(ephyto))
    assert result.signature_algorithm == RSA_SHA256
    assert result.digest_algorithm == SHA256
    assert result.signer_subject == "CN=FR NPPO signing (development),O=FR issuing authority (development),C=FR"
    assert result.signer_certificate == x509.load_pem_x509_certificate(rsa_and_ec_pki.signing_certs["FR"].read_bytes())


def test_signature_is_enveloped_over_the_whole_document_and_appended_last(signed_ephyto, rsa_and_ec_pki):
    root = reparse(signed_ephyto)
    signature = root[-1]

    assert signature.tag == f"{{{XMLDSIG}}}Signature"
    assert len(root.findall(".//ds:Signature", DS)) == 1
    [reference] = signature.findall("ds:SignedInfo/ds:Reference", DS)
    assert reference.get("URI") == ""
    assert [t.get("Algorithm") for t in reference.iterfind("ds:Transforms/ds:Transform", DS)] == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        EXCLUSIVE_C14N,
    ]
    assert signature.find("ds:SignedInfo/ds:CanonicalizationMethod", DS).get("Algorithm") == EXCLUSIVE_C14N
    [embedded] = signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", DS)
    certificate = x509.load_pem_x509_certificate(rsa_and_ec_pki.signing_certs["FR"].read_bytes())
    assert "".join(embedded.text.split()) in "".join(certificate.public_bytes(Encoding.PEM).decode().split())


def test_ecdsa_signature_over_an_acknowledgement(ec_signer, rsa_and_ec_verifier):
    assert ec_signer.signature_method == ECDSA_SHA256

    result = rsa_and_ec_verifier.verify(ec_signer.sign(ACKNOWLEDGEMENT))

    assert result.signature_algorithm == ECDSA_SHA256
    rsm = {"rsm": RSM_SPS_ACKNOWLEDGEMENT}
    assert result.signed_root.findtext("rsm:SPSAcknowledgementDocument/rsm:ID", namespaces=rsm) == "ACK-2024-0001"
    assert "C=DE" in result.signer_subject


def test_signing_an_lxml_element_leaves_it_untouched(rsa_signer, rsa_and_ec_verifier):
    root = parse_xml(ACKNOWLEDGEMENT)
    before = c14n(root)

    signed = rsa_signer.sign(root)

    assert c14n(root) == before
    assert c14n(rsa_and_ec_verifier.verify(signed).signed_root) == before


def test_a_root_with_an_id_attribute_is_still_signed_as_a_whole(ec_signer, rsa_and_ec_verifier):
    # signxml alone would write Reference URI="#permit-1"; the hub always signs the whole document.
    signed = ec_signer.sign(b'<Permit xmlns="urn:example:cites" Id="permit-1"><Species>Panthera leo</Species></Permit>')

    assert reparse(signed).find("ds:Signature/ds:SignedInfo/ds:Reference", DS).get("URI") == ""
    assert rsa_and_ec_verifier.verify(signed).signed_root.get("Id") == "permit-1"


def test_signing_an_already_signed_document_is_refused(rsa_signer, signed_ephyto):
    with pytest.raises(InputError, match="already carries a ds:Signature"):
        rsa_signer.sign(signed_ephyto)


def test_keys_are_read_once_when_the_signer_is_built(rsa_and_ec_pki, rsa_and_ec_verifier, tmp_path):
    key, cert = tmp_path / "signer.key", tmp_path / "signer.pem"
    shutil.copy(rsa_and_ec_pki.signing_keys["FR"], key)
    shutil.copy(rsa_and_ec_pki.signing_certs["FR"], cert)
    signer = Signer(PemKeyProvider(key, cert))
    key.unlink()
    cert.unlink()

    for number in range(20):
        document = ACKNOWLEDGEMENT.replace(b"ACK-2024-0001", f"ACK-{number:04d}".encode())
        assert rsa_and_ec_verifier.verify(signer.sign(document)).signer_subject.endswith("C=FR")


# --- refusals ------------------------------------------------------------------------------------------------------


def test_a_changed_leaf_value_is_refused(signed_ephyto, rsa_and_ec_verifier):
    tampered = signed_ephyto.replace(b"<ns1:ID>123ABC</ns1:ID>", b"<ns1:ID>123ABD</ns1:ID>", 1)
    assert tampered != signed_ephyto

    with pytest.raises(SignatureInvalid, match="digest mismatch"):
        rsa_and_ec_verifier.verify(tampered)


def test_a_comment_slipped_into_a_signed_value_is_not_handed_back(signed_ephyto, rsa_and_ec_verifier):
    # Comments are outside exclusive c14n: the signature still verifies, and the caller sees the signed text whole.
    commented = signed_ephyto.replace(b"<ns1:ID>123ABC</ns1:ID>", b"<ns1:ID>123<!-- x -->ABC</ns1:ID>", 1)

    result = rsa_and_ec_verifier.verify(commented)

    ram = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
    assert result.signed_root.findtext(f"{{{RSM_SPS_CERTIFICATE}}}SPSExchangedDocument/{{{ram}}}ID") == "123ABC"


def test_unsigned_document_is_refused(rsa_and_ec_verifier, ephyto):
    with pytest.raises(SignatureMissing):
        rsa_and_ec_verifier.verify(ephyto)


def test_a_certificate_from_another_ca_is_untrusted(stranger_pki, rsa_and_ec_verifier):
    signed = Signer(stranger_pki.key_provider("FR")).sign(ACKNOWLEDGEMENT)

    with pytest.raises(UntrustedCertificateError, match="does not chain to a trust anchor"):
        rsa_and_ec_verifier.verify(signed)


def test_a_pinned_certificate_is_trusted_without_its_ca(rsa_and_ec_pki, rsa_signer, ec_signer):
    pinned_only = Verifier(TrustStore.from_paths(pinned=[rsa_and_ec_pki.signing_certs["FR"]]))

    assert pinned_only.verify(rsa_signer.sign(ACKNOWLEDGEMENT)).signer_subject.endswith("C=FR")
    with pytest.raises(UntrustedCertificateError, match="not one of the pinned"):
        pinned_only.verify(ec_signer.sign(ACKNOWLEDGEMENT))


class _Sha1Signer(XMLSigner):
    """signxml refuses SHA-1 in check_deprecated_methods; a legacy counterpart would not."""

    def check_deprecated_methods(self):
        pass


def test_an_rsa_sha1_signature_is_refused_naming_the_algorithm(rsa_and_ec_pki, rsa_and_ec_verifier):
    provider = rsa_and_ec_pki.key_provider("FR")
    legacy = _Sha1Signer(
        signature_algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        digest_algorithm="http://www.w3.org/2000/09/xmldsig#sha1",
        c14n_algorithm=EXCLUSIVE_C14N,
    )
    signed = serialize(legacy.sign(parse_xml(ACKNOWLEDGEMENT), key=provider.private_key, cert=[provider.certificate]))

    with pytest.raises(WeakAlgorithmError, match="http://www.w3.org/2000/09/xmldsig#rsa-sha1"):
        rsa_and_ec_verifier.verify(signed)


def test_a_dtd_in_a_signed_document_is_refused_before_anything_else(rsa_signer, rsa_and_ec_verifier):
    signed = rsa_signer.sign(ACKNOWLEDGEMENT)
    hostile = signed.replace(b"?>", b'?>\n<!DOCTYPE r [<!ENTITY e "x">]>', 1)

    with pytest.raises(HostileXMLError):
        rsa_and_ec_verifier.verify(hostile)


# --- signature wrapping ---------------------------------------------------------------------------------------------


def _forged_copy(signed: bytes) -> tuple[etree._Element, etree._Element, etree._Element]:
    """(forged root, genuine signature, genuine signed content without its signature), all detached copies."""
    genuine = reparse(signed)
    signature = genuine.find("ds:Signature", DS)
    genuine.remove(signature)
    forged = copy.deepcopy(genuine)
    ram = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
    forged.find(f".//{{{ram}}}ID").text = "FORGED-0001"
    return forged, signature, genuine


def test_xsw_original_wrapped_inside_a_forged_root_is_refused(signed_ephyto, rsa_and_ec_verifier):
    forged, signature, genuine = _forged_copy(signed_ephyto)
    wrapper = etree.SubElement(forged, "{urn:example:attacker}Wrapper")
    wrapper.append(genuine)
    forged.append(signature)

    with pytest.raises(SignatureInvalid):
        rsa_and_ec_verifier.verify(serialize(forged))


def test_xsw_original_hidden_in_a_signature_object_is_refused(signed_ephyto, rsa_and_ec_verifier):
    forged, signature, genuine = _forged_copy(signed_ephyto)
    etree.SubElement(signature, f"{{{XMLDSIG}}}Object").append(genuine)
    forged.append(signature)

    with pytest.raises(SignatureInvalid, match="ds:Object"):
        rsa_and_ec_verifier.verify(serialize(forged))


def test_xsw_whole_signed_document_nested_in_a_forged_root_is_refused(signed_ephyto, rsa_and_ec_verifier):
    forged, _, _ = _forged_copy(signed_ephyto)
    forged.append(reparse(signed_ephyto))

    with pytest.raises(SignatureInvalid, match="not directly under the root"):
        rsa_and_ec_verifier.verify(serialize(forged))


def test_a_duplicated_root_level_signature_is_refused(signed_ephyto, rsa_and_ec_verifier):
    root = reparse(signed_ephyto)
    root.append(copy.deepcopy(root.find("ds:Signature", DS)))

    with pytest.raises(SignatureInvalid, match="2 ds:Signature"):
        rsa_and_ec_verifier.verify(serialize(root))


def test_a_forged_sibling_signature_beside_the_genuine_one_is_refused(signed_ephyto, stranger_pki, rsa_and_ec_verifier):
    forged, genuine_signature, _ = _forged_copy(signed_ephyto)
    attacker_signed = reparse(Signer(stranger_pki.key_provider("FR")).sign(forged))
    attacker_signed.append(genuine_signature)

    with pytest.raises(SignatureInvalid):
        rsa_and_ec_verifier.verify(serialize(attacker_signed))


def test_a_reference_to_an_id_attribute_is_refused(rsa_and_ec_pki, rsa_and_ec_verifier):
    provider = rsa_and_ec_pki.key_provider("FR")
    document = parse_xml(
        b'<Permit xmlns="urn:example:cites"><Species Id="s1">Panthera leo</Species><Quantity>1</Quantity></Permit>'
    )
    signed = XMLSigner(c14n_algorithm=EXCLUSIVE_C14N).sign(
        document, key=provider.private_key, cert=[provider.certificate], reference_uri="s1"
    )

    with pytest.raises(SignatureInvalid, match="URI is '#s1'"):
        rsa_and_ec_verifier.verify(serialize(signed))


def _set_text(path: str, text: str):
    def mutate(signature: etree._Element) -> None:
        signature.find(path, DS).text = text

    return mutate


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(_set_text("ds:SignatureValue", "!!not base64!!"), id="garbage-value"),
        pytest.param(_set_text("ds:SignatureValue", "AAAA"), id="short-value"),
        pytest.param(_set_text(".//ds:X509Certificate", "bm90IGEgY2VydA=="), id="bad-cert"),
        pytest.param(_set_text(".//ds:DigestValue", "####"), id="garbage-digest"),
        pytest.param(lambda s: s.find(".//ds:SignatureMethod", DS).set("Algorithm", "urn:x"), id="unknown-method"),
        pytest.param(lambda s: s.remove(s.find("ds:KeyInfo", DS)), id="no-keyinfo"),
        pytest.param(lambda s: s.remove(s.find("ds:SignedInfo", DS)), id="no-signedinfo"),
    ],
)
def test_broken_signatures_end_in_the_hub_tree(rsa_signer, rsa_and_ec_verifier, mutate):
    root = reparse(rsa_signer.sign(ACKNOWLEDGEMENT))
    mutate(root.find("ds:Signature", DS))

    with pytest.raises(SignatureError) as raised:
        rsa_and_ec_verifier.verify(serialize(root))
    assert raised.value.__cause__ is None or isinstance(raised.value.__cause__, HubError)


# --- configuration -------------------------------------------------------------------------------------------------


def test_policy_is_frozen_and_never_allows_sha1():
    policy = SigningPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.digest_method = "x"  # type: ignore[misc]
    with pytest.raises(ConfigurationError, match="SHA-1"):
        SigningPolicy(accepted_digest_methods=frozenset({SHA256, "http://www.w3.org/2000/09/xmldsig#sha1"}))


def test_key_provider_knows_its_key_kind(rsa_and_ec_pki):
    assert rsa_and_ec_pki.key_provider("FR").key_kind is KeyKind.RSA
    assert rsa_and_ec_pki.key_provider("DE").key_kind is KeyKind.EC


def test_key_material_errors_name_the_file(rsa_and_ec_pki, tmp_path):
    missing = tmp_path / "absent.key"
    with pytest.raises(KeyMaterialError, match="absent.key"):
        PemKeyProvider(missing, rsa_and_ec_pki.signing_certs["FR"])
    with pytest.raises(KeyMaterialError, match="does not match the private key"):
        PemKeyProvider(rsa_and_ec_pki.signing_keys["FR"], rsa_and_ec_pki.signing_certs["DE"])
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(KeyMaterialError, match="garbage.pem"):
        PemKeyProvider(rsa_and_ec_pki.signing_keys["FR"], garbage)


def test_trust_store_needs_something_to_trust(tmp_path):
    with pytest.raises(ConfigurationError):
        TrustStore()
    with pytest.raises(KeyMaterialError, match="nowhere.pem"):
        TrustStore.from_paths(ca_bundle=tmp_path / "nowhere.pem")


def test_public_names_are_exported():
    names = ("Signer", "Verifier", "VerifiedDocument", "SigningPolicy", "PemKeyProvider", "TrustStore", "init_dev_pki")
    for name in names:
        assert name in hub.signing.__all__ and hasattr(hub.signing, name)
