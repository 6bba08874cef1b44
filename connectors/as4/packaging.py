"""AS4 message packaging: the SOAP envelope and its MIME attachments, as received and as sent (SOAP with
Attachments, ebMS3 Core §5.1, AS4 profile §2.1).

An AS4 message is a bare SOAP envelope, or a ``multipart/related`` body whose root part is the envelope and whose
other parts are the payloads. Signatures cover the exact bytes of each part (SwA profile), so the multipart body is
split here by hand, as RFC 2046 §5.1.1 says, and never through a parser that re-encodes: the CRLF before a
delimiter belongs to the delimiter, part bodies keep every byte after undoing their Content-Transfer-Encoding.

:func:`read_packet` takes what arrives: an HTTP body with its ``Content-Type`` header, or a stored message that
carries its own headers (a MIME message, an HTTP dump), or a MIME body without headers, or bare XML. Everything it
reads is bounded (total size, number of parts, header lines); whatever is wrong raises :class:`As4Error` EBMS:0007
MimeInconsistency (EBMS:0009 InvalidHeader for the envelope itself), naming what and where.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from lxml import etree

from connectors.as4 import ns
from connectors.as4.errors import As4Error, EbmsError
from hub.errors import InputError
from hub.xmlsafe import parse_xml

#: Largest message read (envelope and every part, as received).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Most MIME parts a message may have (the root part included).
MAX_PARTS = 100
#: Longest header line (a folded header counts each physical line), most header fields, largest header block.
MAX_HEADER_LINE = 8 * 1024
MAX_HEADERS = 100
MAX_HEADER_BLOCK = 64 * 1024
#: RFC 2046 allows 70 characters; some senders are longer, nobody needs this many.
MAX_BOUNDARY = 200

_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
#: UTF-16/32 XML (byte order marks, or the width of the first "<"): hub.xmlsafe reads it.
_WIDE_XML = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\x00<", b"<\x00")
_HEADER_NAME = re.compile(rb"^[!-9;-~]+[ \t]*:")
_FIELD_NAME = re.compile(r"[!-9;-~]+")
_HTTP_START_LINE = re.compile(rb"^(HTTP/\d(\.\d)? \d{3}|[A-Z]+ \S+ HTTP/\d(\.\d)?)")
_DEFAULT_PART_TYPE = "text/plain; charset=us-ascii"  # RFC 2045 §5.2


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME part: its Content-ID (without angle brackets; empty when it has none), Content-Type (the full header
    value), every header as received (names as spelt, folded values unfolded) and its body after undoing the
    Content-Transfer-Encoding (base64, quoted-printable; binary, 8bit and 7bit bodies as they are)."""

    content_id: str
    content_type: str
    headers: tuple[tuple[str, str], ...]
    data: bytes

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class Packet:
    """A received AS4 message: the SOAP envelope (root part) as received and parsed, and the other MIME parts."""

    envelope: bytes
    root: etree._Element
    soap_version: str
    attachments: tuple[Part, ...]

    def attachment(self, href: str) -> Part:
        """The part a ``cid:`` URL (a ``PartInfo@href``, a ``ds:Reference@URI``) names.

        The URL is percent-decoded as RFC 2392 says (senders that did not encode are matched too). Raises
        :class:`As4Error` EBMS:0007 when no part has that Content-ID, EBMS:0003 when ``href`` is no ``cid:`` URL.
        """
        if not isinstance(href, str) or href[:4].lower() != "cid:":
            raise As4Error(EbmsError.VALUE_INCONSISTENT, f"{href!r} is not a cid: URL naming a MIME part", where=str(href))
        raw = href[4:]
        decoded = unquote(raw)
        for candidate in (decoded, raw):
            for part in self.attachments:
                if part.content_id and part.content_id == candidate:
                    return part
        known = ", ".join(repr(part.content_id) for part in self.attachments) or "none"
        raise As4Error(EbmsError.MIME_INCONSISTENCY, f"no MIME part has the Content-ID {decoded!r} (the parts have: {known})",
                       where=href)


# --- reading --------------------------------------------------------------------------------------------------------


def read_packet(raw: bytes, content_type: str | None = None, *, max_size: int = MAX_MESSAGE_BYTES,
                max_parts: int = MAX_PARTS) -> Packet:
    """Read an AS4 message.

    ``content_type`` is the HTTP ``Content-Type`` header the body came with; without it the body's shape is
    recognised: bare XML (a byte order mark allowed), a MIME body starting with its first ``--boundary`` line, or a
    block of headers (a MIME message, an HTTP dump) whose ``Content-Type`` says what follows. The root part is the
    one ``start=`` names, else the first. ``soap_version`` comes from the envelope's namespace.
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"read_packet needs bytes, not {type(raw).__name__}")
    raw = bytes(raw)
    if len(raw) > max_size:
        raise As4Error(EbmsError.MIME_INCONSISTENCY, f"the message is {len(raw)} bytes, more than the {max_size} accepted")
    if not raw.strip(_WHITESPACE):
        raise As4Error(EbmsError.MIME_INCONSISTENCY, "the message is empty")
    if content_type is not None:
        media, params = parse_content_type(content_type)
        body = raw
    else:
        media, params, body = _sniff(raw)
    if media is None or not media.startswith("multipart/"):
        return _packet(body, (), where="envelope")
    boundary = params.get("boundary")
    if not boundary:
        raise As4Error(EbmsError.MIME_INCONSISTENCY, f"a {media} Content-Type without a boundary parameter", where="Content-Type")
    parts = split_multipart(body[len(_BOM):] if body.startswith(_BOM) else body, boundary, max_parts=max_parts)
    start = _strip_angles(params.get("start", ""))
    index = 0
    if start:
        index = next((i for i, part in enumerate(parts) if part.content_id == start), -1)
        if index < 0:
            raise As4Error(EbmsError.MIME_INCONSISTENCY, f"the start parameter names <{start}>, which no MIME part has",
                           where="Content-Type")
    seen: dict[str, int] = {}
    for number, part in enumerate(parts, 1):
        if part.content_id and part.content_id in seen:
            raise As4Error(EbmsError.MIME_INCONSISTENCY, f"MIME parts {seen[part.content_id]} and {number} have the same "
                           f"Content-ID <{part.content_id}>", where=f"MIME part {number}")
        seen.setdefault(part.content_id, number)
    root = parts[index]
    return _packet(root.data, tuple(part for i, part in enumerate(parts) if i != index),
                   where=f"MIME part {index + 1}" + (f" <{root.content_id}>" if root.content_id else ""))


def _sniff(raw: bytes) -> tuple[str | None, dict[str, str], bytes]:
    """(media type, parameters, body) of a message given without its Content-Type."""
    start = len(_BOM) if raw.startswith(_BOM) else 0
    head = raw[start:start + 4096].lstrip(_WHITESPACE)
    if head.startswith(b"<") or raw.startswith(_WIDE_XML):
        return None, {}, raw
    if head.startswith(b"--"):
        text = raw[start:].lstrip(_WHITESPACE)
        line = text.split(b"\n", 1)[0].rstrip(b"\r").rstrip(b" \t")
        boundary = line[2:]
        try:
            return "multipart/related", {"boundary": boundary.decode("ascii")}, raw[start:]
        except UnicodeDecodeError:
            raise As4Error(EbmsError.MIME_INCONSISTENCY, "the first boundary line is not ASCII", where="MIME body") from None
    body_text = raw[start:].lstrip(b"\r\n")
    if _HTTP_START_LINE.match(body_text):
        body_text = body_text.split(b"\n", 1)[1] if b"\n" in body_text else b""
    if not _HEADER_NAME.match(body_text):
        raise As4Error(EbmsError.MIME_INCONSISTENCY, "the message is neither XML nor MIME: it starts with "
                       f"{head[:40]!r}", where="message")
    headers, body = _read_headers(body_text, where="message headers")
    value = next((v for k, v in headers if k.lower() == "content-type"), None)
    if value is None:
        raise As4Error(EbmsError.MIME_INCONSISTENCY, "the message headers have no Content-Type", where="message headers")
    media, params = parse_content_type(value)
    return media, params, body


def _packet(envelope: bytes, attachments: tuple[Part, ...], *, where: str) -> Packet:
    root = _parse_envelope(envelope, where)
    namespace = etree.QName(root).namespace
    version = next((v for v, uri in ns.SOAP_NS.items() if uri == namespace), None)
    if version is None or etree.QName(root).localname != "Envelope":
        raise As4Error(EbmsError.INVALID_HEADER, f"the root element is {root.tag}, not a SOAP 1.2 (or 1.1) Envelope", where=where)
    return Packet(envelope=envelope, root=root, soap_version=version, attachments=attachments)


def _parse_envelope(data: bytes, where: str) -> etree._Element:
    text = data[len(_BOM):] if data.startswith(_BOM) else data
    stripped = text.lstrip(_WHITESPACE)
    # Leading blank lines would put the XML declaration off the start; only plain ASCII whitespace is dropped.
    if stripped is not text and stripped.startswith(b"<"):
        data = stripped
    try:
        return parse_xml(data, source=where)
    except InputError as exc:
        raise As4Error(EbmsError.INVALID_HEADER, f"the SOAP envelope cannot be read: {exc.message}", where=where) from exc


def split_multipart(body: bytes, boundary: str, *, max_parts: int = MAX_PARTS) -> list[Part]:
    """The parts of a multipart body delimited by ``boundary`` (RFC 2046 §5.1.1), CRLF or bare-LF lines.

    The preamble and epilogue are dropped; a missing close delimiter, a part without the blank line that ends its
    headers, or more than ``max_parts`` parts raise :class:`As4Error` EBMS:0007.
    """
    if not 0 < len(boundary) <= MAX_BOUNDARY or any(c in boundary for c in "\r\n"):
        raise As4Error(EbmsError.MIME_INCONSISTENCY, f"boundary {boundary[:80]!r} is not 1 to {MAX_BOUNDARY} characters on one line",
                       where="Content-Type")
    try:
        dash = b"--" + boundary.encode("ascii")
    except UnicodeEncodeError:
        raise As4Error(EbmsError.MIME_INCONSISTENCY, f"boundary {boundary!r} is not ASCII", where="Content-Type") from None
    crlf: bool | None = None
    parts: list[Part] = []
    content_start: int | None = None
    position = _find_delimiter(body, dash, 0)
    while True:
        if position is None and content_start is None:
            raise As4Error(EbmsError.MIME_INCONSISTENCY, f"the body has no delimiter line --{boundary}", where="MIME body")
        if position is None:
            raise As4Error(EbmsError.MIME_INCONSISTENCY, f"the multipart body ends without its close delimiter "
                           f"--{boundary}-- (truncated?)", where=f"MIME part {len(parts) + 1}")
        start, after, closing, line_crlf = position
        if crlf is None:
            crlf = line_crlf
        if content_start is not None:
            end = start
            if end > content_start and body[end - 1:end] == b"\n":
                end -= 1
                if crlf and end > content_start and body[end - 1:end] == b"\r":
                    end -= 1
            if len(parts) >= max_parts:
                raise As4Error(EbmsError.MIME_INCONSISTENCY, f"the message has more than {max_parts} MIME parts",
                               where=f"MIME part {len(parts) + 1}")
            parts.append(_read_part(body[content_start:end], number=len(parts) + 1))
        if closing:
            if not parts:
                raise As4Error(EbmsError.MIME_INCONSISTENCY, "the multipart body has no part", where="MIME body")
            return parts
        content_start = after
        position = _find_delimiter(body, dash, after)


def _find_delimiter(body: bytes, dash: bytes, offset: int) -> tuple[int, int, bool, bool] | None:
    """The next delimiter line at or after ``offset``: (its start, the offset after its line end, whether it is the
    close delimiter, whether its line ends in CRLF), or None."""
    while True:
        index = body.find(dash, offset)
        if index < 0:
            return None
        offset = index + len(dash)
        if index > 0 and body[index - 1:index] != b"\n":
            continue
        rest = offset
        closing = body[rest:rest + 2] == b"--"
        if closing:
            rest += 2
        while body[rest:rest + 1] in (b" ", b"\t"):  # transport padding
            rest += 1
        if body[rest:rest + 2] == b"\r\n":
            return index, rest + 2, closing, True
        if body[rest:rest + 1] == b"\n":
            return index, rest + 1, closing, False
        if closing and rest == len(body):
            return index, rest, True, False
        # "--boundary" followed by other text is not a delimiter (the boundary was a prefix of the line).


def _read_part(raw: bytes, *, number: int) -> Part:
    where = f"MIME part {number}"
    if raw.startswith(b"\r\n") or raw.startswith(b"\n"):
        headers, data = (), raw[2 if raw.startswith(b"\r\n") else 1:]
    else:
        headers, data = _read_headers(raw, where=where)
    fields = {name.lower(): value for name, value in reversed(headers)}
    content_id = _strip_angles(fields.get("content-id", ""))
    where = f"{where} <{content_id}>" if content_id else where
    encoding = fields.get("content-transfer-encoding", "binary").strip().lower()
    if encoding == "base64":
        try:
            data = base64.b64decode(b"".join(data.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise As4Error(EbmsError.MIME_INCONSISTENCY, f"the base64 body cannot be decoded: {exc}", where=where) from None
    elif encoding == "quoted-printable":
        data = binascii.a2b_qp(data)
    elif encoding not in ("binary", "8bit", "7bit"):
        raise As4Error(EbmsError.MIME_INCONSISTENCY, f"Content-Transfer-Encoding {encoding!r} is not supported", where=where)
    return Part(content_id=content_id, content_type=fields.get("content-type", _DEFAULT_PART_TYPE), headers=headers, data=data)


def _read_headers(raw: bytes, *, where: str) -> tuple[tuple[tuple[str, str], ...], bytes]:
    """(headers, body) of an entity: header fields up to the first empty line, folded lines unfolded."""
    headers: list[list[str]] = []
    offset = 0
    while True:
        end = raw.find(b"\n", offset, offset + MAX_HEADER_LINE + 2)
        if end < 0:
            if len(raw) - offset > MAX_HEADER_LINE:
                raise As4Error(EbmsError.MIME_INCONSISTENCY, f"a header line is longer than {MAX_HEADER_LINE} bytes", where=where)
            raise As4Error(EbmsError.MIME_INCONSISTENCY, "the headers are not followed by an empty line (truncated?)", where=where)
        line = raw[offset:end].rstrip(b"\r")
        offset = end + 1
        if len(line) > MAX_HEADER_LINE:
            raise As4Error(EbmsError.MIME_INCONSISTENCY, f"a header line is longer than {MAX_HEADER_LINE} bytes", where=where)
        if offset > MAX_HEADER_BLOCK:
            raise As4Error(EbmsError.MIME_INCONSISTENCY, f"the headers are longer than {MAX_HEADER_BLOCK} bytes", where=where)
        if not line:
            return tuple((name, value.strip()) for name, value in headers), raw[offset:]
        text = line.decode("utf-8", errors="replace")
        if text[0] in " \t":
            if not headers:
                raise As4Error(EbmsError.MIME_INCONSISTENCY, "the headers start with a continuation line", where=where)
            headers[-1][1] += " " + text.strip()
            continue
        name, colon, value = text.partition(":")
        name = name.rstrip(" \t")  # obsolete RFC 822 syntax allowed blanks before the colon
        if not colon or not _FIELD_NAME.fullmatch(name):
            raise As4Error(EbmsError.MIME_INCONSISTENCY, f"{text[:80]!r} is not a header line", where=where)
        if len(headers) >= MAX_HEADERS:
            raise As4Error(EbmsError.MIME_INCONSISTENCY, f"more than {MAX_HEADERS} header fields", where=where)
        headers.append([name, value])


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """The media type (lower case) and parameters (names in lower case, quotes removed) of a Content-Type value."""
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAMETER.match(rest, position)
        if match is None:
            break
        name, quoted, token = match.group(1), match.group(2), match.group(3)
        value_text = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else (token or "").strip()
        params.setdefault(name.lower(), value_text)
        position = match.end()
    return media.strip().lower(), params


_PARAMETER = re.compile(r'\s*;?\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))\s*;?')


def _strip_angles(value: str) -> str:
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value


# --- writing --------------------------------------------------------------------------------------------------------


def write_packet(envelope: bytes, attachments: Sequence[Part], soap_version: str = "1.2") -> tuple[bytes, str]:
    """The HTTP body and ``Content-Type`` header of a message: the bare envelope when there are no attachments,
    else a ``multipart/related`` body (root part first, every part binary, each attachment with its Content-Type
    and Content-ID). Only those headers are written: a part's other ``headers`` are not sent."""
    if soap_version not in ns.SOAP_CONTENT_TYPE:
        raise ValueError(f"SOAP version {soap_version!r} is not 1.1 or 1.2")
    soap_type = ns.SOAP_CONTENT_TYPE[soap_version]
    root_type = f"{soap_type}; charset=UTF-8"
    if not attachments:
        return bytes(envelope), root_type
    seen: set[str] = set()
    for part in attachments:
        if not part.content_id or any(c in part.content_id for c in "<>\r\n") or part.content_id in seen:
            raise ValueError(f"attachment Content-ID {part.content_id!r} is empty, repeated, or holds <, > or a line break")
        if any(c in part.content_type for c in "\r\n") or not part.content_type.strip():
            raise ValueError(f"attachment Content-Type {part.content_type!r} is empty or holds a line break")
        seen.add(part.content_id)
    root_id = f"root-{uuid.uuid4()}@as4.hub"
    while True:
        boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
        marker = b"--" + boundary.encode("ascii")
        if marker not in envelope and not any(marker in part.data for part in attachments):
            break
    chunks = [_part_bytes(marker, root_type, root_id, bytes(envelope))]
    chunks.extend(_part_bytes(marker, part.content_type, part.content_id, part.data) for part in attachments)
    chunks.append(marker + b"--\r\n")
    content_type = f'multipart/related; boundary="{boundary}"; type="{soap_type}"; start="<{root_id}>"'
    return b"".join(chunks), content_type


def _part_bytes(marker: bytes, content_type: str, content_id: str, data: bytes) -> bytes:
    head = (f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{content_id}>\r\n\r\n").encode("utf-8")
    return marker + b"\r\n" + head + data + b"\r\n"
