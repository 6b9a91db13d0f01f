"""Differential test: the same suite on the same data through GE 1.24's pandas engine and through nanguard's
kernels gives the same `success` and `unexpected_count` for every supported row-level expectation type.

GE's pandas semantics that nanguard matches: NaN is null; between and in_set do not evaluate nulls (so NaN is
never "out of range"); +/-Inf are values, compared like any other; `mostly` is over the non-null values
(over every row for not-null)."""
import logging
import math
import warnings

import great_expectations as gx
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expectations.compiler import CompileOptions, compile_suite
from expectations.results import column_map_result
from expectations.suite import parse_suite
from transforms.profile import ProfileAccumulator
from transforms.quarantine import check_batch

logging.getLogger("great_expectations").setLevel(logging.ERROR)

floats = st.one_of(st.none(), st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 2.5, 1e30]),
                   st.floats(-10, 10))
ints = st.one_of(st.none(), st.integers(-5, 5))
texts = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "", "é"]))
bounds = st.one_of(st.none(), st.sampled_from([-1.0, 0.0, 1.0, 2.5]))
mostly = st.one_of(st.none(), st.sampled_from([0.5, 0.8, 0.95]))


@st.composite
def cases(draw):
    n = draw(st.integers(1, 30))
    table = pa.table({"a": pa.array(draw(st.lists(floats, min_size=n, max_size=n)), pa.float64()),
                      "b": pa.array(draw(st.lists(ints, min_size=n, max_size=n)), pa.int64()),
                      "s": pa.array(draw(st.lists(texts, min_size=n, max_size=n)), pa.string())})
    expectations = []
    for column in ("a", "b", "s"):
        expectations.append(_with_mostly("expect_column_values_to_not_be_null", {"column": column}, draw(mostly)))
        expectations.append(_with_mostly("expect_column_values_to_be_null", {"column": column}, draw(mostly)))
    for column in ("a", "b"):
        lo, hi = draw(bounds), draw(bounds)
        if lo is None and hi is None:
            lo = 0.0
        if lo is not None and hi is not None and lo > hi:  # GE errors; nanguard refuses the suite (test below)
            lo, hi = hi, lo
        kwargs = {"column": column, "min_value": lo, "max_value": hi,
                  "strict_min": draw(st.booleans()), "strict_max": draw(st.booleans())}
        expectations.append(_with_mostly("expect_column_values_to_be_between", kwargs, draw(mostly)))
    members = {"b": st.integers(-5, 5), "a": st.sampled_from([0.0, 1.0, -1.0, 2.5, math.inf, -math.inf]),
               "s": st.sampled_from(["a", "b", "c", "", "é"])}
    for kind in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        for column, values in members.items():
            value_set = draw(st.lists(values, min_size=1, max_size=4, unique=True))
            expectations.append(_with_mostly(kind, {"column": column, "value_set": value_set}, draw(mostly)))
    return table, {"name": "differential", "expectations": expectations}


def _with_mostly(kind, kwargs, m):
    return {"type": kind, "kwargs": dict(kwargs, **({"mostly": m} if m is not None else {}))}


def nanguard_results(table: pa.Table, spec: dict) -> list[dict]:
    compiled = compile_suite(parse_suite(spec, "test"), table.schema, CompileOptions())
    unexpected = [0] * len(spec["expectations"])
    profile = ProfileAccumulator(tuple(table.column_names), False)
    for batch in table.to_batches(max_chunksize=7):  # several batches: counts must add up across them
        outcome = check_batch(batch, [r for _, r in compiled.rules])
        for (owner, _), hits in zip(compiled.rules, outcome.rule_counts):
            unexpected[owner] += hits
        profile.add_batch(batch)
    out = []
    for e, hits in zip(spec["expectations"], unexpected):
        p = profile.profiles[e["kwargs"]["column"]]
        nonnull = p.rows - p.missing - p.nan
        out.append(column_map_result(e, hits, table.num_rows, nonnull))
    return out


def ge_results(table: pa.Table, spec: dict) -> list[dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        context = gx.get_context(mode="ephemeral")
        batch = (context.data_sources.add_pandas("p").add_dataframe_asset("t")
                 .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe":
                                                                                           table.to_pandas()}))
        result = batch.validate(gx.ExpectationSuite(**spec), result_format="SUMMARY")
    # GE may return results in another order than the suite's: match each expectation by type and arguments
    def matches(r, e):
        given = r.expectation_config.kwargs
        return r.expectation_config.type == e["type"] and all(  # GE drops arguments left at their default
            given.get(k) == v or (k not in given and v in (None, False)) for k, v in e["kwargs"].items())

    out = []
    for e in spec["expectations"]:
        r = next(r for r in result.results if matches(r, e))
        out.append({"success": r.success, "unexpected_count": r.result.get("unexpected_count")})
    return out


def _compare(table, spec):
    ours, theirs = nanguard_results(table, spec), ge_results(table, spec)
    for e, a, b in zip(spec["expectations"], ours, theirs):
        assert (a["success"], a["unexpected_count"]) == (b["success"], b["unexpected_count"]), e


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_nanguard_agrees_with_ge_on_random_tables(case):
    _compare(*case)


@pytest.mark.slow
def test_nanguard_agrees_with_ge_on_200k_rows():
    rng = np.random.default_rng(3)
    n = 200_000
    a = rng.normal(0, 1, n)
    a[rng.choice(n, 300, replace=False)] = np.nan
    a[rng.choice(n, 200, replace=False)] = np.inf
    b = rng.integers(0, 6, n)
    s = rng.choice(np.array(["red", "green", "blue", "teal"]), n)
    table = pa.table({"a": a, "b": pa.array(b, mask=rng.random(n) < 0.01), "s": pa.array(s, mask=rng.random(n) < 0.02)})
    spec = {"name": "big", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "s", "mostly": 0.95}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": -3, "max_value": 3,
                                                                  "mostly": 0.99}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": -3, "max_value": 3,
                                                                  "strict_min": True, "strict_max": True}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "b", "min_value": 0, "max_value": 4}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "b", "value_set": [0, 1, 2, 3, 4],
                                                                 "mostly": 0.8}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "s", "value_set": ["red", "green",
                                                                                               "blue"]}},
    ]}
    _compare(table, spec)


def test_between_with_min_above_max_is_refused_like_ge_does():
    from pipeline.errors import ConfigError
    spec = {"name": "bad", "expectations": [{"type": "expect_column_values_to_be_between",
                                             "kwargs": {"column": "a", "min_value": 2, "max_value": 1}}]}
    with pytest.raises(ConfigError, match="min_value 2 is greater than max_value 1"):
        compile_suite(parse_suite(spec, "bad"), pa.schema([("a", pa.float64())]), CompileOptions())
