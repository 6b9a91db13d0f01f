"""Suites through the whole pipeline: on_fail actions, aggregate expectations, the gate, validation_result.json,
and `nanguard suite init` - on real files, through the CLI and the Python API."""
import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from pipeline.cli import main
from pipeline.runner import run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """400 rows: x ~ N(10, 1) with 3 values at 1e4 (rows 5, 50, 300), 2 NaN (rows 7, 70); n in 0..4 with
    one -1 (row 9); y binary."""
    d = tmp_path_factory.mktemp("suite_data")
    rng = np.random.default_rng(0)
    x = rng.normal(10, 1, 400)
    x[[5, 50, 300]] = 1e4
    x[[7, 70]] = np.nan
    n = rng.integers(0, 5, 400)
    n[9] = -1
    path = d / "d.csv"
    pd.DataFrame({"x": x, "n": n, "y": rng.integers(0, 2, 400)}).to_csv(path, index=False)
    return d, str(path)


def write_suite(path, *expectations):
    path.write_text(json.dumps({"name": "s", "expectations": list(expectations)}))
    return str(path)


def e(etype, on_fail=None, **kwargs):
    return {"type": etype, "kwargs": kwargs, "meta": {"nanguard": {"on_fail": on_fail}} if on_fail else {}}


def shard_values(out, column):

    spec = json.load(open(out / "feature_spec.json"))
    files = sorted(str(p) for p in (out / "data").iterdir())
    desc = {column: tf.io.FixedLenFeature([], tf.float32 if spec[column]["dtype"] == "float32" else tf.int64)}
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").map(lambda r: tf.io.parse_single_example(r, desc))
    return np.array([float(r[column]) for r in ds.as_numpy_iterator()])


def test_clip_and_impute_repair_rows_instead_of_quarantining_them(data, tmp_path):
    d, src = data
    suite = write_suite(tmp_path / "s.json",
                        e("expect_column_values_to_be_between", "clip", column="x", min_value=0, max_value=20),
                        e("expect_column_values_to_be_finite", "impute", column="x"),
                        e("expect_column_values_to_be_between", "impute", column="n", min_value=0, max_value=4))
    out = tmp_path / "o"
    report = run(inputs=[src], output=str(out), suite=suite, labels=["y:binary"], normalize="none",
                 extreme_action="none", num_shards=1)
    assert report["counts"]["quarantined_rows"] == 0 and report["counts"]["clean_rows"] == 400
    assert report["counts"]["repaired"] == {"clipped:x": 3, "imputed:x": 2, "imputed:n": 1}
    x = shard_values(out, "x")
    assert np.isfinite(x).all() and x.max() == 20.0 and np.count_nonzero(x == 20.0) == 3
    clean_mean = report["features"]["x"]["clean"]["mean"]  # the fit pass's profile: imputed cells left out
    assert np.count_nonzero(np.isclose(x, clean_mean, rtol=1e-6)) >= 2
    assert set(np.unique(shard_values(out, "n"))) <= {0, 1, 2, 3, 4}
    between = report["expectations"][0]
    assert between["unexpected_count"] == 3 and not between["success"]  # repaired rows still violated the rule
    assert report["passed"]


def test_fail_action_and_aggregates_fail_the_gate_with_a_named_reason(data, tmp_path, capsys):
    d, src = data
    suite = write_suite(tmp_path / "s.json",
                        e("expect_column_values_to_be_between", "fail", column="n", min_value=0, max_value=4),
                        e("expect_column_mean_to_be_between", column="x", min_value=9, max_value=11),  # Inf-free
                        e("expect_column_max_to_be_between", "warn", column="x", max_value=100),
                        e("expect_table_row_count_to_be_between", min_value=1000),
                        e("expect_column_values_to_be_of_type", column="n", type_="int64"))
    out = tmp_path / "o"
    code = main(["run", "--input", src, "--output", str(out), "--suite", suite, "--label", "y:binary",
                 "--extreme-action", "none", "--max-quarantine-fraction", "0.5"])
    printed = capsys.readouterr()
    assert code == 1, printed.err
    report = json.load(open(out / "report.json"))
    by_type = {x["type"]: x for x in report["expectations"]}
    assert by_type["expect_column_values_to_be_between"]["unexpected_count"] == 1
    assert by_type["expect_column_values_to_be_between"]["partial_unexpected_list"] == [-1]
    mean = by_type["expect_column_mean_to_be_between"]
    assert not mean["success"] and mean["observed_value"] > 11  # three 1e4 values pull it up
    assert not by_type["expect_column_max_to_be_between"]["success"]  # warn: reported, not gating
    assert by_type["expect_table_row_count_to_be_between"]["observed_value"] == 400
    assert by_type["expect_column_values_to_be_of_type"]["success"]
    failures = report["gate"]["failures"]
    assert any("expect_column_values_to_be_between(n" in f and "1 unexpected" in f for f in failures)
    assert any("expect_column_mean_to_be_between" in f for f in failures)
    assert any("expect_table_row_count_to_be_between" in f and "observed 400" in f for f in failures)
    assert not any("expect_column_max_to_be_between" in f for f in failures)
    assert report["counts"]["quarantined_rows"] == 1  # fail also quarantines the row
    gate_lines = printed.out[printed.out.index("gate: FAILED"):]  # the summary names each gate failure
    assert "expect_column_mean_to_be_between" in gate_lines and "expect_column_values_to_be_between(n" in gate_lines
    assert "expect_column_max_to_be_between" not in gate_lines


def test_validation_result_json_loads_in_great_expectations(data, tmp_path):
    import great_expectations  # noqa: F401
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    d, src = data
    suite = write_suite(tmp_path / "s.json",
                        e("expect_column_values_to_be_between", column="x", min_value=0, max_value=20),
                        e("expect_column_values_to_not_be_null", column="x", mostly=0.99),
                        e("expect_column_quantile_values_to_be_between", column="x",
                          quantile_ranges={"quantiles": [0.5], "value_ranges": [[9, 11]]}))
    out = tmp_path / "o"
    run(inputs=[src], output=str(out), suite=suite, extreme_action="none", max_quarantine_fraction=0.5)
    doc = json.load(open(out / "validation_result.json"))
    loaded = ExpectationSuiteValidationResultSchema().load(doc)
    assert loaded.suite_name == "s" and len(loaded.results) == 3
    between, not_null, quantile = loaded.results
    assert between.result["unexpected_count"] == 3 and between.result["partial_unexpected_list"] == [1e4] * 3
    assert between.result["missing_count"] == 2 and not between.success
    assert not_null.success and not_null.result["unexpected_count"] == 2  # 2 of 400 null: mostly 0.99 holds
    assert quantile.success and 9 <= quantile.result["observed_value"]["values"][0] <= 11
    assert doc["statistics"]["evaluated_expectations"] == 3 and doc["statistics"]["successful_expectations"] == 2


def test_suite_init_drafts_a_suite_the_same_data_passes(data, tmp_path, capsys):
    d, src = data
    clean = tmp_path / "clean.parquet"
    frame = pd.read_csv(src).dropna()
    frame = frame[(frame.x < 100) & (frame.n >= 0)]
    frame.to_parquet(clean, index=False)
    suite = tmp_path / "drafted.json"
    assert main(["suite", "init", "--input", str(clean), "--output", str(suite), "--label", "y:binary"]) == 0
    drafted = json.load(open(suite))
    types = {(x["type"], x["kwargs"].get("column")) for x in drafted["expectations"]}
    assert ("expect_column_values_to_be_in_set", "y") in types and ("expect_column_values_to_be_between", "x") in types
    assert ("expect_column_values_to_not_be_extreme", "y") not in types
    x_range = next(x["kwargs"] for x in drafted["expectations"]
                   if x["type"] == "expect_column_values_to_be_between" and x["kwargs"]["column"] == "x")
    assert x_range["min_value"] < frame.x.min() and x_range["max_value"] > frame.x.max()
    assert main(["run", "--input", str(clean), "--output", str(tmp_path / "o1"), "--suite", str(suite),
                 "--label", "y:binary"]) == 0
    # the raw file has the planted faults the drafted ranges exclude
    assert main(["run", "--input", src, "--output", str(tmp_path / "o2"), "--suite", str(suite),
                 "--label", "y:binary"]) == 1
    capsys.readouterr()
    assert main(["suite", "init", "--input", str(clean), "--output", str(suite)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_a_repair_on_every_column_never_rewrites_a_label_and_naming_one_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(5)
    src = tmp_path / "trips.csv"
    pd.DataFrame({"fare": 3.25 + rng.lognormal(2, 0.6, 300), "lat": 41.88 + 0.03 * rng.standard_normal(300),
                  "tipped": (rng.random(300) < 0.3).astype(int)}).to_csv(src, index=False)
    clip_all = write_suite(tmp_path / "clip.json", e("expect_column_values_to_be_between", "clip", column="*",
                                                     min_value=0, max_value=0.5))
    out = tmp_path / "o"
    assert main(["run", "--input", str(src), "--output", str(out), "--suite", clip_all, "--label", "tipped:binary",
                 "--quiet"]) == 0
    report = json.load(open(out / "report.json"))
    assert set(report["counts"]["repaired"]) == {"clipped:fare", "clipped:lat"}  # the label is not a target
    written = []
    for shard in report["outputs"]["shards"]:
        for record in tf.data.TFRecordDataset(str(out / shard["path"]), "GZIP"):
            written.append(tf.train.Example.FromString(record.numpy()).features.feature["tipped"].int64_list.value[0])
    assert sum(written) == int(pd.read_csv(src).tipped.sum()) > 0  # every positive label written as it was
    clip_label = write_suite(tmp_path / "clip_label.json", e("expect_column_values_to_be_between", "clip",
                                                             column="tipped", min_value=0, max_value=0.5))
    capsys.readouterr()
    assert main(["run", "--input", str(src), "--output", str(tmp_path / "o2"), "--suite", clip_label,
                 "--label", "tipped:binary", "--quiet"]) == 2
    assert "would rewrite 'tipped', a label" in capsys.readouterr().err


def test_the_suite_a_run_wrote_loads_back_as_its_suite(data, tmp_path):
    d, src = data
    suite = write_suite(tmp_path / "s.json", e("expect_column_values_to_be_between", column="x", min_value=0,
                                               max_value=20, mostly=0.9),
                        e("expect_column_values_to_be_in_set", column="n", value_set=[0, 1, 2, 3, 4]))
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["run", "--input", src, "--output", str(first), "--suite", suite, "--label", "y:binary", "--quiet",
                 "--max-quarantine-fraction", "1"]) == 0
    assert main(["run", "--input", src, "--output", str(second), "--suite", str(first / "suite.json"), "--label",
                 "y:binary", "--quiet", "--max-quarantine-fraction", "1"]) == 0
    a, b = (json.load(open(o / "report.json")) for o in (first, second))
    assert a["expectations"] == b["expectations"] and a["counts"] == b["counts"]
    assert json.load(open(second / "suite.json"))["suite"] == json.load(open(first / "suite.json"))["suite"]


def test_warned_and_repaired_rows_are_not_counted_as_quarantined(data, tmp_path, capsys):
    d, src = data
    suite = write_suite(tmp_path / "s.json",
                        e("expect_column_values_to_be_between", "warn", column="n", min_value=0, max_value=3),
                        e("expect_column_values_to_be_between", "clip", column="x", min_value=0, max_value=12),
                        e("expect_column_values_to_not_be_null", column="x"),
                        e("expect_table_row_count_to_be_between", "warn", min_value=1, max_value=10_000))
    out = tmp_path / "o"
    assert main(["run", "--input", src, "--output", str(out), "--suite", suite, "--label", "y:binary",
                 "--max-quarantine-fraction", "0.5"]) == 0
    printed = capsys.readouterr().out
    counts = json.load(open(out / "report.json"))["counts"]
    frame = pd.read_csv(src)
    assert counts["by_rule"] == {"null:x": 2} and counts["quarantined_rows"] == 2  # only what was quarantined
    assert counts["warned"] == {"out_of_range:n": int(((frame.n < 0) | (frame.n > 3)).sum())}
    assert counts["repaired"] == {"clipped:x": 3 + int(((frame.x > 12) & (frame.x < 100)).sum())}
    assert "kept, warned rows: out_of_range:n" in printed and "kept, repaired cells: clipped:x" in printed
    html = (out / "report.html").read_text()
    assert "Warnings (rows kept, not quarantined)" in html and "None, None" not in html
    assert "(table)" in html  # the table-level rule's column cell


def test_a_large_value_set_is_stored_once_by_hash_and_the_written_suite_still_loads(tmp_path):
    import glob
    import json
    import os

    from pipeline.cli import main
    src = tmp_path / "in.csv"
    src.write_text("store_id,y\n" + "".join(f"{i * 7},{i % 2}\n" for i in range(50)))
    stores = list(range(0, 1_000_000, 1))
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "stores", "expectations": [
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "store_id", "value_set": stores}}]}))
    out = tmp_path / "out"
    assert main(["run", "--input", str(src), "--output", str(out), "--suite", str(suite), "--label", "y:binary",
                 "--quiet"]) == 0
    sets = glob.glob(str(out / "value_sets" / "*.json"))
    assert len(sets) == 1 and json.loads(open(sets[0]).read()) == stores
    for name in ("suite.json", "validation_result.json", "report.json"):
        assert (out / name).stat().st_size < 100_000, name  # the million values are not repeated
    ref = json.loads((out / "report.json").read_text())["expectations"][0]["kwargs"]["value_set"]
    assert ref == {"$value_set": f"sha256:{os.path.basename(sets[0])[:-5]}", "size": 1_000_000}
    again = tmp_path / "again"
    assert main(["run", "--input", str(src), "--output", str(again), "--suite", str(out / "suite.json"),
                 "--label", "y:binary", "--quiet"]) == 0
    with open(sets[0], "w") as f:
        json.dump(stores[:-1], f)
    code = main(["run", "--input", str(src), "--output", str(tmp_path / "third"), "--suite", str(out / "suite.json"),
                 "--label", "y:binary", "--quiet"])
    assert code == 2  # an altered value set is refused, not silently used
