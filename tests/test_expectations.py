"""Suite loading and compiling: clear refusals before any data is read."""
import json

import pyarrow as pa
import pytest

from expectations import CompileOptions, compile_suite, default_suite, load_suite, parse_suite
from pipeline.errors import ConfigError
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
    ({"type": "expect_column_values_to_match_regex", "kwargs": {"column": "s"}}, "unsupported expectation type"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "zz", "min_value": 0}}, "'zz' is not in"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "s", "min_value": 0}}, "needs numbers"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x"}}, "min_value, max_value"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": "a"}}, "must be a number"),
    ({"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "x", "value_set": ["a"]}}, "non-numbers"),
])
def test_bad_expectations_are_refused_with_the_reason(expectation, message):
    with pytest.raises(ConfigError, match=message):
        compile_suite(suite(expectation), SCHEMA, CompileOptions())


def test_load_suite_errors_and_ge_0x_keys(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_suite(str(bad))
    with pytest.raises(ConfigError, match="cannot read"):
        load_suite(str(tmp_path / "missing.json"))
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"expectation_suite_name": "legacy", "expectations": [
        {"expectation_type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}}]}))
    with pytest.warns(DeprecationWarning):
        s = load_suite(str(old))
    assert s.name == "legacy" and s.expectations[0].type == "expect_column_values_to_not_be_null"
    with pytest.raises(ConfigError, match="on_fail"):
        parse_suite({"name": "t", "expectations": [{"type": "x", "kwargs": {}, "meta": {"nanguard": {
            "on_fail": "explode"}}}]}, "t")
