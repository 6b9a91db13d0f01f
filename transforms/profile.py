"""Exact per-feature counts and moments, as a mergeable accumulator (CombineFn-shaped, no Beam).

The raw profile (with quantile sketches, for the extreme-value rule) is taken over every input row; the clean
profile over the rows that passed the checks, and normalization is fitted from it. Counts are exact; min, max,
mean and std are of finite values only, with NaN and +/-Inf counted, never folded in. Each batch's moments
are kept under the batch's key (source file, first row index) and folded with Chan et al.'s parallel update
in key order when read, so every runner, whatever order it merges bundles in, gets the same bits.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.columns import ROW_INDEX, SOURCE_FILE, BatchView, is_list, is_numeric, missing_mask
from transforms.quantile_sketch import QuantileSketch

DISTINCT_LIMIT = 10_000  # a text column's value counts are kept exactly up to this many distinct values
TOP_VALUES = 10  # commonest values a text column's summary lists
# Quantiles the raw profile keeps for the extreme-value rule and the report.
BULK_LOW, MEDIAN, BULK_HIGH = 0.001, 0.5, 0.999


@dataclasses.dataclass
class ColumnProfile:
    rows: int = 0
    missing: int = 0
    nan: int = 0
    pos_inf: int = 0
    neg_inf: int = 0
    finite: int = 0
    # batch key -> (finite count, mean, sum of squared deviations) of that batch's finite values
    parts: dict = dataclasses.field(default_factory=dict)
    min: float = math.inf
    max: float = -math.inf
    sketch: QuantileSketch | None = None
    min_len: int | None = None  # list columns: shortest and longest present list
    max_len: int | None = None
    # text columns: exact count per distinct value while there are at most DISTINCT_LIMIT; None beyond
    counts: dict | None = dataclasses.field(default_factory=dict)
    # (BULK_LOW, MEDIAN and BULK_HIGH quantiles, the median statistic) of the finite values, kept by
    # without_sketch() for the steps that ask no more of a sketch
    points: tuple | None = None

    def add(self, values: np.ndarray, missing: np.ndarray, rows: int, key=None) -> None:
        """values: float64 of present entries' cells (NaN for missing); rows: how many rows they came from;
        key: a sortable id of the batch, unique within the run (see ProfileAccumulator.add_batch)."""
        present = values[~missing] if missing.any() else values
        self.rows += rows
        self.missing += values.size - present.size
        is_finite = np.isfinite(present)
        n_finite = int(np.count_nonzero(is_finite))
        if n_finite == present.size:  # the common batch: nothing to count apart, nothing to copy
            finite = present
        else:
            n_nan = int(np.count_nonzero(np.isnan(present)))
            n_pos_inf = int(np.count_nonzero(present == np.inf))
            self.nan += n_nan
            self.pos_inf += n_pos_inf
            self.neg_inf += present.size - n_finite - n_nan - n_pos_inf
            finite = present[is_finite]
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            with np.errstate(over="ignore", invalid="ignore"):
                b_mean = _mean(finite, max(-lo, hi))
                deviations = finite - b_mean
                b_m2 = float(np.square(deviations, out=deviations).sum())
            key = (("~", len(self.parts)) if key is None else key)
            while key in self.parts:  # batches without a key (direct kernel use) still each get a slot
                key = (key, len(self.parts))
            self.parts[key] = (int(finite.size), b_mean, b_m2)
            self.finite += int(finite.size)
            self.min = min(self.min, lo)
            self.max = max(self.max, hi)
            if self.sketch is not None:
                self.sketch.add(finite, lo, hi)

    def _moments(self) -> tuple[float, float]:
        """(mean, m2) folded over the batches in key order: the same bits on every merge path."""
        n_a, mean, m2 = 0, 0.0, 0.0
        for key in sorted(self.parts, key=repr):
            n_b, mean_b, m2_b = self.parts[key]
            n = n_a + n_b
            with np.errstate(over="ignore", invalid="ignore"):
                delta = np.float64(mean_b) - np.float64(mean)
                if np.isfinite(delta):
                    mean = float(mean + delta * (n_b / n))
                else:  # means of opposite sign near the float64 limit: the weighted form cannot overflow
                    mean = float(mean * (n_a / n) + mean_b * (n_b / n))
                # m2 may overflow to +Inf for values spread beyond ~1e154; std then reads +Inf, never NaN.
                m2 = float(m2 + m2_b + delta * delta * (n_a * n_b / n))
            n_a = n
        return mean, m2

    @property
    def mean(self) -> float:
        return self._moments()[0]

    @property
    def m2(self) -> float:
        return self._moments()[1]

    def merge(self, other: "ColumnProfile") -> "ColumnProfile":
        out = dataclasses.replace(self)
        out.rows += other.rows
        out.missing += other.missing
        out.nan += other.nan
        out.pos_inf += other.pos_inf
        out.neg_inf += other.neg_inf
        out.parts = {**self.parts}
        for key, part in other.parts.items():
            while key in out.parts:  # only keyless batches can collide; keep both
                key = (key, len(out.parts))
            out.parts[key] = part
        out.finite += other.finite
        out.min, out.max = min(self.min, other.min), max(self.max, other.max)
        if self.sketch is not None and other.sketch is not None:
            out.sketch = self.sketch.merge(other.sketch)
        out.counts = _merge_counts(self.counts, other.counts)
        out.min_len = _opt(min, self.min_len, other.min_len)
        out.max_len = _opt(max, self.max_len, other.max_len)
        return out

    @property
    def std(self) -> float:
        return self._std(self.m2)

    def _std(self, m2: float) -> float:
        """Population standard deviation of the finite values (0 for fewer than two)."""
        if self.finite <= 1:
            return 0.0
        return math.sqrt(m2 / self.finite) if math.isfinite(m2) else math.inf

    def statistic(self, name: str) -> float | None:
        """The mean or median of the finite values (None when there is none): what `impute` fills in."""
        if self.finite == 0:
            return None
        if name == "mean":
            return self.mean
        if name != "median" or (self.sketch is None and self.points is None):
            raise ValueError(f"statistic {name!r}: mean, or median of a profile kept with a sketch")
        if self.sketch is None:
            return self.points[3]
        lo, hi = self.sketch.value_at([(self.finite - 1) // 2, self.finite // 2])
        return float((lo + hi) / 2)

    def bulk(self) -> tuple[float, float, float] | None:
        """The BULK_LOW, MEDIAN and BULK_HIGH quantiles of the finite values (the extreme-value rule's and the
        report's); None when there is no finite value or the profile was kept without a sketch."""
        if self.finite == 0:
            return None
        if self.sketch is None:
            return None if self.points is None else self.points[:3]
        lo, med, hi = self.sketch.quantiles([BULK_LOW, MEDIAN, BULK_HIGH])
        return lo, med, hi

    def without_sketch(self) -> "ColumnProfile":
        """A copy without the sketch (up to BUDGET buckets) that still answers bulk() and the median statistic:
        what the checks and the fit read, a few hundred bytes instead of up to 128 KB a column."""
        out = dataclasses.replace(self, sketch=None)
        if self.sketch is not None and self.finite:
            out.points = (*self.bulk(), self.statistic("median"))
        return out

    def summary(self) -> dict:
        """The report's per-feature keys; min/max/mean/std are None when there is no finite value."""
        has = self.finite > 0
        mean, m2 = self._moments()  # one fold for both
        std = self._std(m2)
        out = {"count": self.rows, "missing": self.missing, "nan": self.nan, "pos_inf": self.pos_inf,
               "neg_inf": self.neg_inf, "finite": self.finite,
               "min": self.min if has else None, "max": self.max if has else None,
               "mean": mean if has else None, "std": std if has else None,
               # GE's stdev is the sample one (ddof=1); computed from m2 directly, not rescaled from std, which
               # would differ by an ulp and flip a min_value == max_value check.
               "sample_std": math.sqrt(m2 / (self.finite - 1)) if self.finite > 1 and math.isfinite(m2) else
               (math.inf if self.finite > 1 else None)}
        bulk = self.bulk()
        if bulk is not None:
            out.update(zip(("q001", "median", "q999"), bulk))
        return out

    def text_summary(self) -> dict:
        """A text column's report keys: count, missing, distinct (None past DISTINCT_LIMIT) and the TOP_VALUES
        commonest values with their counts (ties by value)."""
        out = {"count": self.rows, "missing": self.missing, "distinct": None, "top": []}
        if self.counts is not None:
            top = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_VALUES]
            out.update(distinct=len(self.counts), top=[[v, n] for v, n in top])
        return out

    def distinct_values(self, text: bool) -> list | None:
        """The distinct non-null values, sorted (text: exact up to DISTINCT_LIMIT; numbers: while the sketch is
        exact); None when there are more than that."""
        if text:
            return None if self.counts is None else sorted(self.counts)
        if self.sketch is not None and self.sketch.exact:
            return [float(v) for v in self.sketch.value_at(np.cumsum(self.sketch.counts) - 1)] if self.finite else []
        return None


def _mean(finite: np.ndarray, peak: float) -> float:
    """Mean of finite float64 values that does not overflow when their sum would (|x| near 1.8e308); peak: the
    largest magnitude among them."""
    if peak < 1e300:
        return float(finite.mean())
    exponent = int(np.frexp(peak)[1])  # exact power-of-two scaling into [-1, 1]
    return float(np.ldexp(np.ldexp(finite, -exponent).mean(), exponent))


def batch_key(batch: pa.RecordBatch):
    """(source file, first row index) of a conformed batch: unique in a run and the same on every runner,
    since readers cut batches from files the same way everywhere. None for batches without those columns."""
    if batch.num_rows == 0 or SOURCE_FILE not in batch.schema.names or ROW_INDEX not in batch.schema.names:
        return None
    return (batch.column(SOURCE_FILE)[0].as_py(), int(batch.column(ROW_INDEX)[0].as_py()))


def _merge_counts(a: dict | None, b: dict | None) -> dict | None:
    """Sum of two value counts; None (too many distinct values to keep) past DISTINCT_LIMIT. Whether the
    limit is passed depends on the values only, so every merge order gives the same answer."""
    if a is None or b is None:
        return None
    out = dict(a)
    for v, n in b.items():
        out[v] = out.get(v, 0) + n
    return out if len(out) <= DISTINCT_LIMIT else None


def _opt(f, a, b):
    return b if a is None else a if b is None else f(a, b)


class ProfileAccumulator:
    """Per-column ColumnProfile over RecordBatches: create, add_batch, merge, result."""

    def __init__(self, columns: tuple[str, ...], with_sketch: bool):
        self.columns = columns
        self.with_sketch = with_sketch
        self.rows = 0
        self.profiles = {c: ColumnProfile(sketch=QuantileSketch() if with_sketch else None) for c in columns}
        self.text: set[str] = set()  # columns seen holding text

    def summaries(self) -> dict:
        """Per column: the numeric summary, or for text columns text_summary()."""
        return {c: p.text_summary() if c in self.text else p.summary() for c, p in self.profiles.items()}

    def add_batch(self, batch: pa.RecordBatch) -> "ProfileAccumulator":
        view = BatchView(batch)
        self.rows += batch.num_rows
        key = batch_key(batch)
        for name in self.columns:
            arr = view.column(name)
            if not is_numeric(arr.type) and not is_list(arr.type):
                p = self.profiles[name]
                self.text.add(name)
                p.rows += batch.num_rows
                p.missing += int(missing_mask(arr).sum())
                if p.counts is not None:
                    vc = pc.value_counts(arr.drop_null() if arr.null_count else arr)
                    batch_counts = dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()))
                    p.counts = _merge_counts(p.counts, batch_counts)
            elif is_list(arr.type):
                offsets, flat, missing = view.lists(name)
                # A list row is missing when null; its elements are profiled as values.
                self.profiles[name].add(flat, np.zeros(flat.size, bool), 0, key)
                self.profiles[name].rows += batch.num_rows
                self.profiles[name].missing += int(missing.sum())
                lengths = np.diff(offsets)[~missing]
                if lengths.size:
                    p = self.profiles[name]
                    p.min_len = _opt(min, p.min_len, int(lengths.min()))
                    p.max_len = _opt(max, p.max_len, int(lengths.max()))
            else:
                values, missing = view.numeric(name)
                self.profiles[name].add(values, missing, batch.num_rows, key)
        return self

    def without_sketches(self) -> "ProfileAccumulator":
        """The profile with each column's sketch replaced by the quantiles the checks and the fit ask of it
        (ColumnProfile.without_sketch): what crosses to their steps, instead of up to 128 KB a column."""
        out = ProfileAccumulator(self.columns, with_sketch=False)
        out.rows, out.text = self.rows, set(self.text)
        out.profiles = {c: p.without_sketch() for c, p in self.profiles.items()}
        return out

    def nbytes(self) -> int:
        """About the memory the accumulator holds: its sketches' arrays, and a few hundred bytes a column."""
        return sum(256 + (0 if p.sketch is None else p.sketch.nbytes)
                   for p in self.profiles.values())

    def is_empty(self) -> bool:
        return self.rows == 0 and not self.text

    def merge(self, other: "ProfileAccumulator") -> "ProfileAccumulator":
        """A new accumulator (neither side changes); merging with an empty one gives the other side itself."""
        if other.is_empty() and self.columns == other.columns:
            return self
        if self.is_empty() and self.columns == other.columns:
            return other
        out = ProfileAccumulator(self.columns, self.with_sketch)
        out.rows = self.rows + other.rows
        out.profiles = {c: self.profiles[c].merge(other.profiles[c]) for c in self.columns}
        out.text = self.text | other.text
        return out
