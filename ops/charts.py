"""Server-rendered SVG line charts for the admin (no JavaScript, no chart library)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Colour-blind-friendly palette (Okabe–Ito), then greys for the rest.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
)
OTHER_COLOUR = "#9A9A9A"


@dataclass(frozen=True)
class Series:
    """One line: a label and one value per x position (``None`` = no data there)."""

    label: str
    values: Sequence[float | None]
    colour: str | None = None


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ ``value`` (axis maxima)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value - 1e-12:
            return float(candidate)
    return float(10 ** (exponent + 1))


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    y_suffix: str = "",
    width: int = 760,
    height: int = 320,
    y_max: float | None = None,
) -> SafeString:
    """An SVG line chart with a y grid, x labels, point tooltips and a legend."""
    left, right, top, bottom = 52, 170, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for v in s.values if v is not None]
    top_value = y_max if y_max is not None else nice_ceiling(max(values, default=0.0))
    n = len(x_labels)

    def x_at(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y_at(v: float) -> float:
        return top + plot_h - plot_h * (v / top_value if top_value else 0)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="spine-chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="16" font-size="13" font-weight="bold" fill="currentColor">'
        f"{escape(title)}</text>",
    ]
    for step in range(6):  # a nice ceiling divides into five round steps
        v = top_value * step / 5
        y = y_at(v)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
            f'stroke="#ccc" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="currentColor">'
            f"{_fmt(v)}{escape(y_suffix)}</text>"
        )
    every = max(1, math.ceil(n / 10))
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == n - 1:
            parts.append(
                f'<text x="{x_at(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                f'fill="currentColor">{escape(label)}</text>'
            )
    if not values:
        parts.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" '
            f'fill="currentColor">no data yet</text>'
        )
    for index, s in enumerate(series):
        colour = s.colour or PALETTE[index % len(PALETTE)]
        points = [(x_at(i), y_at(v), v, i) for i, v in enumerate(s.values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>'
            )
        for x, y, v, i in points:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}" '
                f'data-series="{escape(s.label)}" data-value="{v:.4f}">'
                f"<title>{escape(s.label)} {escape(x_labels[i])}: {_fmt(v)}{escape(y_suffix)}"
                f"</title></circle>"
            )
        ly = top + 4 + index * 16
        lx = left + plot_w + 14
        parts.append(
            f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{lx + 15}" y="{ly + 9}" fill="currentColor">{escape(s.label)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped


def _fmt(value: float) -> str:
    return f"{value:.1f}" if value % 1 else f"{value:.0f}"
