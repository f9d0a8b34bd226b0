"""Charts as inline SVG text, drawn by pure functions (no JavaScript library, no I/O).

Every chart carries role="img", an aria-label that says what it shows in words, and a
<title>; the page shows the same numbers in a table beside it for screen readers and for
anyone who wants the figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Okabe & Ito's palette: told apart by people with the common colour-vision deficiencies.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#000000",
    "#F0E442",
)
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    # Its place in the palette (None: its place in the chart), so a group keeps its colour
    # from one chart to the next.
    colour_index: int | None = None


def number(value: float) -> str:
    """A short, readable figure: 0, 1.5, 12.3, 1250; "<0.001" for a trace."""
    if value == 0:
        return "0"
    if 0 < value < 0.001:
        return "<0.001"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) >= 0.01 else f"{value:.2g}"


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 up to at least ``top`` (steps of 1, 2 or 5 times 10^k)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    steps = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(steps + 1)]


def colour(index: int, s: Series) -> str:
    return PALETTE[(index if s.colour_index is None else s.colour_index) % len(PALETTE)]


def summary(title: str, series: Sequence[Series], unit: str) -> str:
    """The chart in words: its title and each series' total."""
    if not any(sum(s.values) for s in series):
        return f"{title}: nothing in this range."
    totals = ", ".join(f"{s.name} {number(sum(s.values))} {unit}" for s in series)
    return f"{title}. Totals: {totals}."


def stacked_bars(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str,
    width: int = 720,
    height: int = 300,
) -> Markup:
    """A stacked bar chart: one bar per label, one coloured <g class="series"> per series
    (a <rect> per non-zero value, each with its own <title> tooltip), y axis in ``unit``,
    and a legend below the plot."""
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(labels)}")
    left, right, top, bottom = 56, 12, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    per_row = max(1, plot_w // 170)
    legend_rows = math.ceil(len(series) / per_row) if series else 0
    total_h = height + legend_rows * 22 + (8 if legend_rows else 0)

    stacks = [sum(s.values[i] for s in series) for i in range(len(labels))]
    ticks = nice_ticks(max(stacks, default=0.0))
    y_max = ticks[-1]

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / y_max

    slot = plot_w / max(1, len(labels))
    bar_w = max(1.0, slot * 0.8)
    label = summary(title, series, unit)
    out = [
        f'<svg id="{escape(chart_id)}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {total_h}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'aria-label="{escape(label)}" {FONT}>',
        f"<title>{escape(label)}</title>",
        '<g class="axes" stroke="#555" fill="#222">',
    ]
    for tick in ticks:
        ty = y(tick)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}" '
            f'stroke="#ccc" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" stroke="none">'
            f"{tick:g}</text>"
        )
    out.append(
        f'<text x="12" y="{top + plot_h / 2:.1f}" text-anchor="middle" stroke="none" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">{escape(unit)}</text>'
    )
    every = max(1, math.ceil(len(labels) / 8))
    for i, text in enumerate(labels):
        if i % every:
            continue
        x = left + slot * i + slot / 2
        out.append(
            f'<text class="x-label" x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
            f'stroke="none">{escape(text)}</text>'
        )
    out.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}"/>'
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>'
    )
    out.append("</g>")

    base = [0.0] * len(labels)
    for index, s in enumerate(series):
        out.append(f'<g class="series" data-series="{escape(s.name)}" fill="{colour(index, s)}">')
        for i, value in enumerate(s.values):
            if value <= 0:
                continue
            x = left + slot * i + (slot - bar_w) / 2
            y_top, y_bottom = y(base[i] + value), y(base[i])
            base[i] += value
            tip = f"{s.name}, {labels[i]}: {number(value)} {unit}"
            out.append(
                f'<rect x="{x:.1f}" y="{y_top:.1f}" width="{bar_w:.1f}" '
                f'height="{max(0.5, y_bottom - y_top):.1f}"><title>{escape(tip)}</title></rect>'
            )
        out.append("</g>")

    out.append('<g class="legend">')
    for index, s in enumerate(series):
        row, col = divmod(index, per_row)
        lx, ly = left + col * 170, height + 8 + row * 22
        out.append(
            f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{colour(index, s)}"/>'
            f'<text x="{lx + 18}" y="{ly + 11}" fill="#222">{escape(s.name)}</text>'
        )
    out.append("</g></svg>")
    return Markup("".join(out))  # noqa: S704 - every text and attribute above is escaped
