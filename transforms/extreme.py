"""Bounds for the extreme-value rule, from the raw profile's robust statistics.

A value is extreme when it lies more than THRESHOLD spreads from the median, where the spread is the
larger distance from the median to the 0.1% or 99.9% quantile. With the default of 1000 spreads a normal
column is flagged only beyond ~3000 sigma, and a lognormal(0, 1.5) column (whose 1M-row maximum sits
~30 spreads out) is never flagged, while 1e30 in a unit-scale column always is. A column whose bulk is a
single value (spread 0, e.g. a sparse 0/1 feature) uses max(|median|, 1) as its spread.
"""
from __future__ import annotations

import math

DEFAULT_THRESHOLD = 1000


def extreme_bounds(median: float, q_low: float, q_high: float, threshold: float) -> tuple[float, float]:
    if not threshold > 0:
        raise ValueError(f"extreme-value threshold must be > 0, got {threshold}")
    spread = max(q_high - median, median - q_low)
    if not spread > 0:
        spread = max(abs(median), 1.0)
    return median - threshold * spread, median + threshold * spread


def bounds_are_usable(median: float, q_low: float, q_high: float) -> bool:
    return all(map(math.isfinite, (median, q_low, q_high)))
