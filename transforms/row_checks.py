"""Vectorized row rules: each takes a BatchView and yields (reason, per-row violation mask) pairs.

A reason is "<code>:<column>" (transforms.reasons). Rules are small frozen dataclasses so the compiled suite pickles to workers.
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
from transforms.extreme import ExtremeBounds
from transforms.reasons import Code, overflow, reason

Reasons = Iterator[tuple[str, np.ndarray]]

QUARANTINE, CLIP, IMPUTE, WARN, FAIL = "quarantine", "clip", "impute", "warn", "fail"
ACTIONS = (QUARANTINE, CLIP, IMPUTE, WARN, FAIL)
REMOVES_ROWS = (QUARANTINE, FAIL)  # actions that move violating rows to quarantine
REPAIRS = (CLIP, IMPUTE)
INDICATOR_ALWAYS, INDICATOR_WHERE_MISSING = "always", "where_missing"  # actions that rewrite the violating value and keep the row


def clip_between(values: np.ndarray, lo: float, hi: float, integer: bool) -> np.ndarray:
    """Values moved to the nearest allowed one in [lo, hi] (the nearest integer inside for integer columns)."""
    if integer:
        lo, hi = np.ceil(lo), np.floor(hi)
    with np.errstate(invalid="ignore"):
        return np.clip(values, lo, hi)


def rows_any(element_mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-row 'any' of an element mask over list rows given by offsets (empty rows are False)."""
    c = np.concatenate([[0], np.cumsum(element_mask, dtype=np.int64)])
    return (c[offsets[1:]] - c[offsets[:-1]]) > 0


def _outside(values: np.ndarray, lo, hi, strict_min: bool, strict_max: bool) -> np.ndarray:
    """Values below lo or above hi (at them, with strict bounds); a None bound is no bound; NaN is never out."""
    bad = np.zeros(values.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        if lo is not None:
            bad |= (values <= lo) if strict_min else (values < lo)
        if hi is not None:
            bad |= (values >= hi) if strict_max else (values > hi)
    return bad


def _present(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    return ~missing & ~np.isnan(values)


def _is_null(view: BatchView, column: str) -> np.ndarray:
    """Null as Great Expectations sees it on pandas: a missing value, or NaN in a numeric column."""
    arr = view.column(column)
    if is_numeric(arr.type):
        values, missing = view.numeric(column)
        return missing | np.isnan(values)
    return arr.is_null().to_numpy(zero_copy_only=False)


def _evaluated(view: BatchView, column: str) -> np.ndarray:
    """Rows Great Expectations evaluates for a column map expectation: the not-null ones."""
    return ~_is_null(view, column)


class _NonNullDomain:
    """GE column map rules over one column: the rows they evaluate are its non-null values."""

    def domain(self, view: BatchView) -> np.ndarray:
        return _evaluated(view, self.column)


def _inward(bound: float, strict: bool, direction: float) -> float:
    """The value a clip moves a violating value to: the bound itself, or the next float inside a strict one."""
    return float(np.nextafter(bound, direction)) if strict else float(bound)


@dataclasses.dataclass(frozen=True)
class PresentAndFinite:
    """nanguard's core rule: a numeric value must be present and finite (with skip_missing, finite where present:
    a MissingCells rule then handles the null cells under the column's missing-value policy)."""
    column: str
    action: str = QUARANTINE
    skip_missing: bool = False
    # from a '*' expectation: a column null in every row is a column-level finding (left out of the shards),
    # not a reason to quarantine every row; a suite naming the column keeps GE's answer
    all_null_is_column_finding: bool = False

    def evaluate(self, view: BatchView) -> Reasons:
        if is_list(view.column(self.column).type):
            offsets, flat, missing = view.lists(self.column)
            if not self.skip_missing:
                yield reason(Code.MISSING, self.column), missing
            yield reason(Code.NAN, self.column), rows_any(np.isnan(flat), offsets)
            yield reason(Code.POS_INF, self.column), rows_any(flat == np.inf, offsets)
            yield reason(Code.NEG_INF, self.column), rows_any(flat == -np.inf, offsets)
            return
        values, missing = view.numeric(self.column)
        if not self.skip_missing:
            yield reason(Code.MISSING, self.column), missing
        yield reason(Code.NAN, self.column), np.isnan(values) & ~missing
        yield reason(Code.POS_INF, self.column), values == np.inf
        yield reason(Code.NEG_INF, self.column), values == -np.inf


@dataclasses.dataclass(frozen=True)
class MissingCells:
    """Null cells of one numeric column (not NaN), under its missing-value policy (--missing): impute them, and
    with `indicator` add a COL__missing 0/1 column in the write pass: always when the column was named
    (INDICATOR_ALWAYS, so every run writes the same columns), else where its clean rows had nulls."""
    column: str
    action: str = QUARANTINE
    indicator: str = ""  # "" (none), INDICATOR_ALWAYS or INDICATOR_WHERE_MISSING

    def evaluate(self, view: BatchView) -> Reasons:
        yield reason(Code.MISSING, self.column), view.numeric(self.column)[1]


@dataclasses.dataclass(frozen=True)
class NotNull:
    """GE's expect_column_values_to_not_be_null: missing values and (numeric) NaN are both null."""
    column: str
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        yield reason(Code.NULL, self.column), _is_null(view, self.column)


@dataclasses.dataclass(frozen=True)
class Between(_NonNullDomain):
    """GE's expect_column_values_to_be_between (nulls and NaN are not evaluated, as in GE)."""
    column: str
    min_value: float | None = None
    max_value: float | None = None
    strict_min: bool = False
    strict_max: bool = False
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        values, missing = view.numeric(self.column)
        bad = _outside(values, self.min_value, self.max_value, self.strict_min, self.strict_max)
        yield reason(Code.OUT_OF_RANGE, self.column), bad & _present(values, missing)

    def clip(self, values: np.ndarray, integer: bool) -> np.ndarray:
        return clip_between(values, *self.clip_bounds(), integer)

    def clip_bounds(self) -> tuple[float, float]:
        lo = -np.inf if self.min_value is None else _inward(self.min_value, self.strict_min, np.inf)
        hi = np.inf if self.max_value is None else _inward(self.max_value, self.strict_max, -np.inf)
        return lo, hi


def membership(view: BatchView, column: str, numbers: np.ndarray, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(value is in the set, value is evaluated: present and, for numbers, not NaN) per row."""
    arr = view.column(column)
    if is_numeric(arr.type):
        values, missing = view.numeric(column)
        return np.isin(values, numbers), _present(values, missing)
    member = pc.is_in(arr, value_set=texts.cast(arr.type))
    return member.to_numpy(zero_copy_only=False), ~arr.is_null().to_numpy(zero_copy_only=False)


class _SetMembership(_NonNullDomain):
    """A value set rule: a row is unexpected when membership is `_unexpected_member` (nulls not evaluated).

    The set is held as a sorted float64 array (numbers) and an Arrow string array (the values as text), built
    once and pickled as buffers: a set of a million values reaches every worker in milliseconds, where a tuple
    of Python objects took seconds per copy."""
    _reason: Code
    _unexpected_member: bool

    def __init__(self, column: str, value_set, action: str = QUARANTINE, text: bool = True):
        """text: the column may hold text (False for a numeric column: the set is kept as numbers only)."""
        numbers = [float(v) for v in value_set if isinstance(v, (int, float)) and not isinstance(v, bool)]
        self._init(column, np.unique(np.array(numbers, dtype=np.float64)),
                   pa.array([str(v) for v in value_set] if text else [], pa.string()), action)

    def _init(self, column: str, numbers: np.ndarray, texts: pa.Array, action: str) -> None:
        self.column, self.action, self._numbers, self._texts = column, action, numbers, texts

    def __reduce__(self):
        return _rebuild_set_rule, (type(self), self.column, self._numbers, self._texts, self.action)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and (self.column, self.action) == (other.column, other.action) and \
            np.array_equal(self._numbers, other._numbers) and self._texts.equals(other._texts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.column!r}, {max(len(self._texts), self._numbers.size)} values, " \
               f"action={self.action!r})"

    def evaluate(self, view: BatchView) -> Reasons:
        member, evaluated = membership(view, self.column, self._numbers, self._texts)
        yield reason(self._reason, self.column), (member if self._unexpected_member else ~member) & evaluated


def _rebuild_set_rule(cls, column, numbers, texts, action):
    rule = cls.__new__(cls)
    rule._init(column, numbers, texts, action)
    return rule


class InSet(_SetMembership):
    """GE's expect_column_values_to_be_in_set."""
    _reason, _unexpected_member = Code.NOT_IN_SET, False


class NotInSet(_SetMembership):
    """GE's expect_column_values_to_not_be_in_set."""
    _reason, _unexpected_member = Code.IN_FORBIDDEN_SET, True


def _text(view: BatchView, column: str) -> tuple[pa.Array, np.ndarray]:
    """A text column and its evaluated rows (the non-null ones, as GE filters them)."""
    arr = view.column(column)
    return arr, ~arr.is_null().to_numpy(zero_copy_only=False)


@dataclasses.dataclass(frozen=True)
class ValueLengths(_NonNullDomain):
    """GE's expect_column_value_lengths_to_be_between: the length in characters of each non-null text value."""
    column: str
    min_value: int | None = None
    max_value: int | None = None
    strict_min: bool = False
    strict_max: bool = False
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        arr, evaluated = _text(view, self.column)
        lengths = pc.utf8_length(arr).to_numpy(zero_copy_only=False)
        bad = _outside(lengths, self.min_value, self.max_value, self.strict_min, self.strict_max)
        yield reason(Code.BAD_LENGTH, self.column), bad & evaluated


@dataclasses.dataclass(frozen=True)
class MatchesRegex(_NonNullDomain):
    """GE's expect_column_values_to_match_regex (and with `negate`, to_not_match_regex): the pattern is searched
    for anywhere in each non-null text value, as pandas' str.contains does; RE2 (linear time, never Python's re
    on untrusted patterns)."""
    column: str
    regex: str
    negate: bool = False
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        arr, evaluated = _text(view, self.column)
        found = pc.match_substring_regex(arr, self.regex).fill_null(False).to_numpy(zero_copy_only=False)
        code = Code.MATCHES_REGEX if self.negate else Code.NO_REGEX_MATCH
        yield reason(code, self.column), (found if self.negate else ~found) & evaluated


@dataclasses.dataclass(frozen=True)
class IsNull:
    """GE's expect_column_values_to_be_null: a present value (not NaN, for numbers) is unexpected."""
    column: str
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        yield reason(Code.NOT_NULL, self.column), _evaluated(view, self.column)


@dataclasses.dataclass(frozen=True)
class FitsDtype:
    """Finite values whose magnitude exceeds the largest finite value of a float dtype overflow to Inf there."""
    column: str
    dtype: str = "float32"
    action: str = QUARANTINE

    def __post_init__(self):
        if self.dtype not in DTYPE_MAX:
            raise ValueError(f"dtype {self.dtype!r} is not one of {sorted(DTYPE_MAX)}")

    def evaluate(self, view: BatchView) -> Reasons:
        limit = DTYPE_MAX[self.dtype]
        code = overflow(self.dtype, self.column)
        if is_list(view.column(self.column).type):
            offsets, flat, _ = view.lists(self.column)
            yield code, rows_any(np.isfinite(flat) & (np.abs(flat) > limit), offsets)
            return
        values, _ = view.numeric(self.column)
        with np.errstate(invalid="ignore"):
            yield code, np.isfinite(values) & (np.abs(values) > limit)

    def clip(self, values: np.ndarray, integer: bool) -> np.ndarray:
        return clip_between(values, *self.clip_bounds(), integer)

    def clip_bounds(self) -> tuple[float, float]:
        return -DTYPE_MAX[self.dtype], DTYPE_MAX[self.dtype]


DTYPE_MAX = {"float16": float(np.finfo(np.float16).max), "bfloat16": 3.3895313892515355e38,
              "float32": float(np.finfo(np.float32).max), "float64": float(np.finfo(np.float64).max)}


@dataclasses.dataclass(frozen=True)
class Extreme:
    """Finite values outside the fences derived from the raw profile's bulk (see transforms.extreme)."""
    column: str
    bounds: ExtremeBounds
    action: str = QUARANTINE

    def evaluate(self, view: BatchView) -> Reasons:
        values, _ = view.numeric(self.column)
        yield reason(Code.EXTREME, self.column), self.bounds.mask(values)

    def clip(self, values: np.ndarray, integer: bool) -> np.ndarray:
        out = self.bounds.clip(values)
        if integer:  # the nearest integer inside: down for values moved down, up for values moved up
            out = np.where(out < values, np.floor(out), np.where(out > values, np.ceil(out), out))
        return out


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
            yield reason(Code.UNPARSEABLE, name), mask


@dataclasses.dataclass(frozen=True)
class ZScore(_NonNullDomain):
    """GE's expect_column_value_z_scores_to_be_less_than, with mean and sample std (ddof=1, as pandas) of the
    raw profile. As in GE 1.24 on pandas, an undefined z-score (std 0 or undefined: fewer than two values, or
    +/-Inf in the column) meets the expectation; nulls are not evaluated."""
    column: str
    threshold: float
    double_sided: bool
    mean: float
    std: float  # NaN when undefined
    action: str = QUARANTINE

    @property
    def defined(self) -> bool:
        return bool(np.isfinite(self.std) and self.std > 0)

    def evaluate(self, view: BatchView) -> Reasons:
        values, missing = view.numeric(self.column)
        if not self.defined:
            yield reason(Code.Z_SCORE, self.column), np.zeros(view.num_rows, dtype=bool)
            return
        with np.errstate(invalid="ignore", over="ignore"):
            z = (values - self.mean) / self.std
            under = (np.abs(z) < abs(self.threshold)) if self.double_sided else (z < self.threshold)
        yield reason(Code.Z_SCORE, self.column), ~under & ~np.isnan(z) & _present(values, missing)

    def clip(self, values: np.ndarray, integer: bool) -> np.ndarray:
        return clip_between(values, *self.clip_bounds(), integer)

    def clip_bounds(self) -> tuple[float, float]:
        t = abs(self.threshold) if self.double_sided else self.threshold
        hi = float(np.nextafter(self.mean + t * self.std, -np.inf))
        lo = float(np.nextafter(self.mean - t * self.std, np.inf)) if self.double_sided else -np.inf
        return lo, hi


_PAIR_IGNORE = ("both_values_are_missing", "either_value_is_missing", "neither")
_MULTI_IGNORE = ("all_values_are_missing", "any_value_is_missing", "never")


def _ignore_mode(ignore_row_if: str, allowed: tuple[str, ...]) -> int:
    """ignore_row_if as _kept_rows' mode (its index in `allowed`); ValueError naming the allowed values."""
    if ignore_row_if not in allowed:
        raise ValueError(f"ignore_row_if {ignore_row_if!r} is not one of {', '.join(allowed)}")
    return allowed.index(ignore_row_if)


def _kept_rows(view: BatchView, columns, mode: int) -> np.ndarray:
    """Rows GE evaluates under ignore_row_if: mode 0 skips rows with every value null, 1 rows with any, 2 none."""
    nulls = [~_evaluated(view, c) for c in columns]
    if mode == 0:
        return ~np.logical_and.reduce(nulls)
    if mode == 1:
        return ~np.logical_or.reduce(nulls)
    return np.ones(view.num_rows, dtype=bool)


@dataclasses.dataclass(frozen=True)
class PairGreater:
    """GE's expect_column_pair_values_a_to_be_greater_than_b: A > B (A >= B with or_equal) per row. Rows are
    skipped per ignore_row_if (default both_values_are_missing); a row with one value missing is unexpected."""
    column_a: str
    column_b: str
    or_equal: bool = False
    ignore_row_if: str = "both_values_are_missing"
    action: str = QUARANTINE

    def __post_init__(self):
        _ignore_mode(self.ignore_row_if, _PAIR_IGNORE)

    @property
    def columns(self) -> tuple[str, str]:
        return self.column_a, self.column_b

    def evaluate(self, view: BatchView) -> Reasons:
        a, b = view.column(self.column_a), view.column(self.column_b)
        if is_numeric(a.type):
            (x, _), (y, _) = view.numeric(self.column_a), view.numeric(self.column_b)
            with np.errstate(invalid="ignore"):
                ok = (x >= y) if self.or_equal else (x > y)  # NaN (null) compares False, as in pandas
        else:
            cmp = pc.greater_equal(a, b) if self.or_equal else pc.greater(a, b)
            ok = pc.fill_null(cmp, False).to_numpy(zero_copy_only=False)
        yield reason(Code.PAIR_NOT_GREATER, f"{self.column_a}>{self.column_b}"), ~ok & self.domain(view)

    def domain(self, view: BatchView) -> np.ndarray:
        return _kept_rows(view, self.columns, _ignore_mode(self.ignore_row_if, _PAIR_IGNORE))


@dataclasses.dataclass(frozen=True)
class MulticolumnSum:
    """GE's expect_multicolumn_sum_to_equal: the row's sum over column_list (left to right, a null makes it
    NaN, as pandas' sum(skipna=False)) equals sum_total exactly. ignore_row_if default all_values_are_missing."""
    column_list: tuple[str, ...]
    sum_total: float
    ignore_row_if: str = "all_values_are_missing"
    action: str = QUARANTINE

    def __post_init__(self):
        _ignore_mode(self.ignore_row_if, _MULTI_IGNORE)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.column_list

    def evaluate(self, view: BatchView) -> Reasons:
        total = np.zeros(view.num_rows, dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            for c in self.column_list:
                total = total + view.numeric(c)[0]  # missing reads as NaN
        yield reason(Code.SUM_NOT_EQUAL, "+".join(self.column_list)), ~(total == self.sum_total) & self.domain(view)

    def domain(self, view: BatchView) -> np.ndarray:
        return _kept_rows(view, self.column_list, _ignore_mode(self.ignore_row_if, _MULTI_IGNORE))
