"""GUN document codes: how a French customs declaration (DELTA-G) names the certificate or permit it relies on.

From the stored douane.gouv.fr pages (FACTS §6): common health entry documents checked through TRACES-NT / EU
CSW-CERTEX (C640 CHED-A, C678 CHED-D, N853 CHED-P, C085 CHED-PP) and CITES documents checked against the national
CITES registry (C638 import permit, C639 import notification, C401 (re-)export permit or certificate).
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.errors import InputError


@dataclass(frozen=True)
class GunCode:
    """One document code: what it names, the hub's document kinds it may match, and for CHEDs the CHED type (the
    prefix of a TRACES-NT number, ``CHEDP.FR.2026.0001234``)."""

    code: str
    label: str
    kinds: tuple[str, ...]
    ched_type: str | None = None

    def matches(self, kind: str, number: str) -> bool:
        """Whether a document of ``kind`` numbered ``number`` is what this code names."""
        if kind not in self.kinds:
            return False
        return self.ched_type is None or number.upper().split(".", 1)[0] == f"CHED{self.ched_type}"


GUN_CODES: dict[str, GunCode] = {
    gun.code: gun
    for gun in (
        GunCode("C640", "CHED-A, live animals", ("ched",), "A"),
        GunCode("C678", "CHED-D, food and feed of non-animal origin", ("ched",), "D"),
        GunCode("N853", "CHED-P, products of animal origin", ("ched",), "P"),
        GunCode("C085", "CHED-PP, plants and plant products", ("ched",), "PP"),
        # The CITES kinds are the hub's permit kinds (hub.records.cites.PermitKind); the hub issues no EU import
        # notification, so C639 finds only what a deployment stores under that kind.
        GunCode("C638", "CITES import permit", ("cites_import",)),
        GunCode("C639", "CITES import notification", ("cites_import_notification",)),
        GunCode("C401", "CITES export permit or re-export certificate", ("cites_export", "cites_reexport")),
    )
}

#: The codes of documents that TRACES-NT keeps quantities for through CSW-CERTEX.
CHED_CODES = frozenset(code for code, gun in GUN_CODES.items() if gun.ched_type)


def gun_code(code: str, *, where: str = "code") -> GunCode:
    """The :class:`GunCode` for ``code``; :class:`~hub.errors.InputError` naming the known codes otherwise."""
    try:
        return GUN_CODES[code.strip().upper()]
    except KeyError:
        raise InputError(f"{code!r} is not a GUN document code the hub answers for (known: {', '.join(sorted(GUN_CODES))})", where=where) from None


def code_for(kind: str, number: str) -> str | None:
    """The GUN code naming a document of ``kind`` numbered ``number`` (a CHED's code from its number's type)."""
    return next((gun.code for gun in GUN_CODES.values() if gun.matches(kind, number)), None)
