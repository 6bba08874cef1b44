"""The mapping spec compiled once into per-node readers (closures), cached on the spec; the writers likewise in
:mod:`hub.mapping.writer`.

The interpreted walk of :mod:`hub.mapping.engine` asks each node, for each element, which paths, types, selectors
and profiles it has; here those questions are answered once, when the spec is compiled, and each node becomes a
closure that only does what that node needs. The result is the same as the interpreted walk's, to the byte and the
key (``tests/mapping/test_compiled.py`` checks it on every real sample):

- :func:`reader` reads a document element into record data, marking what it takes in ``consumed`` exactly as the
  interpreted parse does, and says whether anything was left over; when nothing was (the usual case: a document the
  hub or a counterpart wrote from the same standard), :func:`hub.mapping.extensions.collect` need not walk the tree
  again;
- :mod:`hub.mapping.writer` holds the writer, compiled the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from lxml import etree

from hub.mapping.leaves import ATTRIBUTES, DATE_ELEMENTS, INDICATOR_VALUES, read_leaf, whole_text
from hub.mapping.spec import MappingSpec, Node

XMLDSIG_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"
_DATE_TAGS = frozenset(DATE_ELEMENTS.values())
_NUL_MESSAGE = "holds a character XML cannot carry (NUL, a control character or a lone surrogate)"


def cached_on(spec: MappingSpec, key: Any, build: Callable[[], Any]) -> Any:
    # The spec is a frozen dataclass (unhashable: it holds dicts); its compiled forms live in its own __dict__,
    # as functools.cached_property keeps its values, so they go when the spec goes.
    compiled = spec.__dict__.setdefault("_compiled", {})
    if key not in compiled:
        compiled[key] = build()
    return compiled[key]


# ------------------------------------------------------------------------------------------------------ parse


@dataclass
class Walk:
    """One parse: what was taken (elements and ``(element, attribute)`` pairs), where each field came from, and
    whether anything may have been left over for the extensions."""

    consumed: set
    locate: Callable[[str, etree._Element], None]
    xpath_of: Callable[[etree._Element], str]
    left_over: bool = False
    intermediates: list = field(default_factory=list)


Reader = Callable[[etree._Element, Walk], dict[str, Any]]


def reader(spec: MappingSpec) -> Reader:
    """The compiled parse of ``spec``: ``read(root, walk)`` → record data (without extensions)."""
    return cached_on(spec, "reader", lambda: _compile_reader(spec))


def _compile_reader(spec: MappingSpec) -> Reader:
    groups: dict[int, Callable] = {}
    read_root = _group_reader(spec.nodes, groups, root=True)

    def read(root: etree._Element, walk: Walk) -> dict[str, Any]:
        if len(root.attrib):
            walk.left_over = True
        data = read_root(root, "", walk)
        if not walk.left_over:
            _check_intermediates(walk)
        return data

    return read


def _check_intermediates(walk: Walk) -> None:
    consumed = walk.consumed
    for element in walk.intermediates:
        if len(element.attrib) or _text_beside_children(element) or any(
            child not in consumed for child in element if isinstance(child.tag, str)
        ):
            walk.left_over = True
            return


def _text_beside_children(element: etree._Element) -> bool:
    text = element.text
    return bool(text and text.strip() and any(isinstance(child.tag, str) for child in element))


def _group_reader(nodes: tuple[Node, ...], groups: dict[int, Callable], *, root: bool = False) -> Callable:
    """A function reading ``nodes`` below one element: ``read(parent, prefix, walk)`` → the fields it found."""
    key = id(nodes)
    if key in groups and not root:
        return groups[key]
    made: list[Callable] = []
    if not root:  # a spec that refers to itself reaches this group while its nodes are compiled: through here, then
        groups[key] = lambda *arguments: made[0](*arguments)
    first_tags = [steps[0].clark for node in nodes for steps in (node.steps, *node.profile_steps.values())]
    shared = frozenset(tag for tag in first_tags if first_tags.count(tag) > 1)
    made.append(_generated(nodes, [_node_reader(node, groups, shared) for node in nodes], groups, shared, root=root))
    if not root:
        groups[key] = made[0]
    return made[0]


def _simple(node: Node, shared: frozenset[str]) -> bool:
    """Whether ``node`` takes every child of one tag, which no other node of its group starts with (see _matcher)."""
    return not node.profile_steps and len(node.steps) == 1 and not node.when and node.steps[0].clark not in shared


def _generated(nodes: tuple[Node, ...], readers: list[Callable], groups: dict[int, Callable], shared: frozenset[str], *, root: bool) -> Callable:
    """A group's reader as one generated function: its children grouped by tag, then its nodes in order, each
    called only when its first tag is among the children; a node of one tag of its own (the usual node) read in
    place when it is a field of text or of a group (no call per element but the group's own), every other node
    through its closure."""
    lines = ["def read(parent, prefix, walk):",
             "    result = {}",
             "    children = {}",
             "    for child in parent:",
             "        found = children.get(child.tag)",
             "        if found is None:",
             "            children[child.tag] = [child]",
             "        else:",
             "            found.append(child)",
             "    get = children.get",
             "    consumed = walk.consumed",
             "    locate = walk.locate"]
    names: dict[str, Any] = {"whole_text": whole_text, "beside": _text_beside_children, "left": _left_over, "ROOT": root}
    for i, node in enumerate(nodes):
        names[f"r{i}"] = readers[i]
        tags = sorted({steps[0].clark for steps in (node.steps, *node.profile_steps.values())})
        leaf_type = node.leaf_type
        if node.field is None or not _simple(node, shared) or leaf_type not in (None, "string", *_ATTRIBUTED):
            names.update({f"T{i}_{n}": tag for n, tag in enumerate(tags)})
            present = " or ".join(f"T{i}_{n} in children" for n in range(len(tags)))
            lines.append(f"    if {present}: r{i}(parent, children, result, prefix, walk)")
            continue
        names[f"T{i}"] = node.steps[0].clark
        path = f"(prefix + {'.' + node.field!r} if prefix else {node.field!r})"
        lines += [f"    elements = get(T{i})", "    if elements:"]
        if node.many:
            lines += [f"        base = {path}", "        values = []", "        for n, e in enumerate(elements):", '            p = f"{base}[{n}]"']
            indent = " " * 12
        else:
            lines += ["        e = elements[0]", f"        p = {path}"]
            indent = " " * 8
        body = ["locate(p, e)", "consumed.add(e)"]
        if leaf_type is None:
            names[f"G{i}"] = _group_reader(node.children, groups)
            body += ["if not walk.left_over and (len(e.attrib) or beside(e)):", "    walk.left_over = True", f"v = G{i}(e, p, walk)"]
        elif leaf_type == "string":
            body += ["if len(e) or len(e.attrib):", "    walk.left_over = True", "    v = whole_text(e)", "else:", '    v = e.text or ""']
        else:
            names[f"K{i}"] = ATTRIBUTES[leaf_type]
            body += ["if len(e):", "    walk.left_over = True", '    v = {"value": whole_text(e)}', "else:", '    v = {"value": e.text or ""}',
                     "if len(e.attrib):", "    for attribute, written in e.items():", f"        key = K{i}.get(attribute)", "        if key is None:",
                     "            walk.left_over = True", "        else:", "            v[key] = written", "            consumed.add((e, attribute))"]
        body.append("values.append(v)" if node.many else f"result[{node.field!r}] = v")
        lines += [indent + line for line in body]
        if node.many:
            lines.append(f"        result[{node.field!r}] = values")
    # Left over: a child no node took. A node of one tag of its own took all its tag's children, or the first alone.
    names["TAKEN"] = {node.steps[0].clark: ("all" if node.many else "first") for node in nodes if node.field is not None and _simple(node, shared)}
    lines += ["    if not walk.left_over:",
              "        for tag, elements in children.items():",
              "            taken = TAKEN.get(tag)",
              '            if taken == "all" or (taken == "first" and len(elements) == 1):',
              "                continue",
              "            if taken is not None or left(tag, elements, consumed, ROOT):",
              "                walk.left_over = True",
              "                break",
              "    return result"]
    exec(compile("\n".join(lines), f"<reader of {', '.join(str(node.field) for node in nodes[:3])}…>", "exec"), names)  # noqa: S102 - the spec's own code
    return names["read"]


#: The leaf types read as a text with attributes (``{"value": …, <key>: …}``).
_ATTRIBUTED = ("text", "code", "identifier", "measure", "binary")


def _left_over(tag: Any, elements: list[etree._Element], consumed: set, root: bool) -> bool:
    """Whether an element of ``elements`` (a group's children of one tag) was taken by none of its nodes (a comment
    or a processing instruction is no element; a signature at the root is the signature's, not the document's)."""
    if not isinstance(tag, str) or (root and tag == XMLDSIG_SIGNATURE):
        return False
    return any(element not in consumed for element in elements)


def _node_reader(node: Node, groups: dict[int, Callable], shared: frozenset[str]) -> Callable:
    match = _matcher(node, shared)
    name = node.field
    if name is None:
        inner = _group_reader(node.children, groups)

        def read_inline(parent, children, result, prefix, walk):
            elements = match(parent, children, walk)
            if elements:
                element = elements[0]
                walk.consumed.add(element)
                _check_group_element(element, walk)
                result.update(inner(element, prefix, walk))

        return read_inline

    if node.is_leaf:
        read_value = _leaf_reader(node.leaf_type, node.enum)  # type: ignore[arg-type]
    else:
        inner = _group_reader(node.children, groups)

        def read_value(element, walk, path):
            walk.consumed.add(element)
            _check_group_element(element, walk)
            return inner(element, path, walk)

    if node.many:

        def read_many(parent, children, result, prefix, walk):
            elements = match(parent, children, walk)
            if elements:
                path = f"{prefix}.{name}" if prefix else name
                values = []
                for index, element in enumerate(elements):
                    item_path = f"{path}[{index}]"
                    walk.locate(item_path, element)
                    values.append(read_value(element, walk, item_path))
                result[name] = values

        return read_many

    def read_one(parent, children, result, prefix, walk):
        elements = match(parent, children, walk)
        if elements:
            path = f"{prefix}.{name}" if prefix else name
            element = elements[0]
            walk.locate(path, element)
            result[name] = read_value(element, walk, path)

    return read_one


def _check_group_element(element: etree._Element, walk: Walk) -> None:
    """A taken element whose attributes nothing reads, or whose text sits beside its children, leaves something
    over for the extensions."""
    if not walk.left_over and (len(element.attrib) or _text_beside_children(element)):
        walk.left_over = True


def _matcher(node: Node, shared: frozenset[str]) -> Callable:
    """``match(parent, children, walk)`` → the elements ``node`` takes below ``parent`` (as the interpreted
    ``_match``: the spec's path first, then each profile's own, the first that finds an untaken element that the
    node selects); containers on the way are marked taken.

    A node of one step that no other node of its group starts with, and without ``when``, takes every child of its
    tag: nothing else can have taken one before (a parent whose children a path from above took is itself taken,
    and so never read as a group).
    """
    alternatives = [(steps[0].clark, tuple(step.clark for step in steps[1:])) for steps in (node.steps, *node.profile_steps.values())]
    selects = node.selects if node.when else None
    if len(alternatives) == 1 and not alternatives[0][1] and selects is None and alternatives[0][0] not in shared:
        only = alternatives[0][0]
        return lambda parent, children, walk: children.get(only, ())

    def match(parent, children, walk):
        consumed = walk.consumed
        for first, rest in alternatives:
            candidates = children.get(first)
            if not candidates:
                continue
            for tag in rest:
                candidates = [child for child in candidates[0] if child.tag == tag]
                if not candidates:
                    break
            if selects is None:
                matches = [element for element in candidates if element not in consumed]
            else:
                matches = [element for element in candidates if element not in consumed and selects(element)]
            if matches:
                if rest:
                    ancestor = matches[0].getparent()
                    while ancestor is not None and ancestor is not parent:
                        consumed.add(ancestor)
                        walk.intermediates.append(ancestor)
                        ancestor = ancestor.getparent()
                return matches
        return ()

    return match


def _leaf_reader(leaf_type: str, enum: Mapping[str, str] | None) -> Callable:
    """``read(element, walk, path)`` → the record value of one leaf, as :func:`hub.mapping.leaves.read_leaf` reads it."""
    if leaf_type in ("integer", "indicator", "enum"):

        def read_coded(element, walk, path):
            if len(element) or len(element.attrib):
                walk.left_over = True
            return read_leaf(element, leaf_type, enum, walk.xpath_of, walk.consumed)

        return read_coded

    if leaf_type == "datetime":
        return _read_datetime

    if leaf_type == "string":

        def read_string(element, walk, path):
            walk.consumed.add(element)
            if len(element) or len(element.attrib):
                walk.left_over = True
                return whole_text(element)
            return element.text or ""

        return read_string

    known = ATTRIBUTES[leaf_type]

    def read_attributed(element, walk, path):
        walk.consumed.add(element)
        if len(element):
            walk.left_over = True
            value = {"value": whole_text(element)}
        else:
            value = {"value": element.text or ""}
        for attribute, written in element.items():
            key = known.get(attribute)
            if key is not None:
                value[key] = written
                walk.consumed.add((element, attribute))
            else:
                walk.left_over = True
        return value

    return read_attributed


def _read_datetime(element: etree._Element, walk: Walk, path: str) -> dict[str, Any]:
    consumed = walk.consumed
    consumed.add(element)
    if len(element.attrib):
        walk.left_over = True
    if not len(element):
        return {"value": element.text or "", "format": "text"}
    date = None
    for child in element:
        if date is None and child.tag in _DATE_TAGS:
            date = child
        elif isinstance(child.tag, str):
            walk.left_over = True  # a second element beside the date: the extensions' walk names it
    if date is None:
        walk.left_over = True
        return {"value": element.text or "", "format": "text"}
    if _text_beside_children(element) or len(date) or set(date.keys()) - {"format"}:
        walk.left_over = True
    consumed.add(date)
    value: dict[str, Any] = {"value": date.text or "", "format": etree.QName(date).localname}
    if "format" in date.attrib:
        value["format_code"] = date.attrib["format"]
        consumed.add((date, "format"))
    return value


__all__ = ["INDICATOR_VALUES", "Reader", "Walk", "cached_on", "reader"]
