"""Parsing untrusted XML safely.

Every byte string that reaches the hub from outside is parsed here. Documents carrying a DTD (and therefore entity
declarations), entity references, or processing that would reach the network are refused with
:class:`~hub.errors.HostileXMLError` before any tree is built; bytes that are not well-formed raise
:class:`~hub.errors.MalformedXMLError` naming line and column.
"""

from __future__ import annotations

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
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data or b"<!doctype" in data:
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


def _strip_declaration(text: str) -> str:
    """lxml refuses str input that carries an encoding declaration; the text is already decoded."""
    text = text.lstrip()
    end = text.find("?>")
    return text[end + 2 :] if end != -1 else text
