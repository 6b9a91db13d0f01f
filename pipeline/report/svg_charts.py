"""The two charts report.html draws, written as SVG directly: a raw-vs-clean histogram and a bar chart.

Both are a few dozen shapes, so building the markup is a string join; a plotting library cost a noticeable share
of a large run per chart (BENCHMARKS.md). Text stays text (the page's font, selectable); every string is
escaped; nothing refers outside the SVG.
"""
from __future__ import annotations

import html
import math

import numpy as np

FONT = "font-family:system-ui,sans-serif"
GREY, BLUE, RED = "#7f8c8d", "#2471a3", "#c0392b"


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _symlog(v: np.ndarray | float):
    """matplotlib's symlog with linthresh 1 for counts: linear up to 1, log10 beyond."""
    v = np.asarray(v, dtype=float)
    return np.where(v <= 1.0, v, 1.0 + np.log10(np.maximum(v, 1.0)))


def nice_ticks(lo: float, hi: float, target: int = 5, integer: bool = False) -> list[float]:
    """Round tick values inside [lo, hi] (1, 2 or 5 times a power of ten apart; at least 1 when integer)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / target
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integer:
        step = max(step, 1.0)
    first = math.ceil(lo / step - 1e-9)
    ticks = [k * step for k in range(first, int(math.floor(hi / step + 1e-9)) + 1)]
    return [0.0 if abs(t) < step * 1e-9 else t for t in ticks]


def _tick_label(v: float) -> str:
    return f"{v:.6g}"


def histogram_svg(title: str, edges, series, width: int = 520, height: int = 200) -> str:
    """Step outlines over shared bin edges, counts on a symlog axis.

    series: (label, counts, color, filled) per line, drawn in order; counts has len(edges) - 1 entries."""
    left, right, top, bottom = 56, 10, 24, 30
    pw, ph = width - left - right, height - top - bottom
    edges = np.asarray(edges, dtype=float)
    lo, hi = float(edges[0]), float(edges[-1])
    span = hi - lo if hi > lo else 1.0
    peak = max([float(np.max(c)) for _, c, _, _ in series if len(c)] + [1.0])
    ymax = float(_symlog(peak)) * 1.05

    def x(v):
        return left + (np.asarray(v, dtype=float) - lo) / span * pw

    def y(v):
        return top + ph - _symlog(v) / ymax * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" style="{FONT};font-size:11px">',
           f"<title>{_esc(title)}</title>"]
    count_ticks = [0.0] + [10.0 ** k for k in range(0, int(math.floor(math.log10(peak))) + 1)]
    for t in count_ticks:
        ty = _num(float(y(t)))
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{ty}" y2="{ty}" stroke="#eee"/>'
                   f'<text x="{left - 4}" y="{ty}" text-anchor="end" dominant-baseline="middle">{t:,.0f}</text>')
    for t in nice_ticks(lo, hi):
        tx = _num(float(x(t)))
        out.append(f'<line x1="{tx}" x2="{tx}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#333"/>'
                   f'<text x="{tx}" y="{top + ph + 15}" text-anchor="middle">{_esc(_tick_label(t))}</text>')
    for label, counts, color, filled in series:
        counts = np.asarray(counts, dtype=float)
        if not counts.size:
            continue
        xs, ys = x(edges), y(counts)
        points = [f"{_num(xs[0])},{_num(top + ph)}"]
        for i in range(counts.size):
            points.append(f"{_num(xs[i])},{_num(ys[i])} {_num(xs[i + 1])},{_num(ys[i])}")
        points.append(f"{_num(xs[-1])},{_num(top + ph)}")
        style = (f'fill="{color}" fill-opacity="0.5" stroke="none"' if filled
                 else f'fill="none" stroke="{color}" stroke-width="1.2"')
        out.append(f'<polyline points="{" ".join(points)}" {style}><title>{_esc(label)}</title></polyline>')
    out.append(f'<path d="M{left},{top} V{top + ph} H{left + pw}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{12}" y="{top + ph / 2}" transform="rotate(-90 12 {_num(top + ph / 2)})" '
               f'text-anchor="middle">rows</text>')
    out.append(f'<text x="{left}" y="14" font-size="12">{_esc(title)}</text>')
    lx = left + pw - 10
    for i, (label, _, color, filled) in enumerate(reversed(series)):
        ly = top + 6 + 14 * (len(series) - 1 - i)
        swatch = (f'fill="{color}" fill-opacity="0.5"' if filled else f'fill="none" stroke="{color}"')
        out.append(f'<rect x="{lx - 60}" y="{ly - 5}" width="14" height="9" {swatch}/>'
                   f'<text x="{lx - 42}" y="{ly}" dominant-baseline="middle">{_esc(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def bars_svg(items: list[tuple[str, int]], axis_label: str, color: str = RED, width: int = 720) -> str:
    """Horizontal bars, one per (label, count), in the order given (top to bottom), each with its count."""
    row, top, bottom = 20, 8, 34
    longest = max((len(name) for name, _ in items), default=0)
    left = min(max(60, int(longest * 6.2) + 12), width // 2)
    pw = width - left - 60
    height = top + row * len(items) + bottom
    peak = max((n for _, n in items), default=1) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" style="{FONT};font-size:11px">',
           f"<title>{_esc(axis_label)}</title>"]
    for i, (name, n) in enumerate(items):
        cy = top + row * i + row / 2
        w = n / peak * pw
        out.append(f'<text x="{left - 6}" y="{_num(cy)}" text-anchor="end" dominant-baseline="middle">'
                   f'{_esc(name)}</text>'
                   f'<rect x="{left}" y="{_num(cy - 7)}" width="{_num(w)}" height="14" fill="{color}"/>'
                   f'<text x="{_num(left + w + 4)}" y="{_num(cy)}" dominant-baseline="middle">{n:,}</text>')
    base = top + row * len(items)
    out.append(f'<path d="M{left},{top} V{base} H{left + pw}" fill="none" stroke="#333"/>')
    for t in nice_ticks(0.0, float(peak), integer=True):
        tx = _num(left + t / peak * pw)
        out.append(f'<line x1="{tx}" x2="{tx}" y1="{base}" y2="{base + 4}" stroke="#333"/>'
                   f'<text x="{tx}" y="{base + 15}" text-anchor="middle">{t:,.0f}</text>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 4}" text-anchor="middle">{_esc(axis_label)}</text>')
    out.append("</svg>")
    return "".join(out)
