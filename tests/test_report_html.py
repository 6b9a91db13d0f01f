"""report.html: self-contained, offline, with the verdict, the reasons chart and a histogram per numeric feature;
rendered in headless Chromium."""
import math
import os
import re
import shutil
import subprocess

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pipeline.config import RunConfig
from pipeline.demo_data import LABELS, make_table, write_table
from pipeline.runner import run
from transforms.labels import LabelSpec


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("html")
    planted = make_table(20_000, faults_per_kind=1, seed=5)
    src = str(base / "train.parquet")
    write_table(planted.table, src, "parquet")
    out = str(base / "out")
    report = run(RunConfig(inputs=(src,), output=out, labels=tuple(LabelSpec.parse(x) for x in LABELS)))
    return out, report


def test_report_html_is_self_contained_and_complete(demo_run):
    out, report = demo_run
    text = open(os.path.join(out, "report.html"), encoding="utf-8").read()
    assert len(text.encode()) < 3_000_000
    assert ("Gate PASSED" if report["passed"] else "Gate FAILED") in text
    for section in ("verdict", "counts", "reasons", "features", "anomalies", "model-check", "outputs"):
        assert f'id="{section}"' in text
    numeric = [n for n, f in report["features"].items() if f["kind"] in ("int", "float")]
    assert numeric and all(report["features"][n]["histogram"] for n in numeric)
    for name in numeric:  # each numeric feature's block holds its own chart
        block = text.split(f'id="feature-{name}"', 1)[1].split('<div class="feature"', 1)[0]
        assert "<svg" in block
    assert text.count("<svg") == len(numeric) + 1  # + the reasons chart
    for reason in report["counts"]["by_rule"]:
        assert reason in text
    # nothing is loaded from anywhere: no external src/href, no scripts, no stylesheets, a CSP that forbids it
    assert not re.search(r'(src|href)\s*=\s*["\'](?!#|data:)', text)
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert "default-src 'none'" in text


def test_histograms_count_every_finite_value(demo_run):
    _, report = demo_run
    f = report["features"]["f0"]
    h = f["histogram"]
    for which in ("raw", "clean"):
        total = h[which]["below"] + sum(h[which]["counts"]) + h[which]["above"]
        assert total == f[which]["count"] - f[which]["missing"] - f[which]["nan"] - f[which]["pos_inf"] - \
            f[which]["neg_inf"]
    assert h["raw"]["above"] > h["clean"]["above"]  # the planted 1e30/1e39 in f0 lie beyond the clean bulk


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium'; .ci/run "
                                             "installs it where apt-get may run)")
def test_report_html_renders_in_headless_chromium(demo_run, tmp_path):
    out, _ = demo_run
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    url = "file://" + os.path.abspath(os.path.join(out, "report.html"))
    shot = tmp_path / "report.png"
    subprocess.run(flags + ["--window-size=1200,3000", f"--screenshot={shot}", url], check=True, timeout=120,
                   capture_output=True)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a page with charts, not a blank one
    dom = subprocess.run(flags + ["--dump-dom", url], check=True, timeout=120, capture_output=True,
                         text=True).stdout
    for heading in ("Counts", "Quarantine reasons", "Features: raw vs clean", "Model check", "Outputs"):
        assert f">{heading}</h2>" in dom
    assert dom.count("<svg") >= 2


def test_charts_are_well_formed_svg_with_escaped_text():
    import xml.etree.ElementTree as ET

    from pipeline.report.svg_charts import bars_svg, histogram_svg
    hostile = 'f<script>alert("x")</script>&'
    hist = histogram_svg(hostile, [0.0, 1.0, 2.0, 3.0], [("raw", [5, 0, 1_000_000], "#000", False),
                                                         ("clean", [5, 0, 999_000], "#00f", True)])
    bars = bars_svg([(f"nan:{hostile}", 12), ("range:y", 1)], "rows")
    for svg in (hist, bars):
        root = ET.fromstring(svg)  # parses: escaped, balanced
        assert "<script" not in svg and not root.findall(".//{http://www.w3.org/2000/svg}script")
        assert hostile in "".join(root.itertext())
    assert bars.count("<rect") == 2


@given(st.floats(-1e12, 1e12), st.floats(1e-6, 1e12))
def test_axis_ticks_are_round_and_inside_the_range(lo, span):
    from pipeline.report.svg_charts import nice_ticks
    assume(span > abs(lo) * 1e-9)  # histogram edges at that magnitude are distinct floats
    hi = lo + span
    ticks = nice_ticks(lo, hi)
    if hi > lo:
        assert 2 <= len(ticks) <= 11
        step = ticks[1] - ticks[0]
        mantissa = step / 10 ** math.floor(math.log10(step))
        rounding = 8 * 2.0 ** -52 * max(abs(lo), abs(hi)) / step  # of the subtraction, relative to the step
        assert any(math.isclose(mantissa, m, rel_tol=1e-9 + rounding) for m in (1, 2, 5, 10))
        tol = step * (1e-9 + rounding)
        assert all(lo - tol <= t <= hi + tol for t in ticks)
