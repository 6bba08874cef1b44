"""The non-conformities chart, drawn on the server as SVG (no script): the most frequent country × product × cause
first, as a bar of its total (the first in red, the rest in blue), then a cell per month shaded by its count.
Every label is escaped; the figure carries a title and description for screen readers."""

from __future__ import annotations

from html import escape
from typing import Sequence

from hub.web.queries import Problem

TOP_COLOUR, BAR_COLOUR, EMPTY_CELL = "#b0231a", "#0b5cad", "#f3f5f7"
_LABEL, _BAR, _CELL, _ROW, _HEAD = 300, 180, 34, 28, 46


def problems_svg(periods: Sequence[str], problems: Sequence[Problem], *, title: str, empty: str) -> str:
    """An SVG document of ``problems`` (most frequent first) over ``periods`` (``YYYY-MM``, oldest first)."""
    width = _LABEL + _BAR + 20 + _CELL * len(periods) + 10
    height = _HEAD + _ROW * max(1, len(problems)) + 10
    top = max((p.total for p in problems), default=0)
    peak = max((n for p in problems for n in p.by_period), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="nc-chart-title nc-chart-desc" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="nc-chart-title">{escape(title)}</title>',
        f'<desc id="nc-chart-desc">{escape("; ".join(f"{p.country} × {p.product} × {p.cause}: {p.total}" for p in problems) or empty)}</desc>',
        f'<text x="0" y="16" font-weight="700" fill="#1b1f24">{escape(title)}</text>',
    ]
    for column, period in enumerate(periods):
        x = _LABEL + _BAR + 20 + column * _CELL
        parts.append(f'<text x="{x + _CELL / 2:.0f}" y="{_HEAD - 8}" text-anchor="middle" fill="#4a5360" font-size="10">{escape(period[2:])}</text>')
    if not problems:
        parts.append(f'<text x="0" y="{_HEAD + 18}" fill="#4a5360">{escape(empty)}</text>')
    for row, problem in enumerate(problems):
        y = _HEAD + row * _ROW
        colour = TOP_COLOUR if row == 0 else BAR_COLOUR
        weight = ' font-weight="700"' if row == 0 else ""
        label = f"{problem.country} × {problem.product} × {problem.cause}"
        bar = max(2, round(_BAR * problem.total / top)) if top else 0
        parts.append(f'<g class="problem" data-rank="{row + 1}">')
        parts.append(f'<text x="0" y="{y + 18}" fill="#1b1f24"{weight}>{escape(_clip(label, 46))}</text>')
        parts.append(f'<rect x="{_LABEL}" y="{y + 6}" width="{bar}" height="{_ROW - 10}" fill="{colour}"><title>{escape(label)}: {problem.total}</title></rect>')
        parts.append(f'<text x="{_LABEL + bar + 4}" y="{y + 18}" fill="#1b1f24"{weight}>{problem.total}</text>')
        for column, count in enumerate(problem.by_period):
            x = _LABEL + _BAR + 20 + column * _CELL
            fill = _shade(count, peak, colour) if count else EMPTY_CELL
            parts.append(f'<rect x="{x + 1}" y="{y + 3}" width="{_CELL - 2}" height="{_ROW - 4}" fill="{fill}"><title>{escape(periods[column])}: {count}</title></rect>')
            if count:
                ink = "#ffffff" if count * 2 > peak else "#1b1f24"
                parts.append(f'<text x="{x + _CELL / 2:.0f}" y="{y + 18}" text-anchor="middle" fill="{ink}" font-size="11">{count}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts)


def _shade(count: int, peak: int, colour: str) -> str:
    """``colour`` mixed with white in proportion to ``count`` / ``peak`` (at least a quarter, to stay visible)."""
    share = 0.25 + 0.75 * count / peak if peak else 1.0
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    mix = (round(255 - (255 - c) * share) for c in (red, green, blue))
    return "#" + "".join(f"{c:02x}" for c in mix)


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
