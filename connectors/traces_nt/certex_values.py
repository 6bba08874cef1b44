"""Reading and writing the values of CSW-CERTEX messages: instants, quantities, codes, required and optional
children, each refusal naming where in the message it is (pure, no I/O)."""

from __future__ import annotations

import copy
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import TypeVar

from lxml import etree

from hub.errors import InputError
from hub.namespaces import SOAP11_ENV
from hub.xmlpath import element_xpath

CHED_V06 = "http://ec.europa.eu/sanco/tracesnt/customs_certex/ched/v06"
BASE_V03 = "http://ec.europa.eu/sanco/tracesnt/customs_certex/base/v03"
BODY_V1 = "http://ec.europa.eu/tracesnt/body/v1"
PREFIXES = {CHED_V06: "v06", BASE_V03: "v03", BODY_V1: "v1", SOAP11_ENV: "soap"}
_E = TypeVar("_E", bound=Enum)


# --- formats ----------------------------------------------------------------------------------------------------------


def format_instant(instant: datetime) -> str:
    """ISO 8601, ``Z`` for UTC, a naive value taken as UTC; milliseconds when the value has no finer digits (as
    TRACES writes them), else microseconds (as the captured client wrote them): nothing is lost either way."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    precise = instant.microsecond % 1000 == 0 and instant.microsecond
    return instant.isoformat(timespec="milliseconds" if precise else "auto").replace("+00:00", "Z")


# --- reading helpers --------------------------------------------------------------------------------------------------


def where_of(parent: etree._Element, namespace: str | None = None, name: str | None = None) -> str:
    path = element_xpath(parent, PREFIXES)
    return f"{path}/{PREFIXES.get(namespace, '')}:{name}" if name else path


def expect_tag(element: etree._Element, tag: str) -> None:
    if element.tag != tag:
        raise InputError(f"expected {etree.QName(tag).localname}, found {element.tag}", where=where_of(element))


def required_child(parent: etree._Element, namespace: str, name: str) -> etree._Element:
    found = parent.find(f"{{{namespace}}}{name}")
    if found is None:
        raise InputError(f"{name} is missing", where=where_of(parent, namespace, name))
    return found


def child_text(parent: etree._Element, namespace: str, name: str, *, required: bool = True) -> str | None:
    text = (parent.findtext(f"{{{namespace}}}{name}") or "").strip()
    if not text and required:
        raise InputError(f"{name} is missing or empty", where=where_of(parent, namespace, name))
    return text or None


def converted(parent: etree._Element, namespace: str, name: str, required: bool, convert, what: str):
    text = child_text(parent, namespace, name, required=required)
    if text is None:
        return None
    try:
        return convert(text)
    except (ValueError, ArithmeticError):
        child = parent.find(f"{{{namespace}}}{name}")
        raise InputError(f"{text!r} is not {what}", where=where_of(child)) from None


def integer_of(parent: etree._Element, namespace: str, name: str, *, required: bool = True) -> int | None:
    return converted(parent, namespace, name, required, parse_integer, "a whole number")


def quantity_of(parent: etree._Element, namespace: str, name: str) -> Decimal:
    return converted(parent, namespace, name, True, parse_decimal, "a decimal quantity")


def instant_of(parent: etree._Element, namespace: str, name: str) -> datetime:
    return converted(parent, namespace, name, True, parse_instant, "an ISO 8601 date-time")


def boolean_of(parent: etree._Element, namespace: str, name: str, *, required: bool = True) -> bool | None:
    return converted(parent, namespace, name, required, parse_boolean, "a boolean (0, 1, true or false)")


def code_of(parent: etree._Element, namespace: str, name: str, enum: type[_E], *, required: bool = True) -> _E | None:
    known = ", ".join(member.value for member in enum)
    return converted(parent, namespace, name, required, enum, f"a known code ({known})")


def parse_integer(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError(text)
    return int(text)


def parse_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite() or "e" in text.lower():
        raise ValueError(text)
    return value


def parse_instant(text: str) -> datetime:
    instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=timezone.utc)


def parse_boolean(text: str) -> bool:
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise ValueError(text)


# --- building helpers -------------------------------------------------------------------------------------------------


def add_child(parent: etree._Element, namespace: str, name: str, text: str | None = "") -> etree._Element | None:
    """A child element; None (and no element) when ``text`` is None, an empty element for the default."""
    if text is None:
        return None
    child = etree.SubElement(parent, f"{{{namespace}}}{name}")
    if text:
        child.text = text
    return child


def add_office(parent: etree._Element, office: str) -> None:
    add_child(add_child(parent, CHED_V06, "CompetentCustomsOffice"), BASE_V03, "ReferenceNumber", office)


def optional_str(value: int | None) -> str | None:
    return None if value is None else str(value)


def deep_copy(element: etree._Element) -> etree._Element:
    # The certificate stays in the caller's tree; the answer gets its own copy.
    return copy.deepcopy(element)
