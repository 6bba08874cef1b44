"""The mapping spec compiled once into per-node writers (closures), cached on the spec, as
:mod:`hub.mapping.compiled` compiles the readers; the result is the interpreted walk's (:mod:`hub.mapping.engine`),
checked by ``tests/mapping/test_compiled.py`` on every real sample.

:func:`writer` writes a record (the record itself, or its dump) for one profile as XML text, which
:func:`tree` parses once into the document (lxml builds a parsed tree in C, faster than element by element);
:func:`resolve` then names the elements behind what the profile drops and what it cannot write, for the engine to
report. A record's dump may be given as it is (empty lists and all): an empty list writes nothing, as an absent
key does, and what is dropped is reported in its compact form. The text is the same document to the element,
attribute and character; an empty value is written ``<a/>`` where lxml wrote ``<a></a>``, the same XML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Mapping

from lxml import etree
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from hub.errors import MappingError
from hub.mapping.compiled import cached_on
from hub.mapping.leaves import ATTRIBUTES, DATE_ELEMENTS, carried_keys, leaf_content
from hub.mapping.spec import MappingSpec, Node, Step, mapped_fields
from hub.records import compact
from hub.xmlpath import qualified_name

# Making each element with SubElement costs about 2.4 µs; writing it out as text and parsing the whole at the end,
# a fraction of that. An element is named in what the walk reports by its position in document order (the root is
# 0), found in the tree once it is parsed.

_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTRIBUTE_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})
_ATTRIBUTE_SPECIAL = re.compile('[&<>"\t\n\r]')


def _text(value: str) -> str:
    # Most texts hold none of these: four scans of a short string cost less than one regular expression call.
    return value.translate(_TEXT_ESCAPES) if "&" in value or "<" in value or ">" in value or "\r" in value else value


def _attribute(value: str) -> str:
    return value.translate(_ATTRIBUTE_ESCAPES) if _ATTRIBUTE_SPECIAL.search(value) else value


def _as_data(value: Any) -> Any:
    """A record value (model, list, enum or scalar) as its record dump holds it."""
    return to_jsonable_python(value, exclude_none=True)


@dataclass
class Written:
    """What rendering wrote and found on the way: the document's content as XML text (``out``), the elements so
    far, fields the profile cannot carry and fields it needs and cannot write (as the interpreted walk records them:
    the parent element's position, steps, field path, and the value or the rule and messages), and, when asked
    for, the field each element came from."""

    out: list = field(default_factory=list)
    count: int = 1
    dropped: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    field_at: list | None = None


#: ``write(data, ignore, written)``: record data (its dump, or the record itself) into ``written.out``.
Writer = Callable[[Any, set[str], Written], None]


def writer(spec: MappingSpec, profile_name: str) -> Writer:
    """The compiled render of ``spec`` in ``profile_name``: ``write(data, ignore, written)``."""
    profile = spec.profile(profile_name)
    return cached_on(spec, ("writer", profile_name), lambda: _compile_writer(spec, profile))


_REQUIRED = ("MAP-PROFILE-REQUIRED", "the {profile} profile requires {field}", "le profil {profile} exige {field}")
_INTEGER = ("MAP-PROFILE-INTEGER", "the {profile} profile needs an integer in {field}", "le profil {profile} exige un entier dans {field}")
_SELECTOR = ("MAP-SELECTOR", "{field} does not carry the code that reads it back as {field}", "{field} ne porte pas le code qui le relit comme {field}")


def _compile_writer(spec: MappingSpec, profile: Any) -> Writer:
    groups: dict[int, Callable] = {}
    write_root = _group_writer(spec.nodes, profile, groups, spec.prefix_of)

    def write(data: Any, ignore: set[str], written: Written) -> None:
        write_root(written.out, 0, data, "", ignore, written)

    return write


def _group_writer(nodes: tuple[Node, ...], profile: Any, groups: dict[int, Callable], prefix_of: Mapping[str, str]) -> Callable:
    """``write(out, parent, data, prefix, ignore, written)``: the nodes below the element at position ``parent``;
    with ``ignore`` None the leftover keys are the caller's to check (an inline group's)."""
    key = id(nodes)
    if key in groups:
        return groups[key]
    mapped = mapped_fields(nodes)

    unmapped_of: dict[type, tuple[str, ...]] = {}
    clean: set[type] = set()  # the models all of whose fields a node maps: nothing to look at

    def leftover(data, fields, parent, prefix, ignore, written):
        """Report the fields the data holds that no node maps (and the caller does not ignore) as dropped."""
        if isinstance(data, dict):
            unmapped: Any = [name for name in data if name not in mapped]
        else:  # a record's own model: which of its fields no node maps is known once per model
            unmapped = unmapped_of.get(type(data))
            if unmapped is None:
                unmapped = unmapped_of[type(data)] = tuple(name for name in type(data).model_fields if name not in mapped)
                if not unmapped:
                    clean.add(type(data))
        for name in unmapped:
            value = fields[name]
            if value is not None and name not in ignore:
                value = compact(_as_data(value))  # the data may be a record's dump as it is, empty lists and all
                if value not in (None, [], {}):
                    written.dropped.append((parent, (), f"{prefix}.{name}" if prefix else name, value))

    made: list[Callable] = []
    # A spec that refers to itself reaches this group while its nodes are compiled: it then calls it through here.
    groups[key] = lambda *arguments: made[0](*arguments)
    writers = [_node_writer(node, profile, groups, prefix_of) for node in nodes]
    made.append(_generated(nodes, writers, profile, leftover, clean))
    groups[key] = made[0]
    return made[0]


#: The leaf types whose value is a text with attributes: what a group's generated code writes itself.
_VALUE_TYPES = frozenset({"string", "integer", "text", "code", "identifier", "measure", "binary"})


def _generated(nodes: tuple[Node, ...], writers: list[Callable], profile: Any, leftover: Callable, clean: set[type]) -> Callable:
    """A group's writer as one generated function: its nodes in order, the usual ones written in place (a leaf of a
    text type, an element holding a group, with the containers on their way), every other node through its closure:
    no call per element but the group's own.

    For data given as a dict a node is called for the fields present, as for a record's model (whose absent fields
    are None); a node an absent field would call anyway (inline, or required by the profile) is always called."""
    lines = ["def write(out, parent, data, prefix, ignore, written):",
             "    fields = data if isinstance(data, dict) else data.__dict__",
             "    get = fields.get",
             "    fa = written.field_at"]
    names: dict[str, Any] = {"BaseModel": BaseModel, "TE": _TEXT_ESCAPES, "attributes": _attributes, "INTEGER": _INTEGER, "REQUIRED": _REQUIRED,
                             "leftover": leftover, "clean": clean, "NO_IGNORE": frozenset()}
    for i, node in enumerate(nodes):
        names[f"w{i}"] = writers[i]
        steps = node.steps_for(profile.name)
        leaf_type = node.type_for(profile.name) if node.is_leaf else None
        required = profile.name in node.required_by
        group = not node.is_leaf and not node.when
        if node.field is None or not (leaf_type in _VALUE_TYPES or group) or not node.written_by(profile.name):
            if node.field is None or required:
                lines.append(f"    w{i}(out, parent, fields, prefix, written)")
            else:
                lines.append(f"    if get({node.field!r}) is not None: w{i}(out, parent, fields, prefix, written)")
            continue
        tag = steps[-1].prefixed
        names.update({f"steps{i}": steps, f"S{i}": f"<{tag}>", f"E{i}": f"</{tag}>", f"X{i}": f"<{tag}/>", f"H{i}": f"<{tag}"})
        outer = len(steps) - 1  # the containers on the way, written once around the field's elements
        names.update({f"O{i}": "".join(f"<{step.prefixed}>" for step in steps[:-1]), f"C{i}": "".join(f"</{step.prefixed}>" for step in reversed(steps[:-1]))})
        path = base = f"(prefix + {'.' + node.field!r} if prefix else {node.field!r})"
        absent = ["    else:", f"        written.problems.append((parent, steps{i}, {base}, *REQUIRED))"] if required else []
        if node.many:
            path = f'{path} + f"[{{n}}]"'
            lines += [f"    values = get({node.field!r})",
                      "    if values is not None and not (type(values) is list and not values):",
                      "        if not isinstance(values, list):",
                      f"            w{i}(out, parent, fields, prefix, written)  # refused there: a list is expected"]
            lines += [f"        out.append(O{i})", f"        written.count += {outer}"] if outer else []
            lines += ["        for n, v in enumerate(values):"]
            indent = " " * 12
        else:
            lines += [f"    v = get({node.field!r})",
                      "    if v is not None and not (type(v) is list and not v):"]
            lines += [f"        out.append(O{i})", f"        written.count += {outer}"] if outer else []
            indent = " " * 8
        close = [f"        out.append(C{i})"] if outer else []
        if group:
            names[f"G{i}"] = writers[i].inner
            lines += [indent + line for line in (
                f"p = {path}",
                "c = written.count",
                "written.count = c + 1",
                "if fa is not None:",
                "    fa.append((c, p))",
                f"out.append(S{i})",
                f"G{i}(out, c, v, p, NO_IGNORE, written)",
                f"out.append(E{i})",
            )] + close + absent
            continue
        attributes = ATTRIBUTES[leaf_type] if leaf_type not in ("string", "integer") else {}
        names.update({f"parts{i}": writers[i].parts, f"CARRIED{i}": frozenset(carried_keys(leaf_type) if attributes else {"value"}),
                      f"ORDER{i}": tuple((key, attribute) for attribute, key in attributes.items())})
        lines += [indent + line for line in (
            "if type(v) is str:",
            "    t, a = v, None",
            f"elif isinstance(v, BaseModel) and (k := v.__pydantic_fields_set__) <= CARRIED{i}:",
            "    d = v.__dict__",
            '    t = str(d["value"])',
            f"    a = [(name, str(x)) for key, name in ORDER{i} if key in k and (x := d[key]) is not None] if len(k) > 1 else None",
            "else:",
            f"    t, a = parts{i}(v, {path}, parent, written)",
            'if "&" in t or "<" in t or ">" in t or "\\r" in t:',
            "    t = t.translate(TE)",
            "if fa is not None:",
            f"    fa.append((written.count, {path}))",
            "written.count += 1",
            "if a:",
            f"    out.append(H{i} + attributes(a) + (('>' + t + E{i}) if t else '/>'))",
            "else:",
            f"    out.append(S{i} + t + E{i} if t else X{i})",
        )]
        if leaf_type == "integer":
            lines += [indent + 'if not t.strip().lstrip("-").isdigit():',
                      indent + f"    written.problems.append((parent, steps{i}, {path}, *INTEGER))"]
        lines += close + absent
    lines.append("    if ignore is not None and type(data) not in clean:")
    lines.append("        leftover(data, fields, parent, prefix, ignore, written)")
    exec(compile("\n".join(lines), f"<writer of {', '.join(str(node.field) for node in nodes[:3])}…>", "exec"), names)  # noqa: S102 - the spec's own code
    return names["write"]


def _attributes(found: list[tuple[str, str]]) -> str:
    """The attributes (name, value) as written in a start tag, each value escaped."""
    written = "".join([f' {name}="{value}"' for name, value in found])
    # Escaped only when some value needs it (rare): the names are XML names, and two quotes each are the tag's own.
    if "&" in written or "<" in written or ">" in written or "\t" in written or "\n" in written or "\r" in written or written.count('"') != 2 * len(found):
        return "".join([f' {name}="{_attribute(value)}"' for name, value in found])
    return written


def _node_writer(node: Node, profile: Any, groups: dict[int, Callable], prefix_of: Mapping[str, str]) -> Callable:
    steps: tuple[Step, ...] = node.steps_for(profile.name)
    if node.field is None:
        return _inline_writer(node, steps, profile, groups, prefix_of)
    name = node.field
    required = profile.name in node.required_by
    writes = node.written_by(profile.name)
    many = node.many
    outer = len(steps) - 1
    open_outer = "".join(f"<{step.prefixed}>" for step in steps[:-1])
    close_outer = "".join(f"</{step.prefixed}>" for step in reversed(steps[:-1]))
    if node.is_leaf:
        fill = _leaf_writer(node, profile, steps, prefix_of)
    else:
        inner = _group_writer(node.children, profile, groups, prefix_of)
        selects = node.selects if node.when else None
        start, end = f"<{steps[-1].prefixed}>", f"</{steps[-1].prefixed}>"
        no_ignore: frozenset[str] = frozenset()

        def fill(out, item, item_path, parent, written):
            position = written.count
            written.count += 1
            if written.field_at is not None:
                written.field_at.append((position, item_path))
            out.append(start)
            inner(out, position, item, item_path, no_ignore, written)
            out.append(end)
            if selects is not None:  # checked on the element once the tree is parsed
                written.problems.append((parent, steps, item_path, None, position, selects))

    def write(out, parent, data, prefix, written):
        value = data.get(name)
        if value is None or (type(value) is list and not value):
            if required:
                written.problems.append((parent, steps, f"{prefix}.{name}" if prefix else name, *_REQUIRED))
            return
        path = f"{prefix}.{name}" if prefix else name
        if not writes:
            written.dropped.append((parent, steps, path, compact(_as_data(value))))
            return
        if many and not isinstance(value, list):
            raise MappingError(f"field {path} should be a list")
        if outer:
            out.append(open_outer)
            written.count += outer
        if many:
            for index, item in enumerate(value):
                fill(out, item, f"{path}[{index}]", parent, written)
        else:
            fill(out, value, path, parent, written)
        if outer:
            out.append(close_outer)

    # What _generated writes in place: a text leaf's values, a group's elements.
    write.parts = getattr(fill, "parts", None)  # type: ignore[attr-defined]
    write.inner = None if node.is_leaf else inner  # type: ignore[attr-defined]
    return write


def _inline_writer(node: Node, steps: tuple[Step, ...], profile: Any, groups: dict[int, Callable], prefix_of: Mapping[str, str]) -> Callable:
    """An inline node's fields go into its container element, which is left out when nothing fills it."""
    inner = _group_writer(node.children, profile, groups, prefix_of)
    depth = len(steps)
    opening = "".join(f"<{step.prefixed}>" for step in steps)
    closing = "".join(f"</{step.prefixed}>" for step in reversed(steps))
    # Left out, the container is named as lxml names a detached element: from its own top.
    detached = "/" + "/".join(qualified_name(step.clark, prefix_of) for step in steps)

    def write(out, parent, data, prefix, written):
        mark, first = len(out), written.count
        dropped, problems = len(written.dropped), len(written.problems)
        out.append(opening)
        container = first + depth - 1
        written.count += depth
        inner(out, container, data, prefix, None, written)
        if len(out) > mark + 1:
            out.append(closing)
            return
        del out[mark:]
        written.count = first
        for found in (written.dropped, written.problems):
            for index in range(dropped if found is written.dropped else problems, len(found)):
                if found[index][0] == container:
                    found[index] = (detached, *found[index][1:])

    return write


def _leaf_writer(node: Node, profile: Any, steps: tuple[Step, ...], prefix_of: Mapping[str, str]) -> Callable:
    """``fill(out, item, item_path, parent, written)``: one leaf value as its element, as
    :func:`hub.mapping.leaves.write_leaf` writes it, with what it cannot carry reported."""
    leaf_type: str = node.type_for(profile.name)  # type: ignore[assignment]
    carried = carried_keys(leaf_type)
    enum = node.enum
    tag = steps[-1].prefixed
    empty, start, end = f"<{tag}/>", f"<{tag}>", f"</{tag}>"
    attributes = ATTRIBUTES[leaf_type]
    rank = {key: index for index, key in enumerate(attributes.values())}
    attribute_of = {key: attribute for attribute, key in attributes.items()}
    integer = leaf_type == "integer"
    date_element, force = profile.date_element, profile.force_date_element
    date_tags = {name: _date_tag(clark, prefix_of) for name, clark in DATE_ELEMENTS.items()}

    def parts(item, item_path, parent, written) -> tuple[str, list]:
        """The value's text and attributes (name, value) of one leaf value, given as a dict, a record value or a
        scalar; what the leaf type cannot carry is reported."""
        if isinstance(item, BaseModel):
            values, keys = item.__dict__, item.__pydantic_fields_set__
        elif isinstance(item, dict):
            values = keys = item
        else:
            return str(item.value if isinstance(item, Enum) else item), []
        found, extra = [], []
        for key in keys:
            if key == "value":
                continue
            value = values[key]
            if key in attribute_of:
                if value is not None:
                    found.append((rank[key], attribute_of[key], str(value)))
            elif key not in carried and (value is not None or values is item):
                extra.append(key)  # a None the record left unset is absent; one a dump holds is reported
        for key in sorted(extra):
            written.dropped.append((parent, steps, f"{item_path}.{key}", values[key]))
        if len(found) > 1:
            found.sort()
        return str(values["value"]), [(name, value) for _rank, name, value in found]

    def emit(out, item_path, text, found, written):
        if written.field_at is not None:
            written.field_at.append((written.count, item_path))
        written.count += 1
        text = _text(text)
        if found:
            head = f"<{tag}{_attributes(found)}"
            out.append(f"{head}>{text}{end}" if text else f"{head}/>")
        else:
            out.append(f"{start}{text}{end}" if text else empty)

    if leaf_type in ("string", "integer") or (leaf_type in ATTRIBUTES and leaf_type not in ("enum", "indicator", "datetime")):
        plain = leaf_type in ("string", "integer")

        def fill_value(out, item, item_path, parent, written):
            # The usual leaf is written by its group's generated code, which has the fast paths; here, parts() alone.
            text, found = parts(item, item_path, parent, written)
            emit(out, item_path, text, None if plain else found, written)
            if integer and not text.strip().lstrip("-").isdigit():
                written.problems.append((parent, steps, item_path, *_INTEGER))

        fill_value.parts = parts  # type: ignore[attr-defined]  # for the group's generated code (_generated)
        return fill_value

    def fill_other(out, item, item_path, parent, written):
        if isinstance(item, BaseModel):  # a record value: the fields it was given, as its dump holds them
            values = item.__dict__
            data = {key: values[key] for key in item.__pydantic_fields_set__ if values[key] is not None}
        else:
            data = item
        text, found, date = leaf_content(leaf_type, data, enum, date_element=date_element, force_date_element=force)
        if date is None:
            emit(out, item_path, text, found, written)
        else:
            if written.field_at is not None:
                written.field_at.append((written.count, item_path))
            written.count += 2
            name, date_text, date_attributes = date
            date_tag, date_end = date_tags[name]
            head = f"<{date_tag}{_attributes(date_attributes)}"
            out.append(f"{start}{head}>{_text(date_text)}{date_end}{end}" if date_text else f"{start}{head}/>{end}")
        if isinstance(data, dict):
            for key in sorted(set(data) - carried):
                written.dropped.append((parent, steps, f"{item_path}.{key}", data[key]))

    return fill_other


def _date_tag(clark: str, prefix_of: Mapping[str, str]) -> tuple[str, str]:
    """A date element's start tag (without its ``>``) and end tag, declaring its namespace where the spec does not."""
    uri, local = clark[1:].split("}", 1)
    prefix = prefix_of.get(uri)
    if prefix:
        return f"{prefix}:{local}", f"</{prefix}:{local}>"
    return f'ns0:{local} xmlns:ns0="{uri}"', f"</ns0:{local}>"


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def tree(root: etree._Element, written: Written) -> etree._Element:
    """The rendered document: ``root`` (an empty element bearing the namespace declarations) holding what was
    written. Raises ``ValueError`` when the text holds what no XML carries (the caller renders the slow way then,
    which names the field).

    libxml2 refuses every character lxml does (NUL, control characters, U+FFFE, U+FFFF; a lone surrogate cannot
    be encoded), so the parse finds what the walk did not check."""
    head = etree.tostring(root, encoding=str)
    name = head[1 : len(head) - 2].split(" ", 1)[0]
    try:
        return etree.fromstring(f"{head[:-2]}>{''.join(written.out)}</{name}>".encode(), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ValueError(str(exc)) from None


def resolve(root: etree._Element, written: Written) -> tuple[list, list, dict]:
    """The walk's findings and field locations with each element position replaced by the element in ``root``;
    a selector checked now on the element it chose."""
    wanted = {entry[0] for entry in (*written.dropped, *written.problems) if type(entry[0]) is int}
    wanted |= {entry[4] for entry in written.problems if entry[3] is None}
    located = dict(written.field_at or ())
    elements = {}
    if wanted or located:
        last = max([*wanted, *located])
        for position, element in enumerate(root.iter()):
            if position in wanted or position in located:
                elements[position] = element
            if position >= last:
                break
    dropped = [(elements.get(parent, parent), *rest) for parent, *rest in written.dropped]
    problems = []
    for parent, steps, path, rule, *rest in written.problems:
        if rule is None:
            position, selects = rest
            if selects(elements[position]):
                continue
            rule, *rest = _SELECTOR
        problems.append((elements.get(parent, parent), steps, path, rule, *rest))
    return dropped, problems, {elements[position]: path for position, path in located.items()}


__all__ = ["Writer", "Written", "resolve", "tree", "writer"]
