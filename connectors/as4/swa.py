"""The SOAP-with-Attachments signature transforms (OASIS WSS SwA Profile 1.1, §5.3–§5.4).

A ``ds:Reference URI="cid:…"`` names a MIME part; dereferencing it yields the part's content octets (after undoing
its Content-Transfer-Encoding), and the reference's transform turns them into the octets digested:

* ``#Attachment-Content-Signature-Transform`` → the MIME *content* canonicalized (§5.4.2):
  an XML content type (``text/xml``, ``application/xml``, any ``…/…+xml``) is canonicalized with Exclusive XML
  Canonicalization without comments (of the whole document); any other ``text/*`` type has its line endings
  normalized to CRLF (the MIME canonical form of text, RFC 2045/2046); every other type (``application/gzip``,
  ``application/octet-stream``, ``image/jpeg`` … — every AS4 payload, compressed or not) is digested as is.
* ``#Attachment-Complete-Signature-Transform`` → the canonicalized MIME headers (§5.4.1) followed by the content
  as above. Header canonicalization keeps only Content-Description, Content-Disposition, Content-ID,
  Content-Location and Content-Type (Content-Type defaulting to ``text/plain;charset="us-ascii"``), unfolds them,
  drops the leading white space of each value and comments outside quoted strings, decodes RFC 2047 words in
  Content-Description, writes Content-Type and Content-Disposition with a lower-case value and their parameters
  lower-case named, RFC 2231-decoded, sorted and double-quoted, and emits ``Name:value CRLF`` sorted by name.

Where read: the rules as quoted, section by section, in Apache WSS4J's implementation of the profile
(``ws-security-dom/…/transform/AttachmentContentSignatureTransform.java``, ``AttachmentCompleteSignatureTransform.java``
and ``ws-security-common/…/util/AttachmentUtils.java``, which phase4, Domibus and Holodeck B2B all sign with); the
profile text itself was not in the library. The content rule is proved by the real vectors (the two gzip parts of
``as4net-signed_holodeck_message.as4.mime`` are digested as is); no vector uses the Complete transform, so its
header rule is implemented as WSS4J does it but unproven against another implementation. A part without a
Content-Type is digested as is (WSS4J does so, although MIME would default it to text/plain).
"""

from __future__ import annotations

import email.errors
import email.header
import re
import urllib.parse
from collections.abc import Iterable

from lxml import etree

from connectors.as4.quoting import split_outside_quotes
from hub.errors import InputError
from hub.xmlsafe import parse_xml

__all__ = ["media_type", "is_xml_media_type", "content_octets", "canonical_headers", "complete_octets"]

#: The MIME headers the Complete transform keeps, spelt as written in its output (and sorted by these names).
_KEPT_HEADERS = ("Content-Description", "Content-Disposition", "Content-ID", "Content-Location", "Content-Type")
_KEPT_BY_LOWER = {name.lower(): name for name in _KEPT_HEADERS}
#: Parameters whose values are case-insensitive and written lower-case by the header canonicalization.
_CASELESS_PARAMETERS = frozenset({"charset", "creation-date", "filename", "modification-date", "padding", "read-date",
                                  "size", "type"})
_DEFAULT_CONTENT_TYPE = 'text/plain;charset="us-ascii"'
_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_FOLD = re.compile(r"\r?\n(?=[ \t])")


class AttachmentContentError(InputError):
    """An attachment typed as XML whose content is not XML the canonicalization can read."""


def media_type(content_type: str | None) -> str:
    """The ``type/subtype`` of a Content-Type header value, lower-case, without parameters ('' when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_xml_media_type(media: str) -> bool:
    """Whether SwA §5.4.2 canonicalizes a part of this media type as XML."""
    return media in ("text/xml", "application/xml") or (media.endswith("+xml") and "/" in media)


def content_octets(data: bytes, content_type: str | None, *, where: str = "attachment") -> bytes:
    """The octets the Attachment-Content-Signature-Transform digests for a part with this content and Content-Type.

    Raises :class:`AttachmentContentError` when an XML-typed part is not well-formed (or is hostile) XML.
    """
    media = media_type(content_type)
    if is_xml_media_type(media):
        try:
            root = parse_xml(data, source=where)
            return etree.tostring(root.getroottree(), method="c14n", exclusive=True, with_comments=False)
        except InputError as exc:
            raise AttachmentContentError(f"the part is typed {media} but its XML cannot be canonicalized: {exc.message}",
                                         where=where) from None
        except etree.Error as exc:
            raise AttachmentContentError(f"the part is typed {media} but its XML cannot be canonicalized: {exc}",
                                         where=where) from None
    if media.startswith("text/"):
        return _LINE_ENDINGS.sub(b"\r\n", data)
    return data


def complete_octets(data: bytes, content_type: str | None, headers: Iterable[tuple[str, str]], *,
                    where: str = "attachment") -> bytes:
    """The octets the Attachment-Complete-Signature-Transform digests: canonical headers, then canonical content."""
    return canonical_headers(headers) + content_octets(data, content_type, where=where)


def canonical_headers(headers: Iterable[tuple[str, str]]) -> bytes:
    """The MIME header canonicalization of SwA §5.4.1 (see the module docstring), UTF-8 encoded."""
    kept: dict[str, str] = {}
    for name, value in headers:
        canonical_name = _KEPT_BY_LOWER.get(name.strip().lower())
        if canonical_name is None:
            continue
        text = _FOLD.sub("", value).lstrip(" \t")
        if canonical_name == "Content-Description":
            text = _decode_words(text)
        text = _uncomment(text)
        if canonical_name in ("Content-Type", "Content-Disposition"):
            text = _canonical_parameters(text)
        kept[canonical_name] = text.rstrip("\r\n")
    kept.setdefault("Content-Type", _DEFAULT_CONTENT_TYPE)
    return "".join(f"{name}:{kept[name]}\r\n" for name in sorted(kept)).encode("utf-8")


def _decode_words(text: str) -> str:
    """RFC 2047 encoded words decoded (undecodable words are left as written)."""
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return text


def _uncomment(text: str) -> str:
    """``text`` without RFC 822 comments ``( … )`` outside quoted strings (nested comments included)."""
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            if depth == 0:
                out.append(char)
            continue
        if quoted:
            out.append(char)
            if char == '"':
                quoted = False
            continue
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth == 0:
            out.append(char)
            if char == '"':
                quoted = True
    return "".join(out)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    return re.sub(r"\\(.)", r"\1", value)


def _canonical_parameters(text: str) -> str:
    """A Content-Type or Content-Disposition value: lower-case value, then ``;name="value"`` sorted by name, with
    RFC 2231 continuations joined and extended values (``name*=charset'lang'%XX``) decoded."""
    pieces, _ = split_outside_quotes(text, ";")
    value = pieces[0].strip().lower()
    sections: dict[str, list[tuple[int, str]]] = {}
    for piece in pieces[1:]:
        if "=" not in piece:
            continue
        raw_name, raw_value = piece.split("=", 1)
        name = raw_name.strip().lower()
        if not name:
            continue
        extended = name.endswith("*")
        if extended:
            name = name[:-1]
        order = 0
        if "*" in name:
            base, _, number = name.rpartition("*")
            if number.isdigit():
                name, order = base, int(number)
        parameter_value = raw_value.strip()
        if extended:
            parameter_value = _decode_extended(parameter_value, first=(order == 0))
        else:
            parameter_value = _unquote(parameter_value)
        sections.setdefault(name, []).append((order, parameter_value))
    rendered = []
    for name in sorted(sections):
        joined = "".join(part for _, part in sorted(sections[name], key=lambda item: item[0]))
        if name in _CASELESS_PARAMETERS:
            joined = joined.lower()
        escaped = joined.replace("\\", "\\\\").replace('"', '\\"')
        rendered.append(f';{name}="{escaped}"')
    return value + "".join(rendered)


def _decode_extended(value: str, *, first: bool) -> str:
    """An RFC 2231 extended value: ``charset'language'%XX…`` on the first section, ``%XX…`` on the others."""
    charset = "us-ascii"
    if first and value.count("'") >= 2:
        charset, _, rest = value.split("'", 2)
        value = rest
    try:
        return urllib.parse.unquote(value, encoding=charset or "us-ascii", errors="replace")
    except LookupError:
        return urllib.parse.unquote(value, errors="replace")
