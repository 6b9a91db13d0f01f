"""End to end on a real-looking trips table (offset coordinates, epoch seconds, ids up to 2^53, nullable and
categorical columns, a continuous target): decimal shifts caught, clean columns not flagged, missing-value
policies, regression labels and all-null columns."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from pipeline.cli import main
from pipeline.training.dataset import load_dataset
from realistic import trips

pytestmark = pytest.mark.slow
N = 4000


def _run(tmp_path, table, *flags, name="out"):
    src = tmp_path / f"{name}.parquet"
    pq.write_table(table, src)
    out = tmp_path / name
    code = main(["run", "--input", str(src), "--output", str(out), "--quiet", *flags])
    return code, json.loads((out / "report.json").read_text()), out


def test_decimal_shifts_are_caught_and_nothing_else_is_flagged(tmp_path):
    table = trips(N, seed=1)
    lat = table.column("pickup_latitude").combine_chunks().to_numpy(zero_copy_only=False).copy()
    start = table.column("trip_start").to_numpy().copy()
    lon = table.column("pickup_longitude").combine_chunks().to_numpy(zero_copy_only=False).copy()
    lat[[10, 11]] *= [10, 0.1]  # a moved decimal point, both ways
    start[20] *= 1000  # milliseconds where seconds belong
    lon[30] *= 100  # a negative column
    table = table.set_column(2, "pickup_latitude", pa.array(lat, mask=np.isnan(lat)))
    table = table.set_column(1, "trip_start", pa.array(start))
    table = table.set_column(3, "pickup_longitude", pa.array(lon, mask=np.isnan(lon)))
    code, report, out = _run(tmp_path, table, "--label", "tips:regression", "--missing", "impute:median")
    assert report["counts"]["by_rule"] == {"extreme:pickup_latitude": 2, "extreme:trip_start": 1,
                                          "extreme:pickup_longitude": 1}
    q = pq.read_table(out / "quarantine").to_pandas()
    assert sorted(q["__row_index"]) == [10, 11, 20, 30] and code == 0  # 4 of 4000 is not above 0.1%
    # the profile's quantiles on offset columns agree with numpy (the old sketch answered the minimum)
    raw = report["features"]["trip_start"]["raw"]
    clean_start = np.delete(start, 20)
    assert abs(np.searchsorted(np.sort(clean_start), raw["median"]) / N - 0.5) < 0.001


def test_missing_values_quarantine_by_default_and_the_gate_names_the_flag(tmp_path, capsys):
    code, report, _ = _run(tmp_path, trips(N, seed=2), "--label", "tips:regression")
    assert code == 1 and set(report["counts"]["by_rule"]) == {"missing:pickup_latitude", "missing:pickup_longitude"}
    failure = report["gate"]["failures"][0]
    assert "pickup_latitude, pickup_longitude" in failure and "--missing COL=impute:median" in failure


def test_indicator_policy_imputes_adds_a_dense_0_1_feature_and_loads_as_dense_tensors(tmp_path):
    table = trips(N, seed=3)
    nulls = table.column("pickup_latitude").is_null().combine_chunks().to_numpy(zero_copy_only=False)
    code, report, out = _run(tmp_path, table, "--label", "tips:regression", "--missing", "indicator:median",
                             "--num-shards", "1")
    assert code == 0 and report["counts"]["quarantined_rows"] == 0
    assert report["counts"]["repaired"]["imputed:pickup_latitude"] == nulls.sum()
    assert report["features"]["pickup_latitude"]["missing_indicator"] == "pickup_latitude__missing"
    spec = json.loads((out / "feature_spec.json").read_text())
    assert spec["pickup_latitude"]["kind"] == spec["pickup_latitude__missing"]["kind"] == "FixedLenFeature"
    assert "trip_id__missing" not in spec  # '*' adds indicators only where a column had nulls
    rows = {}
    for batch in load_dataset(str(out), 512):
        for k in ("pickup_latitude", "pickup_latitude__missing", "trip_start"):
            rows.setdefault(k, []).append(batch[k].numpy())
        tf.stack([batch["pickup_latitude"], batch["fare"]], axis=1)  # dense: the README's snippet works
    got = {k: np.concatenate(v) for k, v in rows.items()}
    order = np.argsort(got["trip_start"], kind="stable")  # trip_start is sorted in the input
    indicator = got["pickup_latitude__missing"][order]
    assert (indicator == nulls).all()
    norm = json.loads((out / "normalization.json").read_text())["pickup_latitude"]
    lat = table.column("pickup_latitude").combine_chunks().to_numpy(zero_copy_only=False)
    median = np.median(lat[~nulls])
    filled = got["pickup_latitude"][order][nulls] * norm["scale"] + norm["offset"]
    assert np.allclose(filled, median, atol=1e-4)


def test_a_named_indicator_is_written_even_without_nulls_and_a_value_fill(tmp_path):
    code, report, out = _run(tmp_path, trips(N, seed=4), "--label", "tips:regression",
                             "--missing", "trip_seconds=indicator", "--missing", "impute:-1")
    spec = json.loads((out / "feature_spec.json").read_text())
    assert code == 0 and "trip_seconds__missing" in spec and "pickup_latitude__missing" not in spec
    assert report["counts"]["quarantined_rows"] == 0


def test_regression_labels_are_checked_never_normalized_and_ranged(tmp_path):
    table = trips(N, seed=5)
    code, report, out = _run(tmp_path, table, "--label", "tips:regression=[0,5]", "--missing", "impute:mean")
    tips = table.column("tips").to_numpy()
    assert report["counts"]["by_rule"] == {"label_regression:tips": int((tips > 5).sum())}
    assert "tips" not in json.loads((out / "normalization.json").read_text())
    code, report, _ = _run(tmp_path, table, "--label", "tips", "--missing", "impute:mean", name="prob")
    assert code == 1 and "--label COL:regression" in report["gate"]["failures"][0]


def test_an_all_null_column_is_left_out_and_reported_not_quarantined(tmp_path):
    table = trips(N, seed=6).append_column("surcharge", pa.array([None] * N, pa.float64()))
    code, report, out = _run(tmp_path, table, "--label", "tips:regression", "--missing", "impute:median")
    assert code == 0 and report["counts"]["quarantined_rows"] == 0
    assert report["dropped_columns"] == {"surcharge": "every value is missing in the clean rows"}
    assert "surcharge" not in json.loads((out / "feature_spec.json").read_text())


@pytest.mark.parametrize("flag, words", [
    (["--missing", "fare=guess"], ["--missing fare=guess", "quarantine, impute, indicator"]),
    (["--missing", "nope=impute:mean"], ["--missing nope", "no such column"]),
    (["--missing", "company=impute:mean"], ["company", "single numbers"]),
    (["--missing", "tips=impute:mean"], ["tips", "never imputed"]),
    (["--label", "tips:regression=[5,1]"], ["regression=[5.0,1.0]", "LO <= HI"]),
])
def test_bad_policy_and_label_flags_are_one_line_errors(tmp_path, capsys, flag, words):
    src = tmp_path / "t.parquet"
    pq.write_table(trips(50), src)
    labels = [] if flag[0] == "--label" else ["--label", "tips:regression"]
    code = main(["run", "--input", str(src), "--output", str(tmp_path / "o"), *labels, *flag])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and all(w in err for w in words), err


def test_a_drafted_suite_passes_its_own_input_and_catches_a_shifted_copy(tmp_path):
    table = trips(N, seed=9)
    micros = (table.column("trip_start").to_numpy() * 1_000_000).astype("int64")
    table = table.set_column(1, "trip_start", pa.array(micros, pa.timestamp("us")))
    src = tmp_path / "train.parquet"
    pq.write_table(table, src)
    suite_path = tmp_path / "drafted.json"
    assert main(["suite", "init", "--input", str(src), "--output", str(suite_path),
                 "--label", "tips:regression"]) == 0
    suite = json.loads(suite_path.read_text())
    by = {(e["type"], e["kwargs"].get("column")): e["kwargs"] for e in suite["expectations"]}
    # sensible bounds: no sign change for non-negative columns, whole numbers for ints, ISO for timestamps
    assert by[("expect_column_values_to_be_between", "fare")]["min_value"] >= 0
    assert by[("expect_column_values_to_be_between", "passengers")]["min_value"] == 0
    assert isinstance(by[("expect_column_values_to_be_between", "trip_start")]["min_value"], str)
    assert ("expect_column_values_to_be_finite", "pickup_latitude") not in by  # it has nulls
    assert by[("expect_column_proportion_of_non_null_values_to_be_between", "pickup_latitude")]["min_value"] > 0.9
    assert sorted(by[("expect_column_values_to_be_in_set", "payment_type")]["value_set"]) == sorted(
        set(table.column("payment_type").to_pylist()))
    code, report, _ = _run(tmp_path, table, "--suite", str(suite_path), "--label", "tips:regression", name="same")
    assert code == 0 and report["counts"]["quarantined_rows"] == 0
    assert all(e["success"] for e in report["expectations"]), [e for e in report["expectations"] if not e["success"]]
    shifted = table.set_column(6, "fare", pa.array(table.column("fare").to_numpy() + 500.0))
    shifted = shifted.set_column(8, "payment_type", pa.array(["Bitcoin"] * N))
    code, report, _ = _run(tmp_path, shifted, "--suite", str(suite_path), "--label", "tips:regression",
                           name="shifted")
    assert code == 1
    assert report["counts"]["by_rule"]["not_in_set:payment_type"] == N
    assert report["counts"]["by_rule"]["out_of_range:fare"] > N // 2


def test_many_small_row_groups_are_read_as_few_units_with_exact_row_indices(tmp_path):
    from pipeline.inputs.plan import plan_inputs
    table = trips(20_000, seed=12)
    fare = table.column("fare").to_numpy().copy()
    fare[12_345] = np.nan
    table = table.set_column(6, "fare", pa.array(fare))
    src = tmp_path / "groups.parquet"
    pq.write_table(table, src, row_group_size=20)  # 1,000 row groups
    assert len(plan_inputs((str(src),), None, ()).units) == 1  # coalesced, not 1,000 bundles
    out = tmp_path / "out"
    main(["run", "--input", str(src), "--output", str(out), "--quiet", "--label", "tips:regression",
          "--missing", "impute:median"])
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["input_rows"] == 20_000 and report["counts"]["by_rule"] == {"nan:fare": 1}
    assert pq.read_table(out / "quarantine").column("__row_index").to_pylist() == [12_345]


def test_many_small_csv_files_are_read_as_one_task_and_every_row_keeps_its_file_and_index(tmp_path):
    from pipeline.inputs.plan import plan_inputs
    table = trips(4_000, seed=13)
    fare = table.column("fare").to_numpy().copy()
    fare[2_345] = np.inf  # row 5 of file 117
    table = table.set_column(6, "fare", pa.array(fare))
    src = tmp_path / "parts"
    src.mkdir()
    for i in range(200):  # 200 files of 20 rows
        pacsv.write_csv(table.slice(20 * i, 20), src / f"part-{i:04d}.csv")
    plan = plan_inputs((str(src / "*.csv"),), None, ())
    assert len(plan.units) == 200 and len(plan.tasks) == 1  # one read task, not 200 bundles
    out = tmp_path / "out"
    code = main(["run", "--input", str(src / "*.csv"), "--output", str(out), "--quiet", "--label", "tips:regression",
                 "--missing", "impute:median", "--num-shards", "2"])
    report = json.loads((out / "report.json").read_text())
    assert code == 0 and report["counts"]["input_rows"] == 4_000 and report["counts"]["by_rule"] == {"pos_inf:fare": 1}
    bad = pq.read_table(out / "quarantine")
    assert bad.column("__row_index").to_pylist() == [5] and bad.column("__source_file").to_pylist()[0].endswith(
        "part-0117.csv")
    index = pa.concat_tables([pq.read_table(p) for p in sorted((out / "index").glob("*.parquet"))])
    placed = set(zip(index.column("__source_file").to_pylist(), index.column("__row_index").to_pylist()))
    expected = {(str(src / f"part-{i:04d}.csv"), r) for i in range(200) for r in range(20)} - {
        (str(src / "part-0117.csv"), 5)}
    assert placed == expected  # every clean row once, under its own file and row


def test_read_task_joins_small_batches_across_files_in_order(tmp_path):
    from pipeline.inputs.plan import plan_inputs
    from pipeline.stages.read import MIN_BATCH_ROWS, ReadUnitFn
    table = trips(3 * MIN_BATCH_ROWS // 2, seed=14)
    paths = []
    for i, start in enumerate(range(0, table.num_rows, 1_000)):
        paths.append(tmp_path / f"p{i:03d}.csv")
        pacsv.write_csv(table.slice(start, 1_000), paths[-1])
    plan = plan_inputs((str(tmp_path / "*.csv"),), None, ())
    batches = [b for task in plan.tasks for b in ReadUnitFn(plan).process(task)]
    assert MIN_BATCH_ROWS == 8192 and [b.num_rows for b in batches] == [9_000, table.num_rows - 9_000]
    rows = pa.Table.from_batches(batches)
    assert rows.column("__row_index").to_pylist() == [r for p in paths for r in range(pacsv.read_csv(p).num_rows)]
    assert rows.column("__source_file").to_pylist() == [str(p) for p in paths for _ in range(
        pacsv.read_csv(p).num_rows)]
    assert rows.column("trip_id").to_pylist() == table.column("trip_id").to_pylist()
