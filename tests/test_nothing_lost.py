"""Nothing lost: on random tables (NaN, +/-Inf, nulls, subnormals, values beyond float32, invalid labels) the
pipeline accounts for every row: clean rows are all finite and in the shards, and every other row is in the
quarantine verbatim with exactly the reasons an independent oracle gives."""
import glob
import math
import os
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.runner import run

pytestmark = pytest.mark.slow
FEATURES = ("f0", "f1")
FLOAT32_MAX = float(np.finfo(np.float32).max)

feature_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),  # includes subnormals and values beyond float32
    st.none(),
    st.sampled_from([0.0, 1.0, -2.5, 5e-324, 1e30, 1e39, -1e300, math.nan, math.inf, -math.inf]),
)
label_values = st.one_of(st.floats(0.0, 1.0), st.none(), st.sampled_from([2.0, -0.5, math.nan, math.inf]))
rows = st.lists(st.tuples(feature_values, feature_values, label_values), min_size=1, max_size=40)


def expected_reasons(row, all_null=frozenset()) -> set:
    """all_null: features null in every row, a column-level finding (left out of the shards), no row's fault."""
    out = set()
    for name, v in zip(FEATURES, row[:2]):
        if v is None:
            if name not in all_null:
                out.add(f"missing:{name}")
        elif math.isnan(v):
            out.add(f"nan:{name}")
        elif math.isinf(v):
            out.add(f"{'pos' if v > 0 else 'neg'}_inf:{name}")
        elif abs(v) > FLOAT32_MAX:
            out.add(f"float32_overflow:{name}")
    p = row[2]
    if p is None:
        out |= {"missing:p", "label_probability:p"}
    elif math.isnan(p):
        out |= {"nan:p", "label_probability:p"}
    elif math.isinf(p):
        out |= {"pos_inf:p", "label_probability:p"}
    elif not 0.0 <= p <= 1.0:
        out.add("label_probability:p")
    return out


def same(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and
                                        (a == b or (math.isnan(a) and math.isnan(b))))


@settings(max_examples=int(os.environ.get("NANGUARD_PROPERTY_EXAMPLES", "10")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows)
def test_every_row_is_clean_or_quarantined_verbatim_with_its_reasons(table_rows):
    with tempfile.TemporaryDirectory() as d:
        cols = list(zip(*table_rows))
        src = os.path.join(d, "t.parquet")
        pq.write_table(pa.table({"f0": pa.array(cols[0], pa.float64()), "f1": pa.array(cols[1], pa.float64()),
                                 "p": pa.array(cols[2], pa.float64())}), src)
        out = os.path.join(d, "out")
        report = run(inputs=[src], output=out, labels=["p:probability"], extreme_action="none", num_shards=2)
        c = report["counts"]
        assert c["input_rows"] == len(table_rows) == c["clean_rows"] + c["quarantined_rows"]
        assert all(report["reconciliation"].values())

        q = pq.read_table(glob.glob(os.path.join(out, "quarantine", "*.parquet"))[0])
        quarantined = {}
        for i, reasons in zip(q.column("__row_index").to_pylist(), q.column("__reasons").to_pylist()):
            quarantined[i] = set(reasons)
            for j, name in enumerate(("f0", "f1", "p")):  # verbatim: NaN stays NaN, null stays null
                assert same(q.column(name)[len(quarantined) - 1].as_py(), table_rows[i][j]), (i, name)
        all_null = frozenset(n for n, col in zip(FEATURES, cols) if all(v is None for v in col))
        assert set(report["dropped_columns"]) == all_null
        for i, row in enumerate(table_rows):
            want = expected_reasons(row, all_null)
            assert quarantined.get(i, set()) == want, (i, row)

        spec = {k: tf.io.FixedLenFeature([], tf.float32) for k in ("f0", "f1", "p") if k not in all_null}
        files = sorted(glob.glob(os.path.join(out, "data", "*.tfrecord.gz")))
        written = [tf.io.parse_example(b, spec) for b in tf.data.TFRecordDataset(files, "GZIP").batch(1000)]
        n = sum(int(b["p"].shape[0]) for b in written)
        assert n == c["clean_rows"]
        for b in written:
            for k in spec:
                assert np.isfinite(b[k].numpy()).all(), k
            assert ((b["p"].numpy() >= 0) & (b["p"].numpy() <= 1)).all()
