"""The validation report: every finding of every check on one document, never only the first.

Severities follow the IPPC ePhyto Hub's grading (``SEVERE`` / ``WARNING`` / ``INFO``); a document is valid when it
has no SEVERE finding. Each finding names where (an XPath into the document, or a record field path), which rule
(a stable code), and says what is wrong in English and in French.
"""

from __future__ import annotations

from enum import Enum
from typing import Iterable

from pydantic import BaseModel, ConfigDict, Field


class Severity(str, Enum):
    """How bad a finding is, as the IPPC Hub grades validation results."""

    SEVERE = "SEVERE"
    WARNING = "WARNING"
    INFO = "INFO"


class Area(str, Enum):
    """Which check produced a finding (the Hub's ``area`` values, plus the hub's own)."""

    SCHEMA = "Schema"
    MANDATORY_ELEMENTS = "MandatoryElements"
    MAPPING = "Mapping"
    CODE_LIST = "CodeList"
    BUSINESS_RULE = "BusinessRule"
    SIGNATURE = "Signature"


class Finding(BaseModel):
    """One thing wrong (or worth knowing) about a document."""

    model_config = ConfigDict(frozen=True)

    xpath: str = Field(description="Where in the document (XPath with prefixes rsm/ram/udt), or a record field path")
    field: str | None = Field(default=None, description="The record field the XPath was rendered from, when known")
    rule: str = Field(description="Stable rule code, e.g. XSD, CL-COUNTRY, BR-EPHYTO-CONSIGNOR")
    severity: Severity
    area: Area
    message_en: str
    message_fr: str
    line: int | None = Field(default=None, description="Line in the source document, when known")


class ValidationReport(BaseModel):
    """All findings about one document, in the order the checks produced them."""

    findings: list[Finding] = Field(default_factory=list)

    @property
    def severe(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.SEVERE]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    @property
    def valid(self) -> bool:
        """True when no finding is SEVERE."""
        return not self.severe

    def extend(self, findings: Iterable[Finding]) -> "ValidationReport":
        self.findings.extend(findings)
        return self

    def summary(self) -> str:
        counts = {s: sum(1 for f in self.findings if f.severity is s) for s in Severity}
        verdict = "valid" if self.valid else "NOT valid"
        return f"{verdict}: {counts[Severity.SEVERE]} severe, {counts[Severity.WARNING]} warning(s), {counts[Severity.INFO]} info"


#: The checks that decide whether a received document can be taken at all: its structure (schema), whether it could
#: be read (mapping) and its signature. Rules written for the hub's own issuing (mandatory elements, code lists,
#: business rules) only report on a document another authority issued.
INTEGRITY_AREAS = frozenset({Area.SCHEMA, Area.MAPPING, Area.SIGNATURE})


def graded_as_received(report: ValidationReport) -> ValidationReport:
    """``report`` as the importing authority reads it: SEVERE findings of the hub's own issuing rules become
    WARNINGs (the document is accepted with warnings), integrity findings keep their severity."""
    graded = []
    for finding in report.findings:
        if finding.severity is Severity.SEVERE and finding.area not in INTEGRITY_AREAS:
            finding = finding.model_copy(update={
                "severity": Severity.WARNING,
                "message_en": f"{finding.message_en} (a rule for documents the hub issues: reported, not refused)",
                "message_fr": f"{finding.message_fr} (règle pour les documents émis par le hub : signalée, pas refusée)",
            })
        graded.append(finding)
    return ValidationReport(findings=graded)
