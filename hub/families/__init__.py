"""The document families the hub carries, registered once each; the only place that knows them apart.

::

    FAMILIES          the registrations, in the order they are tried (SPS, CITES)
    for_record(r)     the family of a record          for_document(root)   the family of an XML document
    for_data(d)       the family of record JSON       for_kind(kind)       the family of a record kind
    round_trip(root)  a document read and written back, with the share of its leaves kept

A new family (REX origin statements, say) is one :class:`DocumentFamily` added to :data:`FAMILIES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from hub.errors import InputError
from hub.families.base import Checked, Described, DocumentFamily, ProductLine, RoutingFacts
from hub.families.cites import CITES
from hub.families.sps import SPS
from hub.mapping.fidelity import Fidelity, compare

FAMILIES: tuple[DocumentFamily, ...] = (SPS, CITES)
#: Every record kind of every family.
KINDS: tuple[str, ...] = tuple(kind for family in FAMILIES for kind in family.kinds)


def for_record(record: object) -> DocumentFamily:
    """The family ``record`` belongs to."""
    for family in FAMILIES:
        if family.owns(record):
            return family
    raise TypeError(f"{type(record).__name__} is the record of no registered document family")


def for_kind(kind: str | None) -> DocumentFamily | None:
    """The family whose records have ``kind``; None for a kind no family knows."""
    return next((family for family in FAMILIES if kind in family.kinds), None)


def for_data(data: dict[str, Any]) -> DocumentFamily:
    """The family of record JSON, by its ``kind`` (the first family when the kind is missing or unknown, so that
    its record model names what is wrong)."""
    return for_kind(str(data.get("kind", ""))) or FAMILIES[0]


def for_document(root: etree._Element, *, where: str = "body") -> DocumentFamily:
    """The family of an XML document, bare or inside a wrapper; :class:`InputError` for an element no family reads."""
    for family in FAMILIES:
        if family.holds(root):
            return family
    expected = ", ".join(tag for family in FAMILIES for tag in family.root_tags)
    raise InputError(f"{etree.QName(root).localname} is no document the hub reads (expected one of: {expected})", where=where)


@dataclass(frozen=True)
class RoundTrip:
    """A document read into its record and written back: its family, record kind, the leaves kept, and how many
    parts of it the record holds as extensions."""

    family: str
    kind: str
    fidelity: Fidelity
    extensions: int


def round_trip(root: etree._Element, *, source: str = "document") -> RoundTrip:
    """Read the document in ``root`` (bare or wrapped) into a record and render it back in the profile it came in;
    :class:`InputError` when it is no document the hub reads."""
    family = for_document(root, where=source)
    parsed = family.parse(root, source=source)
    rendered, _report = family.render(parsed.record, profile=getattr(parsed, "profile", None) or family.default_profile)
    kind = getattr(parsed.record.kind, "value", parsed.record.kind)
    return RoundTrip(family.name, str(kind), compare(parsed.element, rendered), len(parsed.record.extensions))


def describe(record: object) -> Described:
    """The broker's view of ``record`` (its family's :meth:`DocumentFamily.describe`)."""
    return for_record(record).describe(record)


def routing_facts(record: object, *, direction: str = "outbound") -> RoutingFacts:
    """What routing reads of ``record``."""
    return for_record(record).routing_facts(record, direction=direction)


__all__ = [
    "CITES", "FAMILIES", "KINDS", "SPS", "Checked", "Described", "DocumentFamily", "ProductLine", "RoundTrip", "RoutingFacts",
    "describe", "for_data", "for_document", "for_kind", "for_record", "round_trip", "routing_facts",
]
