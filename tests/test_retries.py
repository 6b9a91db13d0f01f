"""Retries: a bundle that fails part-way and is retried (as Dataflow, Flink and Spark do) neither duplicates nor
loses rows in the shards or the quarantine.

The local runners do not retry bundles, so the test plays the runner: attempt 1 stages files and dies before
its bundle commits (its outputs are discarded, its temp files stay behind); attempt 2, a fresh DoFn instance
as on another worker, processes the same bundle and commits; the finalize step sees only committed outputs.
"""
import glob
import hashlib
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf

from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder

from pipeline.stages.normalize import normalize_batch
from pipeline.stages.quarantine import FinalizeQuarantineFn, StageQuarantineFn
from pipeline.stages.shards import FinalizeShardFn, StageShardsFn, encode_batch
from transforms.columns import REASONS, ROW_INDEX, SOURCE_FILE
from transforms.example_encoding import OutputColumn
from transforms.normalize import Scaling

SHARDS = 3


def _batch(first, n, source="train.parquet"):
    x = np.arange(first, first + n, dtype=np.float64)
    return pa.RecordBatch.from_arrays([pa.array(x), pa.array([source] * n), pa.array(np.arange(first, first + n))],
                                      ["x", SOURCE_FILE, ROW_INDEX])



def test_a_retried_shard_bundle_writes_each_row_exactly_once(tmp_path):
    tmp, data = str(tmp_path / "_tmp"), str(tmp_path / "data")
    os.makedirs(tmp)
    os.makedirs(data)
    columns = (OutputColumn("x", "feature", "float32", Scaling("none", 0.0, 1.0)),)
    bundle = [_batch(0, 500), _batch(500, 300)]

    encoder = RecordBatchToExamplesEncoder()
    encoded = [encode_batch(normalize_batch(b, columns), SHARDS, encoder) for b in bundle]

    failed = StageShardsFn(tmp, gzip=True)  # attempt 1: stages the first batch, then the worker dies
    failed.setup()
    failed.start_bundle()
    failed.process(encoded[0])
    failed.teardown()  # queued writes finish; the bundle never commits and its gzip members stay unfinished
    left_behind = glob.glob(os.path.join(tmp, "*"))
    assert left_behind  # partial temp files of the failed attempt exist

    retry = StageShardsFn(tmp, gzip=True)  # attempt 2 on a fresh instance: the whole bundle, committed
    retry.setup()
    retry.start_bundle()
    for e in encoded:
        retry.process(e)
    staged = [o.value for o in retry.finish_bundle()]  # WindowedValue((shard, (path, rows, sha256)))

    by_shard = {k: [] for k in range(SHARDS)}
    for shard, entry in staged:
        by_shard[shard].append(entry)
    finalize = FinalizeShardFn(data, os.path.join(os.path.dirname(data), "index"), SHARDS, gzip=True)
    written = [next(finalize.process((k, {"all": [None], "staged": v}))) for k, v in by_shard.items()]
    assert sum(w["rows"] for w in written) == 800
    values = []
    for w in written:
        path = os.path.join(str(tmp_path), w["path"])
        shard_values = [tf.train.Example.FromString(r.numpy()).features.feature["x"].float_list.value[0]
                        for r in tf.data.TFRecordDataset(path, "GZIP")]
        index = pq.read_table(os.path.join(str(tmp_path), w["index"])).column("__row_index").to_pylist()
        assert index == shard_values  # the index names each record's input row, the retried bundle's only
        values += shard_values
    assert sorted(values) == list(range(800))  # every row once: none lost, none from the failed attempt
    assert all(os.path.exists(p) for p in left_behind)  # swept with _tmp when the run publishes


def test_a_retried_quarantine_bundle_writes_each_row_exactly_once(tmp_path):
    tmp, out = str(tmp_path / "_tmp"), str(tmp_path / "quarantine")
    os.makedirs(tmp)
    os.makedirs(out)
    bad = _batch(0, 40)
    bad = pa.RecordBatch.from_arrays(bad.columns + [pa.array([["nan:x"]] * 40, pa.list_(pa.string()))],
                                     bad.schema.names + [REASONS])

    failed = StageQuarantineFn(tmp)
    failed.start_bundle()
    failed.process(bad)
    failed._writer[0].close()
    failed._writer[1].close()  # died before finish_bundle: nothing committed

    retry = StageQuarantineFn(tmp)
    retry.start_bundle()
    retry.process(bad)
    staged = [o.value for o in retry.finish_bundle()]
    result = next(FinalizeQuarantineFn(out, bad.schema).process((0, {"all": [None],
                                                                       "staged": [e for _, e in staged]})))
    table = pq.read_table(os.path.join(str(tmp_path), result["path"]))
    assert result["rows"] == table.num_rows == 40
    assert sorted(table.column(ROW_INDEX).to_pylist()) == list(range(40))


def test_a_shard_of_one_temp_file_is_renamed_with_the_hash_of_its_bytes_and_a_retried_finalize_agrees(tmp_path):
    tmp, data = str(tmp_path / "_tmp"), str(tmp_path / "data")
    os.makedirs(tmp)
    os.makedirs(data)
    columns = (OutputColumn("x", "feature", "float32", Scaling("none", 0.0, 1.0)),)
    encoded = encode_batch(normalize_batch(_batch(0, 400), columns), 1, RecordBatchToExamplesEncoder())
    stage = StageShardsFn(tmp, gzip=True)
    stage.setup()
    stage.start_bundle()
    stage.process(encoded)
    [(shard, entry)] = [o.value for o in stage.finish_bundle()]
    stage.teardown()
    shutil.copy(entry[0] + ".ids", os.path.join(tmp, "keep.ids"))  # to restore what the first attempt deletes
    with open(entry[0], "rb") as f:
        staged_bytes = f.read()
    os.rmdir(data)  # the data directory need not exist yet: the rename makes it
    finalize = FinalizeShardFn(data, str(tmp_path / "index"), 1, gzip=True)
    first = next(finalize.process((shard, {"all": [None], "staged": [entry]})))
    path = os.path.join(str(tmp_path), first["path"])
    with open(path, "rb") as f:
        assert f.read() == staged_bytes and hashlib.sha256(staged_bytes).hexdigest() == first["sha256"]
    assert not os.path.exists(entry[0])  # renamed, not copied
    # A retried step after the rename (the attempt died before it finished): the shard is already in place.
    with open(entry[0] + ".ids", "wb") as f, open(os.path.join(tmp, "keep.ids"), "rb") as kept:
        f.write(kept.read())
    again = next(finalize.process((shard, {"all": [None], "staged": [entry]})))
    assert again == first
    assert sorted(tf.train.Example.FromString(r.numpy()).features.feature["x"].float_list.value[0]
                  for r in tf.data.TFRecordDataset(path, "GZIP")) == list(range(400))


def test_the_shard_index_is_written_in_row_groups_with_every_record_in_order(tmp_path, monkeypatch):
    import pipeline.stages.shards as shards
    monkeypatch.setattr(shards, "INDEX_ROW_GROUP", 700)  # a shard of 2,000 records: three row groups
    tmp, data = str(tmp_path / "_tmp"), str(tmp_path / "data")
    os.makedirs(tmp)
    os.makedirs(data)
    columns = (OutputColumn("x", "feature", "float32", Scaling("none", 0.0, 1.0)),)
    stage = StageShardsFn(tmp, gzip=True)
    stage.setup()
    stage.start_bundle()
    for first, source in ((0, "/data/2026-11-28/trips-a.csv"), (1_000, "/data/2026-11-28/trips-b.csv")):
        for part in range(0, 1_000, 250):  # many small sidecar chunks, two source files
            stage.process(encode_batch(normalize_batch(_batch(first + part, 250, source), columns), 1,
                                       RecordBatchToExamplesEncoder()))
    [(shard, entry)] = [o.value for o in stage.finish_bundle()]
    stage.teardown()
    finalize = FinalizeShardFn(data, str(tmp_path / "index"), 1, gzip=True)
    written = next(finalize.process((shard, {"all": [None], "staged": [entry]})))
    index_file = pq.ParquetFile(os.path.join(str(tmp_path), written["index"]))
    assert index_file.num_row_groups == 3 and index_file.schema_arrow.field("__source_file").type == pa.string()
    index = index_file.read()
    records = [tf.train.Example.FromString(r.numpy()).features.feature["x"].float_list.value[0]
               for r in tf.data.TFRecordDataset(os.path.join(str(tmp_path), written["path"]), "GZIP")]
    assert index.column("__row_index").to_pylist() == records == list(range(2_000))
    assert index.column("__source_file").to_pylist() == (["/data/2026-11-28/trips-a.csv"] * 1_000
                                                         + ["/data/2026-11-28/trips-b.csv"] * 1_000)

    empty = FinalizeShardFn(str(tmp_path / "data2"), str(tmp_path / "index2"), 1, gzip=True)
    nothing = next(empty.process((0, {"all": [None], "staged": []})))
    table = pq.read_table(os.path.join(str(tmp_path), nothing["index"].replace("index/", "index2/")))
    assert table.num_rows == 0 and table.schema.names == ["__source_file", "__row_index"]
