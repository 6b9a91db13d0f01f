"""Pure kernels: checks, labels, profile (merge paths), sketch, normalization, text parsing, sharding."""
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from transforms import (Between, FitsDtype, InSet, LabelRule, LabelSpec, NotNull, PresentAndFinite,
                        ProfileAccumulator, QuantileSketch, check_batch, extreme_bounds, fit, shard_ids)
from transforms.columns import BatchView, to_list_array
from transforms.text_values import infer_kind, parse_number_lists, parse_numbers

F32_MAX = float(np.finfo(np.float32).max)
nasty_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-310, F32_MAX, -F32_MAX, 3.5e38, 1e308, -1e308, 1e30]))
columns = hnp.arrays(np.float64, st.integers(0, 200), elements=nasty_floats)
missing_masks = st.integers(0, 2**31)


def batch_of(values, missing=None):
    return pa.RecordBatch.from_arrays([pa.array(values, mask=missing)], ["x"])


@given(columns, missing_masks)
def test_present_and_finite_flags_exactly_missing_nan_and_inf(values, seed):
    missing = np.random.default_rng(seed).random(values.size) < 0.2
    reasons = dict(PresentAndFinite("x").evaluate(BatchView(batch_of(values, missing))))
    assert np.array_equal(reasons["missing:x"], missing)
    assert np.array_equal(reasons["nan:x"], np.isnan(values) & ~missing)
    assert np.array_equal(reasons["pos_inf:x"], (values == np.inf) & ~missing)
    assert np.array_equal(reasons["neg_inf:x"], (values == -np.inf) & ~missing)


@given(columns)
def test_fits_float32_matches_a_float32_cast(values):
    (_, mask), = FitsDtype("x", "float32").evaluate(BatchView(batch_of(values)))
    with np.errstate(over="ignore"):
        overflows = np.isfinite(values) & ~np.isfinite(values.astype(np.float32)) & (np.abs(values) > F32_MAX)
    assert np.array_equal(mask, overflows)


@given(columns, missing_masks)
def test_check_batch_conserves_rows_and_keeps_values_verbatim(values, seed):
    missing = np.random.default_rng(seed).random(values.size) < 0.1
    out = check_batch(batch_of(values, missing), [PresentAndFinite("x"), FitsDtype("x")])
    assert out.clean.num_rows + out.quarantined.num_rows == values.size
    clean = out.clean.column(0).to_numpy(zero_copy_only=False)
    assert np.isfinite(clean).all() and (np.abs(clean) <= F32_MAX).all()
    bad = ~(~missing & np.isfinite(values) & (np.abs(values) <= F32_MAX))
    q = out.quarantined.column(0)
    np.testing.assert_array_equal(q.is_null().to_numpy(zero_copy_only=False), missing[bad])
    np.testing.assert_array_equal(q.to_numpy(zero_copy_only=False)[~missing[bad]], values[bad & ~missing])
    assert all(len(r) >= 1 for r in out.quarantined.column(1).to_pylist())


def test_every_reason_is_kept_in_rule_order():
    b = pa.RecordBatch.from_pydict({"x": [1e39, 1.0], "y": [2.0, 0.5]})
    out = check_batch(b, [FitsDtype("x"), LabelRule(LabelSpec("y", "probability"))])
    assert out.quarantined.column(2).to_pylist() == [["float32_overflow:x", "label_probability:y"]]
    assert out.reason_counts == {"float32_overflow:x": 1, "label_probability:y": 1}


def test_ge_value_rules_ignore_nulls_and_not_null_flags_nan():
    b = pa.RecordBatch.from_arrays([pa.array([1.0, np.nan, None, 5.0, 0.0], mask=np.array([0, 0, 1, 0, 0], bool))], ["x"])
    view = BatchView(b)
    (_, between), = Between("x", 0, 1, strict_min=True).evaluate(view)
    assert between.tolist() == [False, False, False, True, True]
    (_, null), = NotNull("x").evaluate(view)
    assert null.tolist() == [False, True, True, False, False]
    (_, in_set), = InSet("x", (0, 1)).evaluate(view)
    assert in_set.tolist() == [False, False, False, True, False]


@pytest.mark.parametrize("kind,values,bad", [
    ("binary", [0, 1, 2, 0.5, None], [False, False, True, True, True]),
    ("probability", [0, 1, 1.5, -0.1, float("nan")], [False, False, True, True, True]),
    ("class=3", [0, 2, 3, -1, 1.5], [False, False, True, True, True]),
])
def test_scalar_label_kinds(kind, values, bad):
    spec = LabelSpec.parse(f"y:{kind}")
    b = pa.RecordBatch.from_arrays([pa.array(values, pa.float64())], ["y"])
    (_, mask), = LabelRule(spec).evaluate(BatchView(b))
    assert mask.tolist() == bad


@pytest.mark.parametrize("kind,rows,bad", [
    ("onehot", [[0, 1, 0], [1, 1, 0], [0, 0, 0], [0.5, 0.5], None, []], [False, True, True, True, True, True]),
    ("probvec", [[0.2, 0.8], [0.5, 0.6], [-0.1, 1.1], [float("nan"), 1.0], [1.0]], [False, True, True, True, False]),
])
def test_vector_label_kinds(kind, rows, bad):
    b = pa.RecordBatch.from_arrays([pa.array(rows, pa.list_(pa.float64()))], ["y"])
    (_, mask), = LabelRule(LabelSpec("y", kind)).evaluate(BatchView(b))
    assert mask.tolist() == bad


def test_label_spec_errors_name_the_flag():
    with pytest.raises(ValueError, match="class=N"):
        LabelSpec.parse("y:class=x")
    with pytest.raises(ValueError, match="not one of"):
        LabelSpec.parse("y:softmax")


@given(st.lists(columns, min_size=1, max_size=5), st.integers(0, 4))
def test_profile_is_the_same_along_every_merge_path(parts, split):
    batches = [batch_of(p) for p in parts]
    sequential = ProfileAccumulator(("x",), True)
    for b in batches:
        sequential.add_batch(b)
    pieces = [ProfileAccumulator(("x",), True).add_batch(b) for b in batches]
    merged = pieces[0]
    for p in pieces[1:]:
        merged = merged.merge(p)
    tree = ProfileAccumulator(("x",), True)  # merge of an empty accumulator and uneven halves
    k = min(split, len(pieces))
    left, right = ProfileAccumulator(("x",), True), ProfileAccumulator(("x",), True)
    for p in pieces[:k]:
        left = left.merge(p)
    for p in pieces[k:]:
        right = right.merge(p)
    tree = tree.merge(right).merge(left)
    for acc in (merged, tree):
        a, s = acc.profiles["x"].summary(), sequential.profiles["x"].summary()
        for key in ("count", "missing", "nan", "pos_inf", "neg_inf", "finite", "min", "max", "q001", "median", "q999"):
            assert a.get(key) == s.get(key), key
        if s["mean"] is None:
            continue
        # Merged moments agree to rounding: the absolute error scales with the largest |value| summed,
        # so [-1e308, 1e308, 0...] may give a mean of ~1e291 on one path and 0.0 on another.
        scale = max(abs(s["min"]), abs(s["max"]))
        assert a["mean"] == pytest.approx(s["mean"], rel=1e-9, abs=1e-12 * scale)
        if math.isfinite(s["std"]) and s["std"] < 1e150:
            assert a["std"] == pytest.approx(s["std"], rel=1e-9, abs=1e-6 * scale)


offset_columns = st.tuples(st.sampled_from([0.0, 41.88, -87.63, 1.4e9, 2.0**52, -1e30]),
                           st.sampled_from([1e-9, 0.03, 1.0, 3e7, 1e200]), st.integers(0, 3000), st.integers(0, 2**31))


@given(offset_columns, columns)
def test_a_profile_without_its_sketch_answers_the_checks_and_the_fit_as_the_profile_does(col, nasty):
    """What the checks and the fit read (bulk quantiles, the median to impute, the summary) is the same from
    the copy that crosses to their steps without the sketch, on offset, heavy-tailed and non-finite data."""
    offset, scale, n, seed = col
    rng = np.random.default_rng(seed)
    values = np.concatenate([offset + scale * rng.standard_t(2, n), nasty])
    missing = rng.uniform(size=values.size) < 0.05
    full = ProfileAccumulator(("x",), True).add_batch(batch_of(values, missing))
    light = full.without_sketches()
    p, q = full.profiles["x"], light.profiles["x"]
    assert q.sketch is None and light.nbytes() <= full.nbytes()
    assert repr(q.bulk()) == repr(p.bulk()) and repr(q.summary()) == repr(p.summary())  # repr: NaN == NaN
    assert repr([q.statistic(s) for s in ("median", "mean")]) == repr([p.statistic(s) for s in ("median", "mean")])


def test_merging_with_an_empty_profile_gives_the_other_side_unchanged():
    acc = ProfileAccumulator(("x",), True).add_batch(batch_of(np.array([41.9, 41.8, np.nan])))
    empty = ProfileAccumulator(("x",), True)
    assert empty.merge(acc) is acc and acc.merge(empty) is acc
    assert empty.merge(empty).rows == 0


def test_profile_counts_exactly_and_keeps_nonfinite_out_of_moments():
    values = np.array([1.0, 2.0, 3.0, np.nan, np.inf, -np.inf, 0.0])
    acc = ProfileAccumulator(("x",), False).add_batch(batch_of(values, np.array([0, 0, 0, 0, 0, 0, 1], bool)))
    s = acc.profiles["x"].summary()
    assert (s["count"], s["missing"], s["nan"], s["pos_inf"], s["neg_inf"], s["finite"]) == (7, 1, 1, 1, 1, 3)
    assert (s["min"], s["max"], s["mean"]) == (1.0, 3.0, 2.0)
    assert s["std"] == pytest.approx(np.std([1.0, 2.0, 3.0]))


def _sourced(values, start=0):
    return pa.RecordBatch.from_arrays(
        [pa.array(values, pa.float64()), pa.array(["f"] * len(values)), pa.array(range(start, start + len(values)))],
        ["x", "__source_file", "__row_index"])


def test_clip_keeps_the_row_and_moves_the_value_to_the_nearest_allowed_one():
    rule = Between("x", 0.0, 10.0, strict_max=True, action="clip")
    out = check_batch(_sourced([-5.0, 5.0, 50.0, math.nan]), [rule])
    got = out.clean.column(0).to_pylist()
    assert out.quarantined.num_rows == 0 and got[:2] == [0.0, 5.0] and got[2] < 10.0 and math.isnan(got[3])
    assert got[2] == np.nextafter(10.0, 0) and out.repaired == {"clipped:x": 2}
    assert out.reason_counts == {"out_of_range:x": 2}  # still counted against the expectation


def test_impute_leaves_cells_missing_in_the_fit_pass_and_fills_them_in_the_write_pass():
    rule = PresentAndFinite("x", action="impute")
    batch = _sourced([1.0, math.inf, None, 3.0])
    fit_pass = check_batch(batch, [rule], impute=None)
    assert fit_pass.clean.column(0).to_pylist() == [1.0, None, None, 3.0] and fit_pass.quarantined.num_rows == 0
    write_pass = check_batch(batch, [rule], impute={"x": 2.0})
    assert write_pass.clean.column(0).to_pylist() == [1.0, 2.0, 2.0, 3.0] and write_pass.repaired == {"imputed:x": 2}
    nothing_clean = check_batch(batch, [rule], impute={"x": None})  # no clean value to impute from
    assert nothing_clean.clean.num_rows == 2 and nothing_clean.quarantined.num_rows == 2


def test_quarantine_wins_over_a_repair_and_the_quarantined_row_keeps_its_original_value():
    out = check_batch(_sourced([50.0, math.nan]), [Between("x", 0.0, 10.0, action="clip"), PresentAndFinite("x")])
    assert out.clean.column(0).to_pylist() == [10.0]
    assert math.isnan(out.quarantined.column(0)[0].as_py())


def test_samples_are_the_first_unexpected_values_with_their_row_keys_and_merge_in_input_order():
    import json

    from pipeline.stages.check import SumCountsFn
    from transforms.counts import RowCounts
    rule = Between("x", 0.0, 1.0)
    first = check_batch(_sourced([5.0] * 15 + [0.5], start=0), [rule], samples=20)
    second = check_batch(_sourced([7.0] * 10, start=16), [rule], samples=20)
    assert first.samples[0][0] == [["f", 0], 5.0] and len(first.samples[0]) == 15 and len(second.samples[0]) == 10
    fn = SumCountsFn()
    for order in ([first, second], [second, first]):
        accs = [fn.add_input(fn.create_accumulator(), RowCounts.of(o, [0])) for o in order]
        merged = fn.extract_output(fn.merge_accumulators(accs))
        assert (merged.rows, merged.clean_rows, merged.unexpected[0], merged.evaluated[0]) == (26, 1, 25, 26)
        assert [k for k, _ in merged.samples[0]] == [["f", i] for i in range(15)] + [["f", 16 + i] for i in range(5)]
        assert RowCounts.from_json(json.loads(json.dumps(merged.to_json()))) == merged  # the artifact round trip


def test_constant_column_gets_scale_one_and_zscores_to_zero():
    acc = ProfileAccumulator(("x",), False).add_batch(batch_of(np.full(10, 3.0)))
    s = fit(acc.profiles["x"], "zscore")
    assert s.constant and s.scale == 1.0
    assert (s.apply(np.full(4, 3.0)) == 0).all()
    m = fit(acc.profiles["x"], "minmax")
    assert m.constant and (m.apply(np.full(2, 3.0)) == 0).all()


def test_zscore_parameters_are_float32_representable():
    acc = ProfileAccumulator(("x",), False).add_batch(batch_of(np.random.default_rng(1).normal(3, 2, 1000)))
    s = fit(acc.profiles["x"], "zscore")
    assert float(np.float32(s.offset)) == s.offset and float(np.float32(s.scale)) == s.scale


def test_text_parsing_accepts_float_spellings_and_marks_unparseable():
    arr = pa.array(["1.5", "NaN", "nan", "inf", "-Infinity", "1e400", "", "  ", " 2 ", "abc", "1,5", None])
    values, bad = parse_numbers(arr, "float")
    v = values.to_pylist()
    assert v[0] == 1.5 and math.isnan(v[1]) and math.isnan(v[2]) and v[3] == math.inf and v[4] == -math.inf
    assert v[5] == math.inf and v[6] is None and v[7] is None and v[8] == 2.0 and v[11] is None
    assert bad.tolist() == [False] * 9 + [True, True, False]
    assert infer_kind(pa.array(["1", "2", None])) == "int"
    assert infer_kind(pa.array(["1", "2.5", "abc"] + ["3"] * 20)) == "float"
    assert infer_kind(pa.array(["a", "b", "1"])) == "string"
    lists, bad = parse_number_lists(pa.array(["0;1", "[0.2, 0.8]", "0.5 0.5", "x;1", None]))
    assert lists.to_pylist()[:3] == [[0, 1], [0.2, 0.8], [0.5, 0.5]] and bad.tolist() == [False] * 3 + [True, False]


def test_to_list_array_writes_missing_as_empty_null_lists():
    out = to_list_array(pa.array([1.0, None, 3.0]))
    assert out.to_pylist() == [[1.0], None, [3.0]]
    assert out.offsets.to_pylist() == [0, 1, 1, 2]


def test_shard_ids_are_deterministic_and_spread():
    rows = np.arange(100_000)
    a, b = shard_ids("train.csv", rows, 8), shard_ids("train.csv", rows, 8)
    assert np.array_equal(a, b)
    counts = np.bincount(a, minlength=8)
    assert counts.min() > 11_000 and counts.max() < 14_000


def test_profile_mean_of_values_near_the_float64_limit_does_not_overflow():
    acc = ProfileAccumulator(("x",), False)
    acc.add_batch(batch_of(np.array([1e308, 1e308, 0.0])))
    acc = acc.merge(ProfileAccumulator(("x",), False).add_batch(batch_of(np.array([-1e308]))))
    s = acc.profiles["x"].summary()
    assert s["mean"] == pytest.approx(1e308 / 4)
    assert s["std"] == math.inf  # m2 overflows float64; reported as +Inf, never NaN


int64s = st.one_of(st.integers(-5, 200), st.sampled_from([-(2 ** 63), 2 ** 63 - 1, 2 ** 35, -1]))
float_cells = st.one_of(st.none(), st.lists(nasty_floats, min_size=0, max_size=3))
int_cells = st.one_of(st.none(), st.lists(int64s, min_size=0, max_size=3))
# city names, the empty string, UTF-8 and a value longer than 127 bytes (a two-byte varint length)
texts = st.one_of(st.sampled_from(["Chicago", "Oak Park", "", "São Paulo", "Zürich", "x" * 130]),
                  st.text(max_size=12))
text_cells = st.one_of(st.none(), st.lists(texts.map(lambda t: t.encode("utf-8")), min_size=0, max_size=2))


def _tfrecords(blocks) -> list[bytes]:
    """The records in framed uint8 blocks, read back by tf.data (which checks their lengths and CRCs)."""
    import tempfile

    import tensorflow as tf
    with tempfile.NamedTemporaryFile(suffix=".tfrecord") as f:
        for block in blocks:
            f.write(block)
        f.flush()
        return [r.numpy() for r in tf.data.TFRecordDataset(f.name)]


@given(st.integers(1, 40).flatmap(lambda n: st.tuples(
    st.lists(float_cells, min_size=n, max_size=n), st.lists(int_cells, min_size=n, max_size=n),
    st.lists(st.one_of(st.none(), nasty_floats), min_size=n, max_size=n),
    st.lists(st.integers(0, 2), min_size=n, max_size=n), st.lists(text_cells, min_size=n, max_size=n),
    st.lists(st.one_of(st.none(), int64s), min_size=n, max_size=n),
    st.lists(nasty_floats, min_size=n, max_size=n))))
def test_vectorized_example_encoding_equals_tfx_bsl_and_frames_valid_tfrecords(cols):
    """Split by shard key, each key's blocks are valid TFRecords of exactly its rows, in layout-group order
    with rows ascending within a group, and each record equals tfx_bsl's encoding of its row."""
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    from transforms import tfrecord_encoding
    from transforms.tfrecord_encoding import encode_framed
    floats_, ints_, scalars, keys, texts_, counts, dense = cols
    # list columns, nullable scalars of each kind, and a scalar in every row (its values gathered, not indexed)
    batch = pa.RecordBatch.from_arrays(
        [pa.array(floats_, pa.list_(pa.float32())), pa.array(ints_, pa.list_(pa.int64())),
         to_list_array(pa.array(scalars, pa.float64()), pa.float32()), pa.array(texts_, pa.list_(pa.binary())),
         to_list_array(pa.array([t[0].decode() if t else None for t in texts_], pa.string()), pa.binary()),
         to_list_array(pa.array(counts, pa.int64()), pa.int64()),
         to_list_array(pa.array(dense, pa.float64()), pa.float32())],
        ["fl", "il", "sc", "tl", "city", "count", "dense"])
    keys = np.asarray(keys, dtype=np.int64)
    framed, keyed = encode_framed(batch), encode_framed(batch, keys)
    assert framed is not None
    tile_bytes, min_rows = tfrecord_encoding.TILE_BYTES, tfrecord_encoding.MIN_TILE_ROWS
    try:  # records assembled a few rows per tile come out the same as in one tile (with keys, parts end mid-tile)
        tfrecord_encoding.TILE_BYTES, tfrecord_encoding.MIN_TILE_ROWS = 64, 1
        tiled, keyed_tiled = encode_framed(batch), encode_framed(batch, keys)
    finally:
        tfrecord_encoding.TILE_BYTES, tfrecord_encoding.MIN_TILE_ROWS = tile_bytes, min_rows
    for one, other in ((tiled, framed), (keyed_tiled, keyed)):
        assert [(r.tolist(), [p.tobytes() for p in parts]) for r, _, parts in one._groups] == \
            [(r.tolist(), [p.tobytes() for p in parts]) for r, _, parts in other._groups]
    theirs = example_coder.RecordBatchToExamplesEncoder().encode(batch)
    canonical = (lambda b: tf.train.Example.FromString(b).SerializeToString(deterministic=True))  # NaN != NaN
    group_rows = [rows for rows, _, _ in framed._groups]
    assert sorted(np.concatenate(group_rows).tolist()) == list(range(batch.num_rows))
    # Without keys: every row is key 0, each group's rows ascending, its records those of tfx_bsl's rows.
    unkeyed_blocks, unkeyed_rows = framed.split(1)
    assert unkeyed_rows[0].tolist() == np.concatenate(group_rows).tolist()
    for record, row in zip(_tfrecords(unkeyed_blocks[0]), unkeyed_rows[0]):
        assert canonical(record) == canonical(theirs[row])
    # With keys, split hands out the records themselves, not a sorted copy, and each key's records own their
    # memory: a shard's records are freed once written, whatever the other shards'.
    blocks_by_key, rows_by_key = keyed.split(3)
    encoded = [part for _, _, parts in keyed._groups for part in parts]
    for key, blocks in enumerate(blocks_by_key):
        ours = _tfrecords(blocks)
        expected = [row for rows in group_rows for row in rows if keys[row] == key]
        assert rows_by_key[key].tolist() == expected  # what the shard index lists
        assert len(ours) == len(expected)
        for record, row in zip(ours, expected):
            assert canonical(record) == canonical(theirs[row])
        assert b"".join(b.tobytes() for b in blocks) == b"".join(
            parts[0][keys[rows] == key].tobytes() for rows, _, parts in framed._groups)  # the same bytes
        assert all(b.base is None and any(b is part for part in encoded) for b in blocks)


def test_records_encoded_in_shard_order_hold_their_own_rows_values():
    """One layout group holding every row (a value in each column of each row: scalar features, the common
    table) is encoded from the columns' values as they lie while its rows are in batch order; encoded in
    shard-key order the rows are permuted, and each record must still hold its own row's values (as tfx_bsl
    encodes them)."""
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    from transforms.tfrecord_encoding import encode_framed
    rng = np.random.default_rng(5)
    n = 300
    batch = pa.RecordBatch.from_arrays(
        [to_list_array(pa.array(41.88 + 0.03 * rng.standard_normal(n)), pa.float32()),
         to_list_array(pa.array(rng.integers(2**49, 2**53, n)), pa.int64())], ["latitude", "trip_id"])  # 8-byte varints
    keys = rng.integers(0, 4, n)
    framed = encode_framed(batch, keys)
    assert len(framed._groups) == 1
    theirs = example_coder.RecordBatchToExamplesEncoder().encode(batch)
    blocks, rows = framed.split(4)
    for key in range(4):
        records = _tfrecords(blocks[key])
        assert rows[key].tolist() == np.nonzero(keys == key)[0].tolist()
        canonical = (lambda b: tf.train.Example.FromString(b).SerializeToString(deterministic=True))
        assert [canonical(r) for r in records] == [canonical(theirs[r]) for r in rows[key]]


def test_encoding_falls_back_for_free_text_of_many_lengths_and_encodes_categories():
    from transforms.tfrecord_encoding import MAX_GROUPS, encode_framed
    free = [[b"x" * i] for i in range(MAX_GROUPS + 1)]  # a layout per row: cheaper for tfx_bsl's per-row encoder
    assert encode_framed(pa.RecordBatch.from_arrays([pa.array(free, pa.list_(pa.binary()))], ["s"])) is None
    cities = [[c] for c in [b"Chicago", b"Evanston", b"Oak Park"] * 1000]
    assert encode_framed(pa.RecordBatch.from_arrays([pa.array(cities, pa.list_(pa.binary()))], ["s"])) is not None


def test_minmax_of_float32_data_spanning_more_than_float32_max_scales_safely():
    from transforms.normalize import fit
    from transforms.profile import ProfileAccumulator
    values = np.array([-3e38, -1.5e38, 0.0, 2e38, 3e38])  # every value fits float32; the range does not
    acc = ProfileAccumulator(("x",), with_sketch=False)
    acc.add_batch(pa.RecordBatch.from_arrays([pa.array(values)], ["x"]))
    scaling = fit(acc.profiles["x"], "minmax")
    assert not scaling.constant and scaling.scale == 6e38
    written = scaling.apply(values)
    assert np.isfinite(written).all() and abs(written.min()) < 1e-6 and abs(written.max() - 1) < 1e-6


def test_text_value_counts_merge_the_same_on_every_path_and_stop_past_the_limit():
    from transforms.profile import DISTINCT_LIMIT
    cities = pa.array(["Chicago", None, "Evanston", "Chicago", "Oak Park", "Chicago"] * 50)
    batches = [pa.RecordBatch.from_arrays([cities.slice(i, 37)], ["city"]) for i in range(0, len(cities), 37)]
    whole = ProfileAccumulator(("city",), False)
    for b in batches:
        whole.add_batch(b)
    parts = [ProfileAccumulator(("city",), False).add_batch(b) for b in batches]
    merged = parts[-1]
    for p in reversed(parts[:-1]):
        merged = p.merge(merged)
    for acc in (whole, merged, ProfileAccumulator(("city",), False).merge(whole)):
        s = acc.summaries()["city"]
        assert s == {"count": 300, "missing": 50, "distinct": 3,
                     "top": [["Chicago", 150], ["Evanston", 50], ["Oak Park", 50]]}
    many = pa.RecordBatch.from_arrays([pa.array([f"id-{i}" for i in range(DISTINCT_LIMIT + 1)])], ["city"])
    half = [many.slice(0, DISTINCT_LIMIT // 2), many.slice(DISTINCT_LIMIT // 2)]
    a, b = (ProfileAccumulator(("city",), False).add_batch(x) for x in half)
    assert a.profiles["city"].counts is not None and a.merge(b).summaries()["city"]["distinct"] is None


def test_row_slices_cover_the_batch_in_order_within_the_budget():
    from transforms.tfrecord_encoding import FEATURE_OVERHEAD, row_slices
    rng = np.random.default_rng(11)
    n = 10_000
    batch = pa.RecordBatch.from_arrays(
        [to_list_array(pa.array(rng.standard_normal(n)), pa.float32()),
         to_list_array(pa.array(np.where(rng.uniform(size=n) < 0.05, None, 1.4e9 + rng.integers(0, 86400, n))),
                       pa.int64()),
         to_list_array(pa.array(rng.choice(["Near West Side", "Loop", "O'Hare"], n)), pa.binary())],
        ["fare_z", "trip_start", "community"])
    per_row = batch.nbytes / n + sum(len(c) + FEATURE_OVERHEAD for c in batch.schema.names)
    assert row_slices(batch) == [(0, n)]  # a narrow batch: encoded whole
    slices = row_slices(batch, budget=100_000)
    assert slices[0][0] == 0 and slices[-1][1] == n
    assert n * per_row / 100_000 <= len(slices) <= 2 * n * per_row / 100_000
    assert all(stop == start for (_, stop), (start, _) in zip(slices, slices[1:]))  # contiguous, in order
    assert all((stop - start) * per_row <= 100_000 for start, stop in slices)
    assert row_slices(batch, budget=1) == [(i, i + 1) for i in range(n)]  # a record over the budget: alone
    assert row_slices(batch.slice(0, 0)) == [(0, 0)]
