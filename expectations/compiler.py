"""Suite compiler: expectation configurations to the vectorized row rules of transforms.row_checks.

Compiling happens where the pipeline is built, so an unsupported type, a missing column or a bad argument
is refused before any data is read. Rules that depend on the data (the extreme-value bounds) are bound to
the raw profile on the worker, once, in DoFn.setup-time code (CompiledSuite.bind).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import pyarrow as pa

from expectations.suite import Expectation, Suite
from pipeline.errors import ConfigError
from transforms.columns import RESERVED, UNPARSEABLE, is_list, is_numeric
from transforms.extreme import bounds_are_usable, extreme_bounds
from transforms.labels import LabelRule, LabelSpec
from transforms.profile import ColumnProfile
from transforms.row_checks import (Between, Extreme, FitsDtype, InSet, IsNull, NotInSet, NotNull, Parseable,
                                  PresentAndFinite)

ALL_COLUMNS = "*"  # nanguard extension: every numeric column


@dataclasses.dataclass(frozen=True)
class PendingExtreme:
    """An extreme-value rule waiting for the raw profile's quantiles."""
    column: str
    threshold: float
    action: str


@dataclasses.dataclass(frozen=True)
class CompiledSuite:
    # (index into `expectations`, rule): static rules, and extreme rules still to bind
    rules: tuple
    expectations: tuple[dict, ...]  # one per compiled expectation: type, column, kwargs, action

    def bind(self, raw_profile: Mapping[str, ColumnProfile]) -> tuple:
        """The rules with extreme-value bounds filled in from the raw profile, in a fixed order."""
        out = []
        for idx, rule in self.rules:
            if isinstance(rule, PendingExtreme):
                p = raw_profile[rule.column]
                if p.sketch is None or p.finite == 0:
                    continue
                lo, med, hi = p.sketch.quantiles([0.001, 0.5, 0.999])
                if not bounds_are_usable(med, lo, hi):
                    continue
                low, high = extreme_bounds(med, lo, hi, rule.threshold)
                rule = Extreme(rule.column, low, high, rule.action)
            out.append((idx, rule))
        return tuple(out)


SUPPORTED = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_be_finite",
    "expect_column_values_to_fit_dtype",
    "expect_column_values_to_not_be_extreme",
)


# Types that also apply to text columns; every other supported type needs numbers.
ANY_COLUMN_TYPES = ("expect_column_values_to_not_be_null", "expect_column_values_to_be_null",
                    "expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set")


@dataclasses.dataclass(frozen=True)
class CompileOptions:
    labels: tuple[LabelSpec, ...] = ()
    passthrough: tuple[str, ...] = ()
    extreme_threshold: float | None = None  # overrides the suite's threshold
    extreme_action: str | None = None  # quarantine | warn | none (drops the rule)
    mixed_precision: bool = False


def compile_suite(suite: Suite, schema: pa.Schema, options: CompileOptions) -> CompiledSuite:
    data = [f for f in schema if f.name not in RESERVED]
    numeric = [f.name for f in data if is_numeric(f.type) or (is_list(f.type) and is_numeric(f.type.value_type))]
    label_names = {lab.column for lab in options.labels}
    scalar_features = [f.name for f in data if is_numeric(f.type) and f.name not in label_names
                       and f.name not in options.passthrough]
    rules: list = []
    described: list[dict] = []

    def add(e: Expectation, column: str | None, rule) -> None:
        described.append({"type": e.type, "column": column, "kwargs": dict(e.kwargs), "action": rule.action})
        rules.append((len(described) - 1, rule))

    for i, e in enumerate(suite.expectations):
        where = f"suite '{suite.name}', expectations[{i}] ({e.type})"
        if e.type not in SUPPORTED:
            raise ConfigError(f"{where}: unsupported expectation type. Supported: {', '.join(SUPPORTED)}")
        column = e.kwargs.get("column")
        if not isinstance(column, str):
            raise ConfigError(f"{where}: needs a 'column' argument")
        if e.type == "expect_column_values_to_not_be_extreme":
            if options.extreme_action == "none":
                continue
            threshold = options.extreme_threshold or _number(e.kwargs.get("threshold", 1000), where, "threshold")
            action = options.extreme_action or e.action
            for c in (scalar_features if column == ALL_COLUMNS else [_need(column, schema, where, numeric)]):
                add(e, c, PendingExtreme(c, threshold, action))
            continue
        if column == ALL_COLUMNS:
            targets = numeric
        else:
            targets = [_need(column, schema, where, None if e.type in ANY_COLUMN_TYPES else numeric)]
        for c in targets:
            add(e, c, _rule(e, c, where, schema))
    if options.mixed_precision:
        # Columns written without normalization reach a float16 model as they are.
        e = Expectation("expect_column_values_to_fit_dtype", {"column": ALL_COLUMNS, "dtype": "float16"})
        for c in numeric:
            if c in label_names or c in options.passthrough or c not in scalar_features:
                add(e, c, FitsDtype(c, "float16"))
    for lab in options.labels:
        e = Expectation("expect_column_values_to_be_valid_label", {"column": lab.column, "kind": lab.describe()})
        add(e, lab.column, LabelRule(lab))
    if UNPARSEABLE in schema.names:
        add(Expectation("expect_column_values_to_be_parseable", {"column": ALL_COLUMNS}), None, Parseable())
    return CompiledSuite(tuple(rules), tuple(described))


def _rule(e: Expectation, column: str, where: str, schema: pa.Schema):
    kw, action = e.kwargs, e.action
    if e.type == "expect_column_values_to_be_finite":
        return PresentAndFinite(column, action)
    if e.type == "expect_column_values_to_fit_dtype":
        dtype = kw.get("dtype", "float32")
        if dtype not in ("float16", "bfloat16", "float32", "float64"):
            raise ConfigError(f"{where}: dtype {dtype!r} is not one of float16, bfloat16, float32, float64")
        return FitsDtype(column, dtype, action)
    if e.type == "expect_column_values_to_not_be_null":
        return NotNull(column, action)
    if e.type == "expect_column_values_to_be_between":
        lo, hi = kw.get("min_value"), kw.get("max_value")
        if lo is None and hi is None:
            raise ConfigError(f"{where}: give min_value, max_value or both")
        if lo is not None and hi is not None and _number(lo, where, "min_value") > _number(hi, where, "max_value"):
            raise ConfigError(f"{where}: min_value {lo} is greater than max_value {hi} (GE refuses this too)")
        return Between(column, None if lo is None else _number(lo, where, "min_value"),
                       None if hi is None else _number(hi, where, "max_value"),
                       bool(kw.get("strict_min", False)), bool(kw.get("strict_max", False)), action)
    if e.type == "expect_column_values_to_be_null":
        return IsNull(column, action)
    if e.type in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        values = kw.get("value_set")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: value_set must be a non-empty list")
        if is_numeric(schema.field(column).type) and not all(isinstance(v, (int, float)) for v in values):
            raise ConfigError(f"{where}: column '{column}' is numeric but value_set holds non-numbers")
        rule = InSet if e.type == "expect_column_values_to_be_in_set" else NotInSet
        return rule(column, tuple(values), action)
    raise AssertionError(e.type)  # SUPPORTED and this function list the same types


def _need(column: str, schema: pa.Schema, where: str, numeric: list[str] | None) -> str:
    if column not in schema.names:
        raise ConfigError(f"{where}: column '{column}' is not in the input (columns: {', '.join(schema.names)})")
    if numeric is not None and column not in numeric:
        raise ConfigError(f"{where}: column '{column}' is {schema.field(column).type}, this expectation needs numbers")
    return column


def _number(v, where: str, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        raise ConfigError(f"{where}: {name} must be a number, got {v!r}")
    return float(v)
