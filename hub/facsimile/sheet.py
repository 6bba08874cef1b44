"""What a facsimile shows, before it is drawn: a :class:`Sheet` of titled sections, each a list of rows of
:class:`Box` es (a label key of :mod:`hub.facsimile.labels`, the box's number on the model, the value printed).

The builders of each family (:mod:`hub.facsimile.sps`, :mod:`hub.facsimile.cites`) make sheets; :mod:`hub.facsimile.page`
draws them. Nothing here knows a record or a PDF.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Box:
    """One box of the model: ``label`` (a key of :data:`hub.facsimile.labels.LABELS`), its ``number`` on the model
    (None where the model numbers none), the ``value`` printed in it, and its ``width`` as a share of its row."""

    label: str
    value: str = ""
    number: str | None = None
    width: float = 1.0


@dataclass(frozen=True)
class Section:
    """A part of the sheet under an optional heading (a label key), one list of boxes per row."""

    rows: list[list[Box]]
    heading: str | None = None


@dataclass(frozen=True)
class Sheet:
    """A whole facsimile: the title (label keys, the first the model's name), the document's number, what stands
    under the title (``preamble``: boxes such as the NPPO lines of a phytosanitary certificate), the sections, and
    the last row beside the signature of the issuing authority (place, date, officer)."""

    titles: list[str]
    number: str
    sections: list[Section]
    signing: list[Box]
    preamble: list[list[Box]] = field(default_factory=list)
    subtitle: str = ""
