"""AS4 packaging on the 30 real messages of samples/as4: bare XML, MIME bodies with and without headers, HTTP
dumps; part bytes exact (the signatures over them verify); hostile bodies refused with EBMS:0007 / EBMS:0009."""

from __future__ import annotations

import base64
import gzip
import hashlib

import pytest
from lxml import etree

from connectors.as4 import ns
from connectors.as4.errors import As4Error, EbmsError
from connectors.as4.packaging import Part, read_packet, split_multipart, write_packet
from tests.connectors.as4.samples import ALL_SAMPLES, SAMPLES

#: file -> (SOAP version, number of attachments)
SHAPES = {
    "as4net-as4-encrypted-signed-issuerserial.as4.mime": ("1.2", 2),
    "as4net-as4-multihop-message.as4.mime": ("1.2", 0),
    "as4net-as4-pullrequest-warning.xml": ("1.2", 0),
    "as4net-as4-soap-signed-pullrequest.xml": ("1.2", 0),
    "as4net-as4_flame_envelope.as4": ("1.2", 0),
    "as4net-c3_minderreceiveagent_request.as4.mime": ("1.2", 2),
    "as4net-rssbus_message.as4.mime": ("1.2", 1),
    "as4net-signed_holodeck_message.as4.mime": ("1.2", 2),
    "domibus-bst_X509PKIPathv1_incoming_message.xml": ("1.2", 0),
    "domibus-is_incoming_message.xml": ("1.2", 0),
    "domibus-ski_incoming_message.xml": ("1.2", 0),
    "jentrata-simple-as4-user-message.txt.mime": ("1.2", 1),
    "oasis-UserMessage_No_MPC_P2P_NoWSSecurity.as4receipt.xml": ("1.2", 0),
    "oasis-UserMessage_No_MPC_P2P_WSSecurity.as4receipt.xml": ("1.2", 0),
    "oasis-UserMessage_No_MPC_P2P_WSSecurity.xml": ("1.2", 0),
    "oxalis-eDeliveryAS4-example.xml": ("1.2", 0),
    "phase4-BundledMessage.xml": ("1.1", 0),
    "phase4-ErrorMessage.xml": ("1.1", 0),
    "phase4-ErrorMessageWithFault.xml": ("1.2", 0),
    "phase4-PullRequest.xml": ("1.1", 0),
    "phase4-TestReceipt11.xml": ("1.1", 0),
    "phase4-TestReceipt12.xml": ("1.2", 0),
    "phase4-WrongCompression.mime": ("1.2", 1),
    "phase4-dataport1-mustunderstand.as4in": ("1.2", 0),
    "phase4-dataport1.as4in": ("1.2", 0),
    "phase4-dump-raw.as4out.eml": ("1.2", 1),
    "phase4-governikus.as4in": ("1.2", 0),
    "phase4-helger.as4in": ("1.2", 0),
    "phase4-sample_entsog.txt.mime": ("1.2", 1),
    "phase4-test-2023-03-15.xml": ("1.2", 0),
}


@pytest.fixture
def sample(standards):
    return lambda name: (standards / SAMPLES / name).read_bytes()


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_every_sample_is_read(sample, name):
    packet = read_packet(sample(name))
    assert (packet.soap_version, len(packet.attachments)) == SHAPES[name]
    assert etree.QName(packet.root).localname == "Envelope"
    assert etree.QName(packet.root).namespace == ns.SOAP_NS[packet.soap_version]
    # The envelope bytes are those received: they parse to the same tree.
    assert etree.tostring(read_packet(packet.envelope).root) == etree.tostring(packet.root)


def test_sample_list_is_complete():
    assert len(SHAPES) == 30 and len(ALL_SAMPLES) == 30


def test_mime_message_with_its_own_headers(sample):
    packet = read_packet(sample("phase4-dump-raw.as4out.eml"))
    assert packet.envelope.startswith(b'<?xml version="1.0" encoding="UTF-8"?><S12:Envelope')
    (part,) = packet.attachments
    assert part.content_id == "phase4-att-ff0f8ad5-f982-48ba-b8e2-26997600f496@cid"
    assert part.content_type == "application/octet-stream"
    assert part.headers == (("Content-Type", "application/octet-stream"), ("Content-Transfer-Encoding", "binary"),
                            ("Content-Description", "Attachment"),
                            ("Content-ID", "<phase4-att-ff0f8ad5-f982-48ba-b8e2-26997600f496@cid>"))
    assert part.header("content-description") == "Attachment"
    assert len(part.data) == 2263
    assert packet.attachment("cid:phase4-att-ff0f8ad5-f982-48ba-b8e2-26997600f496@cid") is part


def test_holodeck_attachments_are_the_bytes_signed(sample):
    """The SwA Attachment-Content-Signature-Transform digests (sha256) of both parts match: the split is exact."""
    packet = read_packet(sample("as4net-signed_holodeck_message.as4.mime"))
    references = [r for r in packet.root.iter(f"{{{ns.DS}}}Reference") if r.get("URI", "").startswith("cid:")]
    assert len(references) == 2
    for reference in references:
        part = packet.attachment(reference.get("URI"))
        assert reference.find(f"{{{ns.DS}}}DigestMethod").get("Algorithm") == ns.SHA256
        expected = reference.findtext(f"{{{ns.DS}}}DigestValue").strip()
        assert base64.b64encode(hashlib.sha256(part.data).digest()).decode() == expected
    assert [p.content_type for p in packet.attachments] == ["application/gzip", "application/gzip"]


def test_encrypted_attachments_sizes_and_content_ids(sample):
    packet = read_packet(sample("as4net-as4-encrypted-signed-issuerserial.as4.mime"))
    assert [(p.content_id, len(p.data)) for p in packet.attachments] == [
        ("b545c3a0-e57f-46aa-862f-381eb4b7009-291596031@CLT-SMOREELS.mshome.net", 296413),
        ("b545c3a0-e57f-46aa-862f-381eb4b7009-1650194442@CLT-SMOREELS.mshome.net", 192),
    ]
    assert all(p.content_type == "application/octet-stream" for p in packet.attachments)


def test_jentrata_href_names_no_part(sample):
    """jentrata's PartInfo says cid:attachment1234@…, its part is attachmentPart@…: the mismatch is reported."""
    packet = read_packet(sample("jentrata-simple-as4-user-message.txt.mime"))
    with pytest.raises(As4Error) as caught:
        packet.attachment("cid:attachment1234@jentrata.org")
    assert caught.value.error is EbmsError.MIME_INCONSISTENCY
    assert "attachment1234@jentrata.org" in str(caught.value) and "attachmentPart@jentrata.org" in str(caught.value)
    part = packet.attachment("cid:attachmentPart@jentrata.org")
    # Bare LF lines: the LF before the delimiter belongs to it, the blank line before is data.
    assert part.data == b'<?xml version="1.0" encoding="UTF-8" ?>\n<invoice id="123"/>\n'
    assert part.content_type == "text/xml"


def test_base64_part_and_content_id_without_angles(sample):
    packet = read_packet(sample("phase4-WrongCompression.mime"))
    (part,) = packet.attachments
    assert part.content_id == "ph-as4-0026b807-e599-40e2-af67-22f2e6fe4ddd"
    assert part.header("Content-Transfer-Encoding") == "base64"
    assert len(part.data) == 721 and part.data[:2] == b"\x1f\x8b"
    assert gzip.decompress(part.data).startswith(b"<!--\n\n    Copyright (C) 2015-2016 Philip Helger")


def test_bom_before_the_first_boundary(sample):
    packet = read_packet(sample("as4net-as4-multihop-message.as4.mime"))
    assert packet.envelope.startswith(b'<s:Envelope  xmlns:s="http://www.w3.org/2003/05/soap-envelope"')
    assert packet.envelope.endswith(b"</s:Envelope>")


def test_bom_before_bare_xml(sample):
    raw = sample("as4net-as4-pullrequest-warning.xml")
    assert raw.startswith(b"\xef\xbb\xbf")
    packet = read_packet(raw)
    assert packet.envelope == raw and packet.soap_version == "1.2"


def test_utf16_envelope_and_bom_before_a_boundary():
    envelope = '<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Body/></S12:Envelope>'
    assert read_packet(envelope.encode("utf-16")).soap_version == "1.2"
    body = b"\xef\xbb\xbf--b\r\n\r\n" + envelope.encode() + b"\r\n--b--\r\n"
    assert read_packet(body, "multipart/related; boundary=b").envelope == envelope.encode()


def test_http_dump(sample):
    packet = read_packet(sample("phase4-helger.as4in"))
    assert packet.envelope.startswith(b'<?xml version="1.0" encoding="UTF-8" standalone="no"?><S12:Envelope')
    assert packet.attachments == ()


def test_soap11(sample):
    assert read_packet(sample("phase4-TestReceipt11.xml")).soap_version == "1.1"


def test_content_type_given(sample):
    """An HTTP request: the body without headers, the Content-Type from the request."""
    raw = sample("phase4-dump-raw.as4out.eml")
    body = raw.split(b"\r\n\r\n", 1)[1]
    content_type = 'multipart/related; boundary="----=_Part_0_1950117092.1769701143986"; type="application/soap+xml"'
    packet = read_packet(body, content_type)
    assert packet.attachments == read_packet(raw).attachments
    assert read_packet(sample("phase4-TestReceipt12.xml"), "application/soap+xml; charset=UTF-8").soap_version == "1.2"


def test_start_parameter_chooses_the_root():
    envelope = b'<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Header/><S12:Body/></S12:Envelope>'
    body = (b"--b\r\nContent-Type: text/plain\r\nContent-ID: <first>\r\n\r\nfirst\r\n"
            b"--b\r\nContent-Type: application/soap+xml\r\nContent-ID: <root@x>\r\n\r\n" + envelope + b"\r\n--b--\r\n")
    packet = read_packet(body, 'multipart/related; boundary=b; start="<root@x>"; type="application/soap+xml"')
    assert packet.envelope == envelope
    assert [(p.content_id, p.data) for p in packet.attachments] == [("first", b"first")]
    with pytest.raises(As4Error, match="start parameter names <nowhere>") as caught:
        read_packet(body, 'multipart/related; boundary=b; start="<nowhere>"')
    assert caught.value.error is EbmsError.MIME_INCONSISTENCY


def test_percent_encoded_cid():
    envelope = b'<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Body/></S12:Envelope>'
    body, content_type = write_packet(envelope, [Part("a/b@x", "application/xml", (), b"<a/>")])
    packet = read_packet(body, content_type)
    assert packet.attachment("cid:a%2Fb%40x").data == b"<a/>"
    assert packet.attachment("cid:a/b@x").data == b"<a/>"
    with pytest.raises(As4Error) as caught:
        packet.attachment("#body")
    assert caught.value.error is EbmsError.VALUE_INCONSISTENT


# --- writing ----------------------------------------------------------------------------------------------------------

_ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?>\n<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope">'
             '<S12:Header/><S12:Body/></S12:Envelope>').encode()


def test_write_packet_round_trips_exact_bytes():
    tricky = [
        Part("p1@hub", "application/gzip", (), gzip.compress(b"<x/>" * 100, mtime=0)),
        Part("p2@hub", "application/octet-stream", (), b"\r\n--MIMEBoundary_x\r\nends with CRLF\r\n"),
        Part("p3@hub", "text/xml", (), b""),
        Part("p4@hub", "application/octet-stream", (), bytes(range(256)) * 4 + b"\n"),
    ]
    body, content_type = write_packet(_ENVELOPE, tricky)
    assert content_type.startswith('multipart/related; boundary="MIMEBoundary_')
    assert 'type="application/soap+xml"' in content_type and '; start="<root-' in content_type
    packet = read_packet(body, content_type)
    assert packet.envelope == _ENVELOPE
    assert [(p.content_id, p.content_type, p.data) for p in packet.attachments] == [
        (p.content_id, p.content_type, p.data) for p in tricky]
    assert packet.attachments[0].headers == (("Content-Type", "application/gzip"), ("Content-Transfer-Encoding", "binary"),
                                             ("Content-ID", "<p1@hub>"))
    root_headers = body.split(b"\r\n\r\n", 1)[0]
    assert b"Content-Type: application/soap+xml; charset=UTF-8\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <root-" in root_headers


def test_write_packet_round_trips_a_real_message(sample):
    original = read_packet(sample("as4net-signed_holodeck_message.as4.mime"))
    body, content_type = write_packet(original.envelope, original.attachments)
    again = read_packet(body, content_type)
    assert again.envelope == original.envelope
    assert [(p.content_id, p.data) for p in again.attachments] == [(p.content_id, p.data) for p in original.attachments]


def test_write_packet_without_attachments():
    assert write_packet(_ENVELOPE, []) == (_ENVELOPE, "application/soap+xml; charset=UTF-8")
    assert write_packet(_ENVELOPE, [], soap_version="1.1") == (_ENVELOPE, "text/xml; charset=UTF-8")
    body, content_type = write_packet(_ENVELOPE, [Part("a@b", "text/plain", (), b"x")], soap_version="1.1")
    assert 'type="text/xml"' in content_type and b"Content-Type: text/xml; charset=UTF-8\r\n" in body


@pytest.mark.parametrize("part", [Part("", "text/plain", (), b""), Part("<a>", "text/plain", (), b""),
                                  Part("a@b", "text/plain\r\nX-Injected: 1", (), b"")])
def test_write_packet_refuses_bad_parts(part):
    with pytest.raises(ValueError):
        write_packet(_ENVELOPE, [part])


# --- hostile input ----------------------------------------------------------------------------------------------------


def _refused(raw: bytes, error: EbmsError, fragment: str, content_type: str | None = None, **limits) -> As4Error:
    with pytest.raises(As4Error) as caught:
        read_packet(raw, content_type, **limits)
    assert caught.value.error is error, caught.value
    assert fragment in str(caught.value)
    return caught.value


def test_truncated_mime(sample):
    raw = sample("as4net-signed_holodeck_message.as4.mime")
    _refused(raw[: len(raw) // 2], EbmsError.MIME_INCONSISTENCY, "without its close delimiter")


def test_missing_close_delimiter(sample):
    raw = sample("phase4-sample_entsog.txt.mime")
    cut = raw.rindex(b"\n------=_Part_1717_975796272.1542101028884--")
    _refused(raw[:cut] + b"\n", EbmsError.MIME_INCONSISTENCY, "close delimiter")


def test_every_truncation_is_refused_cleanly(sample):
    raw = sample("phase4-dump-raw.as4out.eml")
    for end in range(0, len(raw) - 60, 97):
        with pytest.raises(As4Error):
            read_packet(raw[:end])


def test_thousand_parts():
    body = b"".join(b"--b\r\nContent-ID: <p%d>\r\n\r\nx\r\n" % i for i in range(1000)) + b"--b--\r\n"
    error = _refused(body, EbmsError.MIME_INCONSISTENCY, "more than 100 MIME parts", "multipart/related; boundary=b")
    assert error.where == "MIME part 101"


def test_too_large():
    _refused(b"<a/>" * 100, EbmsError.MIME_INCONSISTENCY, "400 bytes, more than the 100 accepted", max_size=100)


def test_envelope_with_a_dtd():
    raw = (b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x "y">]>'
           b'<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Body>&x;</S12:Body></S12:Envelope>')
    _refused(raw, EbmsError.INVALID_HEADER, "DTD")


def test_wrong_root_namespace():
    _refused(b'<Envelope xmlns="urn:not-soap"><Header/></Envelope>', EbmsError.INVALID_HEADER, "not a SOAP 1.2 (or 1.1) Envelope")


def test_malformed_envelope_in_a_part():
    body = b"--b\r\nContent-Type: application/soap+xml\r\n\r\n<S12:Envelope\r\n--b--\r\n"
    error = _refused(body, EbmsError.INVALID_HEADER, "not well-formed", "multipart/related; boundary=b")
    assert error.where == "MIME part 1"


@pytest.mark.parametrize("body, content_type, fragment", [
    (b"hello world", None, "neither XML nor MIME"),
    (b"   \r\n", None, "empty"),
    (b"Content-Type: multipart/related\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", None, "without a boundary parameter"),
    (b"X-Header: 1\r\n\r\n<a/>", None, "no Content-Type"),
    (b"--b\r\nContent-Type: text/plain\r\n", "multipart/related; boundary=b", "without its close delimiter --b--"),
    (b"--b\r\nContent-Type: text/plain\r\n--b--", "multipart/related; boundary=b", "not followed by an empty line"),
    (b"--b\r\nContent-Type: text/plain\r\nno colon here\r\n\r\nx\r\n--b--", "multipart/related; boundary=b", "is not a header line"),
    (b"--b\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\nx\r\n--b--", "multipart/related; boundary=b", "longer than 8192"),
    (b"--b\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!notbase64\r\n--b--", "multipart/related; boundary=b", "base64"),
    (b"--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nx\r\n--b--", "multipart/related; boundary=b", "'x-uuencode' is not supported"),
    (b"preamble only, no delimiter", "multipart/related; boundary=b", "no delimiter line --b"),
    (b"--b--\r\n", "multipart/related; boundary=b", "no part"),
    (b"--b\r\nContent-ID: <x>\r\n\r\n<a/>\r\n--b\r\nContent-ID: x\r\n\r\ny\r\n--b--", "multipart/related; boundary=b",
     "same Content-ID <x>"),
    (b"--" + b"b" * 300 + b"\r\n", None, "is not 1 to 200 characters"),
])
def test_malformed_mime(body, content_type, fragment):
    _refused(body, EbmsError.MIME_INCONSISTENCY, fragment, content_type)


def test_folded_headers_and_case():
    body = (b"--b\r\ncontent-type: application/soap+xml;\r\n\tcharset=UTF-8\r\nCONTENT-ID:\r\n <r@x>\r\n\r\n"
            b'<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"/>\r\n--b--')
    packet = read_packet(body, "Multipart/Related; BOUNDARY=b")
    assert packet.soap_version == "1.2"
    dump = b'Content-Type : application/soap+xml\r\n\r\n<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"/>'
    assert read_packet(dump).soap_version == "1.2"  # a blank before the colon (obsolete RFC 822 syntax)


def test_split_multipart_keeps_preamble_out_and_lf_only_bodies():
    parts = split_multipart(b"preamble\n--b\nA: 1\n\nx\r\n--b\n\ny\n--b--\nepilogue", "b")
    # Lines end in LF (the first delimiter says so): a CR before the LF is data.
    assert [(p.headers, p.data) for p in parts] == [((("A", "1"),), b"x\r"), ((), b"y")]
