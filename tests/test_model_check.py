"""The model checker on real shards: a healthy model passes; seed scenarios 3, 5, 6 and 7 fail, naming the
quantity, the first failing batch, the rows (shard and record) and the layer."""
import json
import os

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from pipeline.cli import main
from pipeline.config import RunConfig
from pipeline.training.dataset import GateNotPassedError
from pipeline.training.model_check import ModelCheckConfig, check_model, summary
from pipeline.runner import run
from transforms.labels import LabelSpec

ROWS = 3000
FEATURES = ["x0", "x1", "x2", "count"]


def _table(seed=0, inf_rows=()):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "x0": rng.normal(size=ROWS), "x1": rng.normal(3, 2, size=ROWS), "x2": rng.uniform(-5, 5, size=ROWS),
        "count": rng.integers(0, 6, size=ROWS).astype(np.int64),  # 0 in about one row in six
        "y": rng.integers(0, 2, size=ROWS).astype(np.int64),
    })
    for r in inf_rows:
        df.loc[r, "x1"] = np.inf
    return df


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """A passing nanguard run: x0..x2 z-scored, `count` passed through unnormalized (zeros stay 0), y binary."""
    base = tmp_path_factory.mktemp("model_check")
    src = str(base / "train.parquet")
    _table().to_parquet(src)
    out = str(base / "out")
    report = run(RunConfig(inputs=(src,), output=out, labels=(LabelSpec.parse("y:binary"),),
                           passthrough=("count",), num_shards=2))
    assert report["passed"]
    return out


def _dense_model(last_activation="sigmoid", kernel=None, hidden=8, name="head"):
    init = keras.initializers.Constant(kernel) if kernel is not None else "glorot_uniform"
    return keras.Sequential([keras.Input((len(FEATURES),)),
                             keras.layers.Dense(hidden, activation="relu", kernel_initializer=init, name="hidden"),
                             keras.layers.Dense(1, activation=last_activation, name=name)])


def _record(out, shard, record, feature):
    """One value of one written example, found by the (shard, record) the checker names."""
    raw = next(iter(tf.data.TFRecordDataset(os.path.join(out, shard), compression_type="GZIP").skip(record)))
    return tf.train.Example.FromString(raw.numpy()).features.feature[feature]


def test_healthy_model_passes_every_check(shards):
    keras.utils.set_random_seed(0)
    model = _dense_model()
    model.compile(loss="binary_crossentropy")
    result = check_model(ModelCheckConfig(model=model, data=shards, label="y", features=tuple(FEATURES)))
    assert result["passed"], result["failures"]
    assert result["examples"] == ROWS and result["failure"] is None
    checks = result["checks"]
    assert checks["probability_outputs"]["checked"] and checks["probability_outputs"]["head"] == "sigmoid"
    assert checks["loss_finite"]["checked"] and checks["gradients_finite"]["variables"] == 4
    gpu = bool(tf.config.list_physical_devices("GPU"))  # --device auto: the GPU when TensorFlow sees one
    assert result["device"].startswith("GPU:0") if gpu else result["device"] == "CPU"


def test_scenario_3_custom_loss_dividing_by_a_feature_that_is_0(shards):
    keras.utils.set_random_seed(0)
    model = _dense_model(last_activation="softplus", name="rate")

    def per_count_loss(count, predicted):  # a hand-written "rate per event" loss
        return tf.reduce_mean(predicted / tf.cast(count, tf.float32))

    result = check_model(ModelCheckConfig(model=model, data=shards, label="count", loss=per_count_loss,
                                          features=tuple(FEATURES)))
    assert not result["passed"]
    failure = result["failure"]
    assert failure["batch"] == 0 and failure["quantity"] == "loss"
    assert failure["rows"] and failure["rows_failing"] > 0
    table = _table()
    norm = json.load(open(os.path.join(shards, "normalization.json")))["x0"]
    for row in failure["rows"]:  # exactly rows whose count is 0
        assert _record(shards, row["shard"], row["record"], "count").int64_list.value[0] == 0
        # named back to the input row it came from (index/), which holds that very example
        assert row["source_file"].endswith("train.parquet") and table.loc[row["row_index"], "count"] == 0
        written = _record(shards, row["shard"], row["record"], "x0").float_list.value[0]
        assert written == pytest.approx((table.loc[row["row_index"], "x0"] - norm["offset"]) / norm["scale"], abs=1e-5)
    assert any("loss per_count_loss" in f for f in result["failures"])
    assert f"= row {failure['rows'][0]['row_index']} of" in summary(result)


def test_scenario_5_log_of_0_in_a_hand_written_cross_entropy(shards):
    model = _dense_model(kernel=40.0)  # saturates: sigmoid gives exactly 1.0 in float32 for most rows

    def cross_entropy(y, p):
        y = tf.cast(y, tf.float32)
        return -tf.reduce_mean(y * tf.math.log(p) + (1 - y) * tf.math.log(1 - p))

    result = check_model(ModelCheckConfig(model=model, data=shards, label="y", loss=cross_entropy,
                                          features=tuple(FEATURES)))
    assert not result["passed"]
    assert result["checks"]["outputs_finite"]["nonfinite_values"] == 0  # outputs are valid probabilities
    assert result["failure"]["quantity"] == "loss"
    for row in result["failure"]["rows"]:  # log(1 - 1.0), or 0 * log(0): rows whose prediction saturated
        x = [_record(shards, row["shard"], row["record"], f) for f in FEATURES]
        x = np.array([[v.float_list.value[0] if v.float_list.value else v.int64_list.value[0] for v in x]])
        assert float(model(x.astype(np.float32))[0, 0]) in (0.0, 1.0)


def test_scenario_6_exp_overflow_names_the_layer(shards, tmp_path):
    model = keras.Sequential([keras.Input((len(FEATURES),)), keras.layers.Dense(4, name="hidden"),
                              keras.layers.Dense(1, activation="exponential", name="exp_layer",
                                                 kernel_initializer=keras.initializers.Constant(1000.0))])
    model.compile(loss="mse")
    path = str(tmp_path / "exp.keras")
    model.save(path)
    result = check_model(ModelCheckConfig(model=path, data=shards, label="y", features=tuple(FEATURES)))
    assert not result["passed"]
    f = result["failure"]
    assert (f["batch"], f["quantity"], f["layer"]) == (0, "output", "exp_layer")
    assert result["checks"]["loss_finite"]["nonfinite_batches"] > 0


def test_scenario_7_float16_overflow_only_under_mixed_precision(shards):
    model = _dense_model(kernel=30_000.0)  # activations ~1e5: finite in float32, beyond float16's 65504
    model.compile(loss="binary_crossentropy")
    plain = check_model(ModelCheckConfig(model=model, data=shards, label="y", features=tuple(FEATURES)))
    assert plain["checks"]["outputs_finite"]["nonfinite_values"] == 0
    assert not plain["checks"]["gradients_finite"]["nonfinite_by_variable"]
    mixed = check_model(ModelCheckConfig(model=model, data=shards, label="y", features=tuple(FEATURES),
                                         mixed_precision=True))
    assert keras.config.dtype_policy().name == "float32"  # the check does not change the caller's policy
    assert not mixed["passed"]
    assert mixed["checks"]["float16_overflow"]["nonfinite_activations_by_layer"].get("hidden", 0) > 0
    assert mixed["failure"]["layer"] == "hidden" and mixed["failure"]["batch"] == 0


def test_healthy_model_on_shards_that_kept_inf_fails_on_outputs(tmp_path):
    src = str(tmp_path / "raw.parquet")
    _table(seed=1, inf_rows=(700, 1500)).to_parquet(src)
    suite = tmp_path / "warn_only.json"
    suite.write_text(json.dumps({"name": "warn", "expectations": [
        {"type": "expect_column_values_to_be_finite", "kwargs": {"column": "*"},
         "meta": {"nanguard": {"on_fail": "warn"}}}]}))
    out = str(tmp_path / "out")
    report = run(RunConfig(inputs=(src,), output=out, suite=str(suite), labels=(LabelSpec.parse("y:binary"),),
                           passthrough=("count",), num_shards=2))
    assert report["counts"]["quarantined_rows"] == 0  # told not to quarantine: the Inf reached the shards
    assert not report["passed"]  # the Inf written fails the gate all the same (the written values' own check)
    assert report["written"]["x1"]["posinf"] + report["written"]["x1"]["neginf"] == 2
    assert [a["feature"] for a in report["anomalies"]] == ["x1"] and "non-finite" in report["anomalies"][0]["description"]
    keras.utils.set_random_seed(0)
    model = _dense_model()
    model.compile(loss="binary_crossentropy")
    with pytest.raises(GateNotPassedError, match="--allow-failed"):  # refused unless told
        check_model(ModelCheckConfig(model=model, data=out, label="y", features=tuple(FEATURES)))
    result = check_model(ModelCheckConfig(model=model, data=out, label="y", features=tuple(FEATURES),
                                          allow_failed=True))
    assert not result["passed"] and result["failure"]["quantity"] == "output"
    assert result["data_gate_failures"] and "written values break" in result["data_gate_failures"][0]
    named = {(r["shard"], r["record"]) for r in result["failure"]["rows"]}
    assert all(np.isinf(_record(out, s, r, "x1").float_list.value[0]) for s, r in named)


def test_savedmodel_directory_is_checked_with_gradients(shards, tmp_path):
    keras.utils.set_random_seed(0)
    model = _dense_model()
    path = str(tmp_path / "saved")
    model.export(path, verbose=False)
    result = check_model(ModelCheckConfig(model=path, data=shards, label="y", loss="binary_crossentropy",
                                          features=tuple(FEATURES), outputs="probability"))
    assert result["passed"], result["failures"]
    assert result["checks"]["gradients_finite"]["variables"] == 4


def test_named_inputs_are_fed_by_feature_name(shards):
    inputs = {n: keras.Input((), name=n) for n in ("x2", "x0")}
    stacked = keras.layers.Concatenate()([keras.layers.Reshape((1,))(inputs["x0"]),
                                          keras.layers.Reshape((1,))(inputs["x2"])])
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(stacked))
    result = check_model(ModelCheckConfig(model=model, data=shards, label="y", loss="sparse_categorical_crossentropy"))
    assert result["passed"], result["failures"]
    assert result["inputs"]["mode"] == "dict" and set(result["inputs"]["features"]) == {"x0", "x2"}
    assert result["checks"]["probability_outputs"]["head"] == "softmax"


def test_a_model_of_the_wrong_width_is_a_config_error(shards):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(Exception, match="takes 3 input values per example but the shards have 4"):
        check_model(ModelCheckConfig(model=model, data=shards))


def test_cli_check_model_exit_codes_and_safe_mode(shards, tmp_path, capsys):
    keras.utils.set_random_seed(0)
    healthy = _dense_model()
    healthy.compile(loss="binary_crossentropy")
    good = str(tmp_path / "good.h5")
    healthy.save(good)
    base = ["check-model", "--data", shards, "--label", "y", "--features", ",".join(FEATURES)]
    assert main(base + ["--model", good, "--max-batches", "3"]) == 0
    assert "model check: PASSED" in capsys.readouterr().out
    lam = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2.0), keras.layers.Dense(1)])
    unsafe = str(tmp_path / "lambda.keras")
    lam.save(unsafe)
    assert main(base + ["--model", unsafe, "--loss", "mse"]) == 2
    err = capsys.readouterr().err
    assert "safe_mode" in err and "--unsafe-model" in err and "Traceback" not in err
    assert main(base + ["--model", str(tmp_path / "missing.keras")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_run_with_model_puts_the_check_in_the_report_and_the_gate(tmp_path, capsys, monkeypatch):
    from pipeline.training import model as model_module
    loads = []  # the model is loaded once: before the pipeline (to check its width), then reused after it
    real_load = model_module.load_model
    monkeypatch.setattr(model_module, "load_model", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    src = str(tmp_path / "train.parquet")
    _table(seed=2).to_parquet(src)
    model = keras.Sequential([keras.Input((len(FEATURES),)),
                              keras.layers.Dense(1, activation="exponential", name="exp_layer",
                                                 kernel_initializer=keras.initializers.Constant(1000.0))])
    model.compile(loss="mse")
    path = str(tmp_path / "exp.keras")
    model.save(path)
    out = str(tmp_path / "out")
    code = main(["run", "--input", src, "--output", out, "--label", "y:binary", "--passthrough", "count",
                 "--model", path])
    assert code == 1
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["model_check"]["failure"]["layer"] == "exp_layer"
    assert report["model_check"]["data"] == out and report["model_check"]["model"] == path
    assert loads == [path]
    assert any(f.startswith("model check: ") for f in report["gate"]["failures"])
    assert main(["gate", out]) == 1
    assert not any(n.startswith(".nanguard-staging-") for n in os.listdir(out))


def test_a_model_that_raises_on_real_data_is_one_line_naming_the_batch(shards):
    from pipeline.errors import ConfigError
    inputs = keras.Input((len(FEATURES),))
    checked = keras.layers.Lambda(lambda x: x + tf.debugging.assert_all_finite(x * 1e38 * 1e38, "overflow"))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(checked))
    with pytest.raises(ConfigError, match=r"the model raised on batch 0 \(InvalidArgumentError: overflow"):
        check_model(ModelCheckConfig(model=model, data=shards, features=tuple(FEATURES)))


@pytest.mark.parametrize("what", ["corrupt .keras", "corrupt .h5", "SavedModel with a garbage saved_model.pb"])
def test_a_damaged_model_file_is_one_line(shards, tmp_path, capsys, what):
    if what == "corrupt .keras":
        path = tmp_path / "m.keras"
        path.write_bytes(b"this is not a zip archive")
        expected = "not a .keras file"
    elif what == "corrupt .h5":
        path = tmp_path / "m.h5"
        path.write_bytes(b"not hdf5")
        expected = "not an HDF5 file"
    else:
        path = tmp_path / "saved"
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"garbage")
        expected = "TensorFlow cannot load this SavedModel"
    assert main(["check-model", "--model", str(path), "--data", shards]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err


def test_run_refuses_a_model_of_the_wrong_width_before_the_pipeline_and_takes_model_features(tmp_path, capsys):
    src = str(tmp_path / "train.parquet")
    _table(seed=3).to_parquet(src)
    narrow = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    narrow.compile(loss="binary_crossentropy")
    path = str(tmp_path / "narrow.keras")
    narrow.save(path)
    out = tmp_path / "out"
    args = ["run", "--input", src, "--output", str(out), "--label", "y:binary", "--model", path, "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "takes 3 input values per example but the shards will have 4" in err and "--model-features" in err
    assert not out.exists()  # refused before anything ran or was written
    assert main(args + ["--model-features", "x0,x1,x2"]) == 0
    report = json.load(open(out / "report.json"))
    assert report["model_check"]["passed"] and report["model_check"]["inputs"]["features"] == ["x0", "x1", "x2"]


def test_custom_objects_module_lets_a_custom_layer_load(shards, tmp_path, capsys):
    module = tmp_path / "my_layers.py"
    module.write_text(
        "import keras\n\n\n@keras.saving.register_keras_serializable(package='mine')\n"
        "class Doubler(keras.layers.Layer):\n    def call(self, x):\n        return 2.0 * x\n")
    import importlib.util
    spec = importlib.util.spec_from_file_location("my_layers", module)
    layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layers)
    model = keras.Sequential([keras.Input((len(FEATURES),)), layers.Doubler(), keras.layers.Dense(1)])
    path = str(tmp_path / "custom.keras")
    model.save(path)
    keras.saving.get_custom_objects().clear()  # a fresh process knows nothing of the layer
    base = ["check-model", "--model", path, "--data", shards, "--features", ",".join(FEATURES)]
    assert main(base) == 2
    assert "--custom-objects" in capsys.readouterr().err
    assert main(base + ["--custom-objects", str(module)]) == 0
    printed = capsys.readouterr().out
    assert "outputs finite: yes" in printed and "model check: PASSED" in printed
