"""Server-rendered charts: horizontal stacked bars as inline SVG, readable without colour.

No JavaScript and no inline style (the Content-Security-Policy forbids both):
presentation attributes only. Each series has its own fill pattern as well as
its own colour (solid, hatched, dotted, cross-hatched), the legend shows the
pattern, and every bar ends with its values printed (`A 3 · B 0 · C 1 = 4`),
so the chart reads on a grey-scale print and to a colour-blind reader; each
segment also carries a `<title>` for a screen reader or a hover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.dashboard.render import esc

WIDTH = 760
LABEL_WIDTH = 150
BAR_WIDTH = 330
ROW_HEIGHT = 22
BAR_HEIGHT = 14
LEGEND_HEIGHT = 26

# (colour, pattern kind): the pattern tells the series apart without the colour.
_STYLES = (
    ("#154273", "solid"),
    ("#c05800", "hatch"),
    ("#2f7d4a", "dots"),
    ("#6b3fa0", "cross"),
)


@dataclass(frozen=True, slots=True)
class Series:
    """One stacked part of every bar: its name in the legend, its short label, its values."""

    name: str
    short: str
    values: Sequence[int]


def pattern_id(chart_id: str, index: int) -> str:
    return f"{chart_id}-p{index}"


def _pattern(chart_id: str, index: int) -> str:
    colour, kind = _STYLES[index % len(_STYLES)]
    pid = pattern_id(chart_id, index)
    marks = {
        "solid": "",
        "hatch": '<line x1="0" y1="0" x2="0" y2="6" stroke="#ffffff" stroke-width="2"/>',
        "dots": '<circle cx="3" cy="3" r="1.3" fill="#ffffff"/>',
        "cross": (
            '<line x1="0" y1="0" x2="0" y2="6" stroke="#ffffff" stroke-width="1.5"/>'
            '<line x1="0" y1="0" x2="6" y2="0" stroke="#ffffff" stroke-width="1.5"/>'
        ),
    }[kind]
    transform = ' patternTransform="rotate(45)"' if kind in ("hatch", "cross") else ""
    return (
        f'<pattern id="{pid}" data-kind="{kind}" width="6" height="6" '
        f'patternUnits="userSpaceOnUse"{transform}>'
        f'<rect width="6" height="6" fill="{colour}"/>{marks}</pattern>'
    )


def value_text(series: Sequence[Series], row: int) -> str:
    """The values printed at the end of a bar: `A 3 · B 0 · C 1 = 4`."""
    parts = [f"{s.short} {s.values[row]}" for s in series]
    total = sum(s.values[row] for s in series)
    return " · ".join(parts) + (f" = {total}" if len(series) > 1 else "")


def stacked_bars(
    chart_id: str, title: str, categories: Sequence[str], series: Sequence[Series]
) -> str:
    """A horizontal stacked bar per category, one part per series, scaled to the largest total."""
    for s in series:
        if len(s.values) != len(categories):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(categories)}")
        if any(v < 0 for v in s.values):
            raise ValueError(f"series {s.name!r} has a negative value")
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    largest = max(totals, default=0)
    height = LEGEND_HEIGHT + ROW_HEIGHT * max(len(categories), 1) + 6
    title_id = f"{chart_id}-title"
    parts = [
        f'<svg class="chart" id="{esc(chart_id)}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
        f'aria-labelledby="{esc(title_id)}">',
        f'<title id="{esc(title_id)}">{esc(title)}</title>',
        "<defs>" + "".join(_pattern(chart_id, i) for i in range(len(series))) + "</defs>",
    ]
    x = LABEL_WIDTH
    for index, s in enumerate(series):  # the legend: pattern swatch and name
        parts.append(
            f'<rect x="{x}" y="5" width="16" height="12" fill="url(#{pattern_id(chart_id, index)})"'
            ' stroke="#1b1f24" stroke-width="0.5"/>'
            f'<text x="{x + 20}" y="15" font-size="12" fill="#1b1f24">{esc(s.name)}</text>'
        )
        x += 36 + 8 * len(s.name)
    for row, category in enumerate(categories):
        y = LEGEND_HEIGHT + row * ROW_HEIGHT
        parts.append(
            f'<g class="bar" data-category="{esc(category)}" data-total="{totals[row]}">'
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 12}" font-size="12" text-anchor="end" '
            f'fill="#1b1f24">{esc(category)}</text>'
        )
        offset = float(LABEL_WIDTH)
        for index, s in enumerate(series):
            value = s.values[row]
            if value == 0 or largest == 0:
                continue
            width = BAR_WIDTH * value / largest
            parts.append(
                f'<rect x="{offset:.1f}" y="{y + 1}" width="{width:.1f}" height="{BAR_HEIGHT}" '
                f'fill="url(#{pattern_id(chart_id, index)})" stroke="#1b1f24" '
                f'stroke-width="0.5" data-series="{esc(s.short)}" data-value="{value}">'
                f"<title>{esc(category)} · {esc(s.name)}: {value}</title></rect>"
            )
            offset += width
        parts.append(
            f'<text x="{LABEL_WIDTH + BAR_WIDTH + 8}" y="{y + 12}" font-size="12" '
            f'fill="#1b1f24" class="values">{esc(value_text(series, row))}</text></g>'
        )
    if not categories:
        parts.append(
            f'<text x="{LABEL_WIDTH}" y="{LEGEND_HEIGHT + 12}" font-size="12" '
            'fill="#5b6470">geen gegevens</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
