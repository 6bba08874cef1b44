"""Named business rules over a record, for any document family (SPS certificates, CITES permits).

A rule has a stable code, a severity, an area and a message in English and French; its check yields one
``(field path, message arguments)`` per place it fails, and the finding is located by the XPath that field was read
from (or rendered to). Rules see the record only, so the same rules serve documents from issuing systems and from
abroad.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from hub.mapping.engine import FieldLocations
from hub.report import Area, Finding, Severity


@dataclass(frozen=True)
class Rule:
    """A named check: code, severity, area, and message templates (``{value}``, ``{field}`` … filled per finding)."""

    code: str
    severity: Severity
    area: Area
    message_en: str
    message_fr: str
    check: Callable[["RuleContext"], Iterable[tuple[str, dict]]]


@dataclass
class RuleContext:
    """What a rule sees: the record, where each of its fields came from, and the time of the check."""

    record: Any
    xpath_of: FieldLocations
    now: datetime

    def xpath(self, field: str) -> str:
        """The XPath a field was read from, or that of its nearest parent field."""
        return self.xpath_of.nearest(field)


class RuleSet:
    """The rules of one document family, in the order they were declared; ``context`` is the
    :class:`RuleContext` class its checks receive."""

    def __init__(self, name: str, *, context: type[RuleContext] = RuleContext) -> None:
        self.name = name
        self.context = context
        self.rules: list[Rule] = []

    def rule(self, code: str, severity: Severity, area: Area, en: str, fr: str):
        """Register a check as a rule of this set (a decorator)."""

        def register(check: Callable[[RuleContext], Iterable[tuple[str, dict]]]) -> Callable:
            self.rules.append(Rule(code, severity, area, en, fr, check))
            return check

        return register

    def run(self, record: Any, xpath_of: FieldLocations, *, now: datetime | None = None) -> list[Finding]:
        """Every finding of every rule of the set on ``record``."""
        context = self.context(record=record, xpath_of=xpath_of, now=now or datetime.now(timezone.utc))
        findings = []
        for r in self.rules:
            for field, args in r.check(context):
                args = {"field": field, **args}
                findings.append(
                    Finding(
                        xpath=context.xpath(field),
                        field=field,
                        rule=r.code,
                        severity=r.severity,
                        area=r.area,
                        message_en=r.message_en.format(**args),
                        message_fr=r.message_fr.format(**args),
                    )
                )
        return findings
