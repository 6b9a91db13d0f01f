"""Raw vs clean histograms of each numeric feature, for report.json and report.html.

Drawn from the profiles' quantile sketches (within 0.1% of rank; exact for few distinct values), so no pass over the data is added. Both
share bins spanning the bulk of the clean values (0.1%..99.9% quantiles); values beyond it are counted as
below/above, which is where planted 1e30s and unscaled outliers show up.
"""
from __future__ import annotations

import math

import numpy as np

from transforms.quantile_sketch import QuantileSketch

BINS = 40


def feature_histograms(raw: dict, clean: dict, kinds: dict) -> dict:
    """{feature: {"edges", "raw": {"below", "counts", "above"}, "clean": {...}}} for int/float features."""
    out = {}
    for name, kind in kinds.items():
        if kind not in ("int", "float") or name not in raw.get("sketches", {}):
            continue
        lo, hi = _bulk(clean["columns"].get(name, {})) or _bulk(raw["columns"][name]) or (None, None)
        if lo is None:
            continue
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, BINS + 1)
        entry = {"edges": [float(e) for e in edges]}
        for which, profile in (("raw", raw), ("clean", clean)):
            sketch = profile.get("sketches", {}).get(name)
            if sketch is None:
                entry[which] = {"below": 0, "counts": [0] * BINS, "above": 0}
                continue
            below, counts, above = QuantileSketch.from_dict(sketch).histogram(edges)
            entry[which] = {"below": below, "counts": counts.tolist(), "above": above}
        out[name] = entry
    return out


def _bulk(summary: dict):
    lo, hi = summary.get("q001"), summary.get("q999")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return lo, hi
