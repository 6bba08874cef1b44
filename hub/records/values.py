"""Value types of the records: a text, code, identifier, measure, date or binary object with its attributes.

Each is pleasant to write by hand (a plain string or number is enough) and keeps every attribute a real document
carries (``languageID``, ``listName``, ``schemeID``, ``unitCode`` …) so that parsing and rendering lose nothing.
A value whose attributes are all absent is written back as the plain string.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_serializer, model_validator
from pydantic.json_schema import JsonSchemaValue


class _Attributed(BaseModel):
    """A value with optional attributes; accepts a bare scalar and serialises back to one when it has no attributes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str
    _scalar_ok: ClassVar[tuple[type, ...]] = (str,)

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, data: Any) -> Any:
        if isinstance(data, bool):
            raise ValueError("expected a string or an object, not a boolean")
        if isinstance(data, cls._scalar_ok):
            return {"value": str(data)}
        if isinstance(data, dict) and isinstance(data.get("value"), (int, float)) and not isinstance(data["value"], bool):
            return {**data, "value": str(data["value"])}
        return data

    @model_serializer(mode="wrap")
    def _compact(self, handler: Any) -> Any:
        dumped = handler(self)
        if isinstance(dumped, dict) and all(v is None for k, v in dumped.items() if k != "value"):
            return dumped["value"]
        return {k: v for k, v in dumped.items() if v is not None} if isinstance(dumped, dict) else dumped

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> JsonSchemaValue:
        object_schema = handler(core_schema)
        scalar = {"type": "string"} if cls._scalar_ok == (str,) else {"type": ["string", "number"]}
        return {"anyOf": [scalar, object_schema], "description": (cls.__doc__ or "").strip().splitlines()[0]}


class Text(_Attributed):
    """A text in a language: ``"Planting"`` or ``{"value": "Planting", "language": "en"}`` (ISO 639-1)."""

    language: str | None = None


class Code(_Attributed):
    """A code from a code list: ``"BG"`` or ``{"value": "3", "name": "Road transport", "list_id": "..."}``."""

    _scalar_ok: ClassVar[tuple[type, ...]] = (str, int)
    name: str | None = None
    list_id: str | None = None
    list_agency_id: str | None = None
    list_name: str | None = None
    list_version_id: str | None = None


class Identifier(_Attributed):
    """An identifier: ``"G2382564"`` or ``{"value": "RS000111", "scheme_id": "national_registry_number"}``."""

    _scalar_ok: ClassVar[tuple[type, ...]] = (str, int)
    scheme_id: str | None = None
    scheme_agency_id: str | None = None
    scheme_name: str | None = None
    scheme_version_id: str | None = None


_DECIMAL = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$")


class Measure(_Attributed):
    """A decimal quantity with its UN/ECE Rec 20 unit: ``{"value": "10.5", "unit": "KGM"}``; the lexical form is kept."""

    _scalar_ok: ClassVar[tuple[type, ...]] = (str, int, float)
    unit: str | None = None

    @field_validator("value")
    @classmethod
    def _decimal(cls, value: str) -> str:
        if not _DECIMAL.match(value):
            raise ValueError(f"{value!r} is not a decimal number")
        return value


class Quantity(Measure):
    """A quantity with its unit, as a CITES permit box holds it: ``{"value": "12", "unit": "PCS"}``.

    Like :class:`Measure`, except that an empty value is kept: EPIX documents carry empty quantity elements (an
    export endorsement not yet made, a quota that does not apply). Validation reports them; the record keeps them.
    """

    @field_validator("value")
    @classmethod
    def _decimal(cls, value: str) -> str:
        if value.strip() and not _DECIMAL.match(value):
            raise ValueError(f"{value!r} is not a decimal number")
        return value


class BinaryObject(_Attributed):
    """A base64-encoded attachment (e.g. the PDF of the paper certificate), with its file name and MIME type."""

    filename: str | None = None
    mime_code: str | None = None


DateFormat = Literal["DateTimeString", "DateTime", "text"]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class DateTime(_Attributed):
    """An ISO 8601 date or date-time, e.g. ``"2026-11-22"`` or ``"2026-11-22T09:30:00+01:00"``.

    ``format`` records how a parsed document wrote it (``udt:DateTimeString``, ``udt:DateTime`` or bare text) so the
    full profile writes it back the same way; when absent, the rendering profile decides. An empty value is kept
    (real documents carry empty date elements) and reported by validation, not refused here.
    """

    format: DateFormat | None = None
    format_code: str | None = None

    @field_validator("value")
    @classmethod
    def _iso8601(cls, value: str) -> str:
        stripped = value.strip()
        if stripped == "":
            return value
        try:
            if _ISO_DATE.match(stripped):
                date.fromisoformat(stripped)
            else:
                datetime.fromisoformat(stripped.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date or date-time") from None
        return value

    def as_datetime(self) -> datetime | None:
        """The value as a datetime (a date alone counts as midnight), or None when empty."""
        stripped = self.value.strip()
        if not stripped:
            return None
        if _ISO_DATE.match(stripped):
            return datetime.fromisoformat(stripped + "T00:00:00")
        return datetime.fromisoformat(stripped.replace("Z", "+00:00"))
