"""Bounds for the extreme-value rule, from the raw profile's robust quantiles (0.1%, 50%, 99.9%).

Two fences, both measured in spreads of the column's own bulk, so a column's offset and scale do not matter:

- Linear: a value more than K spreads from the median is extreme, where the spread is the larger distance
  from the median to the 0.1% or 99.9% quantile (K = --extreme-threshold, default 1000). This catches 1e30 in a
  unit-scale column, a latitude multiplied by 10, and works for every column, whatever its sign.
- Multiplicative: when the bulk has one sign (the 0.1% quantile > 0, or the 99.9% quantile < 0), a value of
  that sign is also extreme when its magnitude is more than 1 + log10(K) log-spreads from the median's (4 for
  the default K), the log-spread being the larger distance from log|median| to the log of either quantile.
  Decimal-shift faults are multiplicative (x10, x100, x1000: cents for dollars, milliseconds for seconds), and
  in log space heavy tails are tame: a clean lognormal column reaches ~1.7 log-spreads at 10M rows and a
  Pareto (power-law) column ~2.5 whatever its exponent, while an epoch-seconds column (1.4e9 +- 3e7) multiplied
  by 10 lies 36 log-spreads out. How small a shift is caught depends on the column's own spread: every x10 on
  a latitude or a timestamp, x1000 on a price whose bulk spans a factor of ten.

A value outside the multiplicative fence counts only when it is also more than SHIFT_MIN_SPREADS (10) linear
spreads from the median: log space stretches the low tail of a positive column near zero, and on a column
whose spread is small against its offset (a latitude, a timestamp) it is nearly linear, so without this a clean
normal(5, 1) column's minimum or a t-tailed latitude would be flagged.

A column whose bulk is a single value (spread 0, e.g. a sparse 0/1 feature) uses max(|median|, 1) as its
spread and no multiplicative fence. Values of the other sign than the bulk (a rare 0 or -1 in a positive
column) are held to the linear fence only.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

DEFAULT_THRESHOLD = 1000
# A value outside the multiplicative fence is extreme only if it is also this many linear spreads from the
# median: near zero, log space stretches the low tail of a positive column (a normal(5, 1) column's minimum
# at 1M rows is 4.9 sigma down, at 0.1, far out in log terms but 1.6 spreads from the median).
SHIFT_MIN_SPREADS = 10


@dataclasses.dataclass(frozen=True)
class ExtremeBounds:
    low: float  # linear fence, every value
    high: float
    sign: int  # +1 / -1: values of this sign are also held to [near, far] in magnitude; 0: no such fence
    near: float = 0.0
    far: float = math.inf
    median: float = 0.0  # and the multiplicative fence applies only beyond SHIFT_MIN_SPREADS spreads from it
    spread: float = 0.0

    def mask(self, values: np.ndarray) -> np.ndarray:
        """True where a finite value is extreme."""
        with np.errstate(invalid="ignore", over="ignore"):
            bad = (values < self.low) | (values > self.high)
            if self.sign:
                m = values * self.sign
                far_out = np.abs(values - self.median) > SHIFT_MIN_SPREADS * self.spread
                bad |= (m > 0) & ((m < self.near) | (m > self.far)) & far_out
        return bad & np.isfinite(values)

    def clip(self, values: np.ndarray) -> np.ndarray:
        """Values moved to the nearest value inside the fences (flagged values only change)."""
        out = np.clip(values, self.low, self.high)
        if self.sign:
            shifted = self.mask(out)
            m = out * self.sign
            out = np.where(shifted, np.clip(m, self.near, self.far) * self.sign, out)
        return out


def extreme_bounds(median: float, q_low: float, q_high: float, threshold: float) -> ExtremeBounds:
    if not threshold > 0:
        raise ValueError(f"extreme-value threshold must be > 0, got {threshold}")
    spread = max(q_high - median, median - q_low)
    if not spread > 0:
        return ExtremeBounds(median - threshold * max(abs(median), 1.0), median + threshold * max(abs(median), 1.0), 0)
    low, high = median - threshold * spread, median + threshold * spread
    sign = 1 if q_low > 0 else -1 if q_high < 0 else 0
    if not sign:
        return ExtremeBounds(low, high, 0)
    m = abs(median)
    near_end, far_end = sorted((abs(q_low), abs(q_high)))
    # log1p of ratios, not differences of logs: a column at 2^53 +- 10 has a log-spread of ~1e-15
    log_spread = max(math.log1p((far_end - m) / m), math.log1p((m - near_end) / near_end))
    reach = (1 + math.log10(max(threshold, 1.0))) * log_spread
    with np.errstate(over="ignore"):
        near, far = float(m * np.exp(-reach)), float(m * np.exp(reach))
    return ExtremeBounds(low, high, sign, near, far, median, spread)


def bounds_are_usable(median: float, q_low: float, q_high: float) -> bool:
    return all(map(math.isfinite, (median, q_low, q_high)))
