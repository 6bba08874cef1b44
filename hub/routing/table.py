"""The routing table: which destinations each document goes to, decided by rules kept as data (YAML or TOML).

Rules are evaluated in order against a document's :class:`RoutingFacts`; every rule that matches adds its
destinations (in rule order, without duplicates), and a rule with ``final: true`` stops evaluation once it matches::

    rules:
      - name: phyto-p2p
        description: Export certificates go to the importing country's authority.
        when:
          kind: [phytosanitary, phytosanitary_reexport]
          importing_country: ["!EU"]
          hs_prefix: ["0808"]
        to: [foreign_authority]
        final: true

Conditions: ``kind``, ``status``, ``issuing_country``, ``exporting_country``, ``importing_country`` (country codes,
zone names, negations; see :mod:`hub.zones`), ``hs_prefix`` (any HS code of the document starts with one) and
``cross_border`` (true: the importing country is not the exporting country). An absent condition matches anything.
A table is checked entirely when loaded; what it cannot use raises :class:`ConfigurationError` naming the file and
the rule, so a hub refuses to start rather than misroute.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from hub.errors import ConfigurationError, NoRouteError
from hub.families import KINDS, RoutingFacts
from hub.families.base import COUNTRY_FIELDS
from hub.records.status import DocumentStatus
from hub.zones import CountrySelector, Zone, load_zones, parse_country_list

STATUSES = tuple(status.value for status in DocumentStatus)
CONDITION_FIELDS = ("kind", "status", *COUNTRY_FIELDS, "hs_prefix", "cross_border", "direction")
DIRECTIONS = ("outbound", "inbound")
_TABLE_KEYS = ("description", "zones", "rules")
_RULE_KEYS = ("name", "description", "when", "to", "final", "reception")


#: What a received document's findings from rules written for the hub's own issuing do: reported (``warn``, the
#: default: the document is accepted with warnings, as the ePhyto Hub grades DeliveredWithWarnings) or ``refuse``.
RECEPTION_POLICIES = ("warn", "refuse")


@dataclass(frozen=True)
class Routing:
    """Where a document goes: ``destinations`` in rule order, the names of the rules that ``matched``, and whether
    one of them refuses received documents on business findings (``reception: refuse``)."""

    destinations: list[str]
    matched: list[str]
    refuses_business_findings: bool = False


@dataclass(frozen=True)
class RuleExplanation:
    """One rule's verdict on a document: whether it ``matched`` and the ``reasons`` why (or which condition failed)."""

    name: str
    matched: bool
    reasons: list[str]
    destinations: list[str]


Check = Callable[[RoutingFacts], tuple[bool, str]]


@dataclass(frozen=True)
class Condition:
    """One condition of a rule: the field it reads, the values as written, and its check (match, reason)."""

    field: str
    written: str
    check: Check


@dataclass(frozen=True)
class Rule:
    """A named rule: when all its conditions hold, the document goes to its destinations."""

    name: str
    destinations: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    final: bool = False
    description: str | None = None
    direction: str = "outbound"
    reception: str = "warn"

    def evaluate(self, facts: RoutingFacts) -> tuple[bool, list[str]]:
        """Whether the rule matches, with the reasons of every condition (when it matches) or of those that failed."""
        if facts.direction != self.direction:
            return False, [f"the document is {facts.direction}; the rule routes {self.direction} documents (a rule without direction routes outbound ones)"]
        if not self.conditions:
            return True, ["no conditions: matches every document"]
        results = [condition.check(facts) for condition in self.conditions]
        matched = all(ok for ok, _ in results)
        return matched, [reason for ok, reason in results if ok == matched]


class RoutingTable:
    """Rules in order, with the zones their country lists were resolved against; see the module docstring."""

    def __init__(self, *, rules: list[Rule], zones: Mapping[str, Zone], source: str) -> None:
        self.rules = list(rules)
        self.zones = dict(zones)
        self.source = source
        self._by_name = {rule.name: rule for rule in self.rules}

    @classmethod
    def load(cls, path: str | Path) -> "RoutingTable":
        """Read a routing table from a ``.yaml``/``.yml`` or ``.toml`` file."""
        path = Path(path)
        source = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"{source}: cannot read the routing table: {exc.strerror}") from None
        try:
            if path.suffix == ".toml":
                data = tomllib.loads(raw.decode("utf-8"))
            elif path.suffix in (".yaml", ".yml"):
                data = yaml.safe_load(raw)
            else:
                raise ConfigurationError(f"{source}: a routing table is a .yaml, .yml or .toml file")
        except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{source}: not a readable routing table: {exc}") from None
        return cls.from_data(data, source=source)

    @classmethod
    def from_data(cls, data: Any, *, source: str = "<routing table>") -> "RoutingTable":
        """Build a table from parsed data (``{"zones": …, "rules": […]}``); ``source`` names it in errors."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{source}: a routing table is a mapping with rules (and optionally zones)")
        _no_unknown_keys(data, _TABLE_KEYS, where=source, what="a routing table")
        zones = load_zones(data.get("zones"), source=source)
        raw_rules = data.get("rules")
        if not isinstance(raw_rules, list) or not raw_rules:
            raise ConfigurationError(f"{source}: rules must be a non-empty list")
        rules: list[Rule] = []
        for index, raw in enumerate(raw_rules, start=1):
            rule = _parse_rule(raw, index=index, zones=zones, source=source)
            first = next((n for n, r in enumerate(rules, start=1) if r.name == rule.name), None)
            if first:
                raise ConfigurationError(
                    f"{source}: rule {rule.name!r}: duplicate rule name (rules #{first} and #{index})"
                )
            rules.append(rule)
        return cls(rules=rules, zones=zones, source=source)

    @property
    def destinations(self) -> set[str]:
        """Every destination the table names; each needs a configured connector."""
        return {destination for rule in self.rules for destination in rule.destinations}

    def explain(self, facts: RoutingFacts) -> list[RuleExplanation]:
        """Every rule's verdict on ``facts``, in order; rules after a matching final rule are marked not evaluated."""
        explanations: list[RuleExplanation] = []
        stopped_by: str | None = None
        for rule in self.rules:
            if stopped_by:
                reasons = [f"not evaluated: final rule {stopped_by!r} matched before it"]
                explanations.append(RuleExplanation(rule.name, False, reasons, list(rule.destinations)))
                continue
            matched, reasons = rule.evaluate(facts)
            explanations.append(RuleExplanation(rule.name, matched, reasons, list(rule.destinations)))
            if matched and rule.final:
                stopped_by = rule.name
        return explanations

    def route(self, facts: RoutingFacts) -> Routing:
        """The destinations of a document (possibly none) and the rules that sent it there."""
        matched = [e for e in self.explain(facts) if e.matched]
        destinations = dict.fromkeys(d for e in matched for d in e.destinations)
        strict = any(self._by_name[e.name].reception == "refuse" for e in matched)
        return Routing(destinations=list(destinations), matched=[e.name for e in matched], refuses_business_findings=strict)

    def require_route(self, facts: RoutingFacts) -> Routing:
        """Like :meth:`route`, but raises :class:`NoRouteError` when no rule matches."""
        routing = self.route(facts)
        if not routing.matched:
            raise NoRouteError(facts)
        return routing


def _parse_rule(raw: Any, *, index: int, zones: Mapping[str, Zone], source: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{source}: rule #{index}: a rule is a mapping with name, when and to")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"{source}: rule #{index}: a rule needs a name")
    where = f"{source}: rule {name!r}"
    _no_unknown_keys(raw, _RULE_KEYS, where=where, what="a rule")
    destinations = _strings(raw.get("to"), where=where, field="to", what="destination names")
    final = raw.get("final", False)
    if not isinstance(final, bool):
        raise ConfigurationError(f"{where}: final must be true or false, not {final!r}")
    if not isinstance(raw.get("description", ""), str):
        raise ConfigurationError(f"{where}: description must be text")
    when = raw.get("when") or {}
    if not isinstance(when, Mapping):
        raise ConfigurationError(f"{where}: when must be a mapping of conditions")
    direction = when.get("direction", "outbound")
    if direction not in DIRECTIONS:
        raise ConfigurationError(f"{where}: direction must be outbound or inbound, not {direction!r}")
    conditions = tuple(_parse_condition(field, value, zones=zones, where=where) for field, value in when.items() if field != "direction")
    reception = raw.get("reception", "warn")
    if reception not in RECEPTION_POLICIES or (reception != "warn" and direction != "inbound"):
        raise ConfigurationError(f"{where}: reception is warn or refuse, on an inbound rule only (not {reception!r})")
    return Rule(
        name=name,
        destinations=tuple(dict.fromkeys(destinations)),
        conditions=conditions,
        final=final,
        description=raw.get("description"),
        direction=direction,
        reception=reception,
    )


def _parse_condition(field: str, value: Any, *, zones: Mapping[str, Zone], where: str) -> Condition:
    if field in COUNTRY_FIELDS:
        selector = parse_country_list(value, field=field, zones=zones, where=where)
        return Condition(field, selector.describe(), _country_check(selector))
    if field == "kind":
        kinds = _strings(value, where=where, field=field, what="document kinds")
        for kind in kinds:
            _check_kind(kind.removeprefix("!"), where=where)
        return Condition(field, ", ".join(kinds), _one_of_check("kind", kinds))
    if field == "status":
        statuses = _strings(value, where=where, field=field, what="statuses")
        for status in statuses:
            if status not in STATUSES:
                hint = _hint(status, STATUSES)
                known = ", ".join(STATUSES)
                raise ConfigurationError(f"{where}: unknown status {status!r} in status{hint}; statuses: {known}")
        return Condition(field, ", ".join(statuses), _one_of_check("status", statuses))
    if field == "hs_prefix":
        prefixes = _strings(value, where=where, field=field, what="HS code prefixes", quote_numbers=True)
        for prefix in prefixes:
            if not prefix.isdigit() or not prefix.isascii():
                raise ConfigurationError(f"{where}: hs_prefix {prefix!r} is not a string of digits")
        return Condition(field, ", ".join(prefixes), _hs_check(prefixes))
    if field == "cross_border":
        if not isinstance(value, bool):
            raise ConfigurationError(f"{where}: cross_border must be true or false, not {value!r}")
        return Condition(field, "yes" if value else "no", _cross_border_check(value))
    raise ConfigurationError(
        f"{where}: unknown condition {field!r} in when{_hint(str(field), CONDITION_FIELDS)}; "
        f"conditions: {', '.join(CONDITION_FIELDS)}"
    )


def _check_kind(kind: str, *, where: str) -> None:
    # Any kind is accepted (a deployment may carry documents of its own), but one that looks like a kind the hub
    # knows is surely a typo.
    if kind in KINDS:
        return
    folded = kind.lower().replace("-", "_").replace(" ", "_")
    close = difflib.get_close_matches(folded, KINDS, n=1, cutoff=0.75)
    prefixed = [k for k in KINDS if len(folded) >= 3 and (k.startswith(folded) or folded.startswith(k))]
    suggestion = close[0] if close else prefixed[0] if prefixed else None
    if suggestion:
        raise ConfigurationError(
            f"{where}: unknown kind {kind!r} in kind (did you mean {suggestion!r}?); kinds: {', '.join(KINDS)}"
        )


def _one_of_check(field: str, values: list[str]) -> Check:
    """``field`` is one of ``values``; a value written ``!x`` excludes ``x`` instead (``kind: ["!inspection"]``)."""
    wanted = [v for v in values if not v.startswith("!")]
    excluded = [v[1:] for v in values if v.startswith("!")]

    def check(facts: RoutingFacts) -> tuple[bool, str]:
        actual = getattr(facts, field)
        if actual in excluded:
            return False, f"{field} {actual} is excluded"
        if not wanted:
            return True, f"{field} {actual} is none of {', '.join(excluded)}"
        if len(wanted) == 1:
            if actual == wanted[0]:
                return True, f"{field} is {actual}"
            return False, f"{field} {actual} is not {wanted[0]}"
        listed = ", ".join(wanted)
        return (actual in wanted), f"{field} {actual} is {'' if actual in wanted else 'not '}one of {listed}"

    return check


def _country_check(selector: CountrySelector) -> Check:
    return lambda facts: selector.check(getattr(facts, selector.field))


def _hs_check(prefixes: list[str]) -> Check:
    listed = prefixes[0] if len(prefixes) == 1 else "any of " + ", ".join(prefixes)

    def check(facts: RoutingFacts) -> tuple[bool, str]:
        if not facts.hs_codes:
            return False, f"the document has no HS codes (hs_prefix {', '.join(prefixes)})"
        for code in facts.hs_codes:
            # Some issuing systems write HS codes with dots or spaces (0808.10); the prefixes are digits only.
            digits = code.replace(".", "").replace(" ", "")
            prefix = next((p for p in prefixes if digits.startswith(p)), None)
            if prefix:
                return True, f"HS code {code} starts with {prefix}"
        return False, f"no HS code of the document ({', '.join(facts.hs_codes)}) starts with {listed}"

    return check


def _cross_border_check(required: bool) -> Check:
    def check(facts: RoutingFacts) -> tuple[bool, str]:
        exporting, importing = facts.exporting_country, facts.importing_country
        if not exporting or not importing:
            return False, "exporting_country or importing_country is absent, so cross_border cannot be decided"
        if importing != exporting:
            return required, f"importing_country {importing} differs from exporting_country {exporting}"
        return not required, f"importing_country {importing} is the exporting_country"

    return check


def _strings(value: Any, *, where: str, field: str, what: str, quote_numbers: bool = False) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigurationError(f"{where}: {field} must be a non-empty list of {what}")
    for item in items:
        if quote_numbers and isinstance(item, int) and not isinstance(item, bool):
            raise ConfigurationError(
                f"{where}: {field} {item!r} must be a quoted string (\"0808\"): "
                "YAML reads bare digits as a number and drops leading zeros"
            )
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(f"{where}: {field} must be a non-empty list of {what}, not {item!r}")
    return list(items)


def _no_unknown_keys(data: Mapping[str, Any], known: tuple[str, ...], *, where: str, what: str) -> None:
    for key in data:
        if key not in known:
            hint = _hint(str(key), known)
            raise ConfigurationError(f"{where}: unknown key {key!r}{hint}; {what} has {', '.join(known)}")


def _hint(value: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
