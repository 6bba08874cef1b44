"""Economic zones (EU, EAEU, ASEAN…) and the country lists of routing rules that name them.

The built-in zones are data, in ``zones.yaml`` beside this module. A routing file may define its own ``zones:``; they
add to or override the built-in ones, and since a zone may name other zones (EEA names EU), all definitions are
resolved together: a file that overrides EU changes EEA as well. A rule's country list mixes ISO 3166-1 alpha-2 codes,
zone names and negations::

    importing_country: [EU, CH]        # a member of the EU, or Switzerland
    exporting_country: ["!EU"]         # anywhere outside the EU
    importing_country: [EEA, "!NO"]    # the EEA but Norway
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from hub.errors import ConfigurationError
from hub.codelists import load_code_list

ZONES_FILE = Path(__file__).with_name("zones.yaml")


@dataclass(frozen=True)
class Zone:
    """A named group of countries: ``name`` as rules write it (``"EU"``), its ``title`` and its member countries."""

    name: str
    members: frozenset[str]
    title: str | None = None

    @property
    def label(self) -> str:
        """The name with the size of the zone, as explanations print it: ``"EU (27 countries)"``."""
        count = len(self.members)
        return f"{self.name} ({count} {'country' if count == 1 else 'countries'})"


def iso_countries() -> frozenset[str]:
    """Every ISO 3166-1 alpha-2 code the hub's code list knows."""
    return frozenset(load_code_list("ISO3166"))


@cache
def _builtin_definitions() -> Mapping[str, Any]:
    with ZONES_FILE.open(encoding="utf-8") as stream:
        data = yaml.safe_load(stream)
    if not isinstance(data, dict):
        raise ConfigurationError(f"{ZONES_FILE}: expected a mapping of zone names to definitions")
    return MappingProxyType(data)


def builtin_zones() -> dict[str, Zone]:
    """The zones of ``zones.yaml``, resolved to their member countries."""
    return load_zones()


def load_zones(extra: Mapping[str, Any] | None = None, *, source: str = "<routing table>") -> dict[str, Zone]:
    """The built-in zones with ``extra`` (a routing file's ``zones:``) added or overriding, resolved to countries.

    A definition is a list of members, or a mapping with ``members`` and an optional ``title``; members are country
    codes or zone names. Raises :class:`ConfigurationError` naming the file and the zone for an unknown member, a
    zone that contains itself, or a zone name that is a country code.
    """
    builtin = _builtin_definitions()
    definitions: dict[str, tuple[Any, str]] = {name: (spec, str(ZONES_FILE)) for name, spec in builtin.items()}
    if extra is not None:
        if not isinstance(extra, Mapping):
            raise ConfigurationError(f"{source}: zones must be a mapping of zone names to member lists")
        definitions.update({name: (spec, source) for name, spec in extra.items()})
    countries = iso_countries()
    resolved: dict[str, Zone] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> Zone:
        if name in resolved:
            return resolved[name]
        spec, origin = definitions[name]
        where = f"{origin}: zone {name!r}"
        if name in chain:
            raise ConfigurationError(f"{where}: contains itself through {' → '.join((*chain, name))}")
        if not isinstance(name, str) or not name or name.startswith("!"):
            raise ConfigurationError(f"{origin}: {name!r} is not a usable zone name")
        if name in countries:
            raise ConfigurationError(f"{where}: a zone cannot be named like the ISO 3166 country code {name!r}")
        title, raw_members = _definition_parts(spec, where)
        members: set[str] = set()
        for member in raw_members:
            if isinstance(member, str) and member in definitions:
                members |= resolve(member, (*chain, name)).members
            elif isinstance(member, str) and member in countries:
                members.add(member)
            else:
                raise ConfigurationError(f"{where}: {_unknown_entry(member, 'members', definitions)}")
        resolved[name] = Zone(name=name, members=frozenset(members), title=title)
        return resolved[name]

    for name in definitions:
        resolve(name, ())
    return resolved


def _definition_parts(spec: Any, where: str) -> tuple[str | None, list[Any]]:
    if isinstance(spec, list):
        title, members = None, spec
    elif isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"title", "members"})
        if unknown:
            raise ConfigurationError(f"{where}: unknown key {unknown[0]!r} (a zone has title and members)")
        title, members = spec.get("title"), spec.get("members")
    else:
        raise ConfigurationError(f"{where}: expected a list of members or a mapping with members")
    if not isinstance(members, list) or not members:
        raise ConfigurationError(f"{where}: members must be a non-empty list of country codes or zone names")
    return title, members


# Abbreviations people write for countries whose ISO 3166 code differs.
_NOT_ISO = {"UK": "the United Kingdom is GB", "EL": "Greece is GR"}


def _unknown_entry(entry: Any, field: str, zones: Mapping[str, Any]) -> str:
    """Why ``entry`` is neither a country code nor a zone, with a hint when it looks like a known one."""
    if isinstance(entry, bool):
        return f"{entry!r} in {field} is not a country code (write Norway as \"NO\" in quotes: YAML reads NO as false)"
    if not isinstance(entry, str) or not entry:
        return f"{entry!r} in {field} is not a country code or zone name"
    countries = iso_countries()
    if len(entry) == 2 and entry.isalpha():
        if entry.upper() in countries:
            return f"country code {entry!r} in {field} must be upper case ({entry.upper()!r})"
        if entry.upper() not in zones:
            usual = _NOT_ISO.get(entry.upper())
            hint = f"; {usual}" if usual else ""
            return f"unknown country code {entry!r} in {field} (not an ISO 3166-1 alpha-2 code{hint})"
    names = list(zones)
    close = difflib.get_close_matches(entry, names, n=1) or difflib.get_close_matches(entry.upper(), names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown zone {entry!r} in {field}{hint}"


@dataclass(frozen=True)
class CountryEntry:
    """One entry of a rule's country list: a country or a zone, possibly negated (``"!EU"``)."""

    text: str
    members: frozenset[str]
    zone: Zone | None = None
    negated: bool = False

    @property
    def label(self) -> str:
        """``"FR"``, or ``"EU (27 countries)"`` for a zone; negation not included."""
        return self.zone.label if self.zone else self.text


@dataclass(frozen=True)
class CountrySelector:
    """A parsed country list: a value matches a positive entry (or there are only negative ones) and no negative one."""

    field: str
    entries: tuple[CountryEntry, ...]

    def describe(self) -> str:
        """The list as written: ``"EU, CH, !FR"``."""
        return ", ".join(("!" if e.negated else "") + e.text for e in self.entries)

    def check(self, country: str | None) -> tuple[bool, str]:
        """Whether ``country`` matches, and why in words: ``"importing_country US is not in EU (27 countries)"``."""
        if country is None:
            return False, f"{self.field} is absent from the document"
        positives = [e for e in self.entries if not e.negated]
        negatives = [e for e in self.entries if e.negated]
        excluded = next((e for e in negatives if country in e.members), None)
        if excluded:
            return False, f"{self.field} {country} is excluded by !{excluded.label}"
        kept = f"not excluded by {', '.join('!' + e.label for e in negatives)}" if negatives else ""
        if not positives:
            return True, f"{self.field} {country} is {kept}"
        hit = next((e for e in positives if country in e.members), None)
        if hit is None:
            labels = [e.label for e in positives]
            listed = labels[0] if len(labels) == 1 else "any of " + ", ".join(labels)
            preposition = "in " if len(labels) > 1 or positives[0].zone else ""
            return False, f"{self.field} {country} is not {preposition}{listed}"
        found = f"{self.field} {country} is in {hit.label}" if hit.zone else f"{self.field} is {country}"
        return True, found + (f", {kept}" if kept else "")


def parse_country_list(value: Any, *, field: str, zones: Mapping[str, Zone], where: str) -> CountrySelector:
    """Parse a rule's country list (a list, or one string) against ``zones`` and the ISO 3166 code list.

    ``where`` prefixes every error (``"config/routes.yaml: rule 'phyto-p2p'"``), so a
    :class:`ConfigurationError` reads ``config/routes.yaml: rule 'phyto-p2p': unknown zone 'EUU' in importing_country``.
    """
    items = [value] if isinstance(value, (str, bool)) else value
    if not isinstance(items, list) or not items:
        raise ConfigurationError(f"{where}: {field} must be a non-empty list of country codes or zone names")
    countries = iso_countries()
    entries = []
    for item in items:
        negated = isinstance(item, str) and item.startswith("!")
        text = item[1:].strip() if negated else item
        if isinstance(text, str) and text in zones:
            entries.append(CountryEntry(text=text, members=zones[text].members, zone=zones[text], negated=negated))
        elif isinstance(text, str) and text in countries:
            entries.append(CountryEntry(text=text, members=frozenset({text}), negated=negated))
        else:
            raise ConfigurationError(f"{where}: {_unknown_entry(text, field, zones)}")
    return CountrySelector(field=field, entries=tuple(entries))
