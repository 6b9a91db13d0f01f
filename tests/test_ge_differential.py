"""Differential test: the same suite on the same data through GE 1.24's pandas engine and through nanguard gives
the same `success` (and, for row types, the same `unexpected_count`) for every supported GE expectation type.

GE's pandas semantics that nanguard matches: NaN is null; column map types do not evaluate nulls (so NaN is
never "out of range"); +/-Inf are values, compared like any other; `mostly` is over the evaluated rows (every row
for not-null/be-null, the rows ignore_row_if keeps for pair and multicolumn types); an undefined z-score
(std 0, fewer than two values, an infinity in the column) passes; aggregates follow pandas (Inf makes the mean
Inf and the stdev NaN, a NaN observed value fails). The one allowance: an aggregate observed value within 1e-9
(relative) of a bound may fall on either side of it, because nanguard merges per-batch moments where pandas
sums in one pass (the README says so)."""
import json
import logging
import math
import re
import warnings

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expectations.catalog import CONDITIONAL_TYPES
from expectations.compiler import CompileOptions, compile_suite
from expectations.results import expectation_results
from expectations.suite import parse_suite
from pipeline.files import plain
from pipeline.stages.profile import profile_json
from transforms.counts import RowCounts
from transforms.profile import ProfileAccumulator
from transforms.evaluate import check_batch

logging.getLogger("great_expectations").setLevel(logging.ERROR)

floats = st.one_of(st.none(), st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 2.5, 1e30]),
                   st.floats(-10, 10))
small = st.one_of(st.none(), st.sampled_from([math.nan, 0.0, 1.0, -1.0, 2.5, 4.0]))
ints = st.one_of(st.none(), st.integers(-5, 5))
texts = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "", "é", "Flash Cab", "ab12", "Prcard"]))
bounds = st.one_of(st.none(), st.sampled_from([-1.0, 0.0, 1.0, 2.5]))
mostly = st.one_of(st.none(), st.sampled_from([0.5, 0.8, 0.95]))
NUMERIC = ("a", "b", "c")


@st.composite
def cases(draw):
    n = draw(st.integers(1, 30))
    col = (lambda s: draw(st.lists(s, min_size=n, max_size=n)))
    table = pa.table({"a": pa.array(col(floats), pa.float64()), "b": pa.array(col(ints), pa.int64()),
                      "c": pa.array(col(small), pa.float64()),
                      "s": pa.array(col(texts), pa.string()), "t": pa.array(col(texts), pa.string())})
    ex = []
    add = (lambda kind, kwargs, m=None: ex.append(
        {"type": kind, "kwargs": dict(kwargs, **({"mostly": m} if m is not None else {}))}))
    for column in ("a", "b", "s"):
        add("expect_column_values_to_not_be_null", {"column": column}, draw(mostly))
        add("expect_column_values_to_be_null", {"column": column}, draw(mostly))
    for column in ("a", "b"):
        lo, hi = draw(bounds), draw(bounds)
        if lo is None and hi is None:
            lo = 0.0
        if lo is not None and hi is not None and lo > hi:  # GE errors; nanguard refuses the suite (test below)
            lo, hi = hi, lo
        add("expect_column_values_to_be_between", {"column": column, "min_value": lo, "max_value": hi,
                                                   "strict_min": draw(st.booleans()),
                                                   "strict_max": draw(st.booleans())}, draw(mostly))
        add("expect_column_value_z_scores_to_be_less_than",
            {"column": column, "threshold": draw(st.sampled_from([0.7, 1.7, 2.3, 3.1])),
             "double_sided": draw(st.booleans())}, draw(mostly))
    members = {"b": st.integers(-5, 5), "a": st.sampled_from([0.0, 1.0, -1.0, 2.5, math.inf, -math.inf]),
               "s": st.sampled_from(["a", "b", "c", "", "é"])}
    for kind in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        for column, values in members.items():
            add(kind, {"column": column, "value_set": draw(st.lists(values, min_size=1, max_size=4, unique=True))},
                draw(mostly))
    for a, b in (("a", "b"), ("c", "a"), ("s", "t")):
        add("expect_column_pair_values_a_to_be_greater_than_b",
            {"column_A": a, "column_B": b, "or_equal": draw(st.booleans()),
             "ignore_row_if": draw(st.sampled_from(["both_values_are_missing", "either_value_is_missing",
                                                    "neither"]))}, draw(mostly))
    add("expect_multicolumn_sum_to_equal",
        {"column_list": draw(st.sampled_from([["b", "c"], ["c", "b"], ["a", "c", "b"]])),
         "sum_total": draw(st.sampled_from([0.0, 1.0, 2.5, 5.0])),
         "ignore_row_if": draw(st.sampled_from(["all_values_are_missing", "any_value_is_missing", "never"]))},
        draw(mostly))
    for column in NUMERIC:
        for stat in ("min", "max", "mean", "median", "stdev", "sum"):
            lo, hi = draw(bounds), draw(bounds)
            if lo is not None and hi is not None and lo > hi:
                lo, hi = hi, lo
            add(f"expect_column_{stat}_to_be_between", {"column": column, "min_value": lo, "max_value": hi,
                                                        "strict_min": draw(st.booleans()),
                                                        "strict_max": draw(st.booleans())})
        qs = draw(st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]), min_size=1, max_size=3))
        ranges = [sorted([draw(st.sampled_from([-1.0, 0.0, 1.0, 2.5, 5.0])) for _ in range(2)]) for _ in qs]
        add("expect_column_quantile_values_to_be_between",
            {"column": column, "quantile_ranges": {"quantiles": qs, "value_ranges": ranges}})
        add("expect_column_values_to_be_of_type", {"column": column,
                                                   "type_": draw(st.sampled_from(["float64", "int64", "int",
                                                                                  "float", "float32"]))})
        add("expect_column_values_to_be_in_type_list",
            {"column": column, "type_list": draw(st.lists(st.sampled_from(["float64", "int64", "float32", "int32"]),
                                                          min_size=1, max_size=2, unique=True))})
    for column in ("s", "t"):  # text rules
        lo, hi = draw(st.sampled_from([None, 0, 1, 2])), draw(st.sampled_from([None, 1, 4, 9]))
        if lo is None and hi is None:
            lo = 1
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        add("expect_column_value_lengths_to_be_between", {"column": column, "min_value": lo, "max_value": hi},
            draw(mostly))
        for kind in ("expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex"):
            add(kind, {"column": column, "regex": draw(st.sampled_from(["^[a-c]$", "[0-9]", "Cab", "^$", "é|b",
                                                                       "^P[a-z]+d$"]))}, draw(mostly))
    for column in ("s", "b", "c"):
        values = {"s": st.sampled_from(["a", "b", "c", "", "é", "Flash Cab"]), "b": st.integers(-5, 5),
                  "c": st.sampled_from([0.0, 1.0, -1.0, 2.5, 4.0])}[column]
        add("expect_column_distinct_values_to_be_in_set",
            {"column": column, "value_set": draw(st.lists(values, min_size=1, max_size=6, unique=True))})
        lo, hi = draw(st.sampled_from([None, 0, 2, 3])), draw(st.sampled_from([None, 2, 4, 8]))
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        add("expect_column_unique_value_count_to_be_between", {"column": column, "min_value": lo, "max_value": hi})
    conditions = st.sampled_from(["b > 0", "b >= 1 & a.notnull()", 's == "a"', 's.isin(["a", "Flash Cab"])',
                                  "~(b < 0)", "c != 1", "(b < -2) | (c == 2.5)", "a.isnull() or b == 3",
                                  "`s` != \"b\"", "-1 <= b <= 2", "not c > 1"])
    for i, e in enumerate(list(ex)):  # GE's row_condition on some of the row expectations
        if e["type"] in CONDITIONAL_TYPES and draw(st.booleans()):
            ex[i] = dict(e, kwargs=dict(e["kwargs"], row_condition=draw(conditions), condition_parser="pandas"))
    for column in ("a", "s"):
        lo = draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))
        add("expect_column_proportion_of_non_null_values_to_be_between", {"column": column, "min_value": lo})
    add("expect_table_row_count_to_be_between", {"min_value": draw(st.integers(0, 20)),
                                                 "max_value": draw(st.sampled_from([20, 30, None]))})
    add("expect_column_to_exist", {"column": draw(st.sampled_from(["a", "s", "zz"]))})
    add("expect_table_columns_to_match_set", {"column_set": draw(st.sampled_from([["a", "b", "c", "s", "t"],
                                                                                  ["a", "b"], ["a", "q"]])),
                                              "exact_match": draw(st.booleans())})
    return table, {"name": "differential", "expectations": ex}


def nanguard_results(table: pa.Table, spec: dict) -> list[dict]:
    compiled = compile_suite(parse_suite(spec, "test"), table.schema, CompileOptions())
    assert len(compiled.expectations) == len(spec["expectations"])
    profile = ProfileAccumulator(tuple(table.column_names), True)
    for batch in table.to_batches(max_chunksize=7):
        profile.add_batch(batch)
    raw = json.loads(json.dumps(plain(profile_json(profile))))  # as the pipeline hands it to the driver
    rules = compiled.bind(profile.profiles)
    counts = RowCounts()
    for batch in table.to_batches(max_chunksize=7):  # several batches: counts must add up across them
        outcome = check_batch(batch, [r for _, r in rules])
        counts.merge(RowCounts.of(outcome, [owner for owner, _ in rules]))  # as the pipeline's check step does
    columns = {f.name: str(f.type) for f in table.schema}
    return expectation_results(compiled, counts, raw, columns)


def ge_results(table: pa.Table, spec: dict) -> list[dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        context = gx.get_context(mode="ephemeral")
        batch = (context.data_sources.add_pandas("p").add_dataframe_asset("t")
                 .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe":
                                                                                           table.to_pandas()}))
        result = batch.validate(gx.ExpectationSuite(**spec), result_format="SUMMARY")
    # GE may return results in another order than the suite's, and drops arguments left at their default: match
    # each expectation to the unused result of its type whose kept arguments all agree, preferring the one that
    # kept the most of them
    def score(r, e):
        given = {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"}
        if isinstance(given.get("row_condition"), dict):  # GE 1.24 keeps the pandas text in a dict
            given["row_condition"] = given["row_condition"]["pass_through_filter"]
        if r.expectation_config.type != e["type"] or any(e["kwargs"].get(k) != v for k, v in given.items()):
            return -1
        return len(given)

    out, used = [], set()
    for e in spec["expectations"]:
        i = max((i for i in range(len(result.results)) if i not in used), key=lambda i: score(result.results[i], e))
        r = result.results[i]
        assert score(r, e) >= 0, e
        used.add(i)
        assert not r.exception_info.get("raised_exception"), (e, r.exception_info)
        out.append({"success": r.success, "unexpected_count": r.result.get("unexpected_count"),
                    "observed_value": r.result.get("observed_value"), "element_count": r.result.get("element_count"),
                    "missing_count": r.result.get("missing_count")})
    return out


def _near_a_bound(e: dict, observed) -> bool:
    """An aggregate whose observed value ties a bound to rounding: either side is a right answer."""
    if not isinstance(observed, (int, float)) or not math.isfinite(observed):
        return False
    bounds = [e["kwargs"].get(k) for k in ("min_value", "max_value")]
    return any(b is not None and abs(observed - b) <= 1e-9 * max(1.0, abs(b)) for b in bounds)


def _compare(table, spec):
    ours, theirs = nanguard_results(table, spec), ge_results(table, spec)
    for e, a, b in zip(spec["expectations"], ours, theirs):
        if "observed_value" in a:  # aggregate
            assert a["success"] == b["success"] or _near_a_bound(e, b["observed_value"]), (e, a, b)
        else:
            assert (a["success"], a["unexpected_count"]) == (b["success"], b["unexpected_count"]), e
            if "column" in e["kwargs"]:  # one-column map types: the rows counted, and the missing among them
                assert a["element_count"] == b["element_count"], (e, a, b)
                assert b["missing_count"] is None or a["missing_count"] == b["missing_count"], (e, a, b)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases())
def test_nanguard_agrees_with_ge_on_random_tables(case):
    _compare(*case)


@pytest.mark.slow
def test_nanguard_agrees_with_ge_on_50k_rows():
    rng = np.random.default_rng(3)
    n = 50_000  # far beyond the quantile sketch's exact limit, small enough for GE's pandas engine
    a = rng.normal(0, 1, n)
    a[rng.choice(n, 300, replace=False)] = np.nan
    a[rng.choice(n, 200, replace=False)] = np.inf
    b = rng.integers(0, 6, n)
    c = rng.normal(10, 2, n)
    c[rng.choice(n, 50, replace=False)] = 1e4
    s = rng.choice(np.array(["red", "green", "blue", "teal"]), n)
    table = pa.table({"a": a, "b": pa.array(b, mask=rng.random(n) < 0.01), "c": c,
                      "s": pa.array(s, mask=rng.random(n) < 0.02)})
    ex = [
        ("expect_column_values_to_not_be_null", {"column": "a"}),
        ("expect_column_values_to_not_be_null", {"column": "s", "mostly": 0.95}),
        ("expect_column_values_to_be_between", {"column": "a", "min_value": -3, "max_value": 3, "mostly": 0.99}),
        ("expect_column_values_to_be_between", {"column": "a", "min_value": -3, "max_value": 3,
                                                "strict_min": True, "strict_max": True}),
        ("expect_column_values_to_be_between", {"column": "b", "min_value": 0, "max_value": 4}),
        ("expect_column_values_to_be_in_set", {"column": "b", "value_set": [0, 1, 2, 3, 4], "mostly": 0.8}),
        ("expect_column_values_to_be_in_set", {"column": "s", "value_set": ["red", "green", "blue"]}),
        ("expect_column_values_to_not_be_in_set", {"column": "s", "value_set": ["teal"]}),
        ("expect_column_value_z_scores_to_be_less_than", {"column": "c", "threshold": 4, "double_sided": True,
                                                          "mostly": 0.999}),
        ("expect_column_value_z_scores_to_be_less_than", {"column": "a", "threshold": 2,
                                                          "double_sided": False}),  # Inf: undefined
        ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "c", "column_B": "b"}),
        ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "c", "column_B": "a", "or_equal": True,
                                                              "mostly": 0.9}),
        ("expect_multicolumn_sum_to_equal", {"column_list": ["b", "b"], "sum_total": 4}),
        ("expect_column_mean_to_be_between", {"column": "c", "min_value": 9, "max_value": 11}),
        ("expect_column_mean_to_be_between", {"column": "a", "max_value": 1}),  # Inf mean
        ("expect_column_stdev_to_be_between", {"column": "c", "min_value": 1, "max_value": 100}),
        ("expect_column_median_to_be_between", {"column": "c", "min_value": 9.5, "max_value": 10.5}),
        ("expect_column_quantile_values_to_be_between", {"column": "c", "quantile_ranges": {
            "quantiles": [0.05, 0.5, 0.95], "value_ranges": [[5, 8], [9, 11], [12, 15]]}}),
        ("expect_column_min_to_be_between", {"column": "b", "min_value": 0}),
        ("expect_column_max_to_be_between", {"column": "c", "max_value": 100}),
        ("expect_column_sum_to_be_between", {"column": "b", "min_value": 400_000, "max_value": 600_000}),
        ("expect_column_proportion_of_non_null_values_to_be_between", {"column": "s", "min_value": 0.99}),
        ("expect_table_row_count_to_be_between", {"min_value": 100_000}),
        ("expect_column_values_to_be_of_type", {"column": "b", "type_": "float64"}),  # ints with nulls
        ("expect_table_columns_to_match_set", {"column_set": ["a", "b", "c", "s"]}),
    ]
    _compare(table, {"name": "big", "expectations": [{"type": t, "kwargs": k} for t, k in ex]})


def test_between_with_min_above_max_is_refused_like_ge_does():
    from expectations.errors import SuiteError
    spec = {"name": "bad", "expectations": [{"type": "expect_column_values_to_be_between",
                                             "kwargs": {"column": "a", "min_value": 2, "max_value": 1}}]}
    with pytest.raises(SuiteError, match="min_value 2 is greater than max_value 1"):
        compile_suite(parse_suite(spec, "bad"), pa.schema([("a", pa.float64())]), CompileOptions())


def test_the_arguments_each_type_takes_are_the_ones_ge_defines():
    import great_expectations.expectations as gxe

    from expectations.catalog import AGGREGATE_TYPES, ARGUMENTS, DESCRIPTIVE_ARGUMENTS, GE_ROW_TYPES, NOT_EVALUATED
    for etype in GE_ROW_TYPES + AGGREGATE_TYPES:
        cls = getattr(gxe, "".join(p.capitalize() for p in etype.split("_")))
        ge_fields = set(getattr(cls, "model_fields", None) or cls.__fields__)
        ours = set(ARGUMENTS[etype]) | DESCRIPTIVE_ARGUMENTS | set(NOT_EVALUATED)
        assert set(ARGUMENTS[etype]) <= ge_fields, (etype, set(ARGUMENTS[etype]) - ge_fields)
        assert ge_fields <= ours | {"library_metadata"}, (etype, ge_fields - ours)


@pytest.mark.parametrize("kwargs, message", [
    ({"column": "a", "max_vlaue": 3}, "unknown argument 'max_vlaue'"),
    ({"column": "a", "max_value": 3, "row_condition": 'b=="x"', "condition_parser": "pandas"}, "row_condition"),
    ({"column": "a", "max_value": 3, "mostly": "0.9"}, "mostly '0.9' must be a number in [0, 1]"),
    ({"column": "a", "max_value": 3, "mostly": 1.5}, "mostly 1.5 must be a number in [0, 1]"),
    ({"column": "a", "max_value": 3, "strict_min": "false"}, "strict_min 'false' must be true or false"),
])
def test_arguments_ge_would_refuse_are_refused_not_dropped(kwargs, message):
    from expectations.errors import SuiteError
    table = pa.table({"a": [1.0, 2.0, 5.0]})
    spec = {"name": "s", "expectations": [{"type": "expect_column_values_to_be_between", "kwargs": kwargs}]}
    with pytest.raises(SuiteError, match=re.escape(message)):
        nanguard_results(table, spec)


def test_mostly_0_and_sample_stdev_agree_with_ge_exactly():
    table = pa.table({"a": [1.0, 1.0, 3.0], "b": [-1.0, 0.0, 1.0]})
    std_a = float(pd.Series([1.0, 1.0, 3.0]).std())
    spec = {"name": "s", "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "max_value": 2, "mostly": 0}},
        {"type": "expect_column_stdev_to_be_between", "kwargs": {"column": "a", "min_value": std_a,
                                                                 "max_value": std_a}},
        {"type": "expect_column_stdev_to_be_between", "kwargs": {"column": "b", "min_value": 1.0, "max_value": 1.0}},
    ]}
    ours, theirs = nanguard_results(table, spec), ge_results(table, spec)
    assert [r["success"] for r in ours] == [r["success"] for r in theirs] == [True, True, True]
