"""One validation report for an SPS certificate or a CITES permit: XSD, mapping, mandatory elements, business rules
and code lists.

Every check runs and every finding is kept (not only the first). Hostile or malformed XML is not a finding: it is
refused with :class:`~hub.errors.HostileXMLError` / :class:`~hub.errors.MalformedXMLError` before any check runs.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from hub.errors import FieldProblem, InputError, RecordError
from hub.mapping.cites_permit import ParsedPermit, cites_spec, parse_permit, permit_root_tags, render_permit, spec_of, with_national_data
from hub.mapping.cites_permit import content_tags as permit_content_tags
from hub.mapping.envelopes import unwrap
from hub.mapping.sps_certificate import ParsedCertificate, parse_certificate, render_certificate, sps_spec
from hub.records.cites import CITESPermit
from hub.records.sps import SPSCertificateRecord
from hub.validation.cites_rules import CITES_RULES
from hub.validation.pssm_rules import PSSM_RULES
from hub.report import Area, Finding, Severity, ValidationReport
from hub.validation.rules import run_rules
from hub.validation.schemas import cites_permit_findings, load_schema, schema_findings
from hub.xmlsafe import parse_xml


@dataclass
class Validated:
    """The report, and the certificate as parsed (None when it could not be read into a record)."""

    report: ValidationReport
    certificate: ParsedCertificate | None
    element: etree._Element


def validate_certificate(document: bytes | etree._Element, *, source: str = "document", now: datetime | None = None) -> Validated:
    """Validate a bare or wrapped SPSCertificate document and return every finding."""
    root = document if isinstance(document, etree._Element) else parse_xml(document, source=source)
    element = unwrap(root, sps_spec().root.clark, source=source, content=sps_spec().content_tags).document
    report = ValidationReport()
    schema = schema_findings(load_schema("SPSCertificate"), as_document_element(element, sps_spec().root.clark))
    if element.tag != sps_spec().root.clark:
        schema = [_as_container_finding(f, element.tag) for f in schema]
    try:
        parsed = parse_certificate(element, source=source)
    except RecordError as exc:
        report.extend(schema)
        report.extend(_severe("RECORD", problem.path, problem.message, None) for problem in exc.problems)
        return Validated(report, None, element)
    except InputError as exc:
        report.extend(schema)
        report.extend([_severe("RECORD", exc.where or "/", exc.message, None)])
        return Validated(report, None, element)
    if schema:
        field_of = {xpath: field for field, xpath in parsed.xpath_of.items()}
        report.extend(f.model_copy(update={"field": field_of.get(f.xpath)}) for f in schema)
    report.extend(parsed.findings)
    report.extend(run_rules(parsed.record, parsed.xpath_of, now=now))
    return Validated(report, parsed, element)


@dataclass
class ValidatedPermit:
    """The report, and the CITES permit as parsed (None when it could not be read into a record)."""

    report: ValidationReport
    permit: ParsedPermit | None
    element: etree._Element


def validate_permit(document: bytes | etree._Element, *, source: str = "document", now: datetime | None = None, national: CITESPermit | None = None) -> ValidatedPermit:
    """Validate a CITESEPermit (bare, in either root form, or inside its EPIX SOAP response) and return every finding.

    ``national`` is the record the document was rendered from: its national data, which the XML does not carry (the
    simplified re-export procedure), is judged with the rest (:func:`~hub.mapping.cites_permit.with_national_data`).
    """
    root = document if isinstance(document, etree._Element) else parse_xml(document, source=source)
    element = unwrap(root, permit_root_tags(), source=source, content=permit_content_tags()).document
    report = ValidationReport()
    # Toolkit v1 (CBFShip) has no published schema the hub holds; its content is judged by the rules all the same.
    schema = cites_permit_findings(element) if spec_of(element) is cites_spec() else []
    try:
        parsed = parse_permit(element, source=source)
    except (RecordError, InputError) as exc:
        report.extend(schema)
        problems = exc.problems if isinstance(exc, RecordError) else [FieldProblem(exc.where or "/", exc.message)]
        report.extend(_severe("RECORD", problem.path, problem.message, None) for problem in problems)
        return ValidatedPermit(report, None, element)
    report.extend(schema)
    report.extend(parsed.findings)
    judged = with_national_data(parsed.record, national)
    report.extend(CITES_RULES.run(judged, parsed.xpath_of, now=now))
    report.extend(PSSM_RULES.run(judged, parsed.xpath_of, now=now))
    return ValidatedPermit(report, parsed, element)


def validate_permit_record(record: CITESPermit, *, profile: str = "standard", now: datetime | None = None) -> tuple[etree._Element, ValidationReport]:
    """Render a permit record and validate the result (with the record's national data, which is not rendered)."""
    rendered = render_permit(record, profile)
    validated = validate_permit(rendered.root, now=now, national=record)
    validated.report.findings[:0] = rendered.findings
    return rendered.root, validated.report


def validate_record(record: SPSCertificateRecord, *, profile: str = "full", now: datetime | None = None) -> tuple[etree._Element, ValidationReport]:
    """Render a record in ``profile`` and validate the result; what the profile left out is in the report too."""
    rendered = render_certificate(record, profile)
    validated = validate_certificate(rendered.root, now=now)
    validated.report.findings[:0] = rendered.findings
    return rendered.root, validated.report


def as_document_element(element: etree._Element, tag: str) -> etree._Element:
    """``element`` itself, or, when a counterpart wrote the document's content in its own container (TRACES-NT's
    EU-Intra ``SPSCertificate``), a copy under the standard document element, so the schema judges the content."""
    if element.tag == tag:
        return element
    copy = etree.Element(tag, nsmap=element.nsmap)
    copy.extend(deepcopy(child) for child in element)
    return copy


def _as_container_finding(finding: Finding, container: str) -> Finding:
    # A counterpart's own container comes with its own schema (TRACES-NT's EU-Intra and DOCOM services order the
    # SPSConsignment their own way): the D17A schema's verdict on the content is reported, not a refusal.
    if finding.severity is not Severity.SEVERE:
        return finding
    return finding.model_copy(update={
        "severity": Severity.WARNING,
        "message_en": f"{finding.message_en} (the document came in {container}, whose own schema the UN/CEFACT D17A schema does not know)",
        "message_fr": f"{finding.message_fr} (le document est arrivé dans {container}, dont le schéma propre n'est pas celui de UN/CEFACT D17A)",
    })


def _severe(rule: str, xpath: str, message: str, field: str | None) -> Finding:
    return Finding(
        xpath=xpath,
        field=field,
        rule=rule,
        severity=Severity.SEVERE,
        area=Area.MAPPING,
        message_en=message,
        message_fr=f"le document ne peut pas être lu en enregistrement : {message}",
    )
