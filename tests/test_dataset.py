"""The training side: load_dataset refuses ungated or tampered shards; the loss guard; the seed-scenario example."""
import json
import math
import os
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from pipeline import GateNotPassedError, NonFiniteLossGuard, RunConfig, ShardIntegrityError, load_dataset, run
from transforms.labels import LabelSpec

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import seed_scenarios  # noqa: E402

ROWS = 4000


def _run(tmp_path, bad_rows=0, name="out", compression="gzip", source=None):
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(size=ROWS), "b": rng.uniform(0, 9, size=ROWS),
                       "y": rng.integers(0, 2, size=ROWS)})
    df.loc[:bad_rows - 1, "a"] = np.nan
    src = str(tmp_path / f"{source or name}.parquet")
    df.to_parquet(src)
    out = str(tmp_path / name)
    return out, run(RunConfig(inputs=(src,), output=out, labels=(LabelSpec.parse("y:binary"),), num_shards=3,
                              compression=compression))


def _count(ds):
    return sum(int(tf.shape(b[1] if isinstance(b, tuple) else b["a"])[0]) for b in ds)


def test_passing_run_yields_exactly_the_clean_rows_as_feature_label_pairs(tmp_path):
    out, report = _run(tmp_path, bad_rows=2)
    assert report["passed"] and report["counts"]["clean_rows"] == ROWS - 2
    ds = load_dataset(out, 512, label="y")
    features, label = next(iter(ds))
    assert set(features) == {"a", "b"} and label.dtype == tf.int64
    assert _count(ds) == ROWS - 2
    values = np.concatenate([f["a"].numpy() for f, _ in ds])
    assert np.isfinite(values).all() and abs(values.mean()) < 1e-3  # normalized, finite
    assert _count(load_dataset(out, 1000, shuffle=True, seed=1)) == ROWS - 2
    sizes = [int(tf.shape(y)[0]) for _, y in ds]  # 3 shards, batched per shard, then rebatched
    assert sizes[:-1] == [512] * (len(sizes) - 1) and 0 < sizes[-1] <= 512
    full = [int(tf.shape(b["a"])[0]) for b in load_dataset(out, 512, drop_remainder=True)]
    assert full == [512] * ((ROWS - 2) // 512)


def test_uncompressed_shards_hold_the_same_examples_as_gzip_ones(tmp_path):
    gz, _ = _run(tmp_path, bad_rows=2, name="gz", source="in")  # one input: a row's shard hashes its file name
    plain, report = _run(tmp_path, bad_rows=2, name="plain", compression="none", source="in")
    assert [s["path"] for s in report["outputs"]["shards"]] == [f"data/part-{i:05d}-of-00003.tfrecord"
                                                                for i in range(3)]
    for g, p in zip(sorted(os.listdir(os.path.join(gz, "data"))), sorted(os.listdir(os.path.join(plain, "data")))):
        records = [list(tf.data.TFRecordDataset(os.path.join(d, "data", f), compression_type=c).as_numpy_iterator())
                   for d, f, c in ((gz, g, "GZIP"), (plain, p, ""))]
        assert records[0] == records[1] and records[0]  # the same records, in the same order, in each shard
    assert _count(load_dataset(plain, 512, label="y")) == ROWS - 2  # checksums verified on the way


def test_failed_gate_is_refused_unless_allow_failed(tmp_path):
    out, report = _run(tmp_path, bad_rows=40)  # 1% quarantined > the 0.1% default
    assert not report["passed"]
    with pytest.raises(GateNotPassedError, match="gate FAILED.*quarantined.*allow_failed=True"):
        load_dataset(out, 256)
    assert _count(load_dataset(out, 256, allow_failed=True)) == ROWS - 40


def test_one_flipped_byte_in_a_shard_is_refused(tmp_path):
    out, report = _run(tmp_path)
    shard = os.path.join(out, report["outputs"]["shards"][1]["path"])
    data = bytearray(open(shard, "rb").read())
    data[len(data) // 2] ^= 0x01
    open(shard, "wb").write(bytes(data))
    with pytest.raises(ShardIntegrityError, match="part-00001-of-00003.*SHA-256.*does not match"):
        load_dataset(out, 256)


def test_no_report_means_no_dataset(tmp_path):
    out, _ = _run(tmp_path)
    os.remove(os.path.join(out, "report.json"))  # what an interrupted run leaves
    with pytest.raises(GateNotPassedError, match="no report.json"):
        load_dataset(out, 256, allow_failed=True)


def test_loss_guard_stops_training_at_the_first_non_finite_loss(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    x = np.ones((64, 2), np.float32)
    y = np.ones((64, 1), np.float32)
    y[40] = np.nan
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    guard = NonFiniteLossGuard(str(tmp_path / "out"), "model.keras")
    history = model.fit(x, y, batch_size=8, epochs=5, shuffle=False, verbose=0, callbacks=[guard])
    assert len(history.history["loss"]) == 1  # stopped in the first epoch
    assert "batch 5" in guard.message and "report.json" in guard.message and "check-model" in guard.message
    assert "training stopped" in capsys.readouterr().err


@pytest.mark.slow
def test_seed_scenarios_train_to_nan_on_raw_data_and_finite_on_nanguard_shards(tmp_path):
    for scenario in (1, 2, 4):
        df, how = seed_scenarios.scenario_data(scenario, 8000)
        raw_loss, raw_finite = seed_scenarios.train_raw(df, how, scenario, epochs=1)
        work = tmp_path / f"s{scenario}"
        work.mkdir()
        report, loss, finite = seed_scenarios.train_with_nanguard(df, how, scenario, 1, str(work))
        assert report["passed"] and finite and all(math.isfinite(v) for v in loss), (scenario, loss)
        if scenario == 1:
            assert not raw_finite  # NaN weights (Keras' clipped cross-entropy hides it in the loss)
            assert report["counts"]["by_rule"].get("pos_inf:f3", 0) + report["counts"]["by_rule"].get(
                "neg_inf:f3", 0) > 0
        elif scenario == 2:
            assert math.isnan(raw_loss[0]) and not raw_finite
            assert report["counts"]["by_rule"]["label_probability:y"] == int((df["y"] == 2.0).sum())
        else:
            assert raw_loss[0] > 1000 * loss[0]  # unscaled: the loss explodes; z-scored: it does not
    assert json.dumps(report)  # the report of the last run is plain JSON


def test_python_api_takes_keywords_and_returns_a_failed_report_without_raising(tmp_path):
    import pipeline
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"a": rng.normal(size=1000), "y": rng.integers(0, 2, size=1000)})
    df.loc[:49, "a"] = np.inf
    src = str(tmp_path / "t.parquet")
    df.to_parquet(src)
    report = pipeline.run(inputs=[src], output=str(tmp_path / "o"), labels=["y:binary"], num_shards=1)
    assert report["passed"] is False and report["counts"]["quarantined_rows"] == 50
    assert report["gate"]["failures"][0].startswith("quarantined 5.00% of rows")
    with pytest.raises(pipeline.ConfigError, match="y:softmax|not one of"):
        pipeline.run(inputs=[src], output=str(tmp_path / "o2"), labels=["y:softmax"])


def test_a_report_edited_to_say_passed_is_refused_by_the_loader_gate_and_model_check(tmp_path, capsys):
    from pipeline.cli import main
    out, report = _run(tmp_path, bad_rows=40)  # failed: 1% quarantined
    path = os.path.join(out, "report.json")
    doc = json.load(open(path))
    doc["passed"], doc["gate"]["failures"] = True, []
    json.dump(doc, open(path, "w"))
    with pytest.raises(GateNotPassedError, match="gate FAILED.*quarantined 1.00% of rows"):
        load_dataset(out, 256)
    assert main(["gate", out]) == 1
    model = tmp_path / "m.keras"
    inputs = keras.Input((2,))
    keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs)).save(model)
    capsys.readouterr()
    assert main(["check-model", "--model", str(model), "--data", out, "--features", "a,b"]) == 2
    assert "gate FAILED" in capsys.readouterr().err
    assert main(["check-model", "--model", str(model), "--data", out, "--features", "a,b", "--allow-failed"]) == 0
    assert "checked anyway (--allow-failed)" in capsys.readouterr().out


@pytest.mark.parametrize("tamper", ["delete a shard", "truncate a shard", "swap two shards", "edit feature_spec",
                                    "edit normalization"])
def test_gate_and_loader_refuse_an_output_changed_after_its_run(tmp_path, tamper):
    from pipeline.cli import main
    out, report = _run(tmp_path)
    shards = [os.path.join(out, s["path"]) for s in report["outputs"]["shards"]]
    assert main(["gate", out]) == 0
    if tamper == "delete a shard":
        os.remove(shards[0])
    elif tamper == "truncate a shard":
        open(shards[1], "r+b").truncate(100)
    elif tamper == "swap two shards":
        os.rename(shards[0], shards[0] + ".tmp")
        os.rename(shards[1], shards[0])
        os.rename(shards[0] + ".tmp", shards[1])
    else:
        name = "feature_spec.json" if tamper == "edit feature_spec" else "normalization.json"
        doc = json.load(open(os.path.join(out, name)))
        key = "a"
        doc[key] = {"kind": "VarLenFeature", "dtype": "float32"} if name == "feature_spec.json" else dict(
            doc[key], scale=doc[key]["scale"] * 10)
        json.dump(doc, open(os.path.join(out, name), "w"))
    assert main(["gate", out]) == 1
    with pytest.raises(ShardIntegrityError, match="missing|does not match"):
        load_dataset(out, 256)


def test_an_output_of_an_earlier_version_without_checksums_still_loads_and_gates(tmp_path):
    from pipeline.cli import main
    out, report = _run(tmp_path)
    path = os.path.join(out, "report.json")
    doc = json.load(open(path))
    del doc["outputs"]["checksums"], doc["counts"]["warned"]  # what reports held before these were recorded
    json.dump(doc, open(path, "w"))
    assert main(["gate", out]) == 0
    assert _count(load_dataset(out, 512)) == ROWS
    shard = os.path.join(out, report["outputs"]["shards"][0]["path"])
    open(shard, "r+b").truncate(100)
    assert main(["gate", out]) == 1  # its shards are still verified
