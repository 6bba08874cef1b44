"""Drawing a :class:`~hub.facsimile.sheet.Sheet` on A4 paper with fpdf2: the title block with the QR code and the
verification code beside it, the boxes of the model row by row (a row that does not fit goes to the next page), the
signature box of the issuing authority last, and on every page the facsimile notice, the verification address and
the page number.

Text is set in a Unicode TrueType font (DejaVu Sans from Debian's fonts-dejavu-core, else Liberation Sans, else the
file ``HUB_FACSIMILE_FONT`` names), so that every name a certificate carries prints as written.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from hub.errors import ConfigurationError
from hub.facsimile.labels import label
from hub.facsimile.sheet import Box, Sheet

_FONTS = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
     "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"),
    ("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf", "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
     "/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf"),
)
FONT_VARIABLE = "HUB_FACSIMILE_FONT"

PAGE_WIDTH, PAGE_HEIGHT, MARGIN = 210.0, 297.0, 10.0
_FOOTER = 17.0  # room kept at the bottom of every page for the notice and the page number
_QR_SIZE = 32.0
_LABEL_SIZE, _VALUE_SIZE = 6.0, 8.5
_LABEL_LINE, _VALUE_LINE = 2.6, 3.8
_PAD = 1.2
_MAX_VALUE_LINES = 48  # a longer value goes on in a next row: one box never outgrows a page
_SIGNATURE_HEIGHT = 24.0
_INK, _LABEL_INK, _RULE, _BAND = (0, 0, 0), (60, 60, 60), (90, 90, 90), (232, 236, 240)

#: The QR code's error correction: M (15 %) survives a creased or stamped paper.
QR_ERROR = "m"
QR_SCALE, QR_BORDER = 8, 4


@dataclass(frozen=True)
class Drawn:
    """A drawn facsimile: the PDF, and where its signature goes (a 0-based page and a box in PDF points from the
    page's bottom-left corner, as pyHanko wants it)."""

    pdf: bytes
    signature_page: int
    signature_box: tuple[int, int, int, int]


def qr_png(url: str) -> bytes:
    """The QR code of ``url`` as the facsimile prints it (PNG, :data:`QR_SCALE` pixels a module, a quiet zone of
    :data:`QR_BORDER` modules)."""
    buffer = io.BytesIO()
    segno.make(url, error=QR_ERROR).save(buffer, kind="png", scale=QR_SCALE, border=QR_BORDER)
    return buffer.getvalue()


def fonts() -> tuple[str, str, str]:
    """The regular, bold and monospace bold font files to set text in; :class:`ConfigurationError` when the
    machine has none (install fonts-dejavu-core, or name a TrueType file in ``HUB_FACSIMILE_FONT``)."""
    chosen = os.environ.get(FONT_VARIABLE)
    if chosen:
        if not Path(chosen).is_file():
            raise ConfigurationError(f"{FONT_VARIABLE}={chosen}: no such font file")
        return chosen, chosen, chosen
    for regular, bold, mono in _FONTS:
        if Path(regular).is_file():
            bold = bold if Path(bold).is_file() else regular
            return regular, bold, mono if Path(mono).is_file() else bold
    raise ConfigurationError(f"no Unicode font for the facsimile: install fonts-dejavu-core (apt-get install fonts-dejavu-core) or set {FONT_VARIABLE} to a TrueType file")


class _Pages(FPDF):
    def __init__(self, sheet: Sheet, languages: Sequence[str], url: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.sheet, self.languages, self.url = sheet, tuple(languages), url
        regular, bold, mono = fonts()
        self.add_font("Sans", "", regular)
        self.add_font("Sans", "B", bold)
        self.add_font("Mono", "B", mono)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(False)
        self.alias_nb_pages()
        self.set_draw_color(*_RULE)
        self.set_line_width(0.25)

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_xy(MARGIN, MARGIN - 4)
        self.set_font("Sans", "B", 8)
        self.set_text_color(*_INK)
        self.cell(PAGE_WIDTH - 2 * MARGIN, 4, f"{' / '.join(label(self.sheet.titles[0], self.languages))}  —  {self.sheet.number}",
                  new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_y(MARGIN + 2)

    def footer(self) -> None:
        width = PAGE_WIDTH - 2 * MARGIN
        self.set_y(PAGE_HEIGHT - _FOOTER + 2)
        self.line(MARGIN, self.get_y(), PAGE_WIDTH - MARGIN, self.get_y())
        self.set_text_color(*_LABEL_INK)
        self.set_font("Sans", "", 5.5)
        self.multi_cell(width, 2.4, "  ".join(label("facsimile", self.languages)), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font("Sans", "", 6.5)
        verify = " / ".join(label("verify", self.languages))
        pages = " / ".join(label("page", self.languages))
        self.cell(width * 0.8, 3.5, f"{verify}: {self.url}", new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.cell(width * 0.2, 3.5, f"{pages} {self.page_no()}/{{nb}}", align="R")

    # --- measuring and drawing boxes ------------------------------------------------------------------------------

    def _label_text(self, box: Box) -> str:
        words = " / ".join(label(box.label, self.languages))
        return f"**{box.number}**  {words}" if box.number else words

    def _lines(self, text: str, width: float, size: float, *, markdown: bool = False, style: str = "") -> list[str]:
        self.set_font("Sans", style, size)
        if not text:
            return []
        return self.multi_cell(width, 1, text, dry_run=True, output="LINES", markdown=markdown, padding=0)

    def _fits(self, height: float) -> None:
        if self.get_y() + height > PAGE_HEIGHT - _FOOTER:
            self.add_page()

    def row(self, boxes: list[Box], *, minimum: float = 0.0) -> tuple[float, float, list[float]]:
        """Draw one row of boxes across the page; returns the top and height of its last part and the boxes' widths.
        A value longer than :data:`_MAX_VALUE_LINES` lines goes on in the same boxes of a next row, nothing cut."""
        total = sum(b.width for b in boxes)
        widths = [(PAGE_WIDTH - 2 * MARGIN) * b.width / total for b in boxes]
        values = [self._lines(b.value, w - 2 * _PAD, _VALUE_SIZE) for b, w in zip(boxes, widths)]
        start = 0
        while True:
            parts = [lines[start:start + _MAX_VALUE_LINES] for lines in values]
            top, height = self._row_part(boxes, widths, parts, minimum)
            start += _MAX_VALUE_LINES
            if all(len(lines) <= start for lines in values):
                return top, height, widths

    def _row_part(self, boxes: list[Box], widths: list[float], parts: list[list[str]], minimum: float) -> tuple[float, float]:
        labels = [self._label_text(b) for b in boxes]
        heights = [2 * _PAD + len(self._lines(text, w - 2 * _PAD, _LABEL_SIZE, markdown=True)) * _LABEL_LINE + max(len(lines), 1) * _VALUE_LINE + 0.6
                   for text, w, lines in zip(labels, widths, parts)]
        height = max([minimum, *heights])
        self._fits(height)
        top, x = self.get_y(), MARGIN
        for text, width, lines in zip(labels, widths, parts):
            self.rect(x, top, width, height)
            self.set_xy(x + _PAD, top + _PAD)
            self.set_text_color(*_LABEL_INK)
            self.set_font("Sans", "", _LABEL_SIZE)
            self.multi_cell(width - 2 * _PAD, _LABEL_LINE, text, markdown=True, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
            if lines:
                self.set_x(x + _PAD)
                self.set_text_color(*_INK)
                self.set_font("Sans", "", _VALUE_SIZE)
                self.multi_cell(width - 2 * _PAD, _VALUE_LINE, "\n".join(lines), align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
            x += width
        self.set_xy(MARGIN, top + height)
        return top, height

    def heading(self, key: str) -> None:
        text = " / ".join(label(key, self.languages))
        lines = self._lines(text, PAGE_WIDTH - 2 * MARGIN - 2 * _PAD, 7.5, style="B")
        height = len(lines) * 3.4 + 1.6
        self._fits(height + 12)  # a heading never ends a page alone
        self.set_fill_color(*_BAND)
        self.rect(MARGIN, self.get_y(), PAGE_WIDTH - 2 * MARGIN, height, style="DF")
        self.set_xy(MARGIN + _PAD, self.get_y() + 0.8)
        self.set_text_color(*_INK)
        self.multi_cell(PAGE_WIDTH - 2 * MARGIN - 2 * _PAD, 3.4, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_y(self.get_y() + 0.8)

    # --- the title block -------------------------------------------------------------------------------------------

    def title_block(self, *, code: str, status: str | None, qr: bytes) -> None:
        left = PAGE_WIDTH - 2 * MARGIN - _QR_SIZE - 10
        self.set_xy(MARGIN, MARGIN)
        self.set_text_color(*_INK)
        for index, key in enumerate(self.sheet.titles):
            for position, words in enumerate(label(key, self.languages)):
                self.set_font("Sans", "B", (12 if position == 0 else 9.5) if index == 0 else 8)
                self.multi_cell(left, 5 if index == 0 and position == 0 else 4, words, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.set_y(self.get_y() + 1)
        self.set_text_color(*_LABEL_INK)
        self.set_font("Sans", "", _LABEL_SIZE + 1)
        self.cell(left, 4, " / ".join(label("number", self.languages)), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*_INK)
        self.set_font("Sans", "B", 13)
        self.multi_cell(left, 6, self.sheet.number, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if self.sheet.subtitle:
            self.set_font("Sans", "", 7.5)
            self.multi_cell(left, 3.4, self.sheet.subtitle, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if status:
            self.set_text_color(170, 0, 0)
            self.set_font("Sans", "B", 8)
            self.multi_cell(left, 4, f"{' / '.join(label('status', self.languages))}: {status.upper()}", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        bottom = self.get_y()
        # the QR code and the verification code in clear, top right
        column = _QR_SIZE + 8
        x = PAGE_WIDTH - MARGIN - column
        self.image(io.BytesIO(qr), x=x + 4, y=MARGIN - 2, w=_QR_SIZE, h=_QR_SIZE, alt_text=self.url)
        self.set_xy(x, MARGIN - 2 + _QR_SIZE)
        self.set_text_color(*_LABEL_INK)
        self.set_font("Sans", "", 5.5)
        self.multi_cell(column, 2.4, " / ".join(label("verification_code", self.languages)), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_x(x)
        self.set_text_color(*_INK)
        self.set_font("Mono", "B", 9.5)
        self.cell(column, 4.5, code, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_y(max(bottom, self.get_y()) + 2)


def draw(sheet: Sheet, *, languages: Sequence[str], url: str, code: str, status: str | None = None, title: str = "", author: str = "") -> Drawn:
    """The PDF of ``sheet`` labelled in ``languages``, its QR code carrying ``url`` and ``code`` printed beside it;
    ``status`` (the document's lifecycle when it is no longer simply issued) is printed under the number."""
    pages = _Pages(sheet, languages, url)
    pages.set_lang(languages[0])
    pages.set_title(title or sheet.number)
    pages.set_author(author)
    pages.set_subject(" / ".join(label(sheet.titles[0], languages)))
    pages.set_creator("trade-document-hub facsimile")
    pages.add_page()
    pages.title_block(code=code, status=status, qr=qr_png(url))
    for row in sheet.preamble:
        pages.row(row)
    for section in sheet.sections:
        if section.heading:
            pages.heading(section.heading)
        for row in section.rows:
            pages.row(row)
    signature = Box("signature_stamp", "", width=1.3)
    top, height, widths = pages.row([*sheet.signing, signature], minimum=_SIGNATURE_HEIGHT)
    x = PAGE_WIDTH - MARGIN - widths[-1]
    # the signature appearance fills the box below its label, in points from the bottom-left corner
    to_points = 72 / 25.4
    box = (round((x + _PAD) * to_points), round((PAGE_HEIGHT - top - height + _PAD) * to_points),
           round((x + widths[-1] - _PAD) * to_points), round((PAGE_HEIGHT - top - 7) * to_points))
    return Drawn(bytes(pages.output()), pages.page_no() - 1, box)
