"""Line charts drawn on the server as inline SVG: axes, ticks, labels and a legend, no JavaScript.

    svg = line_chart([Series("lstm", [(1, 2.1), (2, 1.9)], "#0072B2")], "NLL", "época", "nats")

Used by the /comparar page for training curves and metrics against temperature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    color: str
    dashed: bool = False
    markers: bool = True
    in_legend: bool = True   # False: drawn, but explained by another legend entry


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 x 10^k) covering [lo, hi] with ~count steps;
    with ``integer`` the step is a whole number (epochs, orders)."""
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo < 1e-12:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = max((hi - lo) / count, 1.0) if integer else (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in steps if m * magnitude >= raw * (1 - 1e-9))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def line_chart(series: Sequence[Series], title: str, x_label: str, y_label: str,
               x_format: Callable[[float], str] = "{:g}".format,
               y_format: Callable[[float], str] = "{:g}".format,
               width: int = 440, height: int = 340, chart_id: str = "grafica",
               integer_x: bool = False, y_range: tuple[float, float] | None = None) -> str:
    """An SVG line chart of ``series`` (each a list of (x, y) points) with a legend below.

    The x-axis spans exactly the data; the y-axis spans round ticks around it, or ``y_range``
    when given (lines leaving it are clipped at the frame).
    """
    left, right, top = 74, 14, 34
    legend_rows = _legend_rows(series, width - left - right)
    bottom = 56 + 22 * len(legend_rows)
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for s in series for x, _ in s.points] or [0.0, 1.0]
    ys = [y for s in series for _, y in s.points] or [0.0, 1.0]
    x0, x1 = min(xs), max(xs)
    if x1 - x0 < 1e-12:
        x0, x1 = x0 - 1, x1 + 1
    x_ticks = [t for t in nice_ticks(x0, x1, 6, integer=integer_x) if x0 - 1e-9 <= t <= x1 + 1e-9]
    y_ticks = nice_ticks(*(y_range or (min(ys), max(ys))), 5)
    if y_range:
        y_ticks = [t for t in y_ticks if y_range[0] - 1e-9 <= t <= y_range[1] + 1e-9]
    y0, y1 = y_range or (y_ticks[0], y_ticks[-1])

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    out = [f'<svg class="grafica" viewBox="0 0 {width} {height}" role="img" '
           f'aria-labelledby="{chart_id}-titulo" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="{chart_id}-titulo">{escape(title)}</title>',
           f'<text x="12" y="20" class="titulo">{escape(title)}</text>',
           f'<clipPath id="{chart_id}-marco"><rect x="{left}" y="{top}" width="{plot_w}" '
           f'height="{plot_h}"/></clipPath>']
    for t in y_ticks:
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(t):.1f}" y2="{py(t):.1f}" '
                   f'class="rejilla"/>')
        out.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">'
                   f'{escape(y_format(t))}</text>')
    for t in x_ticks:
        out.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top + plot_h}" '
                   f'y2="{top + plot_h + 5}" class="eje"/>')
        out.append(f'<text x="{px(t):.1f}" y="{top + plot_h + 18}" text-anchor="middle">'
                   f'{escape(x_format(t))}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" class="eje"/>')
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" '
               f'y2="{top + plot_h}" class="eje"/>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 38}" text-anchor="middle" '
               f'class="etiqueta">{escape(x_label)}</text>')
    out.append(f'<text transform="translate(16 {top + plot_h / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle" class="etiqueta">{escape(y_label)}</text>')
    out.append(f'<g clip-path="url(#{chart_id}-marco)">')
    for s in (s for s in series if s.points):
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" '
                   f'stroke-width="2"{dash}><title>{escape(s.label)}</title></polyline>')
        if s.markers:
            out.extend(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{s.color}">'
                       f'<title>{escape(s.label)}: {escape(x_format(x))}, '
                       f'{escape(y_format(y))}</title></circle>' for x, y in s.points)
    out.append("</g>")
    legend_top = top + plot_h + 52
    for row, items in enumerate(legend_rows):
        for x, s in items:
            y = legend_top + 22 * row
            dash = ' stroke-dasharray="6 4"' if s.dashed else ""
            out.append(f'<line x1="{left + x}" x2="{left + x + 24}" y1="{y}" y2="{y}" '
                       f'stroke="{s.color}" stroke-width="2"{dash}/>')
            out.append(f'<text x="{left + x + 30}" y="{y + 4}" class="leyenda">'
                       f'{escape(s.label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _legend_rows(series: Sequence[Series], width: float) -> list[list[tuple[float, Series]]]:
    """Legend entries (x offset, series) wrapped into rows that fit ``width``."""
    rows: list[list[tuple[float, Series]]] = [[]]
    x = 0.0
    for s in (s for s in series if s.in_legend):
        item = 30 + 8.5 * len(s.label) + 18  # sample line, text at ~8.5 px per character, gap
        if rows[-1] and x + item > width:
            rows.append([])
            x = 0.0
        rows[-1].append((x, s))
        x += item
    return rows if rows[0] else []
