"""XPaths that name an element for people: prefixed names, with a position only where a name repeats."""

from __future__ import annotations

from typing import Mapping

from lxml import etree


def qualified_name(tag: str, prefix_of: Mapping[str, str], element: etree._Element | None = None) -> str:
    """``{uri}Local`` as ``prefix:Local`` using ``prefix_of`` (URI → prefix), else the element's own prefix."""
    if not tag.startswith("{"):
        return tag
    uri, local = tag[1:].split("}", 1)
    prefix = prefix_of.get(uri) or (element.prefix if element is not None else None)
    return f"{prefix}:{local}" if prefix else f"*[local-name()='{local}']"


def element_xpath(element: etree._Element, prefix_of: Mapping[str, str], root: etree._Element | None = None) -> str:
    """An absolute XPath such as ``/rsm:SPSCertificate/rsm:SPSConsignment/ram:IncludedSPSConsignmentItem/ram:IncludedSPSTradeLineItem[2]``.

    With ``root``, the path starts at that element (a certificate inside a SOAP body is named from its own root).
    """
    steps = []
    node: etree._Element | None = element
    while node is not None:
        step = qualified_name(node.tag, prefix_of, node)
        parent = node.getparent()
        if parent is not None and node is not root:
            same = [sibling for sibling in parent if sibling.tag == node.tag]
            if len(same) > 1:
                step += f"[{same.index(node) + 1}]"
        steps.append(step)
        if node is root:
            break
        node = parent
    return "/" + "/".join(reversed(steps))
