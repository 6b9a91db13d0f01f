"""nanguard's own expectation types registered in Great Expectations: a suite using them loads with
gx.ExpectationSuite(**json), validates on GE's pandas engine, and GE's answers equal nanguard's."""
import json
import logging
import math
import warnings

import great_expectations as gx
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import expectations.ge_custom  # noqa: F401 - registers the types
from expectations.catalog import NANGUARD_ROW_TYPES
from expectations.compiler import CompileOptions, compile_suite
from expectations.results import column_map_result
from expectations.suite import parse_suite
from transforms.profile import ProfileAccumulator
from transforms.evaluate import check_batch

logging.getLogger("great_expectations").setLevel(logging.ERROR)

values = st.one_of(st.none(), st.sampled_from([math.nan, math.inf, -math.inf, 1e5, 7e4, -1e39, 1e30, 0.0]),
                   st.floats(-10, 10))
cells = st.one_of(st.none(), st.just([]), st.sampled_from([[1.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5], [0.2, 0.2],
                                                           [-0.5, 1.5], [math.nan, 1.0], [1.0]]),
                  st.lists(st.floats(0, 1), min_size=1, max_size=4))


@st.composite
def cases(draw):
    n = draw(st.integers(1, 25))
    table = pa.table({"x": pa.array(draw(st.lists(values, min_size=n, max_size=n)), pa.float64()),
                      "v": pa.array(draw(st.lists(cells, min_size=n, max_size=n)), pa.list_(pa.float64()))})
    m = draw(st.one_of(st.none(), st.sampled_from([0.5, 0.9])))
    mostly = {"mostly": m} if m is not None else {}
    ex = [{"type": "expect_column_values_to_be_finite", "kwargs": {"column": "x", **mostly}},
          {"type": "expect_column_values_to_fit_dtype",
           "kwargs": {"column": "x", "dtype": draw(st.sampled_from(["float16", "bfloat16", "float32"])), **mostly}},
          {"type": "expect_column_values_to_not_be_extreme",
           "kwargs": {"column": "x", "threshold": draw(st.sampled_from([10, 1000])), **mostly}},
          {"type": "expect_column_values_to_be_probability_vector", "kwargs": {"column": "v", **mostly}},
          {"type": "expect_column_values_to_be_one_hot", "kwargs": {"column": "v", **mostly}}]
    return table, {"name": "nanguard_types", "expectations": ex}


def nanguard(table, spec):
    compiled = compile_suite(parse_suite(spec, "t"), table.schema, CompileOptions())
    profile = ProfileAccumulator(tuple(table.column_names), True)
    for b in table.to_batches(max_chunksize=6):
        profile.add_batch(b)
    rules = compiled.bind(profile.profiles)
    hits = {i: 0 for i in range(len(spec["expectations"]))}
    for b in table.to_batches(max_chunksize=6):
        outcome = check_batch(b, [r for _, r in rules])
        for (i, _), h in zip(rules, outcome.rule_counts):
            hits[i] += h
    return [column_map_result(e, hits[i], table.num_rows, table.num_rows)
            for i, e in enumerate(spec["expectations"])]


def great_expectations(table, spec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        suite = gx.ExpectationSuite(**json.loads(json.dumps(spec)))  # loads from the JSON a user would keep
        batch = (gx.get_context(mode="ephemeral").data_sources.add_pandas("p").add_dataframe_asset("t")
                 .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe":
                                                                                           table.to_pandas()}))
        result = batch.validate(suite, result_format="SUMMARY")
    by_type = {r.expectation_config.type: r for r in result.results}
    for r in result.results:
        assert not r.exception_info.get("raised_exception"), r.exception_info
    return [{"success": by_type[e["type"]].success, "unexpected_count": by_type[e["type"]].result["unexpected_count"]}
            for e in spec["expectations"]]


def test_every_nanguard_type_is_registered_in_ge():
    from great_expectations.expectations.registry import get_expectation_impl
    for etype in NANGUARD_ROW_TYPES:
        assert get_expectation_impl(etype) is not None


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_ge_gives_nanguards_answers_for_nanguards_types(case):
    table, spec = case
    ours, theirs = nanguard(table, spec), great_expectations(table, spec)
    for e, a, b in zip(spec["expectations"], ours, theirs):
        assert (a["success"], a["unexpected_count"]) == (b["success"], b["unexpected_count"]), e
