"""Derive the hub's code lists (``un_cefact/<list>.json``) from the UN/CEFACT D17A code-list schemas.

The schemas themselves stay in the standards folder (``hub.standards.standards_dir()``, or ``--standards``); the
project keeps only the data derived from them, and this script is how that data is made::

    python scripts/build_codelists.py                 # rewrite un_cefact/*.json
    python scripts/build_codelists.py --check         # exit 1 if the committed files differ from the schemas
    python scripts/build_codelists.py --standards DIR --out DIR

Each schema is an ``xsd:simpleType`` restriction whose ``xsd:enumeration`` values carry
``xsd:annotation/xsd:documentation/ccts:Name`` (always) and ``ccts:Description`` (sometimes). Agency and version are
read from the schema's ``targetNamespace`` (``urn:…:<agency>:<list name>:<version>``). Output is deterministic: the
header fields in a fixed order, then the codes sorted (numbers numerically, then the rest alphabetically), two-space
indent, UTF-8, one trailing newline.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

# Run as a plain script (``python scripts/build_codelists.py``) the project root is not on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.standards import PROJECT_ROOT, standards_dir  # noqa: E402
from hub.xmlsafe import parse_xml  # noqa: E402

XSD = "http://www.w3.org/2001/XMLSchema"
CCTS = "urn:un:unece:uncefact:documentation:standard:CoreComponentsTechnicalSpecification:2"
DERIVED_BY = "scripts/build_codelists.py"
SCHEMA_TREE = "uncefact-D17A"
SUPPLEMENTS_FILE = "supplements.json"

#: UNECE_StatusCode_D16B.xsd interleaves UN/CEFACT Rec 24 transport statuses (same code values, other meanings)
#: with the UNCL 4405 status codes; their descriptions start with this marker.
REC24_MARKER = "[UN/Rec24 transport status]"


@dataclass(frozen=True)
class ListSpec:
    """One code list to derive: its id, our title, and the schema files (glob patterns under ``uncefact-D17A``)."""

    list_id: str
    title: str
    schemas: tuple[str, ...]
    exclude_description_prefix: str | None = None


LISTS: tuple[ListSpec, ...] = (
    ListSpec("UNCL1001", "Document name code", ("codelist/standard/UNECE_DocumentNameCode_D16B.xsd",)),
    ListSpec("UNCL3035", "Party role code", ("codelist/standard/UNECE_PartyRoleCode_D16B.xsd",)),
    ListSpec(
        "UNCL4405",
        "Status code",
        ("codelist/standard/UNECE_StatusCode_D16B.xsd",),
        exclude_description_prefix=REC24_MARKER,
    ),
    ListSpec("Rec19", "Transport mode code", ("codelist/standard/UNECE_TransportModeCode_2.xsd",)),
    ListSpec(
        "Rec20",
        "Measurement unit common code (partial: the unit groups published as schemas in D17A)",
        ("codelist/standard/UNECE_MeasurementUnitCommonCode*_4.xsd",),
    ),
    ListSpec("Rec21", "Package type code", ("codelist/standard/UNECE_PackageTypeCode_2006.xsd",)),
    ListSpec(
        "ISO3166",
        "Country code (ISO 3166-1 alpha-2)",
        ("identifierlist/standard/ISO_ISOTwo-letterCountryCode_SecondEdition2006.xsd",),
    ),
    ListSpec(
        "ISO639",
        "Language code (ISO 639-1 alpha-2)",
        ("codelist/standard/ISO_ISO2AlphaLanguageCode_2006-10-27.xsd",),
    ),
)


class BuildError(Exception):
    """A schema is missing or does not have the shape this script derives code lists from."""


@dataclass(frozen=True)
class SchemaCodes:
    """What one code-list schema says: agency and version (from its namespace) and its enumerated codes, in order."""

    file_name: str
    agency: str
    version: str
    codes: tuple[tuple[str, str, str | None], ...]


def read_schema(path: Path) -> SchemaCodes:
    """Read one code-list schema: ``(code, name, description)`` for every enumeration, in document order."""
    root = parse_xml(path.read_bytes(), source=str(path))
    namespace = root.get("targetNamespace") or ""
    parts = namespace.split(":")
    if len(parts) < 3:
        raise BuildError(f"{path}: targetNamespace {namespace!r} does not end in <agency>:<list>:<version>")
    agency, list_name, version = parts[-3:]
    if path.name != f"{agency}_{list_name}_{version}.xsd":
        raise BuildError(f"{path}: file name does not match its namespace {namespace!r}")
    codes = []
    for enumeration in root.iter(f"{{{XSD}}}enumeration"):
        code = enumeration.get("value")
        documentation = enumeration.find(f"{{{XSD}}}annotation/{{{XSD}}}documentation")
        name = documentation.findtext(f"{{{CCTS}}}Name") if documentation is not None else None
        if not code or not name or not name.strip():
            raise BuildError(f"{path}: enumeration {code!r} has no value or no ccts:Name")
        description = documentation.findtext(f"{{{CCTS}}}Description")
        codes.append((code, _clean_name(name), _clean_description(description)))
    if not codes:
        raise BuildError(f"{path}: no xsd:enumeration found")
    return SchemaCodes(path.name, agency, version, tuple(codes))


def _clean_name(text: str) -> str:
    """Names are one-line labels; the schemas carry stray double and trailing spaces."""
    return " ".join(text.split())


def _clean_description(text: str | None) -> str | None:
    """Descriptions keep their line breaks (notes, lists) but lose surrounding blanks."""
    if text is None or not text.strip():
        return None
    return "\n".join(line.strip() for line in text.strip().splitlines())


def schema_paths(spec: ListSpec, tree: Path) -> list[Path]:
    """The schema files a list is derived from, in a stable order; fails naming the pattern that matched nothing."""
    paths: list[Path] = []
    for pattern in spec.schemas:
        matched = sorted(tree.glob(pattern))
        if not matched:
            raise BuildError(f"{spec.list_id}: no schema matches {tree / pattern}")
        paths.extend(matched)
    return paths


def build_list(spec: ListSpec, tree: Path) -> dict:
    """The JSON document of one code list, derived from its schema(s)."""
    schemas = [read_schema(path) for path in schema_paths(spec, tree)]
    agencies = {s.agency for s in schemas}
    versions = {s.version for s in schemas}
    if len(agencies) != 1 or len(versions) != 1:
        raise BuildError(f"{spec.list_id}: schemas disagree on agency/version: {sorted(agencies)} {sorted(versions)}")
    codes: dict[str, dict] = {}
    for schema in schemas:
        for code, name, description in schema.codes:
            if spec.exclude_description_prefix and (description or "").startswith(spec.exclude_description_prefix):
                continue
            entry = {"name": name, "description": description}
            if code in codes and codes[code] != entry:
                raise BuildError(f"{spec.list_id}: code {code!r} has two different meanings ({schema.file_name})")
            codes[code] = entry
    return {
        "list": spec.list_id,
        "title": spec.title,
        "agency": agencies.pop(),
        "version": versions.pop(),
        "source": [s.file_name for s in schemas],
        "derived_by": DERIVED_BY,
        "codes": {code: codes[code] for code in sorted(codes, key=code_order)},
    }


def code_order(code: str) -> tuple[bool, int, str]:
    """Numeric codes in numeric order first (1, 2, 10), then the others alphabetically."""
    return (not code.isdigit(), int(code) if code.isdigit() else 0, code)


def render(document: dict) -> str:
    """Serialise deterministically, so regenerating from unchanged schemas changes no byte.

    Key order is fixed by :func:`build_list` (header first, codes sorted), so no ``sort_keys`` here.
    """
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def build_all(standards: Path) -> dict[str, str]:
    """Every code-list file this script owns: ``{"UNCL1001.json": "<json text>", …}``."""
    tree = standards / SCHEMA_TREE
    if not tree.is_dir():
        raise BuildError(f"UN/CEFACT D17A schemas not found at {tree} (set HUB_STANDARDS_DIR or pass --standards)")
    return {f"{spec.list_id}.json": render(build_list(spec, tree)) for spec in LISTS}


def differences(generated: dict[str, str], out: Path) -> list[str]:
    """What differs between the generated files and those in ``out``: missing, changed, or no longer generated."""
    problems = []
    for name, text in sorted(generated.items()):
        path = out / name
        if not path.is_file():
            problems.append(f"missing: {path}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"differs: {path}")
    for path in sorted(out.glob("*.json")):
        if path.name not in generated and path.name != SUPPLEMENTS_FILE:
            problems.append(f"not generated by {DERIVED_BY}: {path}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (0 ok, 1 files differ under --check, 2 cannot build)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--standards", type=Path, default=None, help="standards folder (default: HUB_STANDARDS_DIR or ../shared/standards)"
    )
    parser.add_argument(
        "--out", type=Path, default=PROJECT_ROOT / "un_cefact", help="where the JSON files go (default: un_cefact/)"
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files in --out differ from what would be generated"
    )
    args = parser.parse_args(argv)
    try:
        generated = build_all(args.standards or standards_dir())
    except BuildError as exc:
        print(f"build_codelists: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems = differences(generated, args.out)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(generated.items()):
        (args.out / name).write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote {args.out / name} ({len(json.loads(text)['codes'])} codes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
