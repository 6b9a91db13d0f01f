"""Draft a suite from a raw profile: what `nanguard suite init` writes for a person to edit.

Every rule is one the data just profiled passes (a run with the draft on its own input quarantines nothing),
widened where the next batch of data will differ:
- the table's columns (exact set) and a non-empty row count;
- per numeric column: finite values where every value was (with `mostly` set to the share seen when a few were
  NaN or infinite; a column with nulls gets its share of non-null values as a floor instead, since a finite
  rule would quarantine every null), fits float32, not extreme, its observed type, and its observed range
  widened on each side by `margin` times the range (times |value| for a constant column, 1 for zero), never
  across zero for a column that had one sign, in whole numbers for integer columns, and as ISO date-times for
  timestamp and date columns;
- per text column: not null when no null was seen, and its value set when it has at most MAX_VALUE_SET
  distinct values;
- per label (from --label): the rule of its kind (binary and class=N as value sets, probability as [0, 1],
  onehot and probvec as nanguard's vector types); labels get no range, extreme or float32 rule.
"""
from __future__ import annotations

import math

import numpy as np

from expectations.aggregates import pandas_dtype
from transforms.extreme import DEFAULT_THRESHOLD
from transforms.labels import LabelSpec

MAX_VALUE_SET = 20  # a text column with at most this many distinct values gets its value set


def draft_suite(name: str, profile: dict, columns: dict[str, str], kinds: dict[str, str],
                labels: tuple[LabelSpec, ...] = (), margin: float = 0.1) -> dict:
    """profile: the raw profile as the pipeline saves it; columns: name -> Arrow type; kinds: name -> kind."""
    if margin < 0 or not math.isfinite(margin):
        raise ValueError(f"margin must be a finite number >= 0, got {margin}")
    label_of = {lab.column: lab for lab in labels}
    ex: list[dict] = [
        _e("expect_table_columns_to_match_set", {"column_set": list(columns), "exact_match": True}),
        _e("expect_table_row_count_to_be_between", {"min_value": 1}),
    ]
    for column, kind in kinds.items():
        s = profile["columns"][column]
        if column in label_of:
            ex.extend(_label_rules(label_of[column]))
            continue
        if kind in ("int", "float"):
            ex.extend(_presence_rules(column, s))
            ex.append(_e("expect_column_values_to_be_of_type",
                         {"column": column, "type_": pandas_dtype(columns[column], s["missing"] > 0)}))
            ex.append(_e("expect_column_values_to_fit_dtype", {"column": column, "dtype": "float32"}))
            if s.get("min") is not None:
                lo, hi = _widen(s["min"], s["max"], margin)
                if kind == "int" or columns[column] == "bool":
                    lo, hi = math.floor(lo), math.ceil(hi)
                if columns[column].startswith(("timestamp", "date")):
                    lo, hi = _iso(lo), _iso(hi)
                ex.append(_e("expect_column_values_to_be_between", {"column": column, "min_value": lo,
                                                                    "max_value": hi}))
            ex.append(_e("expect_column_values_to_not_be_extreme", {"column": column, "threshold": DEFAULT_THRESHOLD}))
        elif kind in ("int_list", "float_list"):
            ex.append(_e("expect_column_values_to_be_finite", {"column": column}))
        else:
            if s["missing"] == 0:
                ex.append(_e("expect_column_values_to_not_be_null", {"column": column}))
            values = profile.get("distinct_values", {}).get(column)
            if values is not None and 0 < len(values) <= MAX_VALUE_SET:
                ex.append(_e("expect_column_values_to_be_in_set", {"column": column, "value_set": values}))
    rows = profile["rows"]
    return {"name": name, "expectations": ex,
            "meta": {"notes": f"Drafted by `nanguard suite init` from {rows} rows; edit before use. Ranges are the "
                              f"observed ones widened by {margin:g} of their width on each side."}}


def _e(etype: str, kwargs: dict) -> dict:
    return {"type": etype, "kwargs": kwargs, "meta": {}}


def _presence_rules(column: str, s: dict) -> list[dict]:
    """Finite values, as far as the data had them."""
    present = s["count"] - s["missing"]
    if s["missing"]:
        share = math.floor(1000 * present / s["count"]) / 1000 if s["count"] else 0.0
        return [_e("expect_column_proportion_of_non_null_values_to_be_between", {"column": column,
                                                                                 "min_value": share})]
    finite = s.get("finite", present)
    if finite == present:
        return [_e("expect_column_values_to_be_finite", {"column": column})]
    return [_e("expect_column_values_to_be_finite", {"column": column,
                                                     "mostly": math.floor(1000 * finite / present) / 1000})]


def _widen(lo: float, hi: float, margin: float) -> tuple[float, float]:
    """[lo, hi] widened by margin times its width on each side, never across zero when it did not cross it."""
    width = hi - lo if hi > lo else max(abs(lo), 1.0)
    wide_lo, wide_hi = lo - margin * width, hi + margin * width
    if lo >= 0:
        wide_lo = max(wide_lo, 0.0)
    if hi <= 0:
        wide_hi = min(wide_hi, 0.0)
    return wide_lo, wide_hi


def _iso(seconds: float) -> str:
    """Seconds since the epoch as an ISO date-time (UTC), the bound form GE takes for timestamps."""
    return str(np.datetime64(int(math.floor(seconds)), "s"))


def _label_rules(lab: LabelSpec) -> list[dict]:
    c = lab.column
    if lab.kind == "binary":
        return [_e("expect_column_values_to_not_be_null", {"column": c}),
                _e("expect_column_values_to_be_in_set", {"column": c, "value_set": [0, 1]})]
    if lab.kind == "class":
        return [_e("expect_column_values_to_not_be_null", {"column": c}),
                _e("expect_column_values_to_be_in_set", {"column": c, "value_set": list(range(lab.num_classes))})]
    if lab.kind == "regression":
        out = [_e("expect_column_values_to_be_finite", {"column": c}),
               _e("expect_column_values_to_fit_dtype", {"column": c, "dtype": "float32"})]
        if lab.low is not None:
            out.append(_e("expect_column_values_to_be_between", {"column": c, "min_value": lab.low,
                                                                 "max_value": lab.high}))
        return out
    if lab.kind == "probability":
        return [_e("expect_column_values_to_be_finite", {"column": c}),
                _e("expect_column_values_to_be_between", {"column": c, "min_value": 0, "max_value": 1})]
    vector = "expect_column_values_to_be_one_hot" if lab.kind == "onehot" else \
        "expect_column_values_to_be_probability_vector"
    return [_e(vector, {"column": c})]
