"""The Signer signs the tree it parsed in place (signxml would copy it twice): the signed bytes must be exactly what
signxml's own enveloped signing gives, on the real documents and on the cases where copying could have mattered
(namespaces in scope above an element, processing instructions and comments around the root, an ``Id`` on the
root). RSA PKCS#1 v1.5 signatures are deterministic, so the whole output is compared byte for byte."""

from __future__ import annotations

import pytest
from lxml import etree
from signxml import SignatureConstructionMethod, XMLSigner
from signxml.signer import SignatureReference

from hub.signing import Signer, SigningPolicy, Verifier
from hub.xmlsafe import parse_xml
from tests.support.standards import standard_file

SAMPLES = (
    "samples/ephyto/NO-ephyto-SPSCertificate.xml",
    "samples/cites/epix-v2-GetNonFinalCitesCertificateResponse.xml",
    "samples/traces/CreateAndSubmitChedForDecision-0101-Horse.xml",
    "samples/traces/CreateAndSubmitChedForDecision-01061900-Rats.xml",
)
SPS = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"
AROUND_THE_ROOT = f"""<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="view.xsl"?>
<!-- issued by the test -->
<rsm:SPSCertificate xmlns:rsm="{SPS}" xmlns:unused="urn:unused" Id="cert-1">
  <rsm:SPSExchangedDocument><!-- a comment --><rsm:ID>FR-1</rsm:ID><?pi inside?></rsm:SPSExchangedDocument>
</rsm:SPSCertificate>
<!-- after the root -->""".encode()


class _PlainSignxml(XMLSigner):
    """signxml's own enveloped signing, its copies included, with the Reference forced to URI="" as the hub's."""

    def _unpack(self, data, references):
        sig_root, doc_root, c14n_inputs, _ = super()._unpack(data, None)
        return sig_root, doc_root, c14n_inputs, [SignatureReference(URI="")]


@pytest.fixture(scope="module")
def signers(rsa_and_ec_pki):
    keys, policy = rsa_and_ec_pki.key_provider("FR"), SigningPolicy()
    plain = _PlainSignxml(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=policy.signature_method_for(keys.key_kind),
        digest_algorithm=policy.digest_method,
        c14n_algorithm=policy.canonicalization_method,
    )

    def reference(element: etree._Element) -> bytes:
        signed = plain.sign(element, key=keys.private_key, cert=[keys.certificate, *keys.chain])
        return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")

    return Signer(keys), reference


@pytest.mark.parametrize("sample", SAMPLES)
def test_a_real_document_is_signed_exactly_as_signxml_signs_it(signers, sample):
    signer, reference = signers
    document = standard_file(sample).read_bytes()

    assert signer.sign(document) == reference(parse_xml(document))


def test_an_element_inside_a_soap_envelope_is_signed_as_signxml_signs_it_and_left_as_it_was(signers):
    signer, reference = signers
    envelope = parse_xml(standard_file(SAMPLES[2]).read_bytes())
    inner = next(element for element in envelope.iter() if isinstance(element.tag, str) and len(element) and element.tag.endswith("}SPSCertificate"))
    before = etree.tostring(envelope)

    signed = signer.sign(inner)

    assert signed == reference(inner)
    assert etree.tostring(envelope) == before
    assert parse_xml(signed).tag == inner.tag


def test_processing_instructions_comments_and_an_id_around_the_root_sign_as_signxml_signs_them(signers, rsa_and_ec_verifier):
    signer, reference = signers

    signed = signer.sign(AROUND_THE_ROOT)

    assert signed == reference(parse_xml(AROUND_THE_ROOT))
    assert rsa_and_ec_verifier.verify(signed).signed_root.get("Id") == "cert-1"


@pytest.fixture(scope="module")
def rsa_and_ec_verifier(rsa_and_ec_pki):
    return Verifier(rsa_and_ec_pki.trust_store())
