"""Parquet booleans, timestamps and dates: real types in type expectations and messages, timestamps as
seconds with date-time bounds, quarantined verbatim."""
import glob
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from realistic import trips

pytestmark = pytest.mark.slow
N = 1500


def _typed(tmp_path):
    t = trips(N, seed=8)
    micros = (t.column("trip_start").to_numpy() * 1_000_000).astype("int64")
    t = t.set_column(1, "trip_start", pa.array(micros, pa.timestamp("us", tz="UTC")))
    t = t.append_column("shared", pa.array(np.arange(N) % 3 == 0))
    t = t.append_column("pickup_day", pa.array((micros // 86_400_000_000).astype("int32"), pa.date32()))
    path = tmp_path / "typed.parquet"
    pq.write_table(t, path)
    return path, t


def _suite(tmp_path, *expectations):
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"name": "typed", "expectations": list(expectations)}))
    return str(path)


def test_booleans_and_timestamps_answer_type_expectations_as_ge_does(tmp_path):
    src, table = _typed(tmp_path)
    suite = _suite(tmp_path,
                   {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "shared", "type_": "bool"}},
                   {"type": "expect_column_values_to_be_of_type",
                    "kwargs": {"column": "trip_start", "type_": "datetime64"}},
                   {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "shared", "value_set": [0, 1]}})
    out = tmp_path / "out"
    assert main(["run", "--input", str(src), "--output", str(out), "--suite", suite, "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [(e["success"], e.get("observed_value")) for e in report["expectations"]] == [
        (True, "bool"), (True, "datetime64[ns]"), (True, None)]
    # what GE's pandas engine sees in the same file
    df = pq.read_table(src).to_pandas()
    assert df["shared"].dtype == np.dtype("bool") and np.issubdtype(df["trip_start"].dtype.base, np.datetime64)
    # timestamps are seconds since the epoch: the profile reads as such, the shards hold them scaled
    start = report["features"]["trip_start"]["raw"]
    assert start["min"] == table.column("trip_start").to_numpy().astype("datetime64[s]").astype(np.int64).min()
    assert report["features"]["pickup_day"]["raw"]["min"] % 86_400 == 0


def test_date_time_bounds_quarantine_verbatim_in_the_original_type(tmp_path):
    src, table = _typed(tmp_path)
    suite = _suite(tmp_path, {"type": "expect_column_values_to_be_between",
                              "kwargs": {"column": "trip_start", "min_value": "2014-01-01",
                                         "max_value": "2015-06-30T00:00:00Z"}})
    out = tmp_path / "out"
    main(["run", "--input", str(src), "--output", str(out), "--suite", suite, "--quiet"])
    report = json.loads((out / "report.json").read_text())
    ts = table.column("trip_start").to_numpy()
    late = int((ts > np.datetime64("2015-06-30T00:00:00")).sum())
    assert report["counts"]["by_rule"] == {"out_of_range:trip_start": late}
    q = pq.read_table(glob.glob(str(out / "quarantine" / "*.parquet"))[0])
    assert q.schema.field("trip_start").type == pa.timestamp("us", tz="UTC") and q.num_rows == late


def test_a_row_condition_on_a_timestamp_takes_a_date_time_string_as_pandas_does(tmp_path):
    """pandas' query compares a datetime column with "2015-01-01"; nanguard holds the column as seconds and
    turns the literal into seconds too (before: every batch failed converting the text to a number)."""
    src, table = _typed(tmp_path)
    suite = _suite(tmp_path, {"type": "expect_column_values_to_be_between",
                              "kwargs": {"column": "fare", "max_value": 20.0, "condition_parser": "pandas",
                                         "row_condition": 'trip_start >= "2015-01-01" & company == "Flash Cab"'},
                              "meta": {"nanguard": {"on_fail": "warn"}}})
    out = tmp_path / "out"
    assert main(["run", "--input", str(src), "--output", str(out), "--suite", suite, "--quiet"]) in (0, 1)
    report = json.loads((out / "report.json").read_text())
    df = table.to_pandas()
    df["trip_start"] = df["trip_start"].dt.tz_localize(None)  # a date-time without a zone reads as UTC
    selected = df.query('trip_start >= "2015-01-01" & company == "Flash Cab"')
    result = next(r for r in report["expectations"] if r["kwargs"].get("row_condition"))
    assert selected.shape[0] > 0 and (selected["fare"] > 20.0).sum() > 0
    assert result["unexpected_count"] == int((selected["fare"] > 20.0).sum())
    # as GE counts it: the rows the condition selects, and the missing fares among them
    assert (result["element_count"], result["missing_count"]) == (selected.shape[0], int(selected["fare"].isna().sum()))


@pytest.mark.parametrize("condition, words", [
    ('fare > "cheap"', ["fare", "holds numbers", "'cheap' is text"]),
    ("company == 1", ["company", "holds text", 'quotes ("1")']),
    ('company.isin(["Flash Cab", 7])', ["company", "7 is not"]),
    ('trip_start > "last tuesday"', ["'last tuesday'", "ISO date"]),
])
def test_a_row_condition_literal_that_cannot_meet_its_column_is_a_suite_error(tmp_path, capsys, condition, words):
    src, _ = _typed(tmp_path)
    suite = _suite(tmp_path, {"type": "expect_column_values_to_be_between",
                              "kwargs": {"column": "fare", "max_value": 20.0, "condition_parser": "pandas",
                                         "row_condition": condition}})
    code = main(["run", "--input", str(src), "--output", str(tmp_path / "o"), "--suite", suite])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and all(w in err for w in words), err


@pytest.mark.parametrize("expectation, words", [
    ({"type": "expect_column_values_to_be_between",
      "kwargs": {"column": "trip_start", "min_value": "last tuesday"}}, ["'last tuesday'", "ISO date"]),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "fare", "min_value": "2014-01-01"}},
     ["fare", "double", "date-time bounds need a timestamp"]),
    ({"type": "expect_column_pair_values_a_to_be_greater_than_b",
      "kwargs": {"column_A": "trip_start", "column_B": "company"}}, ["timestamp[us, tz=UTC]", "string"]),
])
def test_errors_name_the_real_type(tmp_path, capsys, expectation, words):
    src, _ = _typed(tmp_path)
    code = main(["run", "--input", str(src), "--output", str(tmp_path / "o"), "--suite", _suite(tmp_path, expectation)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and all(w in err for w in words), err
