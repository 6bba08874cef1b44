"""Record building blocks shared by every document family (SPS certificates, CITES permits)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from hub.records.values import Identifier, Text


class RecordModel(BaseModel):
    """Base of every record model: unknown fields are errors, fields may be given by name or alias."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Location(RecordModel):
    """A place (``…Location``): an ID (UN/LOCODE for a port, or the counterpart's scheme) and a name."""

    id: Identifier | None = None
    name: Text | None = None


class Country(RecordModel):
    """A country (``…Country``) by its ISO 3166-1 alpha-2 code, with an optional name."""

    id: Identifier | None = None
    name: Text | None = None


class Person(RecordModel):
    """A named person (``SpecifiedSPSPerson``, ``SpecifiedRepresentativePerson``…)."""

    name: Text | None = None
