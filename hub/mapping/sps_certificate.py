"""SPS certificate records ⇄ UN/CEFACT SPSCertificate 17 XML, through the spec in ``mappings/SPSCertificate/17``."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree
from pydantic import ValidationError

from hub.errors import FieldProblem, RecordError
from hub.mapping.engine import FieldLocations, Parsed, Rendered, parse, render, to_xml
from hub.mapping.envelopes import unwrap
from hub.mapping.spec import MappingSpec, load_spec
from hub.records import field_path
from hub.records.sps import SPS_RECORD_ADAPTER, DocumentKind, SPSCertificateRecord
from hub.report import Finding
from hub.xmlsafe import parse_xml

__all__ = ["PROFILES", "ParsedCertificate", "parse_certificate", "record_from_data", "render_certificate", "sps_spec", "to_xml"]

PROFILES = ("full", "ephyto")
_KINDS = frozenset(kind.value for kind in DocumentKind)


def sps_spec() -> MappingSpec:
    """The SPSCertificate 17 mapping spec (loaded once)."""
    return load_spec("SPSCertificate", "17")


def record_from_data(data: dict) -> SPSCertificateRecord:
    """Validate record data (JSON-ready dict) into a record; :class:`RecordError` names each bad field's path."""
    try:
        return SPS_RECORD_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise RecordError(
            [FieldProblem(path=field_path(_without_union_tag(tuple(e["loc"]))), message=e["msg"]) for e in exc.errors()]
        ) from None


def _without_union_tag(loc: tuple) -> tuple:
    # A discriminated union puts the tag ("phytosanitary" …) first in every error location.
    return loc[1:] if loc and loc[0] in _KINDS else loc


def render_certificate(record: SPSCertificateRecord, profile: str = "full") -> Rendered:
    """Render a record as an ``rsm:SPSCertificate`` tree; findings list what the profile could not carry."""
    # The record itself, not its dump: the compiled writer reads the models (dumping cost as much as writing).
    return render(sps_spec(), record, profile, ignore=("ched_type", "kind", "status"))


@dataclass
class ParsedCertificate:
    """A certificate read from XML: the record, what the record could not represent, and the source element."""

    record: SPSCertificateRecord
    findings: list[Finding]
    element: etree._Element
    wrappers: tuple[str, ...]
    xpath_of: FieldLocations


def parse_certificate(document: bytes | etree._Element, *, source: str = "document") -> ParsedCertificate:
    """Parse a bare, SOAP-wrapped or envelope-wrapped SPSCertificate into a record.

    Record problems (a code the hub does not handle, a malformed date…) raise :class:`RecordError` whose paths are
    the XPaths of the offending elements.
    """
    root = document if isinstance(document, etree._Element) else parse_xml(document, source=source)
    spec = sps_spec()
    found = unwrap(root, spec.root.clark, source=source, content=spec.content_tags)
    parsed: Parsed = parse(spec, found.document)
    type_code = parsed.data.get("type_code")
    code = type_code.get("value", "") if isinstance(type_code, dict) else ""
    parsed.data["kind"] = DocumentKind.for_code(code).value
    try:
        record = SPS_RECORD_ADAPTER.validate_python(parsed.data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = field_path(_without_union_tag(tuple(error["loc"])))
            problems.append(FieldProblem(path=parsed.xpath_of.nearest(path), message=f"{error['msg']} (record field {path})"))
        raise RecordError(problems) from None
    return ParsedCertificate(
        record=record, findings=parsed.findings, element=found.document, wrappers=found.wrappers, xpath_of=parsed.xpath_of
    )
