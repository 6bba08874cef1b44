"""Value types of the records: a text, code, identifier, measure, date or binary object with its attributes.

Each is pleasant to write by hand (a plain string or number is enough) and keeps every attribute a real document
carries (``languageID``, ``listName``, ``schemeID``, ``unitCode`` …) so that parsing and rendering lose nothing.
A value whose attributes are all absent is written back as the plain string.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_serializer, model_validator
from pydantic.json_schema import JsonSchemaValue


class _Attributed(BaseModel):
    """A value with optional attributes; accepts a bare scalar and serialises back to one when it has no attributes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str
    _scalar_ok: ClassVar[tuple[type, ...]] = (str,)
    #: The CCTS supplementary components of the data type: XML attribute → record key. Declared once per type;
    #: the mapping engine reads and writes exactly these.
    SUPPLEMENTARY: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, data: Any) -> Any:
        if type(data) is dict and type(data.get("value")) is str:  # as parsed and as dumped: nothing to do
            return data
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

    SUPPLEMENTARY: ClassVar[dict[str, str]] = {"languageID": "language", "languageLocaleID": "language_locale"}
    language: str | None = None
    language_locale: str | None = None


class Code(_Attributed):
    """A code from a code list: ``"BG"`` or ``{"value": "3", "name": "Road transport", "list_id": "..."}``."""

    _scalar_ok: ClassVar[tuple[type, ...]] = (str, int)
    SUPPLEMENTARY: ClassVar[dict[str, str]] = {
        "listID": "list_id", "listAgencyID": "list_agency_id", "listAgencyName": "list_agency_name", "listName": "list_name",
        "listVersionID": "list_version_id", "name": "name", "languageID": "language", "listURI": "list_uri",
        "listSchemeURI": "list_scheme_uri",
    }
    name: str | None = None
    list_id: str | None = None
    list_agency_id: str | None = None
    list_agency_name: str | None = None
    list_name: str | None = None
    list_version_id: str | None = None
    language: str | None = None
    list_uri: str | None = None
    list_scheme_uri: str | None = None


class Identifier(_Attributed):
    """An identifier: ``"G2382564"`` or ``{"value": "RS000111", "scheme_id": "national_registry_number"}``."""

    _scalar_ok: ClassVar[tuple[type, ...]] = (str, int)
    SUPPLEMENTARY: ClassVar[dict[str, str]] = {
        "schemeID": "scheme_id", "schemeName": "scheme_name", "schemeAgencyID": "scheme_agency_id",
        "schemeAgencyName": "scheme_agency_name", "schemeVersionID": "scheme_version_id", "schemeDataURI": "scheme_data_uri",
        "schemeURI": "scheme_uri",
    }
    scheme_id: str | None = None
    scheme_agency_id: str | None = None
    scheme_agency_name: str | None = None
    scheme_name: str | None = None
    scheme_version_id: str | None = None
    scheme_data_uri: str | None = None
    scheme_uri: str | None = None


_DECIMAL = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$")


class Measure(_Attributed):
    """A decimal quantity with its UN/ECE Rec 20 unit: ``{"value": "10.5", "unit": "KGM"}``; the lexical form is kept."""

    _scalar_ok: ClassVar[tuple[type, ...]] = (str, int, float)
    SUPPLEMENTARY: ClassVar[dict[str, str]] = {
        "unitCode": "unit", "unitCodeListVersionID": "unit_list_version_id", "unitCodeListID": "unit_list_id",
        "unitCodeListAgencyID": "unit_list_agency_id", "unitCodeListAgencyName": "unit_list_agency_name",
    }
    unit: str | None = None
    unit_list_version_id: str | None = None
    unit_list_id: str | None = None
    unit_list_agency_id: str | None = None
    unit_list_agency_name: str | None = None

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

    SUPPLEMENTARY: ClassVar[dict[str, str]] = {
        "format": "format", "mimeCode": "mime_code", "encodingCode": "encoding_code", "characterSetCode": "character_set_code",
        "uri": "uri", "filename": "filename",
    }
    format: str | None = None
    filename: str | None = None
    mime_code: str | None = None
    encoding_code: str | None = None
    character_set_code: str | None = None
    uri: str | None = None


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
    def _date_like(cls, value: str) -> str:
        stripped = value.strip()
        if stripped and not _COMPACT.match(stripped) and _parse_instant(stripped, None) is None:
            raise ValueError(f"{value!r} is not an ISO 8601 date or date-time")
        return value

    @model_validator(mode="after")
    def _lexical(self) -> "DateTime":
        stripped = self.value.strip()
        if stripped and _parse_instant(stripped, self.format_code) is None:
            expected = f"the UNCL 2379 format {self.format_code}" if self.format_code in UNCL_2379 else "ISO 8601"
            raise ValueError(f"{self.value!r} is not a date or date-time in {expected}")
        return self

    def as_datetime(self) -> datetime | None:
        """The value as a datetime (a date alone counts as midnight), or None when empty."""
        stripped = self.value.strip()
        return _parse_instant(stripped, self.format_code) if stripped else None


_COMPACT = re.compile(r"^\d{8}(\d{4}(\d{2})?)?([+-]\d{4}|Z)?$")
#: UNCL 2379 date/time formats real documents give in ``udt:DateTimeString/@format`` (strptime patterns).
UNCL_2379 = {"102": "%Y%m%d", "203": "%Y%m%d%H%M", "204": "%Y%m%d%H%M%S", "205": "%Y%m%d%H%M%z", "304": "%Y%m%d%H%M%S%z"}


def _parse_instant(text: str, format_code: str | None) -> datetime | None:
    """``text`` read in its UNCL 2379 format when one is named and known, else as ISO 8601; None when it is not."""
    pattern = UNCL_2379.get(format_code or "")
    try:
        if pattern and not text[:10].count("-"):
            return datetime.strptime(text.replace("Z", "+0000"), pattern)
        if _ISO_DATE.match(text):
            return datetime.fromisoformat(text + "T00:00:00")
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
