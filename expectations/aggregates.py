"""Aggregate expectations evaluated on the raw profile, with Great Expectations' pandas semantics.

No pass over the data is added: everything comes from the exact counts and moments of the raw profile and its
quantile sketch. What GE computes on pandas, and nanguard reproduces from the profile:
- nulls (missing values and NaN) are skipped; +/-Inf are values: a column holding +Inf has max, mean and sum
  +Inf, one holding both infinities has a NaN mean and sum, and any infinity makes the stdev NaN;
- stdev is the sample standard deviation (ddof=1): NaN, and so failing, for fewer than two values;
- median is the middle value or the mean of the middle two; quantile_values uses interpolation "nearest"
  and counts a value within rtol 1e-4 of a bound as inside;
- an observed value that is NaN (an empty column, say) fails every _between check;
- of_type / in_type_list judge the column's pandas dtype, and pandas holds integers with nulls as float64.
Median and quantiles are exact up to transforms.quantile_sketch.BUDGET distinct values and within 0.1% of rank
relative error beyond; GE's pandas engine is always exact.
"""
from __future__ import annotations

import math

import numpy as np

from transforms.profile import DISTINCT_LIMIT
from transforms.quantile_sketch import BUDGET, QuantileSketch, key_values

_ARROW_TO_NUMPY = {"int": "int64", "float": "float64"}


def evaluate_aggregate(e: dict, profile: dict, columns: dict[str, str]) -> dict:
    """{"success", "observed_value"} for one aggregate expectation.

    e: a compiled description (type, column, kwargs); profile: the raw profile as the pipeline saves it
    (rows, columns -> summary, sketches); columns: input column name -> Arrow type name, in input order.
    """
    kw, t = e["kwargs"], e["type"]
    if t == "expect_table_row_count_to_be_between":
        return _between(profile["rows"], kw)
    if t == "expect_table_columns_to_match_set":
        actual, wanted = list(columns), list(kw["column_set"])
        exact = kw.get("exact_match", True) is not False
        ok = set(actual) == set(wanted) if exact else set(wanted) <= set(actual)
        return {"success": ok, "observed_value": actual}
    if t == "expect_column_to_exist":
        names = list(columns)
        ok = e["column"] in names
        if ok and kw.get("column_index") is not None:
            ok = names.index(e["column"]) == kw["column_index"]
        return {"success": ok, "observed_value": None}
    s = profile["columns"][e["column"]]
    if t == "expect_column_proportion_of_non_null_values_to_be_between":
        rows = s["count"]
        nonnull = rows - s["missing"] - s.get("nan", 0)
        return _between(nonnull / rows if rows else math.nan, kw)
    if t in ("expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"):
        dtype = pandas_dtype(columns[e["column"]], s["missing"] > 0)
        names = [kw["type_"]] if t == "expect_column_values_to_be_of_type" else kw["type_list"]
        return {"success": any(_same_dtype(n, dtype) for n in names), "observed_value": dtype}
    if t in ("expect_column_distinct_values_to_be_in_set", "expect_column_unique_value_count_to_be_between"):
        distinct = _distinct(e["column"], profile)
        if distinct is None:  # too many to have kept: the count is only known to be large
            return {"success": False, "observed_value": None,
                    "note": f"more distinct values than nanguard counts exactly ({DISTINCT_LIMIT} text values, "
                            f"{BUDGET} numbers)"}
        if t == "expect_column_unique_value_count_to_be_between":
            return _between(len(distinct), kw)
        allowed = set(kw["value_set"])
        return {"success": all(v in allowed for v in distinct), "observed_value": distinct}
    values = _Values(s, profile.get("sketches", {}).get(e["column"]))
    if t == "expect_column_quantile_values_to_be_between":
        qr = kw["quantile_ranges"]
        observed = [values.quantile(q) for q in qr["quantiles"]]
        ok = all(_quantile_in_range(v, r) for v, r in zip(observed, qr["value_ranges"]))
        return {"success": ok, "observed_value": {"quantiles": qr["quantiles"], "values": observed}}
    stat = {"expect_column_min_to_be_between": values.min, "expect_column_max_to_be_between": values.max,
            "expect_column_mean_to_be_between": values.mean, "expect_column_median_to_be_between": values.median,
            "expect_column_stdev_to_be_between": values.stdev, "expect_column_sum_to_be_between": values.sum}[t]
    return _between(stat(), kw)


def _distinct(column: str, profile: dict) -> list | None:
    """The column's distinct non-null values, sorted (None when the profile did not keep them all)."""
    if column in profile.get("distinct_values", {}):
        return profile["distinct_values"][column]
    s = profile["columns"][column]
    infinities = [v for v, key in ((-math.inf, "neg_inf"), (math.inf, "pos_inf")) if s.get(key)]
    sketch = profile.get("sketches", {}).get(column)
    if sketch is None:
        return infinities if not s.get("finite") else None
    sk = QuantileSketch.from_dict(sketch)
    if not sk.exact:
        return None
    finite = [float(v) for v in key_values(sk.keys)]
    return sorted(infinities + finite)


def pandas_dtype(arrow_type: str, has_nulls: bool) -> str:
    """The numpy dtype name pandas gives an Arrow column: integers with nulls become float64, booleans with nulls
    and dates object, timestamps datetime64[ns]."""
    if arrow_type.startswith(("int", "uint")) and has_nulls:
        return "float64"
    if arrow_type == "bool":
        return "object" if has_nulls else "bool"
    if arrow_type.startswith("timestamp"):
        return "datetime64[ns]"
    if arrow_type.startswith(("date", "time")):
        return "object"
    if arrow_type in ("float", "double", "halffloat"):
        return {"float": "float32", "double": "float64", "halffloat": "float16"}[arrow_type]
    return arrow_type


def _same_dtype(name: str, dtype: str) -> bool:
    try:
        return np.dtype(name).type is np.dtype(dtype).type
    except TypeError:  # pandas extension names (Int64, Float64): never a numpy column's dtype
        return False


def _between(value: float, kw: dict) -> dict:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {"success": False, "observed_value": None}
    lo, hi = kw.get("min_value"), kw.get("max_value")
    ok = True
    if lo is not None:
        ok &= value > lo if kw.get("strict_min") else value >= lo
    if hi is not None:
        ok &= value < hi if kw.get("strict_max") else value <= hi
    return {"success": bool(ok), "observed_value": value}


def _quantile_in_range(value: float, bounds) -> bool:
    if value is None or math.isnan(value):
        return False
    lo = -math.inf if bounds[0] is None else bounds[0]
    hi = math.inf if bounds[1] is None else bounds[1]
    close = (lambda a, b: math.isfinite(b) and abs(a - b) <= 1e-8 + 1e-4 * abs(b))
    return close(value, lo) or close(value, hi) or lo <= value <= hi


class _Values:
    """A column's non-null values as pandas sees them: the finite ones, plus the infinities counted apart."""

    def __init__(self, summary: dict, sketch: dict | None):
        self.s = summary
        self.neg, self.pos, self.finite = summary.get("neg_inf", 0), summary.get("pos_inf", 0), summary["finite"]
        self.n = self.neg + self.pos + self.finite
        self.sketch = QuantileSketch.from_dict(sketch) if sketch else None

    def min(self) -> float:
        if not self.n:
            return math.nan
        return -math.inf if self.neg else self.s["min"] if self.finite else math.inf

    def max(self) -> float:
        if not self.n:
            return math.nan
        return math.inf if self.pos else self.s["max"] if self.finite else -math.inf

    def mean(self) -> float:
        if not self.n or (self.pos and self.neg):
            return math.nan
        return math.inf if self.pos else -math.inf if self.neg else self.s["mean"]

    def sum(self) -> float:
        if self.pos and self.neg:
            return math.nan
        if self.pos or self.neg:
            return math.inf if self.pos else -math.inf
        return self.s["mean"] * self.finite if self.finite else 0.0

    def stdev(self) -> float:
        if self.n < 2 or self.pos or self.neg:
            return math.nan
        std = self.s["sample_std"]  # of the finite values; None (JSON's null) when it overflowed
        return math.inf if std is None else std

    def median(self) -> float:
        if not self.n:
            return math.nan
        lo, hi = self._at((self.n - 1) // 2), self._at(self.n // 2)
        with np.errstate(invalid="ignore"):
            return float((np.float64(lo) + np.float64(hi)) / 2)

    def quantile(self, q: float) -> float:
        if not self.n:
            return math.nan
        # numpy's "nearest" picks this index for n values; pandas' quantile calls it
        rank = int(np.quantile(np.arange(self.n), q, method="nearest"))
        return self._at(rank)

    def _at(self, rank: int) -> float:
        """The value of the given rank (0-based) among the sorted non-null values."""
        if rank < self.neg:
            return -math.inf
        rank -= self.neg
        if rank >= self.finite:
            return math.inf
        return float(self.sketch.value_at([rank])[0])
