"""report.html: the report for people. Self-contained and offline: inline SVG charts (svg_charts), inline CSS,
rendered from report.json's content with a Jinja2 template. Nothing is fetched when it is opened.
"""
from __future__ import annotations

from importlib import resources

from pipeline.report.drift import PER_ROWS
from pipeline.report.svg_charts import BLUE, GREY, bars_svg, histogram_svg

MAX_REASONS = 25  # bars in the reasons chart; the table lists every reason
MAX_CHARTS = 200  # histograms drawn; wider tables get the counts table for the rest (keeps the page small)


def render_html(report: dict) -> str:
    import jinja2
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    template = env.from_string(resources.files("pipeline.report").joinpath("templates/report.html.j2").read_text("utf-8"))
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
    # Failing expectations first (a stable sort keeps suite order within each group).
    expectations = sorted(report["expectations"], key=lambda e: bool(e["success"]))
    drift = report.get("drift") or {}
    drift_charts = {name: histogram_svg(f"{name}: baseline vs today (per {PER_ROWS:,} rows)", h["edges"],
                                        [("baseline", h["baseline"], GREY, False), ("today", h["today"], BLUE, True)])
                    for name, h in list((drift.get("histograms") or {}).items())[:MAX_CHARTS]}
    return template.render(report=report, features=features, reasons=reasons, charts_skipped=skipped,
                           drift_charts=drift_charts,
                           reasons_chart=_reasons_svg(reasons[:MAX_REASONS]) if reasons else None,
                           expectations=expectations, target=_target, fmt=_fmt)


def _target(e: dict) -> str:
    """What an expectation looks at: its column, its columns, or the table."""
    kw = e["kwargs"]
    if e.get("column"):
        return e["column"]
    if kw.get("column_list"):
        return " + ".join(kw["column_list"])
    if kw.get("column_A"):
        return f"{kw['column_A']} > {kw['column_B']}"
    return "(table)"


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


def _reasons_svg(reasons) -> str:
    return bars_svg(list(reasons), "rows quarantined (a row counts once per reason)")


def _histogram_svg(name: str, h: dict) -> str:
    outside = [f"{w}: {h[w]['below']:,} below, {h[w]['above']:,} above" for w in ("raw", "clean")
               if h[w]["below"] or h[w]["above"]]
    title = name + ("   (" + "; ".join(outside) + ")" if outside else "")
    return histogram_svg(title, h["edges"], [("raw", h["raw"]["counts"], GREY, False),
                                             ("clean", h["clean"]["counts"], BLUE, True)])
