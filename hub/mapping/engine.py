"""The mapping engine: one spec, applied in both directions.

:func:`render` turns record data (the JSON form of a record) into an XML tree for a profile, reporting what the
profile cannot carry; :func:`parse` turns an XML tree into record data, reporting every element and attribute the
spec does not represent. Both are pure functions over trees and dicts: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Iterable

from lxml import etree

from hub.errors import FieldProblem, MappingError, RecordError
from hub.mapping import compiled, extensions, writer
from hub.mapping.leaves import carried_keys, read_leaf, write_leaf
from hub.mapping.spec import MappingSpec, Node, Profile, Step, mapped_fields
from hub.report import Area, Finding, Severity
from hub.xmlpath import element_xpath, qualified_name


@dataclass
class Rendered:
    """An XML tree rendered from a record, what the profile left out, and which field each element came from."""

    root: etree._Element
    findings: list[Finding]
    field_of: dict[etree._Element, str] = field(default_factory=dict)


@dataclass
class Parsed:
    """Record data parsed from XML (with ``extensions``: what the spec does not model, kept to be written back),
    a finding for each extension, and where each field came from."""

    data: dict[str, Any]
    findings: list[Finding]
    xpath_of: "FieldLocations"


# ---------------------------------------------------------------------------------------------------- render


#: Record keys every family's records have that are not spec fields: the container element and the extensions.
EXTENSIBLE = ("document_element", "extensions")


def render(spec: MappingSpec, data: Any, profile_name: str, *, ignore: Iterable[str] = (), interpreted: bool = False, locate: bool = False) -> Rendered:
    """Render record ``data`` (a record, or its dump) as a tree rooted at the spec's root element (or the record's
    own ``document_element``), following ``profile_name``, with the record's extensions written back in place.

    The spec's compiled writer does the walk (:mod:`hub.mapping.writer`); ``interpreted`` takes the node-by-node
    walk instead, the reference the compiled one is tested against, and the one that names a field holding what no
    XML can carry. ``locate`` fills :attr:`Rendered.field_of` (the interpreted walk always does).
    """
    fields = data if isinstance(data, dict) else data.__dict__
    profile = spec.profile(profile_name)
    root = etree.Element(fields.get("document_element") or spec.root_for(profile_name).clark, nsmap=dict(spec.namespaces))
    ignored = {*ignore, *EXTENSIBLE}
    if not interpreted:
        written = writer.Written(field_at=[] if locate else None)
        writer.writer(spec, profile_name)(data, ignored, written)
        try:
            root = writer.tree(root, written)
        except ValueError:
            interpreted = True
        else:
            dropped, problems, field_of = writer.resolve(root, written)
    if interpreted:
        if not isinstance(data, dict):
            data = data.model_dump(mode="json", exclude_none=True)
        state = _RenderState(spec=spec, profile=profile)
        state.render_nodes(root, spec.nodes, data, "", ignored)
        dropped, problems, field_of = state.dropped, state.problems, state.field_of
    placed = extensions.place(root, fields.get("extensions") or (), spec.namespaces)
    findings = [_dropped_finding(spec, profile, parent, steps, field_path, value) for parent, steps, field_path, value in dropped]
    for parent, steps, field_path, rule, en, fr in problems:
        findings.append(
            Finding(
                xpath=_xpath(parent, steps, spec),
                field=field_path,
                rule=rule,
                severity=Severity.SEVERE,
                area=Area.MAPPING,
                message_en=en.format(profile=profile.name, field=field_path),
                message_fr=fr.format(profile=profile.name, field=field_path),
            )
        )
    return Rendered(root=root, findings=findings + placed, field_of=field_of)


def _xpath(parent: etree._Element | str, steps: tuple[Step, ...], spec: MappingSpec) -> str:
    """Where a field goes: below ``parent`` (an element, or the XPath of a container left out as empty)."""
    where = parent if isinstance(parent, str) else element_xpath(parent, spec.prefix_of)
    return where + "".join(f"/{s.prefixed}" for s in steps)


@dataclass
class _RenderState:
    spec: MappingSpec
    profile: Profile
    dropped: list[tuple[etree._Element, tuple[Step, ...], str, Any]] = field(default_factory=list)
    problems: list[tuple[etree._Element, tuple[Step, ...], str, str, str, str]] = field(default_factory=list)
    field_of: dict[etree._Element, str] = field(default_factory=dict)

    def _problem(self, parent: etree._Element, steps: tuple[Step, ...], path: str, rule: str, en: str, fr: str):
        return (parent, steps, path, rule, en, fr)

    def render_nodes(self, parent: etree._Element, nodes: tuple[Node, ...], data: dict[str, Any], prefix: str, ignore: set[str] | None) -> None:
        """Render ``nodes`` from ``data`` below ``parent``; with ``ignore`` None, leftover keys are the caller's to check."""
        mapped = mapped_fields(nodes) | (ignore or set())
        for node in nodes:
            if node.field is None:
                self._render_inline(parent, node, data, prefix)
                continue
            value = data.get(node.field)
            path = f"{prefix}.{node.field}" if prefix else node.field
            steps = node.steps_for(self.profile.name)
            if value is None or value == []:
                if self.profile.name in node.required_by:
                    self.problems.append(self._problem(parent, steps, path, "MAP-PROFILE-REQUIRED", "the {profile} profile requires {field}", "le profil {profile} exige {field}"))
                continue
            if not node.written_by(self.profile.name):
                self.dropped.append((parent, steps, path, value))
                continue
            if node.many and not isinstance(value, list):
                raise MappingError(f"field {path} should be a list")
            container = self._container(parent, steps[:-1])
            for index, item in enumerate(value if node.many else [value]):
                item_path = f"{path}[{index}]" if node.many else path
                element = etree.SubElement(container, steps[-1].clark)
                self.field_of[element] = item_path
                if node.is_leaf:
                    leaf_type = node.type_for(self.profile.name)
                    try:
                        write_leaf(
                            element,
                            leaf_type,  # type: ignore[arg-type]
                            item,
                            node.enum,
                            date_element=self.profile.date_element,
                            force_date_element=self.profile.force_date_element,
                        )
                    except ValueError:  # NUL, control characters, lone surrogates: no XML can carry them
                        raise RecordError([FieldProblem(item_path, "holds a character XML cannot carry (NUL, a control character or a lone surrogate)")]) from None
                    self._check_leaf_keys(leaf_type, steps, item, parent, item_path)
                    if leaf_type == "integer" and not (element.text or "").strip().lstrip("-").isdigit():
                        self.problems.append(self._problem(parent, steps, item_path, "MAP-PROFILE-INTEGER", "the {profile} profile needs an integer in {field}", "le profil {profile} exige un entier dans {field}"))
                else:
                    self.render_nodes(element, node.children, item, item_path, set())
                    if not node.selects(element):
                        self.problems.append(self._problem(parent, steps, item_path, "MAP-SELECTOR", "{field} does not carry the code that reads it back as {field}", "{field} ne porte pas le code qui le relit comme {field}"))
        if ignore is None:
            return
        for key, value in data.items():
            if key not in mapped and value not in (None, [], {}):
                self.dropped.append((parent, (), f"{prefix}.{key}" if prefix else key, value))

    def _check_leaf_keys(self, leaf_type: str, steps: tuple[Step, ...], item: Any, parent: etree._Element, path: str) -> None:
        if isinstance(item, dict):
            for key in sorted(set(item) - carried_keys(leaf_type)):
                self.dropped.append((parent, steps, f"{path}.{key}", item[key]))

    def _render_inline(self, parent: etree._Element, node: Node, data: dict[str, Any], prefix: str) -> None:
        """Render an inline node's fields into its container element, which is left out when nothing fills it."""
        steps = node.steps_for(self.profile.name)
        container = self._container(parent, steps)
        self.render_nodes(container, node.children, data, prefix, None)
        if len(container) == 0 and not container.text and not container.attrib:
            top = container
            for _ in steps[1:]:
                top = top.getparent()
            parent.remove(top)

    @staticmethod
    def _container(parent: etree._Element, steps: tuple[Step, ...]) -> etree._Element:
        for step in steps:
            parent = etree.SubElement(parent, step.clark)
        return parent


def _dropped_finding(spec: MappingSpec, profile: Profile, parent: etree._Element, steps: tuple[Step, ...], field_path: str, value: Any) -> Finding:
    xpath = _xpath(parent, steps, spec)
    empty = value in ("", {}) or (isinstance(value, dict) and value.get("value") == "" and len(value) == 1)
    return Finding(
        xpath=xpath,
        field=field_path,
        rule="MAP-PROFILE-DROPPED",
        severity=Severity.INFO if empty else Severity.WARNING,
        area=Area.MAPPING,
        message_en=f"the {profile.name} profile cannot carry record field {field_path}; it is left out of the document",
        message_fr=f"le profil {profile.name} ne peut pas porter le champ {field_path} ; il est omis du document",
    )


def to_xml(root: etree._Element) -> bytes:
    """Serialise a rendered document (UTF-8, with declaration)."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# ----------------------------------------------------------------------------------------------------- parse


def parse(spec: MappingSpec, root: etree._Element, *, interpreted: bool = False) -> Parsed:
    """Parse a tree rooted at the spec's root element (or a counterpart's container of the same content) into
    record data; what the spec does not represent becomes the record's ``extensions``, each reported as INFO.

    The spec's compiled reader does the walk (:mod:`hub.mapping.compiled`); ``interpreted`` takes the node-by-node
    walk instead, the reference the compiled one is tested against.
    """
    consumed: set[Any] = {root}
    xpaths = _XPaths(spec.prefix_of, root)
    xpath_of = FieldLocations(xpaths)
    if interpreted:
        data = _parse_nodes(root, spec.nodes, "", consumed, xpath_of, xpaths)
        left_over = True
    else:
        walk = compiled.Walk(consumed, partial(dict.__setitem__, xpath_of), xpaths)
        data = compiled.reader(spec)(root, walk)
        left_over = walk.left_over
    # The compiled reader knows when it took everything: then the tree need not be walked again for extensions.
    kept, findings = extensions.collect(root, consumed, spec.prefix_of, xpaths) if left_over else ([], [])
    if kept:
        data["extensions"] = kept
    if root.tag not in spec.root_tags:  # a counterpart's container; a profile's own root is the profile's to write
        data["document_element"] = root.tag
    return Parsed(data=data, findings=findings, xpath_of=xpath_of)


class FieldLocations(dict):
    """Record field path → XPath it was read from. Holds the elements; an XPath is only built when asked for."""

    def __init__(self, xpaths: "_XPaths") -> None:
        super().__init__()
        self._xpaths = xpaths

    def __getitem__(self, field: str) -> str:
        return self._xpaths(super().__getitem__(field))

    def get(self, field: str, default: Any = None) -> Any:  # type: ignore[override]
        return self[field] if field in self else default

    def items(self):  # type: ignore[override]
        return [(field, self[field]) for field in self.keys()]

    def values(self):  # type: ignore[override]
        return [self[field] for field in self.keys()]

    def nearest(self, field: str) -> str:
        """The XPath of ``field``, or of its nearest parent field that was read from the document."""
        path = field
        while path:
            if path in self:
                return self[path]
            path = path.rsplit(".", 1)[0] if "." in path else ""
        return self._xpaths(self._xpaths.root)


def _parse_nodes(parent: etree._Element, nodes: tuple[Node, ...], prefix: str, consumed: set, xpath_of: "FieldLocations", xpaths: "_XPaths") -> dict[str, Any]:
    result: dict[str, Any] = {}
    children: dict[str, list[etree._Element]] = {}
    for child in parent:
        children.setdefault(child.tag, []).append(child)
    for node in nodes:
        elements = _match(parent, children, node, consumed)
        if node.field is None:
            if elements:
                consumed.add(elements[0])
                result.update(_parse_nodes(elements[0], node.children, prefix, consumed, xpath_of, xpaths))
            continue
        if not elements:
            continue
        path = f"{prefix}.{node.field}" if prefix else node.field
        values = []
        for index, element in enumerate(elements if node.many else elements[:1]):
            item_path = f"{path}[{index}]" if node.many else path
            dict.__setitem__(xpath_of, item_path, element)
            if node.is_leaf:
                values.append(read_leaf(element, node.leaf_type, node.enum, xpaths, consumed))  # type: ignore[arg-type]
            else:
                consumed.add(element)
                values.append(_parse_nodes(element, node.children, item_path, consumed, xpath_of, xpaths))
        result[node.field] = values if node.many else values[0]
    return result


def _match(parent: etree._Element, children: dict[str, list[etree._Element]], node: Node, consumed: set) -> list[etree._Element]:
    """The elements a node maps to below ``parent`` (trying the profile-specific paths too); marks containers used.

    ``children`` are the parent's children grouped by tag, so each node looks only at the elements it may take.
    """
    for steps in (node.steps, *node.profile_steps.values()):
        candidates = children.get(steps[0].clark, [])
        for step in steps[1:]:
            if not candidates:
                break
            candidates = [child for child in candidates[0] if child.tag == step.clark]
        matches = [element for element in candidates if element not in consumed and node.selects(element)]
        if matches:
            for ancestor in _intermediates(parent, matches[0]):
                consumed.add(ancestor)
            return matches
    return []


def _intermediates(parent: etree._Element, element: etree._Element) -> list[etree._Element]:
    chain = []
    node = element.getparent()
    while node is not None and node is not parent:
        chain.append(node)
        node = node.getparent()
    return chain


class _XPaths:
    """Names elements by XPaths that start at the document element, whatever wraps it; each path is built once."""

    def __init__(self, prefix_of: dict[str, str], root: etree._Element) -> None:
        self.prefix_of = prefix_of
        self.root = root
        self._paths: dict[etree._Element, str] = {root: element_xpath(root, prefix_of, root)}
        self._steps: dict[etree._Element, str] = {}

    def __call__(self, element: etree._Element) -> str:
        path = self._paths.get(element)
        if path is None:
            parent = element.getparent()
            if element not in self._steps:
                self._name_children(parent)
            path = self._paths[element] = f"{self(parent)}/{self._steps[element]}"
        return path

    def _name_children(self, parent: etree._Element) -> None:
        counts: dict[str, int] = {}
        for child in parent:
            counts[child.tag] = counts.get(child.tag, 0) + 1
        seen: dict[str, int] = {}
        for child in parent:
            if not isinstance(child.tag, str):
                continue
            seen[child.tag] = seen.get(child.tag, 0) + 1
            step = qualified_name(child.tag, self.prefix_of, child)
            self._steps[child] = f"{step}[{seen[child.tag]}]" if counts[child.tag] > 1 else step
