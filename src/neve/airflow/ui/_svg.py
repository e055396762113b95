"""Inline SVG charts: no JavaScript library, nothing fetched at run time, themed by CSS variables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "line_chart"]

#: A line chart of 10k versions draws at most this many points (evenly spaced, ends kept).
MAX_POINTS = 400


def _fmt(value: float) -> str:
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3e}"


def line_chart(
    labels: Sequence[str], values: Sequence[float | None], *, title: str, width: int = 760, height: int = 220
) -> str:
    """``values`` across ``labels`` (versions, oldest first); missing values leave gaps."""
    points = [(i, label, v) for i, (label, v) in enumerate(zip(labels, values, strict=True))
              if v is not None and math.isfinite(v)]
    if not points:
        return f'<p class="muted">No values of {escape(title)} to chart.</p>'
    if len(points) > MAX_POINTS:
        step = (len(points) - 1) / (MAX_POINTS - 1)
        points = [points[round(i * step)] for i in range(MAX_POINTS)]
    left, right, top, bottom = 86, 16, 14, 34
    lo, hi = min(v for _, _, v in points), max(v for _, _, v in points)
    span = (hi - lo) or abs(hi) or 1.0
    lo, hi = lo - span * 0.08, hi + span * 0.08
    n = max(len(labels) - 1, 1)

    def x(i: int) -> float:
        return left + (width - left - right) * (i / n if len(labels) > 1 else 0.5)

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - lo) / (hi - lo))

    path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, _, v in points)
    dots = "".join(
        f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" class="dot">'
        f"<title>{escape(label)}: {_fmt(v)}</title></circle>"
        for i, label, v in points
    ) if len(points) <= 120 else ""
    ticks = "".join(
        f'<line x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" class="grid"/>'
        f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" class="tick">{_fmt(t)}</text>'
        for t in (lo + (hi - lo) * k / 4 for k in range(5))
    )
    first, last = points[0], points[-1]
    xlabels = (
        f'<text x="{x(first[0]):.1f}" y="{height - 12}" text-anchor="start" class="tick">{escape(first[1])}</text>'
        + (f'<text x="{x(last[0]):.1f}" y="{height - 12}" text-anchor="end" class="tick">{escape(last[1])}</text>'
           if last is not first else "")
    )
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)} by version">'
        f"{ticks}{xlabels}"
        f'<polyline points="{path}" class="line" fill="none"/>{dots}</svg>'
    )


def bar_chart(
    labels: Sequence[str], expected: Sequence[float], actual: Sequence[float], *, title: str,
    width: int = 760, height: int = 200, max_bars: int = 15,
) -> str:
    """Training (``expected``) against current (``actual``) shares per bin; with many bins,
    the ``max_bars`` that moved most."""
    bins = list(range(len(labels)))
    if len(bins) > max_bars:
        bins = sorted(sorted(bins, key=lambda i: -abs(actual[i] - expected[i]))[:max_bars])
    if not bins:
        return ""
    left, right, top, bottom = 48, 8, 22, 58
    hi = max(max(expected[i], actual[i]) for i in bins) or 1.0
    slot = (width - left - right) / len(bins)
    bar = slot * 0.36
    plot_h = height - top - bottom

    def h(v: float) -> float:
        return plot_h * v / hi

    parts = [f'<text x="{left}" y="14" class="title">{escape(title)}</text>',
             f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" class="grid"/>',
             f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="tick">{hi:.2f}</text>']
    for k, i in enumerate(bins):
        cx = left + slot * k + slot / 2
        label = escape(str(labels[i]))
        parts.append(
            f'<rect x="{cx - bar:.1f}" y="{top + plot_h - h(expected[i]):.1f}" width="{bar:.1f}" '
            f'height="{h(expected[i]):.1f}" class="bar-a"><title>{label} training {expected[i]:.3f}</title></rect>'
            f'<rect x="{cx:.1f}" y="{top + plot_h - h(actual[i]):.1f}" width="{bar:.1f}" '
            f'height="{h(actual[i]):.1f}" class="bar-b"><title>{label} current {actual[i]:.3f}</title></rect>'
            f'<text x="{cx:.1f}" y="{top + plot_h + 12}" text-anchor="end" class="tick" '
            f'transform="rotate(-40 {cx:.1f} {top + plot_h + 12})">{label[:14]}</text>'
        )
    svg = f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
    return svg + "".join(parts) + "</svg>"
