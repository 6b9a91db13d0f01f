"""Seed scenarios 1, 2 and 4 of nanguard's design, as a story: Keras on the raw data, then on nanguard's shards.

    python examples/seed_scenarios.py                 # all three, 20k rows, 3 epochs
    python examples/seed_scenarios.py --scenario 1 --rows 5000 --epochs 1

1. A feature computed as `a / b` with b sometimes 0 (+/-Inf) fed to a Dense+ReLU model: the weights turn NaN
   in the first batch that holds an Inf. Keras 3's binary_crossentropy clips the NaN predictions, so the
   reported loss (about 0.69) hides it.
2. Probability labels of 2.0 in 2% of rows with a hand-written binary cross-entropy: loss NaN (Keras'
   own binary_crossentropy clips predictions and instead goes negative, which a cross-entropy never is).
4. Unscaled features (+/-1e3 ... 1e4), ReLU and Adam(0.01): the loss explodes.

For each, nanguard quarantines the bad rows (or z-scores the features), the gate passes, `load_dataset`
verifies the shards, and the same model trains to a finite, small loss on them.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from pipeline import NonFiniteLossGuard, RunConfig, load_dataset, run  # noqa: E402
from transforms.labels import LabelSpec  # noqa: E402

FEATURES = ["f0", "f1", "f2", "f3"]


def scenario_data(scenario: int, rows: int, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """The raw table, and how to train on it: label, label kind, loss."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    if scenario == 1:
        a, b = rng.normal(size=rows), rng.integers(0, 200, size=rows).astype(float)  # b == 0 in 0.5% of rows
        with np.errstate(divide="ignore", invalid="ignore"):
            x[:, 3] = a / b  # +/-Inf where b is 0 (NaN where a is 0 too)
        y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
        return _frame(x, y), {"label": "y", "kind": "binary", "loss": "binary_crossentropy"}
    if scenario == 2:
        p = 1 / (1 + np.exp(-3 * x[:, 0]))
        p[x[:, 1] > 2.05] = 2.0  # a join gone wrong: about 2% of labels are 2.0, all where f1 is high
        return _frame(x, p), {"label": "y", "kind": "probability", "loss": hand_written_cross_entropy}
    if scenario == 4:
        scale = np.array([1e3, 3e3, 1e4, 5e3])
        y = x @ np.array([1.0, -2.0, 0.5, 1.0]) + 0.1 * rng.normal(size=rows)
        return _frame(x * scale, y), {"label": "y", "kind": None, "loss": "mse"}
    raise ValueError(f"scenario {scenario}: this example covers 1, 2 and 4")


def hand_written_cross_entropy(y, p):
    y = tf.cast(y, p.dtype)
    return -tf.reduce_mean(y * tf.math.log(p) + (1 - y) * tf.math.log(1 - p))


def _frame(x, y) -> pd.DataFrame:
    df = pd.DataFrame(x, columns=FEATURES)
    df["y"] = y
    return df


def model_for(scenario: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    head = None if scenario == 4 else "sigmoid"
    width, depth = (256, 3) if scenario == 4 else (64, 2)
    layers = [keras.Input((len(FEATURES),))] + [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    return keras.Sequential(layers + [keras.layers.Dense(1, activation=head)])


def train_raw(df: pd.DataFrame, how: dict, scenario: int, epochs: int,
              batch_size: int = 256) -> tuple[list[float], bool]:
    """Loss per epoch, and whether the trained weights are all finite."""
    model = model_for(scenario)
    model.compile(keras.optimizers.Adam(0.01), how["loss"])
    history = model.fit(df[FEATURES].to_numpy(np.float32), df["y"].to_numpy(np.float32), epochs=epochs,
                        batch_size=batch_size, shuffle=False, verbose=0)
    return [float(v) for v in history.history["loss"]], weights_finite(model)


def weights_finite(model: keras.Model) -> bool:
    return all(np.isfinite(w).all() for w in model.get_weights())


def train_with_nanguard(df: pd.DataFrame, how: dict, scenario: int, epochs: int, workdir: str,
                        batch_size: int = 256) -> tuple[dict, list[float], bool]:
    src = os.path.join(workdir, "raw.parquet")
    df.to_parquet(src)
    out = os.path.join(workdir, "nanguard-out")
    labels = (LabelSpec.parse(f"y:{how['kind']}"),) if how["kind"] else ()
    # The planted faults are 0.5-2% of rows; the gate is told that share may be quarantined.
    report = run(RunConfig(inputs=(src,), output=out, labels=labels, passthrough=() if labels else ("y",),
                           max_quarantine_fraction=0.03, num_shards=2, overwrite=True))
    ds = load_dataset(out, batch_size, label="y")  # refuses a failed gate or a tampered shard
    ds = ds.map(lambda f, y: (tf.stack([f[c] for c in FEATURES], axis=1), y))
    model = model_for(scenario)
    model.compile(keras.optimizers.Adam(0.01), how["loss"])
    guard = NonFiniteLossGuard(out)
    history = model.fit(ds, epochs=epochs, verbose=0, shuffle=False, callbacks=[guard])
    return report, [float(v) for v in history.history["loss"]], weights_finite(model)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenario", default="all", choices=("1", "2", "4", "all"))
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args(argv)
    results = {}
    for scenario in ((1, 2, 4) if args.scenario == "all" else (int(args.scenario),)):
        df, how = scenario_data(scenario, args.rows)
        raw, raw_ok = train_raw(df, how, scenario, args.epochs)
        with tempfile.TemporaryDirectory() as work:
            report, clean, clean_ok = train_with_nanguard(df, how, scenario, args.epochs, work)
        results[scenario] = {"raw_loss": raw, "raw_weights_finite": raw_ok, "nanguard_loss": clean,
                             "nanguard_weights_finite": clean_ok,
                             "quarantined": report["counts"]["quarantined_rows"],
                             "gate": "passed" if report["passed"] else "failed"}
        print(f"scenario {scenario}: raw data: loss {_fmt(raw)}, weights {'finite' if raw_ok else 'NaN'}; "
              f"nanguard quarantined {report['counts']['quarantined_rows']} of {report['counts']['input_rows']} "
              f"rows, gate {results[scenario]['gate']}: loss {_fmt(clean)}, weights "
              f"{'finite' if clean_ok else 'NaN'}")
    print(json.dumps(results))
    ok = all(r["nanguard_weights_finite"] and all(math.isfinite(v) for v in r["nanguard_loss"])
             for r in results.values())
    return 0 if ok else 1


def _fmt(losses):
    return " -> ".join(f"{v:.4g}" for v in losses)


if __name__ == "__main__":
    sys.exit(main())
