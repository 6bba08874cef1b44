"""Mapping specs: the declarative description of how a record kind maps to a standard XML document.

A spec is a YAML file under ``mappings/<document>/<version>/spec.yaml`` (see the comment at the top of the SPS spec
for its grammar, and at the top of the CITESEPermit spec for ``when`` selectors, profile roots and the ``indicator``
type). :func:`load_spec` reads and checks it once, resolving reusable groups and enum tables, into an immutable tree
of :class:`Node` that the engine walks in both directions.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Mapping

import yaml

from hub.errors import MappingError
from hub.standards import PROJECT_ROOT

MAPPINGS_DIR = PROJECT_ROOT / "mappings"

LEAF_TYPES = frozenset({"string", "integer", "text", "code", "identifier", "measure", "datetime", "binary", "enum", "indicator"})


@dataclass(frozen=True)
class Step:
    """One element step of a path: namespace URI (None for an unqualified element), local name, written prefix."""

    namespace: str | None
    local: str
    prefix: str | None

    @cached_property
    def clark(self) -> str:
        return f"{{{self.namespace}}}{self.local}" if self.namespace else self.local

    @cached_property
    def prefixed(self) -> str:
        return f"{self.prefix}:{self.local}" if self.prefix else self.local


@dataclass(frozen=True)
class Node:
    """A record field mapped to a path of child elements: a leaf value, or a group of further nodes."""

    field: str | None
    steps: tuple[Step, ...]
    many: bool = False
    leaf_type: str | None = None
    enum: Mapping[str, str] | None = None
    children: tuple["Node", ...] = ()
    profiles: frozenset[str] | None = None
    profile_steps: Mapping[str, tuple[Step, ...]] = field(default_factory=dict)
    profile_types: Mapping[str, str] = field(default_factory=dict)
    required_by: frozenset[str] = frozenset()
    when: tuple[tuple[tuple[Step, ...], str], ...] = ()

    @property
    def is_leaf(self) -> bool:
        return self.leaf_type is not None

    def steps_for(self, profile: str) -> tuple[Step, ...]:
        return self.profile_steps.get(profile, self.steps)

    def type_for(self, profile: str) -> str | None:
        return self.profile_types.get(profile, self.leaf_type)

    def written_by(self, profile: str) -> bool:
        return self.profiles is None or profile in self.profiles

    def selects(self, element: Any) -> bool:
        """Whether ``element`` carries the code values of ``when`` (always, for a node without ``when``)."""
        for steps, expected in self.when:
            found = element
            for step in steps:
                found = next((child for child in found if child.tag == step.clark), None)
                if found is None:
                    return False
            if (found.text or "").strip() != expected:
                return False
        return True


def mapped_fields(nodes: tuple[Node, ...]) -> frozenset[str]:
    """The record keys ``nodes`` map at this level, looking through inline nodes (which merge into their parent)."""
    fields: set[str] = set()
    for node in nodes:
        fields |= {node.field} if node.field else mapped_fields(node.children)
    return frozenset(fields)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    date_element: str
    force_date_element: bool
    root: Step | None = None


@dataclass(frozen=True)
class MappingSpec:
    """A loaded spec: root element, namespaces, profiles and the node tree."""

    document: str
    version: str
    root: Step
    namespaces: Mapping[str, str]
    profiles: Mapping[str, Profile]
    nodes: tuple[Node, ...]
    source: Path

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise MappingError(f"profile {name!r} is not defined in {self.source} (known: {', '.join(self.profiles)})") from None

    @cached_property
    def prefix_of(self) -> dict[str, str]:
        return {uri: prefix for prefix, uri in self.namespaces.items()}

    def root_for(self, profile: str) -> Step:
        """The root element ``profile`` writes: its own ``root`` when it has one, else the spec's."""
        return self.profile(profile).root or self.root

    @cached_property
    def root_tags(self) -> frozenset[str]:
        """Every root element (Clark notation) a document of this spec may have, whichever profile wrote it."""
        return frozenset({self.root.clark, *(p.root.clark for p in self.profiles.values() if p.root)})

    @cached_property
    def content_tags(self) -> frozenset[str]:
        """The tags of the document element's own children the spec maps (``rsm:SPSExchangedDocument`` …): an
        element holding one of them is a container of the document, whatever its own name."""
        return frozenset(node.steps[0].clark for node in self.nodes if node.steps)

    def profile_for_root(self, tag: str) -> str | None:
        """The first profile that writes the root element ``tag`` (so a parsed document renders back the same)."""
        return next((name for name in self.profiles if self.root_for(name).clark == tag), None)


@cache
def load_spec(document: str, version: str) -> MappingSpec:
    """Load ``mappings/<document>/<version>/spec.yaml`` once; :class:`MappingError` names the faulty place."""
    source = MAPPINGS_DIR / document / version / "spec.yaml"
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"cannot read mapping spec {source}: {exc}") from None
    return _build(raw, source)


def _build(raw: dict[str, Any], source: Path) -> MappingSpec:
    namespaces: dict[str, str] = dict(raw["namespaces"])
    enums = {name: _import_table(ref, source) for name, ref in (raw.get("enums") or {}).items()}
    groups: dict[str, list[dict[str, Any]]] = raw.get("groups") or {}

    def steps(path: str, where: str) -> tuple[Step, ...]:
        result = []
        for part in path.split("/"):
            prefix, _, local = part.rpartition(":")
            if prefix and prefix not in namespaces:
                raise MappingError(f"{source}: {where}: unknown prefix {prefix!r} in path {path!r}")
            result.append(Step(namespaces[prefix] if prefix else None, local, prefix or None))
        return tuple(result)

    profiles = {
        name: Profile(
            name=name,
            description=p.get("description", ""),
            date_element=p.get("date_element", "DateTime"),
            force_date_element=bool(p.get("force_date_element", False)),
            root=steps(p["root"], f"profiles.{name}.root")[0] if "root" in p else None,
        )
        for name, p in raw["profiles"].items()
    }

    def node(item: dict[str, Any], where: str, seen: tuple[str, ...]) -> Node:
        name = item.get("field")
        where = f"{where}.{name or item.get('path')}"
        if not item.get("inline") and not name:
            raise MappingError(f"{source}: {where}: a node needs `field` unless it is `inline`")
        leaf_type = item.get("type")
        children: tuple[Node, ...] = ()
        if leaf_type is not None:
            if leaf_type not in LEAF_TYPES:
                raise MappingError(f"{source}: {where}: unknown type {leaf_type!r}")
        elif "group" in item:
            group = item["group"]
            if group not in groups:
                raise MappingError(f"{source}: {where}: unknown group {group!r}")
            if group in seen:
                raise MappingError(f"{source}: {where}: group {group!r} refers to itself")
            children = tuple(node(child, where, seen + (group,)) for child in groups[group])
        elif "children" in item:
            children = tuple(node(child, where, seen) for child in item["children"])
        else:
            raise MappingError(f"{source}: {where}: a node needs `type`, `group` or `children`")
        if item.get("when") and leaf_type is not None:
            raise MappingError(f"{source}: {where}: `when` selects aggregates by a child's code; a leaf cannot have it")
        profile_types = dict(item.get("types") or {})
        if set(profile_types.values()) - LEAF_TYPES:
            raise MappingError(f"{source}: {where}: unknown type in `types` {profile_types}")
        enum = None
        if leaf_type == "enum":
            if item.get("enum") not in enums:
                raise MappingError(f"{source}: {where}: enum {item.get('enum')!r} is not declared under `enums`")
            enum = enums[item["enum"]]
        return Node(
            field=name,
            steps=steps(item["path"], where),
            many=bool(item.get("many", False)),
            leaf_type=leaf_type,
            enum=enum,
            children=children,
            profiles=frozenset(item["profiles"]) if "profiles" in item else None,
            profile_steps={p: steps(path, where) for p, path in (item.get("paths") or {}).items()},
            profile_types=profile_types,
            required_by=frozenset(item.get("required") or ()),
            when=tuple((steps(path, where), str(value)) for path, value in (item.get("when") or {}).items()),
        )

    return MappingSpec(
        document=raw["document"],
        version=str(raw["version"]),
        root=steps(raw["root"], "root")[0],
        namespaces=namespaces,
        profiles=profiles,
        nodes=tuple(node(item, "fields", ()) for item in raw["fields"]),
        source=source,
    )


def _import_table(reference: str, source: Path) -> dict[str, str]:
    """Resolve ``module:NAME`` to a mapping of record value → XML code (enum keys become their values)."""
    module_name, _, attribute = reference.partition(":")
    try:
        table = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise MappingError(f"{source}: enum table {reference!r} cannot be imported: {exc}") from None
    return {getattr(key, "value", key): str(code) for key, code in table.items()}
