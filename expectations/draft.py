"""Draft a suite from a raw profile: what `nanguard suite init` writes for a person to edit.

Every rule is one the data just profiled passes, widened where the next batch of data will differ:
- the table's columns (exact set) and a non-empty row count;
- per numeric column: finite values, fits float32, not extreme, its observed type, and its observed range
  widened on each side by `margin` times the range (times |value| for a constant column, 1 for zero);
- per text column: not null when no null was seen;
- per label (from --label): the rule of its kind (binary and class=N as value sets, probability as [0, 1],
  onehot and probvec as nanguard's vector types); labels get no range, extreme or float32 rule.
"""
from __future__ import annotations

import math

from expectations.aggregates import pandas_dtype
from transforms.extreme import DEFAULT_THRESHOLD
from transforms.labels import LabelSpec


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
            ex.append(_e("expect_column_values_to_be_finite", {"column": column}))
            ex.append(_e("expect_column_values_to_be_of_type",
                         {"column": column, "type_": pandas_dtype(columns[column], s["missing"] > 0)}))
            ex.append(_e("expect_column_values_to_fit_dtype", {"column": column, "dtype": "float32"}))
            if s.get("min") is not None:
                lo, hi = _widen(s["min"], s["max"], margin)
                if kind == "int":
                    lo, hi = math.floor(lo), math.ceil(hi)
                ex.append(_e("expect_column_values_to_be_between", {"column": column, "min_value": lo,
                                                                    "max_value": hi}))
            ex.append(_e("expect_column_values_to_not_be_extreme", {"column": column, "threshold": DEFAULT_THRESHOLD}))
        elif kind in ("int_list", "float_list"):
            ex.append(_e("expect_column_values_to_be_finite", {"column": column}))
        elif s["missing"] == 0:
            ex.append(_e("expect_column_values_to_not_be_null", {"column": column}))
    rows = profile["rows"]
    return {"name": name, "expectations": ex,
            "meta": {"notes": f"Drafted by `nanguard suite init` from {rows} rows; edit before use. Ranges are the "
                              f"observed ones widened by {margin:g} of their width on each side."}}


def _e(etype: str, kwargs: dict) -> dict:
    return {"type": etype, "kwargs": kwargs, "meta": {}}


def _widen(lo: float, hi: float, margin: float) -> tuple[float, float]:
    width = hi - lo if hi > lo else max(abs(lo), 1.0)
    return lo - margin * width, hi + margin * width


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
