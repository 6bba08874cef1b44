"""Signing documents: an enveloped XML-DSig over the whole document.

A :class:`Signer` is configured once (key, certificate, algorithms) and signs many documents. Every signature has
one ``ds:Reference`` with ``URI=""`` (the whole document, minus the signature itself through the
enveloped-signature transform), exclusive canonicalization, and the signer's certificate (plus intermediates) in
``ds:KeyInfo/ds:X509Data``. The ``ds:Signature`` is appended as the last child of the root element.

Signing a document that already carries a ``ds:Signature`` as a direct child of its root is **refused**
(:class:`~hub.errors.InputError`) rather than replaced: such a signature is usually someone else's (an inbound
certificate being handed on), and silently stripping it would destroy evidence. Remove it deliberately first.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from signxml import SignatureConstructionMethod, XMLSigner
from signxml.exceptions import SignXMLException
from signxml.signer import SignatureReference

from hub.errors import ConfigurationError, InputError, KeyMaterialError
from hub.namespaces import XMLDSIG
from hub.signing.keys import KeyProvider
from hub.signing.policy import KeyKind, SigningPolicy
from hub.xmlsafe import parse_xml

_DS_SIGNATURE = f"{{{XMLDSIG}}}Signature"


class _WholeDocumentSigner(XMLSigner):
    """signxml's enveloped signer, always referencing the whole document, and signing the tree it is given in place.

    signxml derives the Reference URI from an ``Id``/``ID`` attribute on the root when there is one ("#the-id"),
    and cannot be told ``URI=""`` explicitly; the hub's verifier accepts only ``URI=""``, so it is forced here.

    signxml also copies the document twice (serialised and parsed again: once to hold the signature, once to
    digest), which costs more than the RSA signature on a large certificate. :meth:`Signer.sign` hands over a tree
    of its own, so the one tree is digested first and the signature appended after: the digest is the same, since
    the enveloped-signature transform takes the signature out before digesting.
    """

    def _unpack(self, data: Any, references: Any) -> Any:
        signature = etree.Element(self._ds_tag("Signature"), nsmap=self.namespaces)
        return signature, data, [data], [SignatureReference(URI="")]

    def _build_sig(self, sig_root: Any, references: Any, c14n_inputs: Any, *args: Any, **kwargs: Any) -> Any:
        built = super()._build_sig(sig_root, references, c14n_inputs, *args, **kwargs)
        c14n_inputs[0].append(sig_root)
        return built


class Signer:
    """Signs documents with one key, under one policy.

    The key provider is read once, here; :meth:`sign` never touches the file system.
    """

    def __init__(self, key_provider: KeyProvider, policy: SigningPolicy = SigningPolicy()) -> None:
        self._policy = policy
        self._key = key_provider.private_key
        self._certificates = [key_provider.certificate, *key_provider.chain]
        self._subject = key_provider.certificate.subject.rfc4514_string()
        if key_provider.key_kind is KeyKind.RSA and self._key.key_size < policy.min_rsa_key_bits:
            raise KeyMaterialError(
                f"RSA key of {self._key.key_size} bits for {self._subject}; "
                f"the policy requires {policy.min_rsa_key_bits}"
            )
        self._signature_method = policy.signature_method_for(key_provider.key_kind)
        try:
            self._xml_signer = _WholeDocumentSigner(
                method=SignatureConstructionMethod.enveloped,
                signature_algorithm=self._signature_method,
                digest_algorithm=policy.digest_method,
                c14n_algorithm=policy.canonicalization_method,
            )
        except SignXMLException as exc:
            raise ConfigurationError(f"signxml cannot sign with this policy: {exc}") from None

    @property
    def signature_method(self) -> str:
        """The XML-DSig SignatureMethod URI this signer writes."""
        return self._signature_method

    @property
    def signer_subject(self) -> str:
        """The signer certificate's subject, RFC 4514."""
        return self._subject

    def sign(self, document: bytes | etree._Element) -> bytes:
        """Sign ``document`` (bytes, parsed safely, or an lxml element, left untouched) and return the signed bytes.

        Raises :class:`~hub.errors.HostileXMLError` / :class:`~hub.errors.MalformedXMLError` for bytes that cannot be
        parsed safely, and :class:`~hub.errors.InputError` for a document whose root already carries a signature.
        """
        if isinstance(document, etree._Element):
            # Signed in place, so a copy: the caller's element stays as it was (with the namespaces in scope above it).
            document = etree.tostring(document, with_tail=False)
        elif not isinstance(document, (bytes, str)):
            raise InputError(f"cannot sign a {type(document).__name__}; expected bytes or an lxml element")
        root = parse_xml(document, source="document to sign")
        _refuse_signed(root)
        try:
            signed = self._xml_signer.sign(root, key=self._key, cert=self._certificates)
        except SignXMLException as exc:
            raise InputError(f"cannot sign the document: {exc}", where=_tag(root)) from None
        except (ValueError, TypeError) as exc:
            # The key or certificate was refused by cryptography at signing time (e.g. a key type signxml lacks).
            raise KeyMaterialError(f"signing with the key of {self._subject} failed: {exc}") from None
        return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")

    def __repr__(self) -> str:
        return f"Signer(subject={self._subject!r}, method={self._signature_method!r})"


def _refuse_signed(root: etree._Element) -> None:
    if root.tag == _DS_SIGNATURE:
        raise InputError("the document is itself a ds:Signature; the hub signs documents, not signatures")
    if root.find(_DS_SIGNATURE) is not None:
        raise InputError(
            "the document already carries a ds:Signature under its root; remove it before signing again",
            where=_tag(root),
        )
    # signxml would put the signature wherever such a placeholder sits, not at the end of the root.
    for placeholder in root.iter(_DS_SIGNATURE):
        if placeholder.get("Id") == "placeholder":
            raise InputError("the document carries a signxml signature placeholder", where=_tag(placeholder))


def _tag(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else "document"
