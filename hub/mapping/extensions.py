"""Extensions: what a document holds that the mapping does not model yet, kept in the record and written back in
place, so that parse → record → render loses nothing of any well-formed document.

:func:`collect` gathers, after a parse, every element the parse did not take (whole, as XML), every attribute of
a taken element it did not read, and every text beside child elements; :func:`place` puts them back into a rendered
tree. A place is an XPath from the document element whose steps are the spec's prefixed names (``{uri}Local`` for a
namespace the spec does not know), with a position where a tag repeats among its siblings.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Mapping

from lxml import etree

from hub.errors import HubError
from hub.report import Area, Finding, Severity
from hub.xmlsafe import parse_xml

XMLDSIG_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"
_STEPS = re.compile(r"(?:\{[^}]*\})?[^/{]+")  # a path's steps: a namespace URI in braces may hold slashes
_STEP = re.compile(r"^(?:\{(?P<uri>[^}]*)\}|(?P<prefix>[A-Za-z_][\w.-]*):)?(?P<local>[A-Za-z_][\w.-]*)(?:\[(?P<index>[1-9][0-9]{0,5})\])?$")


def step_of(element: etree._Element, prefix_of: Mapping[str, str]) -> str:
    """The step that names ``element`` among its siblings: ``prefix:Local`` (``{uri}Local`` for a namespace the
    spec has no prefix for), with ``[n]`` where its tag repeats."""
    tag = element.tag
    if tag.startswith("{"):
        uri, local = tag[1:].split("}", 1)
        name = f"{prefix_of[uri]}:{local}" if uri in prefix_of else tag
    else:
        name = tag
    parent = element.getparent()
    if parent is not None:
        same = [sibling for sibling in parent if sibling.tag == tag]
        if len(same) > 1:
            name += f"[{same.index(element) + 1}]"
    return name


def path_of(element: etree._Element, root: etree._Element, prefix_of: Mapping[str, str]) -> str:
    """The place of ``element`` below ``root`` (the document element), starting with the root's own step."""
    steps = []
    node = element
    while node is not None and node is not root:
        steps.append(step_of(node, prefix_of))
        node = node.getparent()
    root_tag = root.tag
    if root_tag.startswith("{"):
        uri, local = root_tag[1:].split("}", 1)
        root_tag = f"{prefix_of[uri]}:{local}" if uri in prefix_of else root_tag
    return "/" + "/".join([root_tag, *reversed(steps)])


def collect(root: etree._Element, taken: set, prefix_of: Mapping[str, str], xpath: Callable[[etree._Element], str]) -> tuple[list[dict[str, Any]], list[Finding]]:
    """The extensions of a parsed document (everything below ``root`` not in ``taken``), and an INFO finding for
    each, naming where it is."""
    extensions: list[dict[str, Any]] = []
    findings: list[Finding] = []

    def walk(element: etree._Element) -> None:
        previous = None
        for child in element:
            if not isinstance(child.tag, str):
                continue  # comments and processing instructions carry no certificate data
            if child.tag == XMLDSIG_SIGNATURE and element is root:
                previous = child
                continue  # the enveloped signature is verified separately and made anew on signing
            if child not in taken:
                extensions.append({"parent": path_of(element, root, prefix_of), "after": step_of(previous, prefix_of) if previous is not None else None, "xml": _xml(child)})
                findings.append(_kept(xpath(child), "element"))
            else:
                for name, value in child.attrib.items():
                    if (child, name) not in taken:
                        extensions.append({"parent": path_of(child, root, prefix_of), "attribute": name, "value": value})
                        findings.append(_kept(f"{xpath(child)}/@{_attribute_name(name, prefix_of)}", "attribute"))
                if any(isinstance(grandchild.tag, str) for grandchild in child) and (child.text or "").strip():
                    extensions.append({"parent": path_of(child, root, prefix_of), "text": child.text})
                    findings.append(_kept(f"{xpath(child)}/text()", "text"))
                walk(child)
            previous = child

    for name, value in root.attrib.items():
        if (root, name) not in taken:
            extensions.append({"parent": path_of(root, root, prefix_of), "attribute": name, "value": value})
            findings.append(_kept(f"{xpath(root)}/@{_attribute_name(name, prefix_of)}", "attribute"))
    walk(root)
    return extensions, findings


def place(root: etree._Element, extensions: Iterable[Any], namespaces: Mapping[str, str]) -> list[Finding]:
    """Put ``extensions`` (record values or their dicts) back into the rendered tree below ``root``, in order;
    one that cannot be placed (the record was changed where it stood) is reported, never guessed."""
    findings = []
    for extension in extensions:
        data = extension if isinstance(extension, dict) else extension.model_dump()
        try:
            parent = resolve(root, data["parent"], namespaces)
        except ValueError as exc:
            findings.append(_unplaced(data["parent"], str(exc)))
            continue
        try:
            if data.get("attribute") is not None:
                parent.set(data["attribute"], data["value"])
            elif data.get("text") is not None:
                parent.text = data["text"]
            else:
                element = parse_xml(data["xml"], source=f"extension below {data['parent']}")
                if any(node.tag.startswith("{http://www.w3.org/2000/09/xmldsig#}") for node in element.iter(etree.Element)):
                    raise ValueError("a signature is never an extension: the hub signs a document itself")
                _insert(parent, element, data.get("after"), namespaces)
        except (HubError, ValueError, TypeError) as exc:  # what a caller wrote may be no XML name or text at all
            findings.append(_unplaced(data["parent"], str(exc)))
    return findings


def resolve(root: etree._Element, path: str, namespaces: Mapping[str, str]) -> etree._Element:
    """The element at ``path`` below ``root`` (the path's first step names the root, whatever its tag)."""
    steps = _STEPS.findall(path)
    node = root
    for step in steps[1:]:
        tag, index = _parse_step(step, namespaces)
        same = [child for child in node if child.tag == tag]
        if len(same) < index:
            raise ValueError(f"no {step} in the rendered document")
        node = same[index - 1]
    return node


def _insert(parent: etree._Element, element: etree._Element, after: str | None, namespaces: Mapping[str, str]) -> None:
    if after is None:
        parent.insert(0, element)
        return
    tag, index = _parse_step(after, namespaces)
    same = [child for child in parent if child.tag == tag]
    if len(same) >= index:
        same[index - 1].addnext(element)
    else:
        parent.append(element)


def _parse_step(step: str, namespaces: Mapping[str, str]) -> tuple[str, int]:
    found = _STEP.match(step)
    if found is None:
        raise ValueError(f"{step!r} is not a step of an extension's place")
    uri = found["uri"]
    if found["prefix"]:
        if found["prefix"] not in namespaces:
            raise ValueError(f"unknown prefix {found['prefix']!r} in {step!r}")
        uri = namespaces[found["prefix"]]
    tag = f"{{{uri}}}{found['local']}" if uri else found["local"]
    return tag, int(found["index"] or 1)


def _xml(element: etree._Element) -> str:
    return etree.tostring(element, encoding="unicode", with_tail=False)


def _attribute_name(name: str, prefix_of: Mapping[str, str]) -> str:
    if name.startswith("{"):
        uri, local = name[1:].split("}", 1)
        return f"{prefix_of[uri]}:{local}" if uri in prefix_of else name
    return name


def _kept(xpath: str, what: str) -> Finding:
    return _finding(xpath, "MAP-EXTENSION", Severity.INFO,
                    f"this {what} is not modelled by the record; it is kept as an extension and written back in place",
                    f"cet élément ({what}) n'est pas modélisé par l'enregistrement ; il est conservé en extension et réécrit à sa place")


def _unplaced(path: str, reason: str) -> Finding:
    return _finding(path, "MAP-EXTENSION-UNPLACED", Severity.WARNING, f"an extension could not be written back: {reason}",
                    f"une extension n'a pas pu être réécrite : {reason}")


def _finding(xpath: str, rule: str, severity: Severity, message_en: str, message_fr: str) -> Finding:
    return Finding(xpath=xpath, rule=rule, severity=severity, area=Area.MAPPING, message_en=message_en, message_fr=message_fr)
