"""How much of a document survives a round trip: every leaf value and attribute at its path, sibling order aside."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from lxml import etree

XMLDSIG_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"


def leaves(root: etree._Element) -> Counter[tuple[str, str]]:
    """The multiset of (path of tags, value) for every leaf text and every attribute below ``root``.

    Paths use Clark-notation tags without positions (sibling order aside); the enveloped signature is not content.
    """
    found: Counter[tuple[str, str]] = Counter()

    def walk(element: etree._Element, path: str) -> None:
        here = f"{path}/{element.tag}"
        for name, value in element.attrib.items():
            found[(f"{here}/@{name}", value)] += 1
        children = [c for c in element if isinstance(c.tag, str) and c.tag != XMLDSIG_SIGNATURE]
        if not children:
            found[(here, element.text or "")] += 1
        for child in children:
            walk(child, here)

    walk(root, "")
    return found


def canonical(element: etree._Element) -> str:
    """An order-independent canonical form of a tree: equal for trees that differ only in sibling order."""
    children = sorted(canonical(c) for c in element if isinstance(c.tag, str) and c.tag != XMLDSIG_SIGNATURE)
    attributes = sorted(element.attrib.items())
    text = (element.text or "") if not children else ""
    return f"<{element.tag} {attributes!r}>{text!r}{''.join(children)}</>"


@dataclass(frozen=True)
class Fidelity:
    """What share of the original's leaves the copy kept, and which were lost or added."""

    total: int
    kept: int
    lost: list[tuple[str, str]]
    added: list[tuple[str, str]]

    @property
    def share(self) -> float:
        return self.kept / self.total if self.total else 1.0


def compare(original: etree._Element, copy: etree._Element) -> Fidelity:
    """Compare the leaves of ``copy`` with those of ``original``."""
    before, after = leaves(original), leaves(copy)
    kept = sum((before & after).values())
    return Fidelity(
        total=sum(before.values()),
        kept=kept,
        lost=sorted((before - after).elements()),
        added=sorted((after - before).elements()),
    )
