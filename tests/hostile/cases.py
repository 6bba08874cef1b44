"""The hostile corpus: one row per attack on the API, each with the refusal it must get.

A :class:`Case` names its family (the classic attack, or ``#N`` for the failure N of issue 12 it keeps fixed), builds
its request from the :class:`~tests.hostile.kit.Kit`, and says what the answer must be: the HTTP status, the
``error`` kind of the hub's error body, a fragment of its message naming what is wrong, and where (``where``); ``keeps``
names the tables where the refusal keeps a row (an answer no message may take is kept as unmatched, for operators).
``tests/hostile/test_corpus.py`` sends each one and checks, besides, that nothing was stored half-way and that the hub
still takes a good submission. A case the hub does not pass yet carries ``xfail``: ``"issue 12 #N: what is wrong"``.

Adding a case: one :class:`Case` in :data:`CASES` (its body from :mod:`tests.hostile.payloads`), its id unique.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest

from hub.api.deps import MAX_EVENT_ID, MAX_OFFSET
from hub.api.limits import MAX_BODY_BYTES
from hub.intake.submission import MAX_NUMBER
from hub.jsonsafe import MAX_JSON_DEPTH
from tests.hostile import payloads as p
from tests.hostile.kit import Call, Kit

XML = {"Content-Type": "application/xml"}
JSON = {"Content-Type": "application/json"}
INBOUND = "/v1/inbound/foreign_authority"
#: What a refused answer keeps: itself, as unmatched (hub/acks/correlation.py keep_unmatched), and its payload.
UNMATCHED = ("acknowledgements", "payloads")


@dataclass(frozen=True)
class Case:
    """One hostile request and the refusal it must get (see the module docstring)."""

    id: str
    family: str
    call: Callable[[Kit], Call]
    status: int
    error: str | None = None
    says: str | None = None
    where: str | None = None
    xfail: str | None = None
    keeps: tuple[str, ...] = ()  # tables where the refusal may keep one row: an answer kept as unmatched, never applied


# --- request builders -----------------------------------------------------------------------------------------------


def submit_xml(body: Callable[[Kit], bytes], client: str = "FR") -> Callable[[Kit], Call]:
    return lambda kit: Call("POST", "/v1/documents", content=body(kit), headers=XML, client=client)


def submit_json(body: Callable[[Kit], bytes], client: str = "FR", **params) -> Callable[[Kit], Call]:
    return lambda kit: Call("POST", "/v1/documents", content=body(kit), headers=JSON, client=client, params=params)


def verify(body: Callable[[Kit], bytes]) -> Callable[[Kit], Call]:
    return lambda kit: Call("POST", "/v1/verify", content=body(kit), headers=XML)


def push(body: Callable[[Kit], bytes]) -> Callable[[Kit], Call]:
    """An answer pushed by the foreign authority (counterparts hold no API key)."""
    return lambda kit: Call("POST", INBOUND, content=body(kit), headers=XML, client=None)


def get(path: str, **params) -> Callable[[Kit], Call]:
    return lambda kit: Call("GET", path, params=params)


def webhook(url: str) -> Callable[[Kit], Call]:
    return lambda kit: Call("POST", "/v1/webhooks", json={"url": url})


def signed_fr(kit: Kit, **changes) -> bytes:
    """A good FR certificate, signed by FR."""
    return kit.signer("FR").sign(p.unsigned_xml(**changes))


def signed_by(name: str, *, exporting: str = "FR") -> Callable[[Kit], bytes]:
    return lambda kit: kit.signer_of(name).sign(p.unsigned_xml(exporting=exporting))


def ack_signed_by(name: str, *, other_message: bool = False) -> Callable[[Kit], bytes]:
    """A rejection of the message to the foreign authority (EC), signed by ``name`` (a country of the PKI, or a
    :meth:`Kit.signer_of` name); ``other_message``: naming a message that went to another counterpart."""

    def build(kit: Kit) -> bytes:
        message_id, number = kit.message_to("customs" if other_message else "foreign_authority")
        return kit.signer_of(name).sign(p.acknowledgement(message_id=message_id, certificate_number=number))

    return build


def revoked(kit: Kit) -> bytes:
    """Signed by a certificate the development CA has revoked: its CRL is written beside ``ca.pem``."""
    (kit.pki.directory / "crl.pem").write_bytes(p.crl_revoking(kit.pki, kit.issued["revoked"].certificate))
    return kit.signer_of("revoked").sign(p.unsigned_xml())


def with_declared_length(size: int) -> Callable[[Kit], Call]:
    """A body that announces ``size`` bytes and sends a few: refused on the announcement, before anything is read."""
    return lambda kit: Call("POST", "/v1/documents", content=b"<x/>", headers={**XML, "Content-Length": str(size)})


def streamed(size: int) -> Callable[[Kit], Call]:
    """A body of ``size`` bytes sent in chunks without announcing its length."""
    def build(kit: Kit) -> Call:
        chunk = b"x" * (1024 * 1024)
        return Call("POST", "/v1/documents", content=(chunk for _ in range(size // len(chunk) + 1)), headers=XML)  # type: ignore[arg-type]
    return build


# --- the corpus -----------------------------------------------------------------------------------------------------

CASES: list[Case] = [
    # Issue 12 #1: a signer is trusted for anything.
    Case("fr-certificate-signed-by-us", "#1 signer of another country", submit_xml(signed_by("US")), 422, "NotEntitled", "not for the issuing authority of FR"),
    Case("ec-certificate-signed-by-us-verified", "#1 signer of another country", verify(signed_by("US", exporting="EC")), 200, None, "not for the issuing authority of EC"),
    Case("fr-certificate-signed-by-us-verified", "#1 signer of another country", verify(signed_by("US")), 200, None, "not for the issuing authority of FR"),
    Case("signed-by-tls-server-key", "#1 TLS certificate as signer", submit_xml(signed_by("tls-server")), 422, "WrongKeyUsage", "TLS certificate"),
    Case("signed-by-tls-client-key", "#1 TLS certificate as signer", submit_xml(signed_by("tls-client")), 422, "WrongKeyUsage", "TLS certificate"),
    Case("tls-signed-verified", "#1 TLS certificate as signer", verify(signed_by("tls-server")), 200, None, "TLS certificate"),
    # An ExtendedKeyUsage must name a document-signing purpose (emailProtection counts: eIDAS signing certificates carry it).
    Case("signed-by-code-signing-certificate", "wrong-usage signer", submit_xml(signed_by("code-signing")), 422, "WrongKeyUsage", "names no document-signing purpose"),
    Case("signed-by-encipher-only-key", "wrong-usage signer", submit_xml(signed_by("encipher-only")), 422, None, "KeyUsage"),
    Case("signed-by-ca-key", "wrong-usage signer", submit_xml(signed_by("ca")), 422, None, None),
    # Issue 12 #2: anyone trusted can reject anyone's message.
    Case("ack-signed-by-another-country", "#2 ack from another counterpart", push(ack_signed_by("US")), 403, "ForeignAnswerer", "only", "acknowledgement", keeps=UNMATCHED),
    Case("ack-signed-by-our-own-key", "#2 ack from another counterpart", push(ack_signed_by("FR")), 403, "ForeignAnswerer", "only", "acknowledgement", keeps=UNMATCHED),
    Case("ack-signed-by-tls-key", "#2 ack signed by a TLS certificate", push(ack_signed_by("tls-server")), 403, "PermissionDenied", "TLS certificate"),
    Case("ack-signed-by-stranger", "untrusted signer of an ack", push(ack_signed_by("stranger")), 403, "PermissionDenied", "does not chain"),
    Case("ack-naming-another-counterparts-message", "wrong ids", push(ack_signed_by("US", other_message=True)), 404, "UnmatchedAnswer", "was sent to foreign_authority", "acknowledgement", keeps=UNMATCHED),
    Case("ack-unsigned", "untrusted signer of an ack", push(lambda kit: p.acknowledgement(message_id=kit.message_to()[0], certificate_number=None)), 403, "PermissionDenied", "no ds:Signature"),
    Case("ack-xxe", "xxe", push(lambda kit: p.xxe_file()), 400, "HostileXMLError", "DTD"),
    Case("ack-billion-laughs", "entity expansion", push(lambda kit: p.billion_laughs()), 400, "HostileXMLError", "DTD"),
    Case("ack-to-unknown-connector", "wrong ids", lambda kit: Call("POST", "/v1/inbound/nobody", content=b"<a/>", headers=XML, client=None), 404, "NotFound", "nobody"),
    # Issue 12 #4: an operator acts for an authority, never as '*'; a tenant never for another.
    Case("nl-submits-an-fr-certificate", "#4 tenant", submit_json(lambda kit: p.record_body(p.record()), client="NL"), 403, "PermissionDenied", "issued by FR"),
    Case("nl-submits-fr-signed-xml", "#4 tenant", submit_xml(lambda kit: signed_fr(kit), client="NL"), 403, "PermissionDenied", "issued by FR"),
    Case("nl-reads-an-fr-document", "#4 tenant", lambda kit: Call("GET", f"/v1/documents/{kit.submitted()['id']}", client="NL"), 404, "NotFound", None),
    Case("no-api-key", "authentication", lambda kit: Call("POST", "/v1/documents", json=p.record(), client=None), 401, "Unauthenticated", "API key"),
    Case("unknown-api-key", "authentication", lambda kit: Call("POST", "/v1/documents", json=p.record(), headers={"Authorization": "Bearer hub_' OR '1'='1"}), 401, "Unauthenticated", "unknown API key"),
    # Issue 12 #7: 500s and tracebacks on bad input.
    Case("json-5000-deep-arrays", "#7 deep JSON", submit_json(lambda kit: p.deep_json()), 422, "RequestInvalid", "nests deeper", "body"),
    Case("json-5000-deep-objects", "#7 deep JSON", submit_json(lambda kit: p.deep_objects()), 422, "RequestInvalid", "nests deeper", "body"),
    Case("json-just-past-the-depth-limit", "#7 deep JSON", submit_json(lambda kit: p.deep_json(MAX_JSON_DEPTH + 1)), 422, "RequestInvalid", "nests deeper"),
    Case("json-deep-webhook-filters", "#7 deep JSON", lambda kit: Call("POST", "/v1/webhooks", content=b'{"url":"https://example.org/h","filters":' + p.deep_objects(3000) + b"}", headers=JSON), 422, "RequestInvalid", "nests deeper"),
    Case("xml-5000-deep", "#7 deep XML", submit_xml(lambda kit: p.deep_xml()), 400, "MalformedXMLError", "depth"),
    Case("nul-in-certificate-number", "#7 NUL", submit_json(lambda kit: p.record_with_raw("certificate_number", '"FR-2026\\u0000-NUL"')), 422, None, "certificate_number"),
    Case("control-char-in-certificate-number", "#7 control characters", submit_json(lambda kit: p.record_with_raw("certificate_number", '"FR-2026-\\u0001"')), 422, None, "certificate_number"),
    Case("lone-surrogate-in-certificate-number", "#7 lone surrogates", submit_json(lambda kit: p.record_with_raw("certificate_number", '"FR-\\ud800-X"')), 422, None, "certificate_number"),
    Case("nul-in-consignor-name", "#7 NUL", submit_json(lambda kit: p.record_with_raw("consignment.consignor.name", '"Vergers\\u0000SARL"')), 422, None, "consignment.consignor.name"),
    Case("escape-char-in-consignee-address", "#7 control characters", submit_json(lambda kit: p.record_with_raw("consignment.consignee.address.line_one", '"\\u001b[31mred"')), 422, None, "consignment.consignee.address.line_one"),
    Case("lone-surrogate-in-note", "#7 lone surrogates", submit_json(lambda kit: p.record_with_raw("signatory.provider.name", '"SRAL \\udfff"')), 422, None, "provider.name"),
    Case("nul-in-search-parameter", "#7 NUL", get("/v1/documents", number="FR\x00X"), 422, "RequestInvalid", "number", "query.number"),
    Case("nul-in-verify-number", "#7 NUL", get("/v1/verify/FR%00X"), 422, "RequestInvalid", "certificate_number", "path.certificate_number"),
    Case("offset-2-pow-70", "#7 huge integers", get("/v1/documents", offset=str(2**70)), 422, "RequestInvalid", "less than or equal", "query.offset"),
    Case("messages-offset-2-pow-64", "#7 huge integers", get("/v1/messages", offset=str(2**64)), 422, "RequestInvalid", "less than or equal"),
    Case("offset-negative", "#7 huge integers", get("/v1/documents", offset="-1"), 422, "RequestInvalid", "greater than or equal"),
    Case("offset-just-past-the-limit", "#7 huge integers", get("/v1/documents", offset=str(MAX_OFFSET + 1)), 422, "RequestInvalid", "less than or equal"),
    Case("limit-10-pow-30", "#7 huge integers", get("/v1/non-conformities", limit="1" + "0" * 30), 422, "RequestInvalid", None),
    Case("events-after-2-pow-70", "#7 huge integers", get("/v1/events", after=str(2**70), once="true"), 422, "RequestInvalid", "less than or equal"),
    Case("events-after-past-the-limit", "#7 huge integers", get("/v1/events", after=str(MAX_EVENT_ID + 1), once="true"), 422, "RequestInvalid", None),
    Case("version-2-pow-63", "#7 huge integers", submit_json(lambda kit: p.record_body(p.record()), version=str(2**63)), 422, "RequestInvalid", "less than or equal"),
    Case("version-zero", "#7 huge integers", submit_json(lambda kit: p.record_body(p.record()), version="0"), 422, "RequestInvalid", "greater than or equal"),
    Case("version-not-a-number", "#7 huge integers", submit_json(lambda kit: p.record_body(p.record()), version="1e999"), 422, "RequestInvalid", "integer"),
    # Issue 12 #8: no limits.
    Case("certificate-number-of-a-million-characters", "#8 lengths", submit_json(lambda kit: p.record_body(p.record(certificate_number="F" * 1_000_000))), 422, "RecordError", f"at most {MAX_NUMBER} characters", "certificate_number"),
    Case("certificate-number-of-101-characters-in-xml", "#8 lengths", submit_xml(lambda kit: p.unsigned_xml(number="F" * (MAX_NUMBER + 1))), 422, None, f"at most {MAX_NUMBER} characters"),
    Case("idempotency-key-of-10000-characters", "#8 lengths", lambda kit: Call("POST", "/v1/documents", json=p.record(), headers={"Idempotency-Key": "k" * 10_000}), 422, "RequestInvalid", "Idempotency-Key"),
    Case("correlation-id-of-10000-characters", "#8 lengths", lambda kit: Call("POST", "/v1/documents", json=p.record(), headers={"X-Correlation-ID": "c" * 10_000}), 422, "RequestInvalid", "X-Correlation-ID"),
    Case("cause-code-of-10000-characters", "#8 lengths", lambda kit: Call("POST", "/v1/non-conformities", json={"document_id": kit.submitted()["id"], "counterpart": "authority", "cause_code": "C" * 10_000}), 422, "RequestInvalid", "cause_code"),
    Case("body-announcing-200-mb", "#8 oversize body", with_declared_length(200 * 1024 * 1024), 413, "BodyTooLarge", "at most"),
    Case("body-streaming-past-the-limit", "#8 oversize body", streamed(MAX_BODY_BYTES + 1), 413, "BodyTooLarge", "exceeds"),
    Case("verify-body-announcing-200-mb", "#8 oversize body", lambda kit: Call("POST", "/v1/verify", content=b"<x/>", headers={**XML, "Content-Length": str(200 * 1024 * 1024)}), 413, "BodyTooLarge", None),
    Case("inbound-body-announcing-200-mb", "#8 oversize body", lambda kit: Call("POST", INBOUND, content=b"<x/>", headers={**XML, "Content-Length": str(200 * 1024 * 1024)}, client=None), 413, "BodyTooLarge", None),
    Case("webhook-to-loopback", "#8 webhook targets", webhook("http://127.0.0.1:8000/v1/documents"), 422, "InputError", "loopback", "url"),
    Case("webhook-to-localhost", "#8 webhook targets", webhook("http://localhost/hook"), 422, "InputError", "local name", "url"),
    Case("webhook-to-ipv6-loopback", "#8 webhook targets", webhook("http://[::1]:8000/hook"), 422, "InputError", "loopback", "url"),
    Case("webhook-to-private-10", "#8 webhook targets", webhook("http://10.1.2.3/hook"), 422, "InputError", "private", "url"),
    Case("webhook-to-private-192-168", "#8 webhook targets", webhook("https://192.168.0.10/hook"), 422, "InputError", "private", "url"),
    Case("webhook-to-cloud-metadata", "#8 webhook targets", webhook("http://169.254.169.254/latest/meta-data/"), 422, "InputError", "169.254.169.254", "url"),
    Case("webhook-to-unspecified", "#8 webhook targets", webhook("http://0.0.0.0:8000/"), 422, "InputError", None, "url"),
    Case("webhook-to-decimal-loopback", "#8 webhook targets", webhook("http://2130706433/"), 422, "InputError", None, "url"),
    Case("webhook-to-short-loopback", "#8 webhook targets", webhook("http://127.1/"), 422, "InputError", None, "url"),
    Case("webhook-to-hex-loopback", "#8 webhook targets", webhook("http://0x7f.0.0.1/"), 422, "InputError", None, "url"),
    Case("webhook-to-short-private", "#8 webhook targets", webhook("https://10.1:8443/"), 422, "InputError", None, "url"),
    Case("webhook-to-ipv4-mapped-loopback", "#8 webhook targets", webhook("http://[::ffff:127.0.0.1]/"), 422, "InputError", None, "url"),
    Case("webhook-to-file-url", "#8 webhook targets", webhook("file:///etc/passwd"), 422, "RequestInvalid", "http", "body.url"),
    # XXE, entity expansion, DTDs, XInclude.
    Case("xxe-file", "xxe", submit_xml(lambda kit: p.xxe_file()), 400, "HostileXMLError", "DTD", "body"),
    Case("xxe-network", "xxe", submit_xml(lambda kit: p.xxe_network(kit.canary.url)), 400, "HostileXMLError", "DTD", "body"),
    Case("xxe-parameter-entity", "xxe", submit_xml(lambda kit: p.xxe_parameter(kit.canary.url)), 400, "HostileXMLError", "DTD"),
    Case("xxe-in-utf16", "xxe", submit_xml(lambda kit: p.in_utf16(p.xxe_file())), 400, "HostileXMLError", None),
    Case("xxe-verified", "xxe", verify(lambda kit: p.xxe_file()), 400, "HostileXMLError", "DTD"),
    Case("external-dtd", "dtd", submit_xml(lambda kit: p.external_dtd(kit.canary.url)), 400, "HostileXMLError", "DTD"),
    Case("billion-laughs", "entity expansion", submit_xml(lambda kit: p.billion_laughs()), 400, "HostileXMLError", "DTD"),
    Case("billion-laughs-in-utf16", "entity expansion", submit_xml(lambda kit: p.in_utf16(p.billion_laughs())), 400, "HostileXMLError", "DTD"),
    Case("quadratic-blowup", "entity expansion", submit_xml(lambda kit: p.quadratic_blowup()), 400, "HostileXMLError", "DTD"),
    Case("xinclude-of-a-local-file", "xinclude", submit_xml(lambda kit: p.xinclude("file:///etc/passwd", p.unsigned_xml())), 422, "ValidationFailed", None),
    Case("xinclude-of-a-url", "xinclude", submit_xml(lambda kit: p.xinclude(kit.canary.url, p.unsigned_xml())), 422, "ValidationFailed", None),
    # Signature wrapping, untrusted, expired, revoked, weak and tampered signatures.
    Case("xsw-original-wrapped-in-forged-root", "signature wrapping", submit_xml(lambda kit: p.wrapped_in_forged_root(signed_fr(kit))), 422, "SignatureInvalid", "changed after it was signed"),
    Case("xsw-original-in-signature-object", "signature wrapping", submit_xml(lambda kit: p.hidden_in_signature_object(signed_fr(kit))), 422, "SignatureInvalid", "ds:Object"),
    Case("xsw-whole-document-nested", "signature wrapping", submit_xml(lambda kit: p.nested_whole(signed_fr(kit))), 422, "SignatureInvalid", "not directly under the root"),
    Case("xsw-duplicated-signature", "signature wrapping", submit_xml(lambda kit: p.duplicated_signature(signed_fr(kit))), 422, "SignatureInvalid", "2 ds:Signature"),
    Case("xsw-second-signature-by-a-stranger", "signature wrapping", submit_xml(lambda kit: p.second_signature(signed_fr(kit), kit.signer_of("stranger"))), 422, "SignatureInvalid", "2 ds:Signature"),
    Case("xsw-reference-to-an-id-with-a-duplicate", "signature wrapping", submit_xml(lambda kit: p.reference_to_id(kit.pki.key_provider("FR"), p.unsigned_xml())), 422, "SignatureInvalid", "URI is '#signed'"),
    Case("element-added-after-signing", "tampering", submit_xml(lambda kit: p.appended_after_signing(signed_fr(kit))), 422, "SignatureInvalid", "changed after it was signed"),
    Case("value-tampered-after-signing", "tampering", submit_xml(lambda kit: p.tampered_value(signed_fr(kit))), 422, "SignatureInvalid", "changed after it was signed"),
    Case("signature-value-tampered", "tampering", submit_xml(lambda kit: p.tampered_signature_value(signed_fr(kit))), 422, "SignatureInvalid", "does not verify"),
    Case("signed-by-a-stranger-ca", "untrusted signer", submit_xml(signed_by("stranger")), 422, "UntrustedCertificateError", "does not chain"),
    Case("signed-by-a-self-signed-certificate", "untrusted signer", submit_xml(signed_by("self-signed")), 422, "UntrustedCertificateError", "does not chain"),
    Case("signed-by-an-expired-certificate", "expired signer", submit_xml(lambda kit: p.legacy_signed(kit.issued["expired"], p.unsigned_xml(), signature=p.RSA_SHA256, digest="http://www.w3.org/2001/04/xmlenc#sha256")), 422, "UntrustedCertificateError", "valid"),
    Case("signed-by-a-not-yet-valid-certificate", "expired signer", submit_xml(lambda kit: p.legacy_signed(kit.issued["not-yet-valid"], p.unsigned_xml(), signature=p.RSA_SHA256, digest="http://www.w3.org/2001/04/xmlenc#sha256")), 422, "UntrustedCertificateError", "valid"),
    Case("signed-by-a-revoked-certificate", "revoked signer", submit_xml(revoked), 422, "UntrustedCertificateError", "revoked"),
    Case("rsa-sha1-signature", "sha-1", submit_xml(lambda kit: p.legacy_signed(kit.pki.key_provider("FR"), p.unsigned_xml())), 422, "WeakAlgorithmError", "sha1"),
    Case("sha1-digest-under-rsa-sha256", "sha-1", submit_xml(lambda kit: p.legacy_signed(kit.pki.key_provider("FR"), p.unsigned_xml(), signature=p.RSA_SHA256)), 422, "WeakAlgorithmError", "sha1"),
    Case("rsa-1024-signer", "weak key", submit_xml(lambda kit: p.legacy_signed(kit.issued["rsa-1024"], p.unsigned_xml(), signature=p.RSA_SHA256, digest="http://www.w3.org/2001/04/xmlenc#sha256")), 422, "WeakAlgorithmError", "1024 bits"),
    Case("signed-by-a-stranger-verified", "untrusted signer", verify(signed_by("stranger")), 200, None, "does not chain"),
    # Malformed XML and JSON, wrong encodings, wrong media types.
    Case("xml-truncated", "malformed XML", submit_xml(lambda kit: p.unsigned_xml()[:-40]), 400, "MalformedXMLError", "line", "body"),
    Case("xml-mismatched-tags", "malformed XML", submit_xml(lambda kit: b"<a><b></a></b>"), 400, "MalformedXMLError", "not well-formed"),
    Case("xml-empty-body", "malformed XML", submit_xml(lambda kit: b""), 400, "MalformedXMLError", None),
    Case("xml-binary-garbage", "malformed XML", submit_xml(lambda kit: bytes(range(256)) * 4), 400, "MalformedXMLError", None),
    Case("xml-unknown-root", "malformed XML", submit_xml(lambda kit: b"<rsm:Invoice xmlns:rsm='urn:x'/>"), 422, None, "no document the hub reads"),
    Case("xml-declared-utf16-but-utf8", "wrong encodings", submit_xml(lambda kit: p.unsigned_xml().replace(b"encoding='UTF-8'", b"encoding='UTF-16'", 1)), 400, "MalformedXMLError", "encoding"),
    Case("xml-latin1-bytes-declared-utf8", "wrong encodings", submit_xml(lambda kit: p.unsigned_xml().replace("Pacífico".encode(), "Pacífico".encode("latin-1"))), 400, "MalformedXMLError", None),
    Case("xml-utf16-bom-on-utf8-bytes", "wrong encodings", submit_xml(lambda kit: b"\xff\xfe" + p.unsigned_xml()), 400, "MalformedXMLError", None),
    Case("xml-utf8-bom-declared-latin1", "wrong encodings", submit_xml(lambda kit: b"\xef\xbb\xbf" + p.unsigned_xml().replace(b"encoding='UTF-8'", b"encoding='ISO-8859-1'", 1)), 400, "MalformedXMLError", "encoding"),
    Case("json-malformed", "malformed JSON", submit_json(lambda kit: b"{not json"), 422, "InputError", "not JSON", "body"),
    Case("json-trailing-comma", "malformed JSON", submit_json(lambda kit: b'{"kind": "phytosanitary",}'), 422, "InputError", "not JSON", "body"),
    Case("json-an-array", "malformed JSON", submit_json(lambda kit: b"[1, 2, 3]"), 422, "InputError", "JSON object", "body"),
    Case("json-empty-body", "malformed JSON", submit_json(lambda kit: b""), 422, "InputError", "not JSON", "body"),
    Case("json-nan-weight", "malformed JSON", submit_json(lambda kit: p.record_body(p.record()).replace(b'"net_weight": {"value": "18500"', b'"net_weight": {"value": NaN', 1)), 422, "RecordError", "not a decimal number", "consignment.items[0].line_items[0].net_weight.value"),
    Case("json-latin1-bytes", "wrong encodings", submit_json(lambda kit: p.record_body(p.record()).replace(b"Pac\\u00edfico", "Pacífico".encode("latin-1"))), 422, "InputError", "not JSON", "body"),
    Case("json-unknown-field", "malformed JSON", submit_json(lambda kit: p.record_body(p.record(bogus=1))), 422, "RecordError", "bogus"),
    Case("xml-sent-as-json", "media types", submit_json(lambda kit: p.unsigned_xml()), 422, "InputError", "not JSON", "body"),
    Case("text-plain", "media types", lambda kit: Call("POST", "/v1/documents", content=b"hello", headers={"Content-Type": "text/plain"}), 422, "InputError", "Content-Type", "Content-Type"),
    # Other bodies the API reads.
    Case("unknown-lifecycle", "malformed JSON", lambda kit: Call("POST", f"/v1/documents/{kit.submitted()['id']}/lifecycle", json={"lifecycle": "used"}), 422, "InputError", "by hand", "lifecycle"),
    Case("lifecycle-extra-field", "malformed JSON", lambda kit: Call("POST", f"/v1/documents/{kit.submitted()['id']}/lifecycle", json={"lifecycle": "expired", "tenant": "*"}), 422, "RequestInvalid", "tenant"),
    Case("non-conformity-on-another-tenants-document", "#4 tenant", lambda kit: Call("POST", "/v1/non-conformities", json={"document_id": kit.submitted()["id"], "counterpart": "x", "cause_code": "C"}, client="NL"), 404, "NotFound", None),
]


#: Families whose refusal is decided in or after the store, or went wrong on one engine only: run on PostgreSQL too.
STORE_FAMILIES = frozenset({"#2 ack from another counterpart", "#2 ack signed by a TLS certificate", "untrusted signer of an ack", "wrong ids",
                            "#4 tenant", "#7 NUL", "#7 control characters", "#7 lone surrogates", "#7 huge integers", "#8 lengths",
                            "#8 webhook targets", "authentication"})


def params(cases: list[Case]) -> list:
    """The cases as pytest parameters, each with its id and, when it fails today, its strict xfail."""
    return [pytest.param(case, id=case.id, marks=[pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []) for case in cases]
