"""The quantile sketch: rank error against numpy on real-looking columns, order independence, exactness."""
import json
import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from realistic import columns
from transforms.quantile_sketch import BUDGET, QuantileSketch

QS = [0.0, 0.001, 0.01, 0.25, 0.5, 0.75, 0.99, 0.999, 1.0]


def rank_error(sorted_values: np.ndarray, q: float, got: float) -> float:
    """How far (as a share of n) the rank of `got` is from the lower q-quantile's rank."""
    n = sorted_values.size
    want = math.floor(q * (n - 1))
    first, last = np.searchsorted(sorted_values, got, "left"), np.searchsorted(sorted_values, got, "right") - 1
    return max(0, first - want, want - last) / n


def sketch_of(parts) -> QuantileSketch:
    out = QuantileSketch()
    for p in parts:
        s = QuantileSketch()
        s.add(p)
        out = s.merge(out)
    return out


@pytest.mark.parametrize("n", [10_000, 1_000_000])
@pytest.mark.parametrize("name", sorted(columns(1)))
def test_quantiles_within_a_tenth_of_a_percent_of_rank_on_real_looking_columns(name, n):
    values = columns(n, seed=n)[name]
    whole = QuantileSketch()
    for chunk in np.array_split(values, max(1, n // 65_536)):  # the way batches arrive
        whole.add(chunk)
    exact = np.sort(values)
    got = whole.quantiles(QS)
    assert [rank_error(exact, q, v) for q, v in zip(QS, got)] == pytest.approx([0] * len(QS), abs=0.001)
    assert got[0] == exact[0] and got[-1] == exact[-1] and got == sorted(got)
    assert whole.rank_error_bound() <= 0.0011
    # a different split, merged in another order, holds the same state and gives the same bits
    other = sketch_of(np.array_split(values[::-1], 7))
    assert other.to_dict() == whole.to_dict() and other.quantiles(QS) == got


def test_the_median_of_a_latitude_column_is_not_the_column_minimum():
    # the relative-error sketch this replaced answered 41.682 for q0.1%, the median and q99.9% alike
    values = 41.88 + 0.03 * np.random.default_rng(3).standard_normal(100_000)
    s = QuantileSketch()
    s.add(values)
    lo, med, hi = s.quantiles([0.001, 0.5, 0.999])
    assert lo == pytest.approx(np.quantile(values, 0.001), abs=2e-4)
    assert med == pytest.approx(np.median(values), abs=1e-4)
    assert hi == pytest.approx(np.quantile(values, 0.999), abs=2e-4)


_OFFSETS = st.sampled_from([0.0, 41.88, -87.63, 1.4e9, 2.0 ** 53, -1e300, 1e-300])
_SCALES = st.sampled_from([1e-308, 1e-6, 0.03, 1.0, 3e7, 1e12, 1e300])


@given(hnp.arrays(np.float64, st.integers(1, 5000),
                  elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=True)),
       _OFFSETS, _SCALES, st.integers(1, 6), st.integers(0, 10), st.sampled_from([0, 9_000, 30_000]))
def test_any_split_and_merge_order_gives_the_same_answers(raw, offset, scale, parts, dup, more):
    # `more` distinct values push the sketch past BUDGET, into joined buckets
    noise = np.random.default_rng(dup).standard_normal(more) * 100
    with np.errstate(over="ignore", invalid="ignore"):
        values = offset + scale * np.concatenate([raw] * (1 + dup % 3) + [noise])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return
    whole = sketch_of([values])
    shuffled = np.random.default_rng(dup).permutation(values)
    merged = sketch_of(np.array_split(shuffled, parts))
    assert merged.to_dict() == whole.to_dict() and merged.quantiles(QS) == whole.quantiles(QS)
    got = whole.quantiles(QS)
    assert got == sorted(got) and got[0] == values.min() and got[-1] == values.max()
    if np.unique(values).size <= BUDGET:  # few distinct values: exact
        exact = np.sort(values)
        assert got == [exact[math.floor(q * (values.size - 1))] for q in QS]
    else:
        assert not whole.exact and whole.keys.size <= BUDGET
    back = QuantileSketch.from_dict(json.loads(json.dumps(whole.to_dict())))
    assert back.shift == whole.shift and back.quantiles(QS) == got
    assert np.array_equal(back.keys, whole.keys) and np.array_equal(back.counts, whole.counts)
    assert back.keys.dtype == whole.keys.dtype == back.counts.dtype == np.int64
    again = pickle.loads(pickle.dumps(whole, protocol=pickle.HIGHEST_PROTOCOL))  # how profiles cross steps
    assert again.to_dict() == whole.to_dict() and again.quantiles(QS) == got
    assert again.keys.dtype == again.counts.dtype == np.int64


@pytest.mark.parametrize("name", sorted(columns(1)))
def test_a_sketch_pickles_to_a_fraction_of_its_arrays(name):
    """A profile crosses between pipeline steps pickled: a 5,000-column one was 482 MB as int64 arrays, copied at
    every crossing. Neighbouring buckets are close and counts small, so the pickle keeps narrow steps instead."""
    sketch = sketch_of([columns(100_000)[name]])
    data = pickle.dumps(sketch, protocol=pickle.HIGHEST_PROTOCOL)
    assert not sketch.exact and len(data) < sketch.nbytes / 3
    back = pickle.loads(data)
    assert np.array_equal(back.keys, sketch.keys) and np.array_equal(back.counts, sketch.counts)


def test_histogram_counts_every_value_and_stays_inside_the_data_range():
    values = columns(200_000)["epoch_seconds"]
    s = QuantileSketch()
    s.add(values)
    lo, hi = np.quantile(values, [0.001, 0.999])
    edges = np.linspace(lo, hi, 41)
    below, counts, above = s.histogram(edges)
    want = np.histogram(values, edges)[0]
    assert below + counts.sum() + above == values.size
    assert np.abs(counts - want).max() <= 0.001 * values.size
    assert abs(below - (values < lo).sum()) <= 0.001 * values.size


@given(st.lists(st.sampled_from([0.0, 1.0, 2.0, 7.0, -1.0, 41.88, 1.4e9, 2.0 ** 53, -87.63, 5e-324]),
                min_size=1, max_size=12, unique=True),
       _OFFSETS, st.integers(1, 8), st.integers(0, 2 ** 32 - 1), st.booleans())
def test_adding_batches_of_few_distinct_values_one_after_another_is_adding_them_at_once(
        levels, offset, batches, seed, known_bounds):
    """Classes, flags, one-hot blocks and codes: batches whose values all have a bucket already are counted
    into them without a sort; the sketch must be the one built from all the values at once, also when a later
    batch brings a new value, or the sketch has collapsed (more distinct values than BUDGET)."""
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore", invalid="ignore"):
        parts = [offset + rng.choice(levels, size=int(rng.integers(1, 300))) for _ in range(batches)]
        if seed % 3 == 0:  # a wide spread first: the sketch collapses before the few-valued batches arrive
            parts.insert(0, offset + rng.standard_normal(BUDGET + 500) * 1e3)
    parts = [p[np.isfinite(p)] for p in parts]
    parts = [p for p in parts if p.size]
    if not parts:
        return
    one_by_one = QuantileSketch()
    for p in parts:
        if known_bounds:
            one_by_one.add(p, float(p.min()), float(p.max()))
        else:
            one_by_one.add(p)
    whole = QuantileSketch()
    whole.add(np.concatenate(parts))
    assert one_by_one.to_dict() == whole.to_dict()
    assert one_by_one.quantiles(QS) == whole.quantiles(QS)


@given(hnp.arrays(np.float64, st.integers(1, 3000),
                  elements=st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False, allow_subnormal=True)),
       _OFFSETS, _SCALES, st.integers(1, 6), st.integers(0, 2 ** 32 - 1), st.sampled_from([0.0, 0.1, 0.5]))
def test_batches_crossing_zero_added_to_a_collapsed_sketch_give_the_sketch_of_all_values(
        extra, offset, scale, batches, seed, zeros):
    """Columns of both signs (returns, deltas, centred features), with exact zeros, subnormals and values
    near the float64 limits, counted one batch after another into a sketch that has already joined buckets:
    a batch's buckets are counted without splitting it by sign where their magnitudes are close, and by sign
    otherwise; either way the sketch is the one built from all the values at once."""
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore", invalid="ignore"):
        spread = offset + scale * rng.standard_normal(BUDGET + 2000)  # collapses the sketch
        parts = [spread]
        for chunk in np.array_split(np.concatenate([extra, offset + scale * rng.standard_normal(4000)]), batches):
            chunk = np.where(rng.random(chunk.size) < zeros, 0.0, chunk)
            parts.append(rng.permutation(np.concatenate([chunk, -chunk[: chunk.size // 2]])))
    parts = [p[np.isfinite(p)] for p in parts]
    parts = [p for p in parts if p.size]
    one_by_one = QuantileSketch()
    for p in parts:
        one_by_one.add(p)
    whole = QuantileSketch()
    whole.add(np.concatenate(parts))
    assert one_by_one.to_dict() == whole.to_dict()
    assert one_by_one.quantiles(QS) == whole.quantiles(QS)
