"""Finding the standard document inside what counterparts actually send.

A certificate arrives bare, inside a SOAP envelope (TRACES-NT ``CreateAndSubmitChedForDecisionRequest``, the IPPC
Hub's typed ``ePhytoEnvelope``), or as an XML *string* inside a counterpart's envelope (the IPPC Hub ``Envelope``
``Content``, a single window's ``SignedSPSCert``). :func:`unwrap` returns the document element and says how it came.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from lxml import etree

from hub.errors import UnknownDocumentError
from hub.xmlsafe import parse_xml

#: How deep a string-in-envelope nesting may go (an envelope in an envelope is fine; more is refused).
MAX_NESTING = 3


@dataclass(frozen=True)
class Unwrapped:
    """The document element, and the chain of wrappers it was found in (outermost first)."""

    document: etree._Element
    wrappers: tuple[str, ...]


def unwrap(root: etree._Element, document_tag: str | Iterable[str], *, source: str = "document", content: Iterable[str] = ()) -> Unwrapped:
    """Find the element ``document_tag`` (Clark notation) in ``root``, in a SOAP body or in an embedded XML string.

    ``document_tag`` may name several tags (a CITES permit's root is unqualified inside the EPIX SOAP responses);
    the first one is the one error messages name. ``content`` names the document's own children: an element of
    another name holding them is a counterpart's container of the document (TRACES-NT's EU-Intra
    ``SPSCertificate``), taken as the document element.
    """
    tags = (document_tag,) if isinstance(document_tag, str) else tuple(document_tag)
    return _unwrap(root, tags, frozenset(content), source, (), 0)


def _unwrap(root: etree._Element, tags: tuple[str, ...], content: frozenset[str], source: str, wrappers: tuple[str, ...], depth: int) -> Unwrapped:
    if root.tag in tags:
        return Unwrapped(root, wrappers)
    found = next(root.iter(*tags), None)
    if found is not None:
        return Unwrapped(found, wrappers + (etree.QName(root).localname,))
    held = next(root.iter(*content), None) if content else None
    if held is not None:
        container = held.getparent()
        return Unwrapped(container, wrappers + ((etree.QName(root).localname,) if container is not root else ()))
    if depth < MAX_NESTING:
        names = {etree.QName(tag).localname for tag in tags}
        for element in root.iter(etree.Element):
            text = (element.text or "").strip()
            if len(element) == 0 and text.startswith("<") and any(name in text for name in names):
                inner = parse_xml(text.encode("utf-8"), source=f"{source} ({etree.QName(element).localname} content)")
                wrapper = f"{etree.QName(root).localname}/{etree.QName(element).localname}"
                return _unwrap(inner, tags, content, source, wrappers + (wrapper,), depth + 1)
    tag = tags[0]
    raise UnknownDocumentError(
        f"no {etree.QName(tag).localname} ({etree.QName(tag).namespace}) found; the root element is {root.tag}",
        where=source,
    )
