"""The mapping spec compiled once into per-node readers and writers (closures), cached on the spec.

The interpreted walk of :mod:`hub.mapping.engine` asks each node, for each element, which paths, types, selectors
and profiles it has; here those questions are answered once, when the spec is compiled, and each node becomes a
closure that only does what that node needs. The result is the same as the interpreted walk's, to the byte and the
key (``tests/mapping/test_compiled.py`` checks it on every real sample):

- :func:`reader` reads a document element into record data, marking what it takes in ``consumed`` exactly as the
  interpreted parse does, and says whether anything was left over; when nothing was (the usual case: a document the
  hub or a counterpart wrote from the same standard), :func:`hub.mapping.extensions.collect` need not walk the tree
  again;
- :func:`writer` renders record data below a root element for one profile, returning what the profile drops and
  what it cannot write, for the engine to report. The data may be a record's dump as it is (empty lists and all):
  an empty list writes nothing, as an absent key does, and what is dropped is reported in its compact form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from lxml import etree

from hub.errors import FieldProblem, MappingError, RecordError
from hub.mapping.leaves import ATTRIBUTES, DATE_ELEMENTS, INDICATOR_VALUES, carried_keys, read_leaf, whole_text, write_leaf
from hub.mapping.spec import MappingSpec, Node, Step
from hub.records import compact

XMLDSIG_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"
_DATE_TAGS = frozenset(DATE_ELEMENTS.values())
_NUL_MESSAGE = "holds a character XML cannot carry (NUL, a control character or a lone surrogate)"


def _cached(spec: MappingSpec, key: Any, build: Callable[[], Any]) -> Any:
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
    return _cached(spec, "reader", lambda: _compile_reader(spec))


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
    """A closure reading ``nodes`` below one element: ``read(parent, prefix, walk)`` → the fields it found."""
    key = id(nodes)
    if key in groups and not root:
        return groups[key]
    readers: list[Callable] = []

    def read(parent: etree._Element, prefix: str, walk: Walk) -> dict[str, Any]:
        result: dict[str, Any] = {}
        children: dict[Any, list[etree._Element]] = {}
        for child in parent:
            found = children.get(child.tag)
            if found is None:
                children[child.tag] = [child]
            else:
                found.append(child)
        # Only the nodes whose first step names a child that is there: the others would find nothing.
        wanted = sorted({index for tag in children for index in by_tag.get(tag, ())})
        for index in wanted:
            readers[index](parent, children, result, prefix, walk)
        if not walk.left_over:
            consumed = walk.consumed
            for tag, elements in children.items():
                if isinstance(tag, str) and not (root and tag == XMLDSIG_SIGNATURE):
                    for element in elements:
                        if element not in consumed:
                            walk.left_over = True
                            break
        return result

    if not root:
        groups[key] = read
    first_tags = [steps[0].clark for node in nodes for steps in (node.steps, *node.profile_steps.values())]
    shared = frozenset(tag for tag in first_tags if first_tags.count(tag) > 1)
    readers.extend(_node_reader(node, groups, shared) for node in nodes)
    by_tag: dict[str, tuple[int, ...]] = {}
    for index, node in enumerate(nodes):
        for steps in (node.steps, *node.profile_steps.values()):
            if index not in by_tag.get(steps[0].clark, ()):
                by_tag[steps[0].clark] = (*by_tag.get(steps[0].clark, ()), index)
    return read


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
        consumed = walk.consumed
        consumed.add(element)
        if len(element):
            walk.left_over = True
            value = {"value": whole_text(element)}
        else:
            value = {"value": element.text or ""}
        items = element.items()
        if items:
            for attribute, written in items:
                key = known.get(attribute)
                if key is not None:
                    value[key] = written
                    consumed.add((element, attribute))
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


# ----------------------------------------------------------------------------------------------------- render


@dataclass
class Written:
    """What rendering found on the way: fields the profile cannot carry, fields it needs and cannot write (as the
    interpreted walk records them: parent element, steps, field path, and the value or the rule and messages), and
    which field each element came from."""

    dropped: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    field_of: dict = field(default_factory=dict)


Writer = Callable[[etree._Element, dict[str, Any], set[str], Written], None]


def writer(spec: MappingSpec, profile_name: str) -> Writer:
    """The compiled render of ``spec`` in ``profile_name``: ``write(root, data, ignore, written)``."""
    profile = spec.profile(profile_name)
    return _cached(spec, ("writer", profile_name), lambda: _compile_writer(spec.nodes, profile))


_REQUIRED = ("MAP-PROFILE-REQUIRED", "the {profile} profile requires {field}", "le profil {profile} exige {field}")
_INTEGER = ("MAP-PROFILE-INTEGER", "the {profile} profile needs an integer in {field}", "le profil {profile} exige un entier dans {field}")
_SELECTOR = ("MAP-SELECTOR", "{field} does not carry the code that reads it back as {field}", "{field} ne porte pas le code qui le relit comme {field}")


def _compile_writer(nodes: tuple[Node, ...], profile: Any) -> Writer:
    groups: dict[int, Callable] = {}
    write_root = _group_writer(nodes, profile, groups)

    def write(root: etree._Element, data: dict[str, Any], ignore: set[str], written: Written) -> None:
        write_root(root, data, "", ignore, written)

    return write


def _fields(nodes: tuple[Node, ...]) -> frozenset[str]:
    """The record keys ``nodes`` map at this level, looking through inline nodes (which merge into their parent)."""
    fields: set[str] = set()
    for node in nodes:
        fields |= {node.field} if node.field else _fields(node.children)
    return frozenset(fields)


def _group_writer(nodes: tuple[Node, ...], profile: Any, groups: dict[int, Callable]) -> Callable:
    """``write(parent, data, prefix, ignore, written)``: the nodes below one element; with ``ignore`` None the
    leftover keys are the caller's to check (an inline group's)."""
    key = id(nodes)
    if key in groups:
        return groups[key]
    mapped = _fields(nodes)
    writers: list[Callable] = []
    # A node whose field the data does not hold writes nothing, unless it is inline (its fields are the data's own)
    # or its profile requires it (it reports the absence): only those and the nodes of present fields are called.
    always = tuple(index for index, node in enumerate(nodes) if node.field is None or profile.name in node.required_by)
    by_field = {node.field: index for index, node in enumerate(nodes) if node.field is not None and index not in always}

    def write(parent, data, prefix, ignore, written):
        for index in sorted([*always, *(by_field[name] for name in data if name in by_field)]):
            writers[index](parent, data, prefix, written)
        if ignore is None:
            return
        for name, value in data.items():
            if name not in mapped and name not in ignore:
                value = compact(value)  # the data may be a record's dump as it is, empty lists and all
                if value not in (None, [], {}):
                    written.dropped.append((parent, (), f"{prefix}.{name}" if prefix else name, value))

    groups[key] = write
    writers.extend(_node_writer(node, profile, groups) for node in nodes)
    return write


def _node_writer(node: Node, profile: Any, groups: dict[int, Callable]) -> Callable:
    steps: tuple[Step, ...] = node.steps_for(profile.name)
    if node.field is None:
        return _inline_writer(node, steps, profile, groups)
    name = node.field
    required = profile.name in node.required_by
    writes = node.written_by(profile.name)
    many = node.many
    outer = tuple(step.clark for step in steps[:-1])
    last = steps[-1].clark
    no_ignore: frozenset[str] = frozenset()
    if node.is_leaf:
        fill = _leaf_writer(node, profile, steps)
    else:
        inner = _group_writer(node.children, profile, groups)
        selects = node.selects if node.when else None

        def fill(element, item, item_path, parent, written):
            inner(element, item, item_path, no_ignore, written)
            if selects is not None and not selects(element):
                written.problems.append((parent, steps, item_path, *_SELECTOR))

    def write(parent, data, prefix, written):
        value = data.get(name)
        if value is None or value == []:
            if required:
                written.problems.append((parent, steps, f"{prefix}.{name}" if prefix else name, *_REQUIRED))
            return
        path = f"{prefix}.{name}" if prefix else name
        if not writes:
            written.dropped.append((parent, steps, path, compact(value)))
            return
        if many and not isinstance(value, list):
            raise MappingError(f"field {path} should be a list")
        container = parent
        for tag in outer:
            container = etree.SubElement(container, tag)
        field_of = written.field_of
        if many:
            for index, item in enumerate(value):
                item_path = f"{path}[{index}]"
                element = etree.SubElement(container, last)
                field_of[element] = item_path
                fill(element, item, item_path, parent, written)
        else:
            element = etree.SubElement(container, last)
            field_of[element] = path
            fill(element, value, path, parent, written)

    return write


def _inline_writer(node: Node, steps: tuple[Step, ...], profile: Any, groups: dict[int, Callable]) -> Callable:
    """An inline node's fields go into its container element, which is left out when nothing fills it."""
    inner = _group_writer(node.children, profile, groups)
    tags = tuple(step.clark for step in steps)

    def write(parent, data, prefix, written):
        container = parent
        for tag in tags:
            container = etree.SubElement(container, tag)
        inner(container, data, prefix, None, written)
        if len(container) == 0 and not container.text and not container.attrib:
            top = container
            for _ in tags[1:]:
                top = top.getparent()
            parent.remove(top)

    return write


def _leaf_writer(node: Node, profile: Any, steps: tuple[Step, ...]) -> Callable:
    """``fill(element, item, item_path, parent, written)``: one leaf value into its element, as
    :func:`hub.mapping.leaves.write_leaf` writes it, with what it cannot carry reported."""
    leaf_type: str = node.type_for(profile.name)  # type: ignore[assignment]
    carried = carried_keys(leaf_type)
    enum = node.enum

    def extra_keys(item, item_path, parent, written):
        if isinstance(item, dict):
            for key in sorted(set(item) - carried):
                written.dropped.append((parent, steps, f"{item_path}.{key}", item[key]))

    if leaf_type in ("string", "integer"):
        integer = leaf_type == "integer"

        def fill_plain(element, item, item_path, parent, written):
            try:
                element.text = str(item["value"] if isinstance(item, dict) else item)
            except ValueError:  # NUL, control characters, lone surrogates: no XML can carry them
                raise RecordError([FieldProblem(item_path, _NUL_MESSAGE)]) from None
            if isinstance(item, dict):
                extra_keys(item, item_path, parent, written)
            if integer and not (element.text or "").strip().lstrip("-").isdigit():
                written.problems.append((parent, steps, item_path, *_INTEGER))

        return fill_plain

    if leaf_type in ATTRIBUTES and leaf_type not in ("enum", "indicator", "datetime"):
        attributes = tuple(ATTRIBUTES[leaf_type].items())

        def fill_attributed(element, item, item_path, parent, written):
            try:
                if isinstance(item, dict):
                    element.text = str(item["value"])
                    if len(item) > 1:
                        for attribute, key in attributes:
                            if item.get(key) is not None:
                                element.set(attribute, str(item[key]))
                        extra_keys(item, item_path, parent, written)
                else:
                    element.text = str(item)
            except ValueError:
                raise RecordError([FieldProblem(item_path, _NUL_MESSAGE)]) from None

        return fill_attributed

    date_element, force = profile.date_element, profile.force_date_element

    def fill_other(element, item, item_path, parent, written):
        try:
            write_leaf(element, leaf_type, item, enum, date_element=date_element, force_date_element=force)
        except ValueError:
            raise RecordError([FieldProblem(item_path, _NUL_MESSAGE)]) from None
        extra_keys(item, item_path, parent, written)

    return fill_other


__all__ = ["INDICATOR_VALUES", "Reader", "Walk", "Writer", "Written", "reader", "writer"]
