"""What every document family offers the hub, and what the hub reads of any document.

A :class:`DocumentFamily` is one registration (see :mod:`hub.families`): how to read a record of the family from
JSON, how to render and validate it, how to validate a document of the family as XML, what the broker and routing
read of it. The layers above ask the registry for a family and never tell families apart themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

from lxml import etree
from pydantic import BaseModel

from hub.report import ValidationReport

COUNTRY_FIELDS = ("issuing_country", "exporting_country", "importing_country")


@dataclass(frozen=True)
class RoutingFacts:
    """What routing looks at in a document: its kind and status, its countries and its HS codes."""

    kind: str
    status: str
    issuing_country: str | None = None
    exporting_country: str | None = None
    importing_country: str | None = None
    hs_codes: tuple[str, ...] = ()
    direction: str = "outbound"

    def describe(self) -> str:
        """The facts in one line, as error messages and explanations print them."""
        countries = ", ".join(f"{name} {getattr(self, name) or 'absent'}" for name in COUNTRY_FIELDS)
        hs = f"HS codes {', '.join(self.hs_codes)}" if self.hs_codes else "no HS codes"
        return f"kind {self.kind}, status {self.status}, {countries}, {hs}, {self.direction}"


@dataclass(frozen=True)
class ProductLine:
    """One line of goods or specimens, as the store indexes it (crisis search, statistics, customs quantities)."""

    line: int
    hs_code: str | None = None
    scientific_name: str | None = None
    common_name: str | None = None
    quantity: Decimal | None = None
    unit: str | None = None


@dataclass(frozen=True)
class Described:
    """What the broker needs of any document: number (None when absent), the number it replaces, whether it is a
    withdrawal, when it was issued, and its product lines."""

    number: str | None
    refers_to: str | None
    withdrawn: bool
    issued_at: datetime | None
    products: tuple[ProductLine, ...]

    @property
    def product_codes(self) -> list[str]:
        return list(dict.fromkeys(p.hs_code for p in self.products if p.hs_code))


@dataclass
class Checked:
    """A document validated as XML: the report, the record read from it (None when it could not be read), the
    document element (unwrapped from any envelope) and where each record field stands in it."""

    report: ValidationReport
    record: Any | None
    element: etree._Element
    xpath_of: dict[str, str]

    @classmethod
    def of(cls, report: ValidationReport, parsed: Any | None, element: etree._Element) -> "Checked":
        """From a validator's report, what it parsed (with ``record`` and ``xpath_of``; None) and the element."""
        return cls(report, parsed.record if parsed else None, element, parsed.xpath_of if parsed else {})


@dataclass(frozen=True)
class DocumentFamily:
    """One family of documents the hub carries (SPS certificates, CITES permits…), registered once.

    ``kinds`` are the record kinds of the family (``kind`` in a record's JSON); ``root_tags`` the Clark names of the
    document elements (bare or inside a wrapper), ``content_tags`` those of their own children. ``parse`` reads a document into an object with ``record`` and
    ``findings`` (what the record cannot hold); ``render`` writes a record in one of ``profiles`` and validates it;
    ``check_document`` validates a document. ``profiled``: the family renders one variant per counterpart profile
    (the ePhyto subset), else one document for every destination.
    """

    name: str
    title: str
    record_model: type[BaseModel] | tuple[type[BaseModel], ...]
    number_field: str
    kinds: tuple[str, ...]
    root_tags: tuple[str, ...]
    content_tags: frozenset[str]
    from_data: Callable[[dict], Any]
    parse: Callable[..., Any]
    render: Callable[..., tuple[etree._Element, ValidationReport]]
    check_document: Callable[..., Checked]
    record_schema: Callable[[str], dict]
    describe: Callable[[Any], Described]
    routing_facts: Callable[..., RoutingFacts]
    default_profile: str
    profiles: tuple[str, ...]
    profiled: bool = False
    awaiting_sale: Callable[[Any], bool] = lambda record: False
    valid_until: Callable[[dict], datetime | None] | None = None  # from stored record data; None: no validity

    @property
    def expires(self) -> bool:
        """Whether documents of this family have a validity that ends (the hub expires them)."""
        return self.valid_until is not None

    def owns(self, record: object) -> bool:
        """Whether ``record`` is a record of this family."""
        return isinstance(record, self.record_model)

    def holds(self, root: etree._Element) -> bool:
        """Whether ``root`` is a document of this family, bare, inside a wrapper, or in a counterpart's container
        (an element of another name holding the family's content)."""
        return root.tag in self.root_tags or next(root.iter(*self.root_tags, *self.content_tags), None) is not None


def text_of(value: object) -> str | None:
    """The stripped text of an identifier, a text value or a string; None when empty."""
    text = str(getattr(value, "value", value) or "").strip()
    return text or None
