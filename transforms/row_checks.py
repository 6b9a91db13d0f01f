"""Vectorized row rules: each takes a BatchView and yields (reason, per-row violation mask) pairs.

A reason is "<code>:<column>". Rules are small frozen dataclasses so the compiled suite pickles to workers.
Null semantics follow Great Expectations on pandas: value rules (between, in-set) ignore missing values and
NaN; not-null flags both. nanguard's own rules keep missing, NaN, +Inf and -Inf apart.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.columns import UNPARSEABLE, BatchView, is_list, is_numeric

Reasons = Iterator[tuple[str, np.ndarray]]

QUARANTINE, WARN = "quarantine", "warn"
ACTIONS = (QUARANTINE, WARN)


def rows_any(element_mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-row 'any' of an element mask over list rows given by offsets (empty rows are False)."""
    c = np.concatenate([[0], np.cumsum(element_mask, dtype=np.int64)])
    return (c[offsets[1:]] - c[offsets[:-1]]) > 0


def _present(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    return ~missing & ~np.isnan(values)


@dataclasses.dataclass(frozen=True)
class PresentAndFinite:
    """nanguard's core rule: a numeric value must be present and finite."""
    column: str
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        if is_list(view.column(self.column).type):
            offsets, flat, missing = view.lists(self.column)
            yield f"missing:{self.column}", missing
            yield f"nan:{self.column}", rows_any(np.isnan(flat), offsets)
            yield f"pos_inf:{self.column}", rows_any(flat == np.inf, offsets)
            yield f"neg_inf:{self.column}", rows_any(flat == -np.inf, offsets)
            return
        values, missing = view.numeric(self.column)
        yield f"missing:{self.column}", missing
        yield f"nan:{self.column}", np.isnan(values) & ~missing
        yield f"pos_inf:{self.column}", values == np.inf
        yield f"neg_inf:{self.column}", values == -np.inf


@dataclasses.dataclass(frozen=True)
class NotNull:
    """GE's expect_column_values_to_not_be_null: missing values and (numeric) NaN are both null."""
    column: str
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        arr = view.column(self.column)
        if is_numeric(arr.type):
            values, missing = view.numeric(self.column)
            yield f"null:{self.column}", missing | np.isnan(values)
        else:
            yield f"null:{self.column}", arr.is_null().to_numpy(zero_copy_only=False)


@dataclasses.dataclass(frozen=True)
class Between:
    """GE's expect_column_values_to_be_between (nulls and NaN are not evaluated, as in GE)."""
    column: str
    min_value: float | None = None
    max_value: float | None = None
    strict_min: bool = False
    strict_max: bool = False
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        values, missing = view.numeric(self.column)
        bad = np.zeros(view.num_rows, dtype=bool)
        with np.errstate(invalid="ignore"):
            if self.min_value is not None:
                bad |= (values <= self.min_value) if self.strict_min else (values < self.min_value)
            if self.max_value is not None:
                bad |= (values >= self.max_value) if self.strict_max else (values > self.max_value)
        yield f"out_of_range:{self.column}", bad & _present(values, missing)


def _membership(view: BatchView, column: str, value_set: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(value is in the set, value is evaluated: present and, for numbers, not NaN) per row."""
    arr = view.column(column)
    if is_numeric(arr.type):
        values, missing = view.numeric(column)
        allowed = np.array([float(v) for v in value_set], dtype=np.float64)
        return np.isin(values, allowed), _present(values, missing)
    member = pc.is_in(arr, value_set=pa.array([str(v) for v in value_set], type=arr.type))
    return member.to_numpy(zero_copy_only=False), ~arr.is_null().to_numpy(zero_copy_only=False)


@dataclasses.dataclass(frozen=True)
class InSet:
    """GE's expect_column_values_to_be_in_set (nulls not evaluated)."""
    column: str
    value_set: tuple
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        member, evaluated = _membership(view, self.column, self.value_set)
        yield f"not_in_set:{self.column}", ~member & evaluated


@dataclasses.dataclass(frozen=True)
class NotInSet:
    """GE's expect_column_values_to_not_be_in_set (nulls not evaluated)."""
    column: str
    value_set: tuple
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        member, evaluated = _membership(view, self.column, self.value_set)
        yield f"in_forbidden_set:{self.column}", member & evaluated


@dataclasses.dataclass(frozen=True)
class IsNull:
    """GE's expect_column_values_to_be_null: a present value (not NaN, for numbers) is unexpected."""
    column: str
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        arr = view.column(self.column)
        if is_numeric(arr.type):
            values, missing = view.numeric(self.column)
            yield f"not_null:{self.column}", _present(values, missing)
        else:
            yield f"not_null:{self.column}", ~arr.is_null().to_numpy(zero_copy_only=False)


@dataclasses.dataclass(frozen=True)
class FitsDtype:
    """Finite values whose magnitude exceeds the largest finite value of a float dtype overflow to Inf there."""
    column: str
    dtype: str = "float32"
    action: str = QUARANTINE

    def __post_init__(self):
        if self.dtype not in _DTYPE_MAX:
            raise ValueError(f"dtype {self.dtype!r} is not one of {sorted(_DTYPE_MAX)}")

    def evaluate(self, view: BatchView) -> Reasons:
        limit = _DTYPE_MAX[self.dtype]
        code = f"{self.dtype}_overflow:{self.column}"
        if is_list(view.column(self.column).type):
            offsets, flat, _ = view.lists(self.column)
            yield code, rows_any(np.isfinite(flat) & (np.abs(flat) > limit), offsets)
            return
        values, _ = view.numeric(self.column)
        with np.errstate(invalid="ignore"):
            yield code, np.isfinite(values) & (np.abs(values) > limit)


_DTYPE_MAX = {"float16": float(np.finfo(np.float16).max), "bfloat16": 3.3895313892515355e38,
              "float32": float(np.finfo(np.float32).max), "float64": float(np.finfo(np.float64).max)}


@dataclasses.dataclass(frozen=True)
class Extreme:
    """Finite values outside [low, high]: bounds derived from the raw profile's bulk (see transforms.extreme)."""
    column: str
    low: float
    high: float
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        values, _ = view.numeric(self.column)
        with np.errstate(invalid="ignore"):
            yield f"extreme:{self.column}", np.isfinite(values) & ((values < self.low) | (values > self.high))


@dataclasses.dataclass(frozen=True)
class Parseable:
    """Cells the CSV reader could not parse as their column's number type (text kept in __unparseable)."""
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        if UNPARSEABLE not in view.batch.schema.names:
            return
        col = view.column(UNPARSEABLE)
        bad_rows = np.nonzero(~col.is_null().to_numpy(zero_copy_only=False))[0]
        per_column: dict[str, np.ndarray] = {}
        texts = col.take(pa.array(bad_rows)).to_pylist()
        for row, text in zip(bad_rows, texts):  # rows already known bad
            for name in json.loads(text):
                per_column.setdefault(name, np.zeros(view.num_rows, dtype=bool))[row] = True
        for name, mask in sorted(per_column.items()):
            yield f"unparseable:{name}", mask
