"""Suite compiler: expectation configurations to vectorized row rules (transforms.row_checks) and aggregate checks.

Compiling happens where the pipeline is built, so an unsupported type, a missing column or a bad argument is
refused before any data is read. Rules that depend on the data (extreme-value bounds, z-score moments) are
bound to the raw profile on the worker, once per DoFn instance (CompiledSuite.bind). Aggregate expectations
are described here and evaluated on the raw profile by expectations.aggregates.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from expectations.catalog import (AGGREGATE_TYPES, ANY_COLUMN_TYPES, ARGUMENTS, CONDITIONAL_TYPES,
                                  DESCRIPTIVE_ARGUMENTS, NOT_EVALUATED,
                                  TEXT_TYPES,
                                  SUPPORTED)
from expectations.suite import Expectation, Suite
from expectations.errors import SuiteError
from expectations.missing_policy import MissingPolicy, policy_for
from expectations.row_condition import ConditionError, parse_condition
from transforms.columns import RESERVED, UNPARSEABLE, is_list, is_numeric, is_temporal_field, type_name
from transforms.conditions import All, Compare, Conditional, IsIn, Not
from transforms.conditions import Any as AnyOf
from transforms.extreme import DEFAULT_THRESHOLD, bounds_are_usable, extreme_bounds
from transforms.labels import LabelRule, LabelSpec
from transforms.profile import ColumnProfile
from transforms.row_checks import (INDICATOR_ALWAYS, INDICATOR_WHERE_MISSING, Between, Extreme, FitsDtype, InSet,
                                  IsNull, MatchesRegex, MissingCells, MulticolumnSum, NotInSet, NotNull, PairGreater,
                                  Parseable, PresentAndFinite, ValueLengths, ZScore)

ALL_COLUMNS = "*"  # nanguard extension: every numeric column


@dataclasses.dataclass(frozen=True)
class PendingExtreme:
    """An extreme-value rule waiting for the raw profile's quantiles."""
    column: str
    threshold: float
    action: str


@dataclasses.dataclass(frozen=True)
class PendingZScore:
    """A z-score rule waiting for the raw profile's mean and standard deviation."""
    column: str
    threshold: float
    double_sided: bool
    action: str


@dataclasses.dataclass(frozen=True)
class CompiledSuite:
    # (index into `expectations`, rule): static rules, and data-dependent rules still to bind
    rules: tuple
    # one per compiled expectation: type, column, kwargs, meta, action, kind (row | aggregate) and origin (suite,
    # or the flag or input that added it: --label, --mixed-precision, input)
    expectations: tuple[dict, ...]
    impute: Mapping[str, str | float] = dataclasses.field(default_factory=dict)  # column -> mean | median | a value
    # column -> (q0.1%, median, q99.9%) of a baseline's raw profile: extreme bounds from it, not from this data
    # (so a day of uniformly shifted data is caught, not absorbed)
    bulk: Mapping[str, tuple[float, float, float]] = dataclasses.field(default_factory=dict)

    def for_workers(self) -> "CompiledSuite":
        """The rules without their descriptions (whose kwargs repeat every value set): what a DoFn carries."""
        return dataclasses.replace(self, expectations=())

    @property
    def fills_missing(self) -> frozenset[str]:
        """Columns whose null cells the write pass fills in (an impute rule flags every null cell of them)."""
        return frozenset(r.column for _, r in self.rules if r.action == "impute" and (
            isinstance(r, (MissingCells, NotNull)) or (isinstance(r, PresentAndFinite) and not r.skip_missing)))

    @property
    def indicators(self) -> dict[str, str]:
        """Column -> when it gets a COL__missing 0/1 column (--missing [COL=]indicator): always, where_missing."""
        return {r.column: r.indicator for _, r in self.rules if isinstance(r, MissingCells) and r.indicator}

    def bind(self, raw_profile: Mapping[str, ColumnProfile]) -> tuple:
        """The rules with data-dependent parameters filled in from the raw profile, in a fixed order."""
        out = []
        for idx, rule in self.rules:
            if (isinstance(rule, MissingCells) or (isinstance(rule, PresentAndFinite) and rule.all_null_is_column_finding)
                    ) and is_all_null(raw_profile.get(rule.column)):
                # a column with no value at all is a column-level finding (dropped from the shards and
                # reported), never a reason to quarantine every row
                if isinstance(rule, MissingCells):
                    continue
                rule = dataclasses.replace(rule, skip_missing=True)
            if isinstance(rule, PendingExtreme):
                bulk = self.bulk.get(rule.column) or raw_profile[rule.column].bulk()
                if bulk is None:
                    continue
                lo, med, hi = bulk
                if not bounds_are_usable(med, lo, hi):
                    continue
                rule = Extreme(rule.column, extreme_bounds(med, lo, hi, rule.threshold), rule.action)
            elif isinstance(rule, PendingZScore):
                mean, std = sample_moments(raw_profile[rule.column])
                rule = ZScore(rule.column, rule.threshold, rule.double_sided, mean, std, rule.action)
            out.append((idx, rule))
        return tuple(out)

    @property
    def row_indices(self) -> tuple[int, ...]:
        return tuple(i for i, e in enumerate(self.expectations) if e["kind"] == "row")


def is_all_null(p: ColumnProfile | None) -> bool:
    """Every one of the column's cells is null (no value, not even NaN)."""
    return p is not None and p.rows > 0 and p.missing == p.rows


def sample_moments(p: ColumnProfile) -> tuple[float, float]:
    """(mean, sample std) of a column as pandas computes them over non-null values: +/-Inf makes the std NaN,
    and so does having fewer than two values."""
    if p.pos_inf or p.neg_inf or p.finite < 2:
        return (p.mean if p.finite else math.nan), math.nan
    mean, m2 = p._moments()
    return mean, math.sqrt(m2 / (p.finite - 1)) if math.isfinite(m2) else math.inf


@dataclasses.dataclass(frozen=True)
class CompileOptions:
    labels: tuple[LabelSpec, ...] = ()
    passthrough: tuple[str, ...] = ()
    extreme_threshold: float | None = None  # overrides the suite's threshold
    extreme_action: str | None = None  # quarantine | warn | none (drops the rule)
    mixed_precision: bool = False
    missing: Mapping[str, MissingPolicy] = dataclasses.field(default_factory=dict)  # column or '*' -> policy


def compile_suite(suite: Suite, schema: pa.Schema, options: CompileOptions) -> CompiledSuite:
    data = [f for f in schema if f.name not in RESERVED]
    numeric = [f.name for f in data if is_numeric(f.type) or (is_list(f.type) and is_numeric(f.type.value_type))]
    label_names = {lab.column for lab in options.labels}
    scalar_features = [f.name for f in data if is_numeric(f.type) and f.name not in label_names
                       and f.name not in options.passthrough]
    rules: list = []
    described: list[dict] = []
    impute: dict[str, str | float] = {}
    policies = {c: policy_for(dict(options.missing), c) for c in scalar_features}
    governed = {c for c, p in policies.items() if p.action != "quarantine"}

    conditions: dict[int, object] = {}  # id(expectation) -> its parsed row_condition
    # One object per distinct condition, so a batch computes its mask once for every rule that shares it
    # (BatchView.rows_where). Keyed by repr, not ==, which takes True, 1 and 1.0 for one literal: conditions
    # are joined only when they are the same condition to the letter.
    distinct_conditions: dict[str, object] = {}

    def add(e: Expectation, column: str | None, rule, kwargs: dict | None = None, origin: str = "suite") -> None:
        if id(e) in conditions:
            rule = Conditional(rule, conditions[id(e)])
        described.append({"type": e.type, "column": column, "kwargs": dict(kwargs or e.kwargs),
                          "meta": dict(e.meta), "action": rule.action, "kind": "row", "origin": origin})
        rules.append((len(described) - 1, rule))

    for i, e in enumerate(suite.expectations):
        where = f"suite '{suite.name}', expectations[{i}] ({e.type})"
        if e.type not in SUPPORTED:
            raise SuiteError(f"{where}: unsupported expectation type. Supported: {', '.join(SUPPORTED)}")
        _check_arguments(e, where)
        if e.kwargs.get("row_condition"):
            condition = _condition(e, where, schema)
            conditions[id(e)] = distinct_conditions.setdefault(repr(condition), condition)
        if e.type in AGGREGATE_TYPES:
            described.append(_aggregate(e, where, schema))
            continue
        if e.type == "expect_column_pair_values_a_to_be_greater_than_b":
            add(e, None, _pair(e, where, schema))
            continue
        if e.type == "expect_multicolumn_sum_to_equal":
            add(e, None, _multicolumn_sum(e, where, schema, numeric))
            continue
        column = e.kwargs.get("column")
        if not isinstance(column, str):
            raise SuiteError(f"{where}: needs a 'column' argument")
        if e.type == "expect_column_values_to_not_be_extreme":
            if options.extreme_action == "none":
                continue
            threshold = options.extreme_threshold or _number(e.kwargs.get("threshold", DEFAULT_THRESHOLD), where, "threshold")
            action = options.extreme_action or e.action
            for c in (scalar_features if column == ALL_COLUMNS else [_need(column, schema, where, numeric)]):
                _note_impute(impute, e, c, where, schema)
                add(e, c, PendingExtreme(c, threshold, action), dict(e.kwargs, column=c))
            continue
        repairs = e.action in ("clip", "impute")
        if e.type in TEXT_TYPES:
            targets = [_need_text(column, schema, where)]
        elif column == ALL_COLUMNS:  # a repair never rewrites a label or a pass-through column
            targets = scalar_features if repairs else numeric
        else:
            targets = [_need(column, schema, where, None if e.type in ANY_COLUMN_TYPES else numeric)]
            if repairs and (column in label_names or column in options.passthrough):
                raise SuiteError(f"{where}: on_fail {e.action} would rewrite '{column}', a "
                                 f"{'label' if column in label_names else 'pass-through column'}; nanguard never "
                                 f"clips or imputes those. Use on_fail quarantine (or warn) for it")
        for c in targets:
            _note_impute(impute, e, c, where, schema)
            rule = _rule(e, c, where, schema)
            if isinstance(rule, PresentAndFinite) and c in governed:  # null cells follow --missing instead
                rule = dataclasses.replace(rule, skip_missing=True)
            if isinstance(rule, PresentAndFinite) and column == ALL_COLUMNS:
                rule = dataclasses.replace(rule, all_null_is_column_finding=True)
            add(e, c, rule, dict(e.kwargs, column=c))
    for c in scalar_features:
        if c in governed:
            p = policies[c]
            e = Expectation("expect_column_values_to_not_be_null", {"column": c},
                            {"nanguard": {"on_fail": "impute", "missing": p.describe()}})
            if impute.setdefault(c, p.fill) != p.fill:
                raise SuiteError(f"--missing {c}={p.describe()}: the suite already imputes '{c}' with "
                                 f"{impute[c]}; one column takes one fill")
            when = "" if not p.indicator else INDICATOR_ALWAYS if c in options.missing else INDICATOR_WHERE_MISSING
            add(e, c, MissingCells(c, "impute", when), origin="--missing")
    if options.mixed_precision:
        # Columns written without normalization reach a float16 model as they are.
        e = Expectation("expect_column_values_to_fit_dtype", {"column": ALL_COLUMNS, "dtype": "float16"})
        for c in numeric:
            if c in label_names or c in options.passthrough or c not in scalar_features:
                add(e, c, FitsDtype(c, "float16"), {"column": c, "dtype": "float16"}, "--mixed-precision")
    for lab in options.labels:
        e = Expectation("expect_column_values_to_be_valid_label", {"column": lab.column, "kind": lab.describe()})
        add(e, lab.column, LabelRule(lab), origin="--label")
    if UNPARSEABLE in schema.names:
        add(Expectation("expect_column_values_to_be_parseable", {"column": ALL_COLUMNS}), None, Parseable(),
            origin="input")
    return CompiledSuite(tuple(rules), tuple(described), impute)


def _check_arguments(e: Expectation, where: str) -> None:
    """Every argument is one the type takes, and `mostly` is a share in [0, 1], as GE validates them."""
    takes = ARGUMENTS[e.type]
    for name in e.kwargs:
        if name in NOT_EVALUATED and e.kwargs[name] not in (None, "", []):
            raise SuiteError(f"{where}: {NOT_EVALUATED[name]}")
        if name not in takes and name not in DESCRIPTIVE_ARGUMENTS and name not in NOT_EVALUATED:
            raise SuiteError(f"{where}: unknown argument '{name}' (GE refuses it too); this type takes "
                             f"{', '.join(takes)}")
    if "mostly" in e.kwargs:
        mostly = e.kwargs["mostly"]
        if isinstance(mostly, bool) or not isinstance(mostly, (int, float)) or not 0 <= mostly <= 1:
            raise SuiteError(f"{where}: mostly {mostly!r} must be a number in [0, 1] (the share of evaluated rows "
                             f"that must meet the expectation)")
    for name in ("strict_min", "strict_max", "double_sided", "or_equal", "exact_match", "allow_relative_error"):
        if name in e.kwargs and not isinstance(e.kwargs[name], bool) and not (
                name == "allow_relative_error" and isinstance(e.kwargs[name], (int, float))):
            raise SuiteError(f"{where}: {name} {e.kwargs[name]!r} must be true or false")
    if "column_index" in e.kwargs and (isinstance(e.kwargs["column_index"], bool) or
                                       not isinstance(e.kwargs["column_index"], int)):
        raise SuiteError(f"{where}: column_index {e.kwargs['column_index']!r} must be a whole number")


def _condition(e: Expectation, where: str, schema: pa.Schema):
    """The parsed row_condition of an expectation, refused where nanguard cannot evaluate it."""
    parser = e.kwargs.get("condition_parser")
    if parser != "pandas":
        raise SuiteError(f"{where}: row_condition needs condition_parser \"pandas\" (a pandas query such as "
                         f"'fare > 100 & payment_type == \"Cash\"'); got {parser!r}")
    if e.type not in CONDITIONAL_TYPES:
        raise SuiteError(f"{where}: row_condition on {e.type} is not evaluated by nanguard (its statistics are of "
                         f"the whole column); filter the data before the run, or drop the condition")
    text = e.kwargs["row_condition"]
    if isinstance(text, dict) and text.get("type") == "pass_through":  # how GE 1.24 writes a suite it saved
        text = text.get("pass_through_filter")
    try:
        condition = parse_condition(text, [n for n in schema.names if n not in RESERVED])
    except ConditionError as err:
        raise SuiteError(f"{where}: {err}") from None
    return _typed_literals(condition, schema, f"{where}: row_condition {text!r}")


def _typed_literals(node, schema: pa.Schema, where: str):
    """The condition with each literal in its column's terms (a date or date-time string on a timestamp or date
    column becomes its seconds since 1970-01-01 UTC, as nanguard holds the column); a literal that cannot meet
    its column's values (text against numbers, a number against text, anything against a list column) is a
    SuiteError here rather than an error on every batch, or a condition that silently selects nothing."""
    if isinstance(node, Not):
        return Not(_typed_literals(node.operand, schema, where))
    if isinstance(node, (All, AnyOf)):
        return type(node)(tuple(_typed_literals(o, schema, where) for o in node.operands))
    if not isinstance(node, (Compare, IsIn)):
        return node
    field = schema.field(node.column)
    if is_list(field.type):
        raise SuiteError(f"{where}: column '{node.column}' holds lists ({type_name(field)}); a row condition "
                         f"compares single values")
    numeric = is_numeric(field.type) or is_temporal_field(field)

    def typed(v):
        if numeric and isinstance(v, str):
            if is_temporal_field(field):
                return _bound(v, field, where, f"'{node.column}' compared with")
            raise SuiteError(f"{where}: column '{node.column}' holds numbers ({type_name(field)}) and {v!r} is "
                             f"text; compare it with a number")
        if not numeric and not isinstance(v, str):
            raise SuiteError(f"{where}: column '{node.column}' holds text and {v!r} is not; write it in quotes "
                             f"(\"{v}\") to compare text: pandas selects no row when text is compared with a number")
        return v
    if isinstance(node, Compare):
        return dataclasses.replace(node, value=typed(node.value))
    return dataclasses.replace(node, values=tuple(typed(v) for v in node.values))


def _note_impute(impute: dict, e: Expectation, column: str, where: str, schema: pa.Schema) -> None:
    if e.action not in ("impute", "clip"):
        return
    if not is_numeric(schema.field(column).type):
        raise SuiteError(f"{where}: on_fail {e.action} needs a column of single numbers; '{column}' is "
                          f"{type_name(schema.field(column))} (name the scalar columns instead of '*', or use quarantine)")
    if e.action == "impute":
        if impute.setdefault(column, e.impute_with) != e.impute_with:
            raise SuiteError(f"{where}: column '{column}' is imputed with {impute[column]} by another expectation; "
                              f"one column takes one meta.nanguard.impute statistic")


def _rule(e: Expectation, column: str, where: str, schema: pa.Schema):
    kw, action = e.kwargs, e.action
    if e.type == "expect_column_values_to_be_finite":
        return PresentAndFinite(column, action)
    if e.type == "expect_column_values_to_fit_dtype":
        dtype = kw.get("dtype", "float32")
        if dtype not in ("float16", "bfloat16", "float32", "float64"):
            raise SuiteError(f"{where}: dtype {dtype!r} is not one of float16, bfloat16, float32, float64")
        return FitsDtype(column, dtype, action)
    if e.type == "expect_column_values_to_not_be_null":
        return NotNull(column, action)
    if e.type == "expect_column_values_to_be_null":
        return IsNull(column, action)
    if e.type == "expect_column_values_to_be_between":
        lo, hi = (_bound(kw.get(k), schema.field(column), where, k) for k in ("min_value", "max_value"))
        if lo is None and hi is None:
            raise SuiteError(f"{where}: give min_value, max_value or both")
        if lo is not None and hi is not None and _number(lo, where, "min_value") > _number(hi, where, "max_value"):
            raise SuiteError(f"{where}: min_value {lo} is greater than max_value {hi} (GE refuses this too)")
        return Between(column, None if lo is None else _number(lo, where, "min_value"),
                       None if hi is None else _number(hi, where, "max_value"),
                       bool(kw.get("strict_min", False)), bool(kw.get("strict_max", False)), action)
    if e.type in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        values = kw.get("value_set")
        if not isinstance(values, list) or not values:
            raise SuiteError(f"{where}: value_set must be a non-empty list")
        if is_numeric(schema.field(column).type) and not all(isinstance(v, (int, float)) for v in values):
            raise SuiteError(f"{where}: column '{column}' is numeric but value_set holds non-numbers")
        rule = InSet if e.type == "expect_column_values_to_be_in_set" else NotInSet
        return rule(column, values, action, text=not is_numeric(schema.field(column).type))
    if e.type == "expect_column_value_z_scores_to_be_less_than":
        if "threshold" not in kw or not isinstance(kw.get("double_sided"), bool):
            raise SuiteError(f"{where}: needs 'threshold' (the largest z-score allowed, e.g. 4) and 'double_sided' "
                              f"(true: |z| < threshold; false: z < threshold), as GE requires both")
        return PendingZScore(column, _number(kw["threshold"], where, "threshold"), kw["double_sided"], action)
    if e.type in ("expect_column_values_to_be_probability_vector", "expect_column_values_to_be_one_hot"):
        kind = "probvec" if e.type == "expect_column_values_to_be_probability_vector" else "onehot"
        if not is_list(schema.field(column).type):
            raise SuiteError(f"{where}: column '{column}' holds one value per row; this expectation needs a list "
                              f"of numbers per row")
        return LabelRule(LabelSpec(column, kind), _number(kw.get("tolerance", 1e-4), where, "tolerance"), action)
    if e.type == "expect_column_value_lengths_to_be_between":
        lo, hi = kw.get("min_value"), kw.get("max_value")
        if lo is None and hi is None:
            raise SuiteError(f"{where}: give min_value, max_value or both")
        for name, v in (("min_value", lo), ("max_value", hi)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise SuiteError(f"{where}: {name} {v!r} must be a whole number of characters >= 0")
        if lo is not None and hi is not None and lo > hi:
            raise SuiteError(f"{where}: min_value {lo} is greater than max_value {hi} (GE refuses this too)")
        return ValueLengths(column, lo, hi, bool(kw.get("strict_min", False)), bool(kw.get("strict_max", False)),
                            action)
    if e.type in ("expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex"):
        regex = kw.get("regex")
        if not isinstance(regex, str) or not regex:
            raise SuiteError(f"{where}: needs 'regex', a non-empty pattern")
        try:
            pc.match_substring_regex(pa.array([""]), regex)
        except pa.ArrowInvalid as err:
            raise SuiteError(f"{where}: regex {regex!r} is not one nanguard can run ({err}); nanguard uses RE2 "
                             f"(linear time): no backreferences or lookaround") from None
        return MatchesRegex(column, regex, e.type == "expect_column_values_to_not_match_regex", action)
    raise AssertionError(e.type)  # catalog.ROW_TYPES and this function list the same types


def _pair(e: Expectation, where: str, schema: pa.Schema) -> PairGreater:
    a, b = e.kwargs.get("column_A"), e.kwargs.get("column_B")
    if not isinstance(a, str) or not isinstance(b, str):
        raise SuiteError(f"{where}: needs 'column_A' and 'column_B'")
    _need(a, schema, where, None)
    _need(b, schema, where, None)
    if is_numeric(schema.field(a).type) != is_numeric(schema.field(b).type):
        raise SuiteError(f"{where}: '{a}' is {type_name(schema.field(a))} and '{b}' is {type_name(schema.field(b))}; "
                          f"compare numbers with numbers or text with text")
    try:
        return PairGreater(a, b, bool(e.kwargs.get("or_equal") or False),
                           e.kwargs.get("ignore_row_if") or "both_values_are_missing", e.action)
    except ValueError as err:
        raise SuiteError(f"{where}: {err}") from None


def _multicolumn_sum(e: Expectation, where: str, schema: pa.Schema, numeric: list[str]) -> MulticolumnSum:
    columns = e.kwargs.get("column_list")
    if not isinstance(columns, list) or len(columns) < 2 or not all(isinstance(c, str) for c in columns):
        raise SuiteError(f"{where}: needs 'column_list', a list of two or more column names")
    for c in columns:
        _need(c, schema, where, [n for n in numeric if not is_list(schema.field(n).type)])
    if "sum_total" not in e.kwargs:
        raise SuiteError(f"{where}: needs 'sum_total'")
    try:
        return MulticolumnSum(tuple(columns), _number(e.kwargs["sum_total"], where, "sum_total"),
                              e.kwargs.get("ignore_row_if") or "all_values_are_missing", e.action)
    except ValueError as err:
        raise SuiteError(f"{where}: {err}") from None


def _aggregate(e: Expectation, where: str, schema: pa.Schema) -> dict:
    """The description of an aggregate expectation, its arguments checked against the schema."""
    kw = e.kwargs
    column = kw.get("column")
    if e.type.startswith("expect_column_"):
        if not isinstance(column, str) or column == ALL_COLUMNS:
            raise SuiteError(f"{where}: needs a 'column' argument naming one column")
        if e.type != "expect_column_to_exist":
            _need(column, schema, where, None)
            if e.type not in ANY_COLUMN_TYPES and not is_numeric(schema.field(column).type):
                raise SuiteError(f"{where}: column '{column}' is {type_name(schema.field(column))}, this expectation "
                                  f"needs a column of single numbers")
    if e.type.endswith("_to_be_between") and e.type != "expect_column_quantile_values_to_be_between":
        lo, hi = kw.get("min_value"), kw.get("max_value")
        for name, v in (("min_value", lo), ("max_value", hi)):
            if v is not None:
                _number(v, where, name)
        if lo is not None and hi is not None and lo > hi:
            raise SuiteError(f"{where}: min_value {lo} is greater than max_value {hi}")
    if e.type == "expect_column_quantile_values_to_be_between":
        qr = kw.get("quantile_ranges")
        if not isinstance(qr, dict) or not isinstance(qr.get("quantiles"), list) or \
                not isinstance(qr.get("value_ranges"), list) or len(qr["quantiles"]) != len(qr["value_ranges"]):
            raise SuiteError(f"{where}: quantile_ranges needs 'quantiles' and 'value_ranges' lists of equal length")
        for q in qr["quantiles"]:
            if not 0 <= _number(q, where, "quantiles[]") <= 1:
                raise SuiteError(f"{where}: quantile {q} is outside [0, 1]")
        for pair in qr["value_ranges"]:
            if not isinstance(pair, list) or len(pair) != 2:
                raise SuiteError(f"{where}: each value_ranges entry is [min, max] (null for no bound), got {pair!r}")
            for bound in pair:
                if bound is not None:
                    _number(bound, where, "value_ranges[]")
    if e.type == "expect_column_distinct_values_to_be_in_set" and not (
            isinstance(kw.get("value_set"), list) and kw["value_set"]):
        raise SuiteError(f"{where}: value_set must be a non-empty list")
    if e.type == "expect_column_values_to_be_of_type" and not isinstance(kw.get("type_"), str):
        raise SuiteError(f"{where}: needs 'type_', a type name such as float64 or int64")
    if e.type == "expect_column_values_to_be_in_type_list" and not (
            isinstance(kw.get("type_list"), list) and all(isinstance(t, str) for t in kw["type_list"])):
        raise SuiteError(f"{where}: needs 'type_list', a list of type names")
    if e.type == "expect_table_columns_to_match_set" and not (
            isinstance(kw.get("column_set"), list) and all(isinstance(c, str) for c in kw["column_set"])):
        raise SuiteError(f"{where}: needs 'column_set', a list of column names")
    return {"type": e.type, "column": column if isinstance(column, str) else None, "kwargs": dict(kw),
            "meta": dict(e.meta), "action": e.action, "kind": "aggregate", "origin": "suite"}


def _need(column: str, schema: pa.Schema, where: str, numeric: list[str] | None) -> str:
    if column not in schema.names or column in RESERVED:
        raise SuiteError(f"{where}: column '{column}' is not in the input (columns: "
                          f"{', '.join(n for n in schema.names if n not in RESERVED)})")
    if numeric is not None and column not in numeric:
        raise SuiteError(f"{where}: column '{column}' is {type_name(schema.field(column))}, this expectation needs numbers")
    return column


def _bound(v, field: pa.Field, where: str, name: str):
    """A between bound: a number, or for a timestamp/date column an ISO date-time string (as GE takes it), in
    the seconds since 1970-01-01 UTC that nanguard holds such a column in."""
    if isinstance(v, str) and is_temporal_field(field):
        try:
            instant = np.datetime64(v.rstrip("Z").replace(" ", "T"), "us")
        except ValueError:
            raise SuiteError(f"{where}: {name} {v!r} is not an ISO date or date-time (e.g. 2014-01-31 or "
                             f"2014-01-31T08:00:00)") from None
        return float(instant.astype(np.int64)) / 1e6
    if isinstance(v, str):
        raise SuiteError(f"{where}: {name} must be a number, got {v!r} (column '{field.name}' is "
                         f"{type_name(field)}; date-time bounds need a timestamp or date column)")
    return v


def _need_text(column, schema: pa.Schema, where: str) -> str:
    if not isinstance(column, str) or column == ALL_COLUMNS:
        raise SuiteError(f"{where}: needs a 'column' argument naming one text column")
    _need(column, schema, where, None)
    if not pa.types.is_string(schema.field(column).type):
        raise SuiteError(f"{where}: column '{column}' is {type_name(schema.field(column))}; this expectation needs a "
                         f"text column")
    return column


def _number(v, where: str, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        raise SuiteError(f"{where}: {name} must be a number, got {v!r}")
    return float(v)
