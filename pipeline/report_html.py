"""report.html: the report for people. Self-contained and offline: inline SVG charts (matplotlib), inline CSS,
rendered from report.json's content with a Jinja2 template. Nothing is fetched when it is opened.
"""
from __future__ import annotations

import html
import io
from importlib import resources

import numpy as np

MAX_REASONS = 25  # bars in the reasons chart; the table lists every reason
MAX_CHARTS = 200  # histograms drawn (about 40 ms each); wider tables get the counts table for the rest


def render_html(report: dict) -> str:
    import jinja2
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    template = env.from_string(resources.files("pipeline").joinpath("templates/report.html.j2").read_text("utf-8"))
    features = []
    charts = 0
    for name, f in report["features"].items():
        draw = bool(f.get("histogram")) and charts < MAX_CHARTS
        charts += draw
        features.append({"name": name, "kind": f["kind"], "role": f["role"], "raw": f["raw"], "clean": f["clean"],
                         "normalization": f.get("normalization"),
                         "chart": _histogram_svg(name, f["histogram"]) if draw else None})
    reasons = sorted(report["counts"]["by_rule"].items(), key=lambda kv: (-kv[1], kv[0]))
    skipped = sum(1 for f in report["features"].values() if f.get("histogram")) - charts
    return template.render(report=report, features=features, reasons=reasons, charts_skipped=skipped,
                           reasons_chart=_reasons_svg(reasons[:MAX_REASONS]) if reasons else None,
                           fmt=_fmt)


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _figure(width: float, height: float, left: float = 0.12):
    # The object-oriented API on a bare Figure: no pyplot state, safe in a library and in threads.
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot()
    fig.subplots_adjust(left=left, right=0.97, bottom=0.45 / height, top=1 - 0.3 / height)  # margins in inches
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _svg(fig) -> str:
    import matplotlib
    buf = io.StringIO()
    # Fixed margins instead of bbox_inches="tight" (which draws twice); text kept as text, not paths.
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 9}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG is inlined in HTML


def _reasons_svg(reasons) -> str:
    fig, ax = _figure(7.5, 0.3 * len(reasons) + 0.9, left=0.35)
    names = [r for r, _ in reasons][::-1]
    counts = [n for _, n in reasons][::-1]
    ax.barh(range(len(names)), counts, color="#c0392b")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("rows quarantined (a row counts once per reason)")
    for i, n in enumerate(counts):
        ax.text(n, i, f" {n:,}", va="center", fontsize=8)
    return _svg(fig)


def _histogram_svg(name: str, h: dict) -> str:
    from matplotlib.ticker import FuncFormatter, NullLocator
    edges = np.asarray(h["edges"])
    fig, ax = _figure(5.2, 2.1)
    for which, color in (("raw", "#7f8c8d"), ("clean", "#2471a3")):
        counts = np.asarray(h[which]["counts"], dtype=float)
        ax.stairs(counts, edges, label=which, color=color, fill=which == "clean", alpha=0.5 if which == "clean"
                  else 1.0)
    outside = [f"{w}: {h[w]['below']:,} below, {h[w]['above']:,} above" for w in ("raw", "clean")
               if h[w]["below"] or h[w]["above"]]
    ax.set_title(html.unescape(name) + ("   (" + "; ".join(outside) + ")" if outside else ""), fontsize=9,
                 loc="left")
    ax.set_yscale("symlog", linthresh=1)
    # Plain tick labels: the default 10^k labels go through mathtext, which costs more than the whole chart.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_ylabel("rows")
    ax.legend(frameon=False, fontsize=8)
    return _svg(fig)
