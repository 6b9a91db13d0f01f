"""The written values' own check: an exact profile of what the shards hold, and the findings that fail the gate."""
import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline.report.written import written_findings
from pipeline.stages.written import MergeWrittenFn, WrittenProfile
from transforms.columns import to_list_array
from transforms.written_values import WrittenValues

# float32 as written: NaN, +-Inf, tiny, the largest finite values and offset values (epoch seconds, latitudes).
# (Subnormals are left to Hypothesis's own choice: TensorFlow's import may set flush-to-zero in this process.)
_EDGES = [float(np.float32(x)) for x in (1.4e9, 41.9, -87.6, 3.4e38, -3.4e38, np.finfo(np.float32).tiny)]
VALUES = hnp.arrays(np.float32, st.integers(0, 40), elements=st.one_of(
    st.floats(width=32, allow_subnormal=False), st.sampled_from(_EDGES)))


def _written(values: np.ndarray, nulls: int = 0) -> pa.RecordBatch:
    arr = pa.array(list(values) + [None] * nulls, pa.float32())
    ids = pa.array(np.arange(len(arr)), pa.int64())
    return pa.RecordBatch.from_arrays([to_list_array(arr), to_list_array(ids)], names=["x", "id"])


def _expected(values: np.ndarray) -> dict:
    finite = values[np.isfinite(values)].astype(np.float64)
    return {"values": values.size, "nan": int(np.isnan(values).sum()), "posinf": int(np.isposinf(values).sum()),
            "neginf": int(np.isneginf(values).sum()), "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None}


@settings(max_examples=200, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=5), st.randoms())
def test_profile_is_exact_whatever_the_split_and_merge_order(parts, rnd):
    whole = np.concatenate(parts)
    partials = [WrittenValues().add_batch(_written(p, nulls=1)) for p in parts]
    rnd.shuffle(partials)
    fn = MergeWrittenFn()
    merged = fn.extract_output(fn.merge_accumulators([fn.merge_accumulators(partials[:1]),
                                                      fn.merge_accumulators(partials[1:])]))
    out = merged.to_json()
    assert out["rows"] == whole.size + len(parts)  # null rows are rows, and hold no value
    assert out["columns"]["x"] == _expected(whole)
    assert "id" not in out["columns"]  # int64 columns hold no NaN to look for


def test_profile_in_a_pipeline():
    batches = [_written(np.array([1.0, np.inf, 2.5], np.float32)), _written(np.array([-4.0, np.nan], np.float32))]
    with TestPipeline() as p:
        out = (p | beam.Create(batches, reshuffle=False).with_output_types(pa.RecordBatch)
               | WrittenProfile() | beam.Map(lambda w: w.to_json()["columns"]["x"]))
        assert_that(out, equal_to([{"values": 5, "nan": 1, "posinf": 1, "neginf": 0, "min": -4.0, "max": 2.5}]))


def _outputs(method="zscore", offset=41.9, scale=0.05):
    norm = {"method": method, "offset": offset, "scale": scale} if method != "none" else None
    return [{"name": "lat", "dtype": "float32", "normalization": norm}, {"name": "id", "dtype": "int64",
                                                                         "normalization": None}]


CLEAN = {"columns": {"lat": {"min": 41.6, "max": 42.1}, "id": {"min": 1, "max": 2**53}}}


def _col(lo, hi, nan=0, posinf=0, neginf=0):
    return {"columns": {"lat": {"values": 100, "nan": nan, "posinf": posinf, "neginf": neginf, "min": lo, "max": hi}}}


def test_values_inside_the_normalized_clean_range_pass():
    lo, hi = (41.6 - 41.9) / 0.05, (42.1 - 41.9) / 0.05
    assert written_findings(_col(lo, hi), _outputs(), CLEAN, {}) == []


def test_non_finite_and_out_of_range_values_are_findings():
    found = written_findings(_col(-6.0, 40.0, nan=2, posinf=1), _outputs(), CLEAN, {})
    assert [f["feature"] for f in found] == ["lat", "lat"]
    assert "3 non-finite values written (NaN 2, +Inf 1, -Inf 0)" in found[0]["description"]
    assert "outside" in found[1]["description"] and "[-6, 40]" in found[1]["description"]


def test_a_constant_fill_widens_the_range():
    outputs = _outputs(method="none")
    assert written_findings(_col(0.0, 42.1), outputs, CLEAN, {})  # 0.0 is below the clean min 41.6
    assert written_findings(_col(0.0, 42.1), outputs, CLEAN, {"lat": 0.0}) == []  # --missing lat=impute:0


def test_float16_overflow_only_under_mixed_precision():
    outputs = _outputs(method="none")
    clean = {"columns": {"lat": {"min": 1.4e9, "max": 1.5e9}}}
    assert written_findings(_col(1.4e9, 1.5e9), outputs, clean, {}) == []
    found = written_findings(_col(1.4e9, 1.5e9), outputs, clean, {}, mixed_precision=True)
    assert len(found) == 1 and "float16" in found[0]["description"] and "--mixed-precision" in found[0]["description"]
