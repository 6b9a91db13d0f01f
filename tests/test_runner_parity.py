"""Runner parity: the in-process DirectRunner, the multi-process DirectRunner and the PortableRunner (embedded
job server, LOOPBACK workers) give the same counts, the same report (timings and hashes of row order aside)
and the same multiset of examples and quarantined rows."""
import copy
import glob
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from pipeline.demo_data import LABELS, make_table, write_table
from pipeline.runner import run

pytestmark = pytest.mark.slow

RUNNERS = {
    "direct": (),
    "multiprocess": ("--direct_num_workers=2", "--direct_running_mode=multi_processing"),
    "portable": ("--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"),
}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    base = tmp_path_factory.mktemp("parity")
    planted = make_table(30_000, faults_per_kind=3, seed=21)
    srcs = []
    for i in range(3):  # several files, so bundles really are spread
        path = str(base / f"part-{i}.csv")
        write_table(planted.table.slice(i * 10_000, 10_000), path, "csv")
        srcs.append(path)
    results = {}
    for name, beam_args in RUNNERS.items():
        out = str(base / name)
        report = run(inputs=srcs, output=out, labels=list(LABELS), num_shards=3, beam_args=beam_args)
        results[name] = (out, report)
    return results


def _comparable(report):
    r = copy.deepcopy(report)
    r.pop("run")
    for f in r["outputs"]["shards"] + r["outputs"]["quarantine"]:
        f.pop("sha256")  # the bytes depend on row order within a shard; the rows do not (below)
    # TFDV's statistics merge floating sums in the order bundles arrive: equal counts, last-bit differences
    for name in ("stats/raw.pb", "stats/clean.pb"):
        r["outputs"]["checksums"].pop(name)
    return r


def _examples(out):
    spec = {k: tf.io.FixedLenFeature([], tf.float32) for k in ("f0", "f1", "f2", "f3", "unscaled")}
    spec["label_class"] = tf.io.FixedLenFeature([], tf.int64)
    files = sorted(glob.glob(os.path.join(out, "data", "*.tfrecord.gz")))
    per_shard = []
    for f in files:
        rows = [tf.io.parse_example(b, spec) for b in tf.data.TFRecordDataset(f, "GZIP").batch(100_000)]
        table = np.stack([np.concatenate([r[k].numpy().astype(np.float64) for r in rows]) for k in spec], axis=1)
        per_shard.append(table[np.lexsort(table.T[::-1])])
    return per_shard


def test_reports_are_identical_across_runners(outputs):
    reference = _comparable(outputs["direct"][1])
    assert reference["counts"]["quarantined_rows"] > 0
    for name in ("multiprocess", "portable"):
        assert _comparable(outputs[name][1]) == reference, name


def test_every_shard_holds_the_same_examples_on_every_runner(outputs):
    reference = _examples(outputs["direct"][0])
    for name in ("multiprocess", "portable"):
        got = _examples(outputs[name][0])
        assert len(got) == len(reference)
        for a, b in zip(got, reference):
            np.testing.assert_array_equal(a, b)


def test_the_same_rows_are_quarantined_with_the_same_reasons(outputs):
    def rows(out):
        t = pq.read_table(glob.glob(os.path.join(out, "quarantine", "*.parquet"))[0])
        return sorted(zip(t.column("__source_file").to_pylist(), t.column("__row_index").to_pylist(),
                          map(tuple, t.column("__reasons").to_pylist())))
    reference = rows(outputs["direct"][0])
    for name in ("multiprocess", "portable"):
        got = rows(outputs[name][0])
        assert got == reference, name
