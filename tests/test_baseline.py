"""--baseline: eval and later data written with the training run's normalization, rules and labels."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.training.dataset import DatasetRefusedError, load_dataset
from realistic import trips

pytestmark = pytest.mark.slow
N = 3000


def _run(tmp_path, name, table, *flags):
    src = tmp_path / f"{name}.parquet"
    pq.write_table(table, src)
    out = tmp_path / name
    code = main(["run", "--input", str(src), "--output", str(out), "--quiet", "--num-shards", "1", *flags])
    return code, out


def _written(out, feature):
    import tensorflow as tf
    files = sorted((out / "data").glob("*.tfrecord.gz"))
    return np.array([tf.train.Example.FromString(r.numpy()).features.feature[feature].float_list.value[0]
                     for r in tf.data.TFRecordDataset([str(f) for f in files], "GZIP")])


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    base = tmp_path_factory.mktemp("baseline")
    code, out = _run(base, "train", trips(N, seed=1), "--label", "tips:regression", "--missing", "impute:median")
    assert code == 0
    return base, out


def test_eval_is_written_with_the_training_normalization_labels_and_rules(train):
    base, train_out = train
    evaluation = trips(N, seed=2)
    fare = evaluation.column("fare").to_numpy().copy()
    fare[0] = trips(N, seed=1).column("fare").to_numpy()[0]  # one raw value both splits hold
    evaluation = evaluation.set_column(6, "fare", pa.array(fare))
    code, out = _run(base, "eval", evaluation, "--baseline", str(train_out), "--missing", "impute:median")
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["baseline"]["path"] == str(train_out) and len(report["baseline"]["report_sha256"]) == 64
    assert (out / "normalization.json").read_text() == (train_out / "normalization.json").read_text()
    assert any(e["type"] == "expect_column_values_to_be_valid_label" and e["kwargs"]["kind"] == "regression"
               for e in report["expectations"])  # the baseline's label, no --label given
    # the same raw fare is written as the same value in both outputs
    order = np.argsort(pq.read_table(out / "index").column("__row_index").to_numpy())
    train_order = np.argsort(pq.read_table(train_out / "index").column("__row_index").to_numpy())
    assert _written(out, "fare")[order][0] == _written(train_out, "fare")[train_order][0]
    both = load_dataset([str(train_out), str(out)], 1000, "tips")
    assert sum(int(y.shape[0]) for _, y in both) == 2 * N


def test_outputs_normalized_differently_are_not_mixed_and_a_failed_baseline_is_refused(train, capsys):
    base, train_out = train
    code, refit = _run(base, "refit", trips(N, seed=3), "--label", "tips:regression", "--missing", "impute:median")
    assert code == 0
    with pytest.raises(DatasetRefusedError, match="--baseline"):
        load_dataset([str(train_out), str(refit)], 1000)
    code, failed = _run(base, "failed", trips(N, seed=4), "--label", "tips:regression")  # nulls quarantined
    assert code == 1
    capsys.readouterr()
    code, _ = _run(base, "on_failed", trips(N, seed=5), "--baseline", str(failed))
    err = capsys.readouterr().err
    assert code == 2 and "--allow-failed-baseline" in err and len(err.strip().splitlines()) == 1


def test_a_feature_the_baseline_did_not_normalize_is_refused(train, capsys):
    base, train_out = train
    table = trips(N, seed=6).append_column("surge", pa.array(np.ones(N)))
    code, _ = _run(base, "extra", table, "--baseline", str(train_out), "--missing", "impute:median")
    err = capsys.readouterr().err
    assert code == 2 and "new feature(s) surge" in err and "--passthrough" in err


def _drift(report):
    return {f["feature"] for f in report["drift"]["features"] if f["drifted"]}


def test_a_drifted_day_fails_on_the_drifted_features_only_and_compare_agrees(train, capsys):
    base, train_out = train
    code, same = _run(base, "same_day", trips(N, seed=7), "--baseline", str(train_out), "--missing", "impute:median")
    report = json.loads((same / "report.json").read_text())
    assert code == 0 and _drift(report) == set() and report["drift"]["anomalies"] == []
    day = trips(N, seed=8)
    payments = np.array(day.column("payment_type").to_pylist(), dtype=object)
    payments[: N // 3] = "Bitcoin"  # a new category, a third of the day
    day = day.set_column(6, "fare", pa.array(day.column("fare").to_numpy() * 1.8))
    day = day.set_column(8, "payment_type", pa.array(payments.tolist()))
    code, drifted = _run(base, "drifted", day, "--baseline", str(train_out), "--missing", "impute:median")
    report = json.loads((drifted / "report.json").read_text())
    assert code == 1 and _drift(report) == {"fare", "payment_type"}
    failures = " ".join(report["gate"]["failures"])
    assert "'fare' drifted" in failures and "--drift-threshold fare=" in failures and "Bitcoin" in failures
    html = (drifted / "report.html").read_text()
    assert "Drift against the baseline" in html and html.count(">DRIFT<") == 2
    fare = report["drift"]["histograms"]["fare"]  # today's fares sit to the right of the baseline's
    centre = lambda counts: np.average(np.asarray(fare["edges"][:-1]), weights=counts)  # noqa: E731
    assert centre(fare["today"]) > 1.3 * centre(fare["baseline"]) and 'id="drift-fare"' in html
    # the numbers are TFDV's own, on the same statistics protos
    from pipeline.quiet_tfdv import tfdv
    from pipeline.report.drift import read_stats
    baseline_stats = read_stats(str(train_out / "stats" / "raw.pb"))
    schema = tfdv.infer_schema(baseline_stats)
    tfdv.get_feature(schema, "fare").drift_comparator.jensen_shannon_divergence.threshold = 0.15
    tfdv.get_feature(schema, "payment_type").drift_comparator.infinity_norm.threshold = 0.1
    direct = tfdv.validate_statistics(read_stats(str(drifted / "stats" / "raw.pb")), schema,
                                      previous_statistics=baseline_stats)
    theirs = {".".join(i.path.step): i.drift_measurements[0].value for i in direct.drift_skew_info}
    ours = {f["feature"]: f["value"] for f in report["drift"]["features"]}
    assert theirs["fare"] == ours["fare"] and theirs["payment_type"] == ours["payment_type"]
    # from the statistics alone, the same verdict
    capsys.readouterr()
    assert main(["compare", str(train_out), str(drifted)]) == 1
    printed = capsys.readouterr().out
    assert "DRIFT  fare" in printed and "DRIFT  payment_type" in printed
    assert main(["compare", str(train_out), str(same)]) == 0
    assert main(["run", "--input", str(base / "drifted.parquet"), "--output", str(base / "warned"), "--quiet",
                 "--baseline", str(train_out), "--missing", "impute:median", "--drift-action", "warn"]) == 0


def test_serving_data_without_the_label_passes_in_the_serving_environment(train):
    base, train_out = train
    serving = trips(N, seed=9).drop(["tips"])
    code, out = _run(base, "serving", serving, "--baseline", str(train_out), "--environment", "SERVING",
                     "--missing", "impute:median")
    report = json.loads((out / "report.json").read_text())
    assert code == 0, report["gate"]["failures"]
    assert (out / "normalization.json").read_text() == (train_out / "normalization.json").read_text()


def test_a_uniformly_shifted_day_is_caught_by_the_baselines_extreme_bounds_and_policies_carry_over(train):
    base, train_out = train
    day = trips(N, seed=10)
    lat = day.column("pickup_latitude").combine_chunks()
    shifted = pa.array(lat.to_numpy(zero_copy_only=False) * 10, mask=lat.is_null().to_numpy(zero_copy_only=False))
    day = day.set_column(2, "pickup_latitude", shifted)  # every latitude x10: its own bulk would absorb it
    code, out = _run(base, "shifted", day, "--baseline", str(train_out))  # no --missing: the baseline's
    report = json.loads((out / "report.json").read_text())
    assert code == 1 and report["counts"]["by_rule"]["extreme:pickup_latitude"] == int(lat.is_valid().to_numpy(
        zero_copy_only=False).sum())
    assert "missing:pickup_longitude" not in report["counts"]["by_rule"]  # imputed, as the baseline did
    assert {e["column"] for e in report["expectations"] if e.get("origin") == "--missing"} >= {
        "pickup_latitude", "pickup_longitude"}


def test_a_jump_in_missing_values_is_named_against_the_baseline(train):
    base, train_out = train
    day = trips(N, seed=11, null_rate=0.3)  # 3% of the coordinates were null in training, 30% today
    code, out = _run(base, "nullier", day, "--baseline", str(train_out))
    report = json.loads((out / "report.json").read_text())
    assert code == 1 and {m["feature"] for m in report["drift"]["missing"]} == {"pickup_latitude", "pickup_longitude"}
    assert any("--drift-missing-rate" in f and "pickup_latitude" in f for f in report["gate"]["failures"])
    assert "pickup_latitude" in (out / "report.html").read_text().split("Drift against the baseline")[1]
