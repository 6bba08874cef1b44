"""Record building blocks shared by every document family (SPS certificates, CITES permits)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.records.values import Identifier, Text

#: Bounds on what a record may carry as extensions (they come from documents and from callers alike).
MAX_EXTENSION_XML = 1_000_000
MAX_PATH = 2_000


class RecordModel(BaseModel):
    """Base of every record model: unknown fields are errors, fields may be given by name or alias."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Location(RecordModel):
    """A place (``…Location``): an ID (UN/LOCODE for a port, or the counterpart's scheme) and a name; TRACES-NT names
    some places in several parts (country, establishment, town, postcode), the first being ``name``."""

    id: Identifier | None = None
    name: Text | None = None
    other_names: list[Text] = []


class Country(RecordModel):
    """A country (``…Country``) by its ISO 3166-1 alpha-2 code, with an optional name."""

    id: Identifier | None = None
    name: Text | None = None


class Person(RecordModel):
    """A named person (``SpecifiedSPSPerson``, ``SpecifiedRepresentativePerson``…)."""

    name: Text | None = None


class Extension(RecordModel):
    """Content of a document that the mapping does not model (yet), kept so that nothing a document holds is lost,
    and written back in place: an element (``xml``, the element as XML), an attribute (``attribute`` as
    ``{namespace}name`` and its ``value``) or a text (``text``) below ``parent``.

    ``parent`` is an XPath from the document element (``/rsm:SPSCertificate/rsm:SPSConsignment/ram:…[2]``, a
    position where a tag repeats); ``after`` is the step of the element it followed (None: it came first).
    """

    parent: str = Field(max_length=MAX_PATH)
    after: str | None = Field(default=None, max_length=MAX_PATH)
    xml: str | None = Field(default=None, max_length=MAX_EXTENSION_XML)
    attribute: str | None = Field(default=None, max_length=MAX_PATH)
    value: str | None = Field(default=None, max_length=MAX_EXTENSION_XML)
    text: str | None = Field(default=None, max_length=MAX_EXTENSION_XML)

    @model_validator(mode="after")
    def _one_kind(self) -> "Extension":
        kinds = [self.xml is not None, self.attribute is not None, self.text is not None]
        if sum(kinds) != 1:
            raise ValueError("an extension is an element (xml), an attribute (attribute and value) or a text (text)")
        if self.attribute is not None and self.value is None:
            raise ValueError("an attribute extension needs its value")
        return self


class Extensible(RecordModel):
    """What lets a record keep a document whole: the container element it came in, and its extensions."""

    document_element: str | None = Field(
        default=None, max_length=MAX_PATH,
        description="the document element ({namespace}name) when a counterpart writes its own container (TRACES-NT's EU-Intra SPSCertificate); written back as read",
    )
    extensions: list[Extension] = Field(default_factory=list, description="what the mapping does not model yet, kept and written back in place")
