"""Row conditions (GE's `row_condition`) as vectorized masks, and the wrapper that restricts a row rule to them.

A condition is a small tree of frozen dataclasses (so a compiled suite pickles to workers) built by
expectations.row_condition from the pandas-query text a suite gives. Evaluation follows pandas' `DataFrame.query`:
a comparison with a missing value or NaN is False, except `!=`, which is True (NaN != x in pandas), and
`isnull()` is missing or NaN.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.columns import BatchView, is_numeric
from transforms.row_checks import Reasons, membership

_NUMPY_OPS = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
              ">=": np.greater_equal}
_ARROW_OPS = {"==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater,
              ">=": pc.greater_equal}
OPERATORS = tuple(_NUMPY_OPS)


@dataclasses.dataclass(frozen=True)
class Compare:
    """column OP literal (a number, a string or a boolean)."""
    column: str
    op: str
    value: object

    def mask(self, view: BatchView) -> np.ndarray:
        arr = view.column(self.column)
        if is_numeric(arr.type):
            values, missing = view.numeric(self.column)
            with np.errstate(invalid="ignore"):
                out = _NUMPY_OPS[self.op](values, float(self.value))
            return out | (missing | np.isnan(values)) if self.op == "!=" else out & ~missing & ~np.isnan(values)
        got = _ARROW_OPS[self.op](arr, pa.scalar(str(self.value), arr.type))
        return got.fill_null(self.op == "!=").to_numpy(zero_copy_only=False)


@dataclasses.dataclass(frozen=True)
class IsIn:
    """column.isin([...]); a missing value is in no list."""
    column: str
    values: tuple

    def mask(self, view: BatchView) -> np.ndarray:
        numeric = is_numeric(view.column(self.column).type)
        member, present = membership(view, self.column, np.array([float(v) for v in self.values]) if numeric
                                     else np.empty(0), pa.array([str(v) for v in self.values], pa.string()))
        return member & present


@dataclasses.dataclass(frozen=True)
class IsNull:
    """column.isnull() (missing, or NaN in a numeric column); negated: notnull()."""
    column: str

    def mask(self, view: BatchView) -> np.ndarray:
        arr = view.column(self.column)
        if is_numeric(arr.type):
            values, missing = view.numeric(self.column)
            return missing | np.isnan(values)
        return arr.is_null().to_numpy(zero_copy_only=False)


@dataclasses.dataclass(frozen=True)
class Not:
    operand: object

    def mask(self, view: BatchView) -> np.ndarray:
        return ~self.operand.mask(view)


@dataclasses.dataclass(frozen=True)
class All:
    """a & b & ..."""
    operands: tuple

    def mask(self, view: BatchView) -> np.ndarray:
        return np.logical_and.reduce([o.mask(view) for o in self.operands])


@dataclasses.dataclass(frozen=True)
class Any:
    """a | b | ..."""
    operands: tuple

    def mask(self, view: BatchView) -> np.ndarray:
        return np.logical_or.reduce([o.mask(view) for o in self.operands])


@dataclasses.dataclass(frozen=True)
class Conditional:
    """A row rule evaluated on the rows its condition selects only (GE's row_condition): other rows are neither
    unexpected nor evaluated, and a repair touches selected rows only."""
    rule: object
    condition: object

    @property
    def column(self):
        return getattr(self.rule, "column", None)

    @property
    def columns(self):
        return getattr(self.rule, "columns", None) or ((self.rule.column,) if hasattr(self.rule, "column") else ())

    @property
    def action(self) -> str:
        return self.rule.action

    def evaluate(self, view: BatchView) -> Reasons:
        selected = view.rows_where(self.condition)
        for why, mask in self.rule.evaluate(view):
            yield why, mask & selected

    def domain(self, view: BatchView) -> np.ndarray:
        selected = view.rows_where(self.condition)
        inner = self.rule.domain(view) if hasattr(self.rule, "domain") else None
        return selected if inner is None else inner & selected

    def clip(self, values: np.ndarray, integer: bool) -> np.ndarray:
        return self.rule.clip(values, integer)
