"""Leaf value types of the mapping engine: how one element's text and attributes become a record value, and back.

Every attribute a type knows is carried in the value (``languageID`` → ``language`` …); any other attribute is left
unconsumed, so the engine reports it instead of dropping it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from lxml import etree

from hub.errors import InputError, MappingError
from hub.namespaces import UDT
from hub.records.values import BinaryObject, Code, Identifier, Measure, Text

#: XML attribute → record key, per leaf type: the supplementary components each record value type declares.
ATTRIBUTES: dict[str, dict[str, str]] = {
    "string": {},
    "integer": {},
    "enum": {},
    "indicator": {},
    "datetime": {},
    "text": Text.SUPPLEMENTARY,
    "code": Code.SUPPLEMENTARY,
    "identifier": Identifier.SUPPLEMENTARY,
    "measure": Measure.SUPPLEMENTARY,
    "binary": BinaryObject.SUPPLEMENTARY,
}

#: xs:boolean lexical forms of an indicator (``CopyIndicator``); rendering writes ``true`` / ``false``.
INDICATOR_VALUES = {"true": True, "1": True, "false": False, "0": False}

DATE_ELEMENTS = {"DateTimeString": f"{{{UDT}}}DateTimeString", "DateTime": f"{{{UDT}}}DateTime"}
_DATE_TAGS = {tag: name for name, tag in DATE_ELEMENTS.items()}


def read_leaf(element: etree._Element, leaf_type: str, enum: Mapping[str, str] | None, xpath_of: Callable[[etree._Element], str], consumed: set) -> Any:
    """The record value of ``element`` (its text and known attributes); marks what it used in ``consumed``.

    ``xpath_of`` names the element in errors (called only when there is one).
    """
    consumed.add(element)
    text = whole_text(element)
    if leaf_type == "datetime":
        return _read_datetime(element, consumed)
    if leaf_type == "string":
        return text
    if leaf_type == "integer":
        try:
            return int(text.strip())
        except ValueError:
            raise InputError(f"{text!r} is not an integer", where=xpath_of(element)) from None
    if leaf_type == "indicator":
        try:
            return INDICATOR_VALUES[text.strip()]
        except KeyError:
            raise InputError(f"{text!r} is not an indicator (true or false)", where=xpath_of(element)) from None
    if leaf_type == "enum":
        assert enum is not None
        for value, code in enum.items():
            if code == text.strip():
                return value
        raise InputError(f"code {text.strip()!r} is not one the hub handles here (known: {', '.join(enum.values())})", where=xpath_of(element))
    value: dict[str, Any] = {"value": text}
    if element.attrib:  # most leaves carry none: look at what is there, not at every component the type allows
        known = ATTRIBUTES[leaf_type]
        for attribute, written in element.attrib.items():
            key = known.get(attribute)
            if key is not None:
                value[key] = written
                consumed.add((element, attribute))
    return value


def whole_text(element: etree._Element) -> str:
    """The value of a leaf, whole: a comment or processing instruction inside it (``FR-2026-R3P<!--x-->02``) does
    not cut it short, as it does not in the signed canonical form."""
    if len(element) == 0:
        return element.text or ""
    if any(isinstance(child.tag, str) for child in element):
        return element.text or ""  # an element inside: not a leaf's text (the element is reported on its own)
    return (element.text or "") + "".join(child.tail or "" for child in element)


def _read_datetime(element: etree._Element, consumed: set) -> dict[str, Any]:
    for child in element:
        name = _DATE_TAGS.get(child.tag) if isinstance(child.tag, str) else None
        if name:
            consumed.add(child)
            value: dict[str, Any] = {"value": child.text or "", "format": name}
            if "format" in child.attrib:
                value["format_code"] = child.attrib["format"]
                consumed.add((child, "format"))
            return value
    return {"value": element.text or "", "format": "text"}


def leaf_content(leaf_type: str, value: Any, enum: Mapping[str, str] | None, *, date_element: str, force_date_element: bool) -> tuple[str, list[tuple[str, str]], tuple[str, str, list[tuple[str, str]]] | None]:
    """What a leaf element holds for ``value`` (a scalar or the dict form of a record value): its text, its
    attributes (name, value) in the order the type declares them, and for a date written in an element of its
    own, that element's name (``DateTimeString`` or ``DateTime``), text and attributes."""
    if leaf_type == "enum":
        assert enum is not None
        return enum[getattr(value, "value", value)], [], None
    if leaf_type in ("string", "integer"):
        return str(value["value"] if isinstance(value, dict) else value), [], None
    if leaf_type == "indicator":
        flag = value if isinstance(value, bool) else INDICATOR_VALUES.get(str(value).strip())
        if flag is None:
            raise MappingError(f"{value!r} is not an indicator (true or false)")
        return ("true" if flag else "false"), [], None
    data = value if isinstance(value, dict) else {"value": value}
    if leaf_type == "datetime":
        written = data.get("format") or date_element
        if force_date_element or written not in ("DateTimeString", "DateTime", "text"):
            written = date_element
        if written == "DateTime" and not data.get("format") and "T" not in data["value"]:
            written = "DateTimeString"  # udt:DateTime is an xs:dateTime: a date alone goes in the string form
        if written == "text":
            return data["value"], [], None
        return "", [], (written, data["value"], [("format", data["format_code"])] if data.get("format_code") is not None else [])
    return str(data["value"]), [(attribute, str(data[key])) for attribute, key in ATTRIBUTES[leaf_type].items() if data.get(key) is not None], None


def write_leaf(element: etree._Element, leaf_type: str, value: Any, enum: Mapping[str, str] | None, *, date_element: str, force_date_element: bool) -> None:
    """Fill ``element`` with ``value`` (a scalar or the dict form of a record value), as :func:`leaf_content` says."""
    text, attributes, date = leaf_content(leaf_type, value, enum, date_element=date_element, force_date_element=force_date_element)
    if date is None:
        element.text = text
    else:
        name, text, attributes = date
        element = etree.SubElement(element, DATE_ELEMENTS[name])
        element.text = text
    for attribute, written in attributes:
        element.set(attribute, written)


def carried_keys(leaf_type: str) -> set[str]:
    """The keys of a record value of this type that rendering writes somewhere."""
    if leaf_type == "datetime":
        return {"value", "format", "format_code"}
    if leaf_type == "enum":
        return set()
    return {"value", *ATTRIBUTES[leaf_type].values()}
