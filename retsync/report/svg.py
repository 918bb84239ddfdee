"""Bar charts as inline SVG text, so the HTML report is one file that opens anywhere, offline.

No JavaScript and no chart library: a merchant may mail the file or open it on a server without internet.
Each bar is a `<rect class="bar">` carrying its value in `data-value` and a `<title>` tooltip, which also
lets tests find the bars in the rendered page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#2f6fb3", "#e07b28", "#3a9a5b", "#c8434b", "#8a62b8", "#8c6d46", "#d46aa6", "#6f7782", "#b5a52d",
           "#2ba3b5")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _nice_max(value: float) -> tuple[float, float]:
    """A round axis end at or above `value` and the step between its gridlines (1, 2 or 5 × 10^n)."""
    if value <= 0:
        return 1, 1
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if step < 1:
        step = 1
    return step * math.ceil(value / step), step


def _number(value: float) -> str:
    return f"{value:g}"


def _svg(chart_id: str, label: str, width: int, height: int, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
            f'aria-label="{escape(label)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<title>{escape(label)}</title>' + "".join(body) + "</svg>")


def _y_axis(left: int, top: int, plot_width: int, plot_height: int, axis_max: float, step: float) -> list[str]:
    parts = []
    tick = 0.0
    while tick <= axis_max + 1e-9:
        y = top + plot_height - plot_height * tick / axis_max
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_width}" y2="{y:.1f}" stroke="#e3e6ea"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="#555">'
                     f'{_number(tick)}</text>')
        tick += step
    return parts


def stacked_columns(chart_id: str, label: str, categories: Sequence[str], series: dict[str, Sequence[int]],
                    width: int = 960, height: int = 300, legend: bool = True) -> str:
    """One column per category, stacked by series (e.g. returns per week, one colour per channel)."""
    left, right, top, bottom = 48, 12, 28, 56 if legend else 32
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(categories))]
    axis_max, step = _nice_max(max(totals, default=0))
    parts = _y_axis(left, top, plot_w, plot_h, axis_max, step)
    slot = plot_w / max(len(categories), 1)
    bar_w = max(slot * 0.7, 1)
    widest = max((len(c) for c in categories), default=1) * 7 + 10  # px a label needs at 12 px type
    label_every = max(1, math.ceil(widest / slot))
    for i, category in enumerate(categories):
        x = left + slot * i + (slot - bar_w) / 2
        y: float = top + plot_h
        for n, (name, values) in enumerate(series.items()):
            value = values[i]
            if value <= 0:
                continue
            h = plot_h * value / axis_max
            y -= h
            parts.append(f'<rect class="bar" data-series="{escape(name)}" data-category="{escape(category)}" '
                         f'data-value="{value}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{color(n)}"><title>{escape(category)} · {escape(name)}: {value}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" {FONT} '
                         f'fill="#333">{escape(category)}</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#888"/>')
    x = left
    for n, name in enumerate(series if legend else ()):  # legend under the axis labels
        parts.append(f'<rect class="legend" x="{x}" y="{height - 18}" width="12" height="12" fill="{color(n)}"/>')
        parts.append(f'<text x="{x + 16}" y="{height - 8}" {FONT} fill="#333">{escape(name)}</text>')
        x += 28 + 7 * len(name)
    return _svg(chart_id, label, width, height, parts)


def horizontal_bars(chart_id: str, label: str, items: Sequence[tuple[str, int]], width: int = 960) -> str:
    """One bar per item, longest first as given (e.g. returns per reason)."""
    left = min(260, 16 + 7 * max((len(name) for name, _ in items), default=4))
    right, top, row = 48, 8, 26
    height = top * 2 + row * max(len(items), 1)
    plot_w = width - left - right
    top_value = max((value for _, value in items), default=0) or 1
    parts = []
    for i, (name, value) in enumerate(items):
        y = top + row * i
        w = plot_w * value / top_value
        parts.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" {FONT} fill="#333">{escape(name)}</text>')
        if value > 0:
            parts.append(f'<rect class="bar" data-category="{escape(name)}" data-value="{value}" x="{left}" '
                         f'y="{y + 4}" width="{w:.1f}" height="{row - 8}" fill="{color(0)}">'
                         f'<title>{escape(name)}: {value}</title></rect>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 17}" {FONT} fill="#333">{value}</text>')
    return _svg(chart_id, label, width, height, parts)


def columns(chart_id: str, label: str, items: Sequence[tuple[str, int]], width: int = 960,
            height: int = 260) -> str:
    """One column per item in the given order (e.g. a histogram)."""
    return stacked_columns(chart_id, label, [name for name, _ in items], {label: [v for _, v in items]},
                           width=width, height=height, legend=False)
