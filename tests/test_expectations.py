"""Suite loading and compiling: clear refusals before any data is read."""
import json

import pyarrow as pa
import pytest

from expectations import CompileOptions, compile_suite, default_suite, load_suite, parse_suite
from expectations.errors import SuiteError
from transforms.labels import LabelSpec

SCHEMA = pa.schema([("x", pa.float64()), ("n", pa.int64()), ("s", pa.string()), ("y", pa.float64()),
                    ("__source_file", pa.string()), ("__row_index", pa.int64())])


def suite(*expectations):
    return parse_suite({"name": "t", "expectations": list(expectations)}, "test")


def test_default_suite_expands_to_every_numeric_column_and_labels():
    compiled = compile_suite(default_suite(), SCHEMA, CompileOptions(labels=(LabelSpec("y", "probability"),)))
    described = [(e["type"], e["column"]) for e in compiled.expectations]
    assert ("expect_column_values_to_be_finite", "x") in described
    assert ("expect_column_values_to_be_finite", "y") in described
    assert ("expect_column_values_to_not_be_extreme", "y") not in described  # labels are checked by kind
    assert ("expect_column_values_to_be_valid_label", "y") in described
    assert not any(c in ("s", "__row_index") for _, c in described)


def test_user_suite_types_compile():
    s = suite({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0,
                                                                        "strict_min": True}},
              {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "s", "value_set": ["a"]}},
              {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "s"}})
    assert len(compile_suite(s, SCHEMA, CompileOptions()).rules) == 3


@pytest.mark.parametrize("expectation,message", [
    ({"type": "expect_column_values_to_match_like_pattern", "kwargs": {"column": "s"}}, "unsupported expectation type"),
    ({"type": "expect_column_values_to_match_regex", "kwargs": {"column": "s", "regex": "(a)\\1"}}, "RE2"),
    ({"type": "expect_column_values_to_match_regex", "kwargs": {"column": "x", "regex": "a"}}, "needs a text column"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "zz", "min_value": 0}}, "'zz' is not in"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "row_condition": 'n > 1'}}, "condition_parser"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "row_condition": 'col("n") > 1', "condition_parser": "great_expectations"}}, "condition_parser"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "row_condition": 'n * 2 > 3', "condition_parser": "pandas"}}, "one column with one literal"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "row_condition": 'n > x', "condition_parser": "pandas"}}, "one column with one literal"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "row_condition": "__import__('os').system('true')", "condition_parser": "pandas"}}, "is not a column name"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "row_condition": 'q > 1', "condition_parser": "pandas"}}, "'q' is not in the input"),
    ({"type": "expect_column_value_z_scores_to_be_less_than", "kwargs": {"column": "x", "threshold": 3, "double_sided": True, "row_condition": "n > 1", "condition_parser": "pandas"}}, "not evaluated by nanguard"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "s", "min_value": 0}}, "needs numbers"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x"}}, "min_value, max_value"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": "a"}}, "must be a number"),
    ({"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "x", "value_set": ["a"]}}, "non-numbers"),
    ({"type": "expect_column_value_z_scores_to_be_less_than", "kwargs": {"column": "x", "threshold": 3}},
     "double_sided"),
    ({"type": "expect_column_pair_values_a_to_be_greater_than_b", "kwargs": {"column_A": "x", "column_B": "s"}},
     "numbers with numbers"),
    ({"type": "expect_column_pair_values_a_to_be_greater_than_b",
      "kwargs": {"column_A": "x", "column_B": "n", "ignore_row_if": "sometimes"}}, "ignore_row_if 'sometimes'"),
    ({"type": "expect_multicolumn_sum_to_equal", "kwargs": {"column_list": ["x"], "sum_total": 1}}, "two or more"),
    ({"type": "expect_multicolumn_sum_to_equal", "kwargs": {"column_list": ["x", "s"], "sum_total": 1}},
     "needs numbers"),
    ({"type": "expect_column_mean_to_be_between", "kwargs": {"column": "*", "min_value": 0}}, "naming one column"),
    ({"type": "expect_column_mean_to_be_between", "kwargs": {"column": "s", "min_value": 0}}, "single numbers"),
    ({"type": "expect_column_quantile_values_to_be_between",
      "kwargs": {"column": "x", "quantile_ranges": {"quantiles": [0.5, 2], "value_ranges": [[0, 1], [0, 1]]}}},
     "outside \\[0, 1\\]"),
    ({"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "x"}}, "type_"),
    ({"type": "expect_column_values_to_be_probability_vector", "kwargs": {"column": "x"}}, "list of numbers"),
    ({"type": "expect_column_values_to_be_finite", "kwargs": {"column": "*"},
      "meta": {"nanguard": {"on_fail": "impute", "impute": "median"}}}, None),
    ({"type": "expect_column_values_to_be_finite", "kwargs": {"column": "s"},
      "meta": {"nanguard": {"on_fail": "impute"}}}, "needs numbers"),
])
def test_bad_expectations_are_refused_with_the_reason(expectation, message):
    if message is None:  # accepted
        assert compile_suite(suite(expectation), SCHEMA, CompileOptions()).impute == {"x": "median", "n": "median",
                                                                                    "y": "median"}
        return
    with pytest.raises(SuiteError, match=message):
        compile_suite(suite(expectation), SCHEMA, CompileOptions())


@pytest.mark.parametrize("etype,action,ok", [
    ("expect_column_values_to_be_between", "clip", True),
    ("expect_column_values_to_not_be_null", "clip", False),  # nothing to clip a null to
    ("expect_column_values_to_be_null", "impute", False),  # imputing would make it non-null
    ("expect_column_values_to_be_finite", "impute", True),
    ("expect_column_mean_to_be_between", "quarantine", False),  # an aggregate has no rows to quarantine
    ("expect_column_mean_to_be_between", "warn", True),
    ("expect_column_values_to_be_in_set", "explode", False),
])
def test_on_fail_actions_are_checked_per_type(etype, action, ok):
    doc = {"name": "t", "expectations": [{"type": etype, "kwargs": {"column": "x"},
                                          "meta": {"nanguard": {"on_fail": action}}}]}
    if ok:
        assert parse_suite(doc, "t").expectations[0].action == action
    else:
        with pytest.raises(SuiteError, match=f"on_fail '{action}'.*use one of"):
            parse_suite(doc, "t")


def test_aggregates_default_to_fail_and_rows_to_quarantine():
    s = suite({"type": "expect_column_mean_to_be_between", "kwargs": {"column": "x", "min_value": 0}},
              {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0}})
    assert [e.action for e in s.expectations] == ["fail", "quarantine"]
    compiled = compile_suite(s, SCHEMA, CompileOptions())
    assert [e["kind"] for e in compiled.expectations] == ["aggregate", "row"]
    assert compiled.row_indices == (1,)


def test_load_suite_errors_and_ge_0x_keys(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SuiteError, match="not valid JSON"):
        load_suite(str(bad))
    with pytest.raises(SuiteError, match="cannot read"):
        load_suite(str(tmp_path / "missing.json"))
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"expectation_suite_name": "legacy", "expectations": [
        {"expectation_type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}}]}))
    with pytest.warns(DeprecationWarning):
        s = load_suite(str(old))
    assert s.name == "legacy" and s.expectations[0].type == "expect_column_values_to_not_be_null"
    with pytest.raises(SuiteError, match="on_fail"):
        parse_suite({"name": "t", "expectations": [{"type": "x", "kwargs": {}, "meta": {"nanguard": {
            "on_fail": "explode"}}}]}, "t")


def test_a_row_condition_shared_by_rules_is_computed_once_a_batch_and_different_ones_stay_apart(monkeypatch):
    """Suites repeat one row_condition over many expectations; each batch computes its mask once, for what
    the rules flag and for the rows they count as evaluated. Conditions that only compare equal (`n == 1` and
    `n == True`, which differ on a text column) are not joined."""
    from transforms import conditions
    from transforms.evaluate import check_batch

    def between(column, condition):
        return {"type": "expect_column_values_to_be_between",
                "kwargs": {"column": column, "min_value": 0.0, "max_value": 10.0, "row_condition": condition,
                           "condition_parser": "pandas"}}
    compiled = compile_suite(suite(between("x", 's == "Cash" & n >= 2'), between("y", 's == "Cash" & n >= 2'),
                                   between("x", "n == 1"), between("y", "n == True")), SCHEMA, CompileOptions())
    rules = [r for _, r in compiled.bind({})]
    assert rules[0].condition is rules[1].condition and rules[2].condition is not rules[3].condition
    calls = []
    real = conditions.All.mask
    monkeypatch.setattr(conditions.All, "mask", lambda self, view: calls.append(self) or real(self, view))
    batch = pa.RecordBatch.from_arrays(
        [pa.array([50.0, 50.0, 50.0, None, 50.0]), pa.array([2, 1, 3, 2, 5]),
         pa.array(["Cash", "Cash", "Card", "Cash", "1"]), pa.array([-1.0, -1.0, -1.0, -1.0, -1.0]),
         pa.array(["f"] * 5), pa.array(range(5))], schema=SCHEMA)
    out = check_batch(batch, rules)
    assert len(calls) == 1  # one mask for both rules under 's == "Cash" & n >= 2', not four
    assert out.rule_counts == [1, 2, 1, 1] and out.rule_domains == [1, 2, 1, 1]


def test_a_row_condition_restricts_the_rule_and_its_repair_to_the_selected_rows():
    from transforms.evaluate import check_batch
    spec = {"type": "expect_column_values_to_be_between",
            "kwargs": {"column": "x", "max_value": 10.0, "row_condition": 's == "Cash" & n >= 2',
                       "condition_parser": "pandas"}, "meta": {"nanguard": {"on_fail": "clip"}}}
    compiled = compile_suite(suite(spec), SCHEMA, CompileOptions())
    batch = pa.RecordBatch.from_arrays(
        [pa.array([50.0, 50.0, 50.0, None]), pa.array([2, 1, 3, 2]), pa.array(["Cash", "Cash", "Card", "Cash"]),
         pa.array([0.0] * 4), pa.array(["f"] * 4), pa.array(range(4))], schema=SCHEMA)
    out = check_batch(batch, [r for _, r in compiled.bind({})])
    assert out.clean.column("x").to_pylist() == [10.0, 50.0, 50.0, None]  # only row 0 is selected and over
    assert out.rule_counts == [1] and out.rule_domains == [1]  # row 3 is selected but null: not evaluated
