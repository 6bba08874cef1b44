"""CITES permit records ⇄ CITESEPermit 2 XML (ePermit toolkit v2, ``mappings/CITESEPermit/2``) and CBFShip 1 XML
(toolkit v1, ``mappings/CBFShip/1``).

A permit arrives bare (root ``rsm:CITESEPermit`` or ``CBFShip``) or as the EPIX hub hands it: inside a SOAP
``GetNonFinalCitesCertificateResponse`` / ``GetFinalCitesCertificateResponse`` (``urn:CitesDataExchange/v2/`` or
``/v1/``), its root element unqualified. Parsing remembers which form it read (the profile: ``standard``, ``epix``,
``v1``, ``v1-epix``), so the permit renders back the same; either version renders from the same record.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree
from pydantic import ValidationError

from hub.errors import FieldProblem, RecordError
from hub.mapping.engine import FieldLocations, Rendered, parse, render, to_xml
from hub.mapping.envelopes import unwrap
from hub.mapping.spec import MappingSpec, load_spec
from hub.namespaces import CITES_DATA_EXCHANGE_V1, CITES_DATA_EXCHANGE_V2
from hub.records import field_path
from hub.records.cites import CITESPermit
from hub.report import Finding
from hub.xmlsafe import parse_xml

__all__ = [
    "NATIONAL_FIELDS", "NATIONAL_ITEM_FIELDS", "PROFILES", "ParsedPermit", "cites_spec", "is_permit", "parse_permit", "permit_from_data",
    "permit_root_tags", "render_permit", "to_xml", "with_national_data",
]

PROFILES = ("standard", "epix", "v1", "v1-epix")

#: The EPIX v2 responses that carry a permit.
EPIX_RESPONSES = frozenset(
    f"{{{exchange}}}{name}" for exchange in (CITES_DATA_EXCHANGE_V1, CITES_DATA_EXCHANGE_V2)
    for name in ("GetNonFinalCitesCertificateResponse", "GetFinalCitesCertificateResponse")
)


def cites_spec() -> MappingSpec:
    """The CITESEPermit 2 mapping spec (loaded once)."""
    return load_spec("CITESEPermit", "2")


def cbfship_spec() -> MappingSpec:
    """The CBFShip 1 mapping spec, ePermit toolkit v1 (loaded once)."""
    return load_spec("CBFShip", "1")


def spec_for_profile(profile: str) -> MappingSpec:
    """The spec that writes ``profile``."""
    return cbfship_spec() if profile in cbfship_spec().profiles else cites_spec()


def content_tags() -> frozenset[str]:
    """The children of a permit's document element, in either version."""
    return cites_spec().content_tags | cbfship_spec().content_tags


def permit_from_data(data: dict) -> CITESPermit:
    """Validate record data (JSON-ready dict) into a permit; :class:`RecordError` names each bad field's path."""
    try:
        return CITESPermit.model_validate(data)
    except ValidationError as exc:
        raise RecordError([FieldProblem(path=field_path(tuple(e["loc"])), message=e["msg"]) for e in exc.errors()]) from None


#: National data the certificate abroad does not carry (the simplified re-export procedure): kept in the stored record,
#: never written to the XML, so never read back from it.
NATIONAL_FIELDS = ("simplified_procedure",)
NATIONAL_ITEM_FIELDS = ("eu_annex", "specimen_code")


def render_permit(record: CITESPermit, profile: str = "standard") -> Rendered:
    """Render a permit: ``standard`` (a ``rsm:CITESEPermit``, toolkit v2), ``epix`` (its root unqualified), ``v1``
    (a toolkit v1 ``CBFShip``) or ``v1-epix`` (its root unqualified). The national data (:data:`NATIONAL_FIELDS`,
    and each line's :data:`NATIONAL_ITEM_FIELDS`) is left out."""
    # Not compacted: the compiled writer takes empty lists as absent (compacting cost as much as dumping).
    data = record.model_dump(mode="json", exclude_none=True)
    for item in (data.get("consignment") or {}).get("items", []):
        for key in NATIONAL_ITEM_FIELDS:
            item.pop(key, None)
    return render(spec_for_profile(profile), data, profile, ignore=("kind", *NATIONAL_FIELDS))


def with_national_data(permit: CITESPermit, source: CITESPermit | None) -> CITESPermit:
    """``permit`` (as read back from its XML) with the national data of ``source`` (the record it was rendered from),
    line by line; ``permit`` itself when ``source`` is None or carries none."""
    if source is None:
        return permit
    items = permit.consignment.items
    national = [
        {key: getattr(line, key) for key in NATIONAL_ITEM_FIELDS if getattr(line, key) is not None}
        for line in source.consignment.items
    ]
    if source.simplified_procedure is None and not any(national):
        return permit
    lines = [item.model_copy(update=extra) if index < len(national) and (extra := national[index]) else item for index, item in enumerate(items)]
    consignment = permit.consignment.model_copy(update={"items": lines})
    return permit.model_copy(update={"simplified_procedure": source.simplified_procedure, "consignment": consignment})


@dataclass
class ParsedPermit:
    """A permit read from XML: the record, what it could not represent, and where and how it was found.

    ``profile`` is the profile that writes the root element as it came; ``response`` the EPIX response that carried
    it (``GetFinalCitesCertificateResponse`` …), if any.
    """

    record: CITESPermit
    findings: list[Finding]
    element: etree._Element
    wrappers: tuple[str, ...]
    xpath_of: FieldLocations
    profile: str
    response: str | None


def permit_root_tags() -> tuple[str, ...]:
    """The root elements a permit may have: the hub's namespaced one first, then EPIX's unqualified one."""
    spec = cites_spec()
    v1 = cbfship_spec()
    return (spec.root.clark, *sorted(spec.root_tags - {spec.root.clark}), *sorted(v1.root_tags))


def spec_of(element: etree._Element) -> MappingSpec:
    """The spec of a permit's document element: toolkit v1 when it or its content is in the CBFShip namespace."""
    v1 = cbfship_spec()
    if element.tag in v1.root_tags or any(child.tag in v1.content_tags for child in element):
        return v1
    return cites_spec()


def is_permit(root: etree._Element) -> bool:
    """Whether ``root`` is a CITESEPermit, bare or inside a SOAP envelope (either root form)."""
    return any(root.tag == tag or next(root.iter(tag), None) is not None for tag in permit_root_tags())


def parse_permit(document: bytes | etree._Element, *, source: str = "document") -> ParsedPermit:
    """Parse a bare or SOAP-wrapped CITESEPermit into a permit record.

    Bytes go through the hub's safe parser (DTDs and entities refused). Record problems (a permit type code that is
    not E, I, R or O, a malformed date …) raise :class:`RecordError` whose paths are the offending elements' XPaths.
    """
    root = document if isinstance(document, etree._Element) else parse_xml(document, source=source)
    found = unwrap(root, permit_root_tags(), source=source, content=content_tags())
    spec = spec_of(found.document)
    parsed = parse(spec, found.document)
    try:
        record = CITESPermit.model_validate(parsed.data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = field_path(tuple(error["loc"]))
            problems.append(FieldProblem(path=parsed.xpath_of.nearest(path), message=f"{error['msg']} (record field {path})"))
        raise RecordError(problems) from None
    carrier = found.document.getparent()
    return ParsedPermit(
        record=record,
        findings=parsed.findings,
        element=found.document,
        wrappers=found.wrappers,
        xpath_of=parsed.xpath_of,
        profile=spec.profile_for_root(found.document.tag) or PROFILES[0],
        response=etree.QName(carrier).localname if carrier is not None and carrier.tag in EPIX_RESPONSES else None,
    )
