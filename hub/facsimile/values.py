"""Record values as a facsimile prints them: texts with their whitespace tidied, parties as name and address lines,
countries as name and code, measures with their unit, dates as ISO dates (unambiguous in every language)."""

from __future__ import annotations

import re
from typing import Any, Iterable

_SPACE = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def text(value: Any) -> str:
    """The text of a value (Text, Code, Identifier, Measure, plain string), whitespace tidied; "" for None."""
    if value is None:
        return ""
    raw = str(getattr(value, "value", value))
    lines = [_SPACE.sub(" ", line).strip() for line in raw.splitlines()]
    return _BLANK_LINES.sub("\n", "\n".join(line for line in lines if line)).strip()


def texts(values: Iterable[Any], separator: str = " / ") -> str:
    """Several texts (the same thing in several languages, say) on one line, without empties or repeats."""
    found: list[str] = []
    for value in values:
        shown = text(value)
        if shown and shown not in found:
            found.append(shown)
    return separator.join(found)


def lines(*values: Any) -> str:
    """Non-empty values, one per line."""
    return "\n".join(shown for shown in (text(v) if not isinstance(v, str) else v.strip() for v in values) if shown)


def code(value: Any) -> str:
    """A code with its name when the document gives one: ``1 (Maritime transport)``."""
    if value is None:
        return ""
    shown, name = text(value), text(getattr(value, "name", None))
    return f"{shown} ({name})" if shown and name and name != shown else shown or name


def identifier(value: Any) -> str:
    """An identifier; its scheme in brackets when the document names one (``RS000111 [national_registry_number]``)."""
    shown = text(value)
    scheme = getattr(value, "scheme_id", None) if value is not None else None
    return f"{shown} [{scheme}]" if shown and scheme else shown


def measure(value: Any) -> str:
    """A quantity with its unit: ``18500 KGM``."""
    shown = text(value)
    unit = getattr(value, "unit", None) if value is not None else None
    return f"{shown} {unit}" if shown and unit else shown


def date(value: Any) -> str:
    """A date or date-time as an ISO date, with the time when the document gives one (``2026-11-20 10:15 +01:00``)."""
    shown = text(value)
    match = re.match(r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$", shown)
    if not match:
        return shown
    day, clock, zone = match.groups()
    if not clock or clock == "00:00":
        return day
    return f"{day} {clock}" + (f" {'UTC' if zone == 'Z' else zone}" if zone else "")


def country(value: Any) -> str:
    """A country as its name and ISO code: ``France (FR)``."""
    if value is None:
        return ""
    name, code_ = text(getattr(value, "name", None)), text(getattr(value, "id", None))
    return f"{name} ({code_})" if name and code_ else name or code_


def location(value: Any) -> str:
    """A place as its name and ID: ``Guayaquil (ECGYE)``."""
    if value is None:
        return ""
    names = texts([getattr(value, "name", None), *getattr(value, "other_names", [])], ", ")
    ident = text(getattr(value, "id", None))
    return f"{names} ({ident})" if names and ident and ident != names else names or ident


def joined(*parts: str, separator: str = ", ") -> str:
    return separator.join(part for part in parts if part)
