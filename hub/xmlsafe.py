"""Parsing untrusted XML safely.

Every byte string that reaches the hub from outside is parsed here. Documents carrying a DTD (and therefore entity
declarations), entity references, or processing that would reach the network are refused with
:class:`~hub.errors.HostileXMLError` before any tree is built; bytes that are not well-formed raise
:class:`~hub.errors.MalformedXMLError` naming line and column.
"""

from __future__ import annotations

import codecs
import re

from lxml import etree

from hub.errors import HostileXMLError, MalformedXMLError

#: Largest document the hub accepts (an ePhyto with attachments is a few MB at most).
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=False,
    remove_pis=False,
)


def parse_xml(data: bytes | str, *, source: str = "document") -> etree._Element:
    """Parse untrusted XML and return its root element.

    Refuses DTDs (internal or external), entity declarations and entity references, and documents larger than
    :data:`MAX_DOCUMENT_BYTES`. ``source`` names the input in error messages.
    """
    if isinstance(data, str):
        data = data.encode("utf-8") if not data.lstrip().startswith("<?xml") else _strip_declaration(data).encode("utf-8")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise HostileXMLError(f"document is {len(data)} bytes, more than the {MAX_DOCUMENT_BYTES} the hub accepts", where=source)
    text = _declared_text(data, source)
    if "<!DOCTYPE" in text or "<!ENTITY" in text or "<!doctype" in text:
        raise HostileXMLError("DTDs and entity declarations are not accepted", where=source)
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedXMLError(f"not well-formed XML: {exc.msg} (line {exc.lineno}, column {exc.offset})", where=source) from None
    if root.getroottree().docinfo.doctype:
        raise HostileXMLError("DTDs are not accepted", where=source)
    for node in root.iter(etree.Entity):
        raise HostileXMLError(f"entity reference &{node.name}; is not accepted", where=source)
    return root


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
#: BOM-less UTF-16 and UTF-32 as XML 1.0 Appendix F tells them from the first "<".
_WIDE = ((b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"), (b"\x00<\x00?", "utf-16-be"), (b"<\x00?\x00", "utf-16-le"))
_DECLARED = re.compile(r"""^<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']""")


def _declared_text(data: bytes, source: str) -> str:
    """The document as text in the encoding its bytes show (byte order mark, or the width of its first "<"), after
    checking that its declaration, if it names an encoding, agrees (XML 1.0 Appendix F: a mismatch is a fatal
    error). Bytes that are not the encoding shown are replaced: only markup is looked for in the text."""
    family = next((name for mark, name in _BOMS if data.startswith(mark)), None)
    with_mark = family is not None
    family = family or next((name for start, name in _WIDE if data.startswith(start)), None)
    text = data.decode(family or "latin-1", errors="replace").lstrip("\ufeff")
    match = _DECLARED.match(text)
    declared = match.group(1).lower().replace("_", "-") if match else None
    if declared is None:
        return text
    wide = declared.startswith(("utf-16", "utf-32", "ucs-2", "ucs-4", "iso-10646-ucs"))
    if family is None and wide:
        raise MalformedXMLError(f"the declaration says encoding {match.group(1)!r}, but the bytes are not in it", where=source)
    if family is not None and family.startswith("utf-8") and with_mark and declared not in ("utf-8", "utf8"):
        raise MalformedXMLError(f"a UTF-8 byte order mark, but the declaration says encoding {match.group(1)!r}", where=source)
    if family is not None and family.startswith(("utf-16", "utf-32")) and not wide:
        raise MalformedXMLError(f"the bytes are {family.upper()}, but the declaration says encoding {match.group(1)!r}", where=source)
    return text


def _strip_declaration(text: str) -> str:
    """lxml refuses str input that carries an encoding declaration; the text is already decoded."""
    text = text.lstrip()
    end = text.find("?>")
    return text[end + 2 :] if end != -1 else text
