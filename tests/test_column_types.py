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
