"""UN/CEFACT and ISO code lists, read from the data files in ``un_cefact/``; CITES lists from ``un_cefact/cites/``.

The files are derived from the official code-list schemas by ``scripts/build_codelists.py`` (see
``un_cefact/README.md``); ``un_cefact/supplements.json`` adds, by hand, the few codes real documents use that those
schemas lack, and every such entry is marked ``supplement=True``. Lists are read once and cached::

    >>> statuses = load_code_list("UNCL4405")
    >>> "70" in statuses, statuses.name_of("70")
    (True, 'Issued')

The CITES lists (appendix, source, purpose, term, permit type, and the EU annexes) have no official schema to derive
them from: they are written by hand from public CITES and EU texts, sources named in each file and in
``un_cefact/README.md``. They are a separate family with their own loader, so that :func:`available_lists` stays the
set of lists the build script derives::

    >>> sources = load_cites_code_list("CITESSource")
    >>> "W" in sources, sources.name_of("W")
    (True, 'Wild')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterator, Mapping

from hub.standards import PROJECT_ROOT

CODE_LIST_DIR: Path = PROJECT_ROOT / "un_cefact"
SUPPLEMENTS_FILE = "supplements.json"
CITES_CODE_LIST_DIR: Path = CODE_LIST_DIR / "cites"


class UnknownCodeListError(KeyError):
    """Asked for a code list the hub does not have; the message names it and the lists that exist."""

    def __init__(self, list_id: str, available: tuple[str, ...], directory: Path = CODE_LIST_DIR) -> None:
        self.list_id = list_id
        self.available = available
        self.directory = directory
        super().__init__(list_id)

    def __str__(self) -> str:
        return f"unknown code list {self.list_id!r}; available: {', '.join(self.available) or 'none'} (in {self.directory})"


class UnknownCodeError(KeyError):
    """Asked for the name of a code that is not in the list; the message names both."""

    def __init__(self, code: str, code_list: CodeList) -> None:
        self.code = code
        self.list_id = code_list.id
        super().__init__(code)
        self._message = f"code {code!r} is not in {code_list.id} ({code_list.title}, {code_list.version})"

    def __str__(self) -> str:
        return self._message


@dataclass(frozen=True)
class CodeEntry:
    """One code of a list: its name and description as the standard gives them.

    ``supplement`` is true for codes added by hand from ``supplements.json``; ``note`` then says which real
    document needs the code. In the hand-written CITES lists, ``inferred`` marks a code whose existence or meaning
    we inferred rather than read in a published list (e.g. permit type ``E``), and ``uncertain`` one taken from a
    secondary source whose standing in the primary list is unverified; ``note`` says why.
    """

    code: str
    name: str
    description: str | None = None
    supplement: bool = False
    note: str | None = None
    inferred: bool = False
    uncertain: bool = False


@dataclass(frozen=True, eq=False)
class CodeList:
    """A read-only code list. ``code in code_list`` tests membership; ``codes`` maps each code to its entry.

    ``source`` names the schema file(s) the list was derived from. Compared and hashed by identity: each list is
    loaded once.
    """

    id: str
    title: str
    agency: str
    version: str
    source: tuple[str, ...]
    codes: Mapping[str, CodeEntry]

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self.codes

    def __iter__(self) -> Iterator[str]:
        return iter(self.codes)

    def __len__(self) -> int:
        return len(self.codes)

    def name_of(self, code: str) -> str:
        """The name of ``code`` (e.g. ``"Phytosanitary certificate"`` for UNCL1001 ``"851"``).

        Raises :class:`UnknownCodeError` (a ``KeyError``) naming the code and the list when it is absent.
        """
        try:
            return self.codes[code].name
        except KeyError:
            raise UnknownCodeError(code, self) from None


def available_lists() -> tuple[str, ...]:
    """The ids of every code list in ``un_cefact/`` (``"ISO3166"``, ``"UNCL1001"``, …), sorted."""
    return tuple(sorted(p.stem for p in CODE_LIST_DIR.glob("*.json") if p.name != SUPPLEMENTS_FILE))


@cache
def load_code_list(list_id: str) -> CodeList:
    """The code list ``list_id``, with its supplements merged in; read once, then served from a cache.

    Raises :class:`UnknownCodeListError` (a ``KeyError``) naming the list when there is no such list.
    """
    available = available_lists()
    if list_id not in available:
        raise UnknownCodeListError(list_id, available)
    data = json.loads((CODE_LIST_DIR / f"{list_id}.json").read_text(encoding="utf-8"))
    codes = {
        code: CodeEntry(code=code, name=entry["name"], description=entry.get("description"))
        for code, entry in data["codes"].items()
    }
    for code, entry in _supplements().get(list_id, {}).items():
        # A code the schemas now carry needs no supplement; the derived entry is authoritative.
        codes.setdefault(
            code,
            CodeEntry(
                code=code, name=entry["name"], description=entry.get("description"), supplement=True, note=entry.get("why")
            ),
        )
    source = data["source"]
    return CodeList(
        id=data["list"],
        title=data["title"],
        agency=data["agency"],
        version=data["version"],
        source=(source,) if isinstance(source, str) else tuple(source),
        codes=MappingProxyType(codes),
    )


def available_cites_lists() -> tuple[str, ...]:
    """The ids of every CITES code list in ``un_cefact/cites/`` (``"CITESAppendix"``, ``"CITESSource"``, …), sorted."""
    return tuple(sorted(p.stem for p in CITES_CODE_LIST_DIR.glob("*.json")))


@cache
def load_cites_code_list(list_id: str) -> CodeList:
    """The hand-written CITES code list ``list_id`` (see :func:`available_cites_lists`); read once, then cached.

    ``CITESAppendix`` (I, II, III), ``CITESSource`` (W, R, D, A, C, F, U, I, O, X, Y), ``CITESPurpose`` (B … Z),
    ``CITESTerm`` (LIV, SKI, LPS, …), ``CITESPermitType`` (E, I, R, O) and ``EUAnnex`` (A, B, C, D). Raises
    :class:`UnknownCodeListError` (a ``KeyError``) naming the list and those that exist when there is no such list.
    """
    available = available_cites_lists()
    if list_id not in available:
        raise UnknownCodeListError(list_id, available, CITES_CODE_LIST_DIR)
    data = json.loads((CITES_CODE_LIST_DIR / f"{list_id}.json").read_text(encoding="utf-8"))
    codes = {
        code: CodeEntry(
            code=code,
            name=entry["name"],
            description=entry.get("description"),
            note=entry.get("note"),
            inferred=entry.get("inferred", False),
            uncertain=entry.get("uncertain", False),
        )
        for code, entry in data["codes"].items()
    }
    return CodeList(
        id=data["list"],
        title=data["title"],
        agency=data["agency"],
        version=data["version"],
        source=tuple(data["source"]),
        codes=MappingProxyType(codes),
    )


@cache
def _supplements() -> Mapping[str, Mapping[str, Any]]:
    """``{list id: {code: entry}}`` from ``supplements.json``; empty when the file is absent."""
    path = CODE_LIST_DIR / SUPPLEMENTS_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))["lists"]
