"""One benchmark case per call, in its own process (so its peak RSS is its own):

    python -m benchmarks.cases CASE '{"json": "args"}'

prints one JSON line of results last. The orchestrator is benchmarks/run.py.
"""
from __future__ import annotations

import json
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")


def nanguard(args: dict) -> dict:
    """nanguard.run() on args["input"] (or the list args["inputs"]) with the bench table's flags, or those given
    as "labels", "missing" and "passthrough"."""
    import logging

    import pipeline
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    from benchmarks.data import LABELS, MISSING, PASSTHROUGH
    import pipeline.report.assemble  # noqa: F401  Beam, TFDV and TF imported outside the timed region, as the
    import pipeline.stages.graph  # noqa: F401  TFDV case does (pipeline.run imports them after its cheap checks)
    run = pipeline.run
    started = time.perf_counter()
    report = run(inputs=list(args.get("inputs", [args["input"]])), output=args["output"],
                 labels=list(args.get("labels", LABELS)), overwrite=True, missing=list(args.get("missing", MISSING)),
                 passthrough=list(args.get("passthrough", PASSTHROUGH)), max_quarantine_fraction=0.01,
                 beam_args=tuple(args.get("beam_args", ())))
    return {"seconds": time.perf_counter() - started, "rows": report["counts"]["input_rows"],
            "clean_rows": report["counts"]["clean_rows"], "quarantined_rows": report["counts"]["quarantined_rows"],
            "passed": report["passed"]}


def tfdv(args: dict) -> dict:
    """TFDV GenerateStatistics alone over the same Parquet, the way one would run it on Beam."""
    import apache_beam as beam
    import pyarrow as pa
    import tensorflow_data_validation as tfdv_

    from transforms.columns import to_list_array

    def as_lists(table: pa.Table) -> pa.RecordBatch:  # one value per row; a null cell a null (empty) list
        arrays = [to_list_array(col.combine_chunks()) for col in table.columns]
        return pa.RecordBatch.from_arrays(arrays, table.column_names)

    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.stages.local_runner import new_pipeline
    started = time.perf_counter()
    # On the runner nanguard's default uses (Beam's in-process FnApiRunner), so neither pays for Beam 2.69's
    # DirectRunner first trying to download Prism (for this small graph that costs little: 4.98-5.19 s with
    # beam.Pipeline() against 4.98-5.18 s here, three runs each).
    with new_pipeline(PipelineOptions()) as p:
        _ = (p | beam.io.ReadFromParquetBatched(args["input"]) | beam.Map(as_lists)
             | tfdv_.GenerateStatistics(tfdv_.StatsOptions())
             | tfdv_.WriteStatisticsToBinaryFile(args["output"]))
    return {"seconds": time.perf_counter() - started}


def expectations(args: dict) -> dict:
    """The same 67-expectation suite on the same in-memory data: GE 1.x pandas engine vs nanguard's kernels.

    nanguard's time includes everything it needs beyond the rows: the profile (the z-scores' moments and the
    aggregates' statistics come from it) and the aggregate evaluation."""
    import json as json_

    import great_expectations as gx
    import pyarrow.parquet as pq

    from benchmarks.data import ge_suite
    from expectations.compiler import CompileOptions, compile_suite
    from expectations.results import expectation_results
    from expectations.suite import parse_suite
    from pipeline.files import plain
    from pipeline.stages.profile import profile_json
    from transforms.counts import RowCounts
    from transforms.evaluate import check_batch
    from transforms.profile import ProfileAccumulator

    table = pq.read_table(args["input"])
    df = table.to_pandas()
    spec = ge_suite()

    started = time.perf_counter()
    context = gx.get_context(mode="ephemeral")
    batch = (context.data_sources.add_pandas("bench").add_dataframe_asset("table")
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df}))
    result = batch.validate(gx.ExpectationSuite(**spec), result_format="SUMMARY")
    ge_seconds = time.perf_counter() - started
    ge = _match_ge_results(spec, result.results)

    started = time.perf_counter()
    compiled = compile_suite(parse_suite(spec, "bench suite"), table.schema, CompileOptions())
    batches = table.to_batches(max_chunksize=65_536)
    profile = ProfileAccumulator(tuple(table.column_names), True)
    for b in batches:
        profile.add_batch(b)
    rules = compiled.bind(profile.profiles)
    counts = RowCounts()
    for b in batches:
        outcome = check_batch(b, [r for _, r in rules])
        counts.merge(RowCounts.of(outcome, [owner for owner, _ in rules]))  # as the pipeline's check step does
    raw = json_.loads(json_.dumps(plain(profile_json(profile))))
    ours = expectation_results(compiled, counts, raw, {f.name: str(f.type) for f in table.schema})
    ng_seconds = time.perf_counter() - started
    ours_counts = [r.get("unexpected_count") for r in ours]
    ge_counts = [r.result.get("unexpected_count") for r in ge]
    return {"ge_seconds": ge_seconds, "nanguard_seconds": ng_seconds, "expectations": len(spec["expectations"]),
            "rows": table.num_rows, "counts_identical": ours_counts == ge_counts,
            "success_identical": [r["success"] for r in ours] == [r.success for r in ge],
            "unexpected_total": sum(c or 0 for c in ours_counts), "ge_unexpected_total": sum(c or 0 for c in ge_counts)}


def _match_ge_results(spec: dict, results) -> list:
    """GE's results in the suite's order (GE reorders them, and drops arguments left at their default)."""
    out, used = [], set()
    for e in spec["expectations"]:
        for i, r in enumerate(results):
            kept = {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"}
            if i not in used and r.expectation_config.type == e["type"] and all(
                    e["kwargs"].get(k) == v for k, v in kept.items()):
                used.add(i)
                out.append(r)
                break
        else:
            raise AssertionError(f"no GE result for {e}")
    return out


def baseline(args: dict) -> dict:
    """A hand-written single-process numpy/pyarrow script: checks, z-score, tf.Example encoding, TFRecord."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import tensorflow as tf
    from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder

    started = time.perf_counter()
    table = pq.read_table(args["input"])
    features = [c for c in table.column_names if c.startswith("f")]
    ok = np.ones(table.num_rows, bool)
    for c in features:
        v = table.column(c).to_numpy()
        ok &= np.isfinite(v) & (np.abs(v) < 1e4)
    prob = table.column("label_prob").to_numpy()
    cls = table.column("label_class").to_numpy()
    ok &= (prob >= 0) & (prob <= 1) & (cls >= 0) & (cls < 5)
    clean = table.filter(pa.array(ok))
    offsets = pa.array(np.arange(clean.num_rows + 1, dtype=np.int32))
    arrays, names = [], []
    for c in clean.column_names:
        if pa.types.is_string(clean.column(c).type):  # tf.Example bytes
            arrays.append(pa.ListArray.from_arrays(offsets, clean.column(c).combine_chunks().cast(pa.binary())))
            names.append(c)
            continue
        v = clean.column(c).to_numpy()
        if c in features:
            v = ((v - v.mean()) / (v.std() or 1.0)).astype(np.float32)
        elif v.dtype == np.float64:
            v = v.astype(np.float32)  # tf.Example holds float32
        arrays.append(pa.ListArray.from_arrays(offsets, pa.array(v)))
        names.append(c)
    checked = time.perf_counter()
    batch = pa.RecordBatch.from_arrays(arrays, names)
    encoder = RecordBatchToExamplesEncoder()
    with tf.io.TFRecordWriter(args["output"], options="GZIP") as w:
        for start in range(0, batch.num_rows, 65_536):
            for record in encoder.encode(batch.slice(start, 65_536)):
                w.write(record)
    return {"seconds": time.perf_counter() - started, "encode_write_seconds": time.perf_counter() - checked,
            "rows": clean.num_rows}


def read_shards(args: dict) -> dict:
    """load_dataset's examples/s, and the ceiling: the same shards' records iterated by tf.data without parsing.

    Fastest of 3 rounds each (the machine is shared; one round swings by 2x)."""
    import glob

    import tensorflow as tf

    from pipeline import load_dataset
    paths = sorted(glob.glob(os.path.join(args["output"], "data", "*")))
    compression = "GZIP" if paths[0].endswith(".gz") else ""

    def timed(make, count):
        best, n = float("inf"), 0
        for _ in range(3):
            ds = make()
            started = time.perf_counter()
            n = sum(count(batch) for batch in ds)
            best = min(best, time.perf_counter() - started)
        return best, n

    seconds, n = timed(lambda: load_dataset(args["output"], 1024), lambda b: int(b["label_class"].shape[0]))
    raw_seconds, raw_n = timed(
        lambda: tf.data.Dataset.from_tensor_slices(paths).interleave(
            lambda p: tf.data.TFRecordDataset(p, compression_type=compression, buffer_size=1 << 20).batch(1024),
            cycle_length=len(paths), num_parallel_calls=tf.data.AUTOTUNE),
        lambda b: int(b.shape[0]))
    assert raw_n == n
    return {"seconds": seconds, "examples": n, "examples_per_second": n / seconds,
            "raw_records_per_second": raw_n / raw_seconds}


def model_check(args: dict) -> dict:
    """The checker against Keras on the same shards: forward vs model.predict, with gradients vs train_on_batch."""
    import keras
    import tensorflow as tf

    from benchmarks.data import FEATURES
    from pipeline import ModelCheckConfig, check_model, load_dataset

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((len(FEATURES),)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    batch_size = 1024

    def keras_ds():
        ds = load_dataset(args["output"], batch_size, label="label_class", verify_checksums=False)
        return ds.map(lambda f, y: (tf.stack([f[c] for c in FEATURES], 1), tf.cast(y > 2, tf.float32)))

    times = {"predict_seconds": [], "check_forward_seconds": [], "train_on_batch_seconds": [],
             "check_gradients_seconds": []}
    for _ in range(3):  # interleaved rounds, the fastest of each kept: this machine is shared and noisy
        started = time.perf_counter()
        predictions = model.predict(keras_ds().map(lambda x, y: x), verbose=0)
        times["predict_seconds"].append(time.perf_counter() - started)
        forward = check_model(ModelCheckConfig(model=model, data=args["output"], batch_size=batch_size,
                                               features=tuple(FEATURES)))
        times["check_forward_seconds"].append(forward["examples"] / forward["examples_per_second"])
        started = time.perf_counter()
        for x, y in keras_ds():
            model.train_on_batch(x, y)
        times["train_on_batch_seconds"].append(time.perf_counter() - started)
        grads = check_model(ModelCheckConfig(model=model, data=args["output"], batch_size=batch_size,
                                             features=tuple(FEATURES), label="label_prob"))
        times["check_gradients_seconds"].append(grads["examples"] / grads["examples_per_second"])
    out = {k: min(v) for k, v in times.items()}
    out.update({"examples": forward["examples"], "predicted": int(predictions.shape[0]), "device": forward["device"],
                "forward_passed": forward["passed"], "gradients_passed": grads["passed"]})
    return out


def fixed_cost(args: dict) -> dict:
    """What a user waits for whatever the data, as commands (fresh processes, imports included), fastest of 3:
    an error in the flags, an error in the input header, `nanguard gate`, a 100-row run, and importing TFDV."""
    import subprocess
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq
    cli = [sys.executable, "-m", "pipeline.cli"]
    work = tempfile.mkdtemp(prefix="nanguard-fixed-")
    small = os.path.join(work, "small.parquet")
    pq.write_table(pa.table({"x": [float(i) for i in range(100)], "y": [i % 2 for i in range(100)]}), small)
    out = os.path.join(work, "out")
    commands = {
        "flag_error": cli + ["run", "--input", small, "--output", out, "--max-quarantine-fraction", "2"],
        "header_error": cli + ["run", "--input", small, "--output", out, "--label", "nope"],
        "run_100_rows": cli + ["run", "--input", small, "--output", out, "--label", "y:binary", "--quiet",
                               "--overwrite"],
        "gate": cli + ["gate", out],
        "import_tfdv": [sys.executable, "-c", "import tensorflow_data_validation"],
    }
    times = {k: [] for k in commands}
    for _ in range(3):
        for key, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
            times[key].append(time.perf_counter() - started)
    return {f"{k}_seconds": min(v) for k, v in times.items()} | {"seconds": 0.0}


CASES = {f.__name__: f for f in (nanguard, tfdv, expectations, baseline, read_shards, model_check, fixed_cost)}

if __name__ == "__main__":
    result = CASES[sys.argv[1]](json.loads(sys.argv[2]))
    print("RESULT " + json.dumps(result))
