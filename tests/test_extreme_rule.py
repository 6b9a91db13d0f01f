"""The extreme-value rule on real-looking columns: decimal-shift faults caught, clean columns never flagged."""
import numpy as np
import pytest

from realistic import columns
from transforms.extreme import DEFAULT_THRESHOLD, extreme_bounds
from transforms.quantile_sketch import QuantileSketch

N = 1_000_000


def bounds_for(values: np.ndarray, threshold: float = DEFAULT_THRESHOLD):
    s = QuantileSketch()
    for chunk in np.array_split(values, 16):
        s.add(chunk)
    lo, med, hi = s.quantiles([0.001, 0.5, 0.999])
    return extreme_bounds(med, lo, hi, threshold)


def _clean_columns():
    rng = np.random.default_rng(11)
    out = dict(columns(N, seed=11))
    fare = np.round(rng.lognormal(2.3, 0.7, N), 2)
    out.update({
        "lognormal_2.5": rng.lognormal(0.0, 2.5, N),
        "pareto_80_20": rng.pareto(1.16, N) + 1.0,
        "fare": fare,
        "tips_with_zeros": np.where(rng.uniform(size=N) < 0.6, 0.0, np.round(fare * 0.2, 2)),
        "passengers": rng.choice([1, 1, 1, 2, 2, 3, 4, 5, 6], N).astype(np.float64),
        "uniform": rng.uniform(size=N),
        "price": np.round(rng.lognormal(3.0, 0.35, N), 2),
        "sequential_id": np.arange(1, N + 1, dtype=np.float64),
    })
    return out


CLEAN = _clean_columns()


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_a_clean_real_looking_column_is_never_flagged(name):
    values = CLEAN[name]
    assert not bounds_for(values).mask(values).any()


@pytest.mark.parametrize("name", ["latitude", "longitude", "epoch_seconds"])
@pytest.mark.parametrize("factor", [10, 100, 1000, 0.1])
def test_a_decimal_shift_in_an_offset_column_is_caught(name, factor):
    values = CLEAN[name].copy()
    rows = np.random.default_rng(5).choice(N, 50, replace=False)
    values[rows] *= factor
    flagged = bounds_for(values).mask(values)
    assert flagged[rows].all() and flagged.sum() == rows.size


def test_prices_multiplied_by_1000_are_caught_and_by_100_above_the_median():
    values = CLEAN["price"].copy()  # bulk spans about a factor of ten
    rows = np.random.default_rng(6).choice(N, 60, replace=False)
    thousand, hundred = rows[:30], rows[30:]
    values[thousand] *= 1000
    values[hundred] *= 100
    flagged = bounds_for(values).mask(values)
    median = np.median(CLEAN["price"])
    assert flagged[thousand].all()
    assert flagged[hundred[CLEAN["price"][hundred] > median]].all()
    assert not flagged[np.setdiff1d(np.arange(N), rows)].any()


def test_huge_values_in_a_unit_scale_column_and_zeros_in_a_positive_one():
    values = CLEAN["normal"].copy()
    values[:3] = [1e30, -1e30, 5e4]
    assert bounds_for(values).mask(values)[:3].all()
    fare = CLEAN["fare"].copy()
    fare[:5] = 0.0  # a rare zero fare: other sign than the bulk, held to the linear fence only
    assert not bounds_for(fare).mask(fare)[:5].any()


def test_clip_moves_a_shifted_value_back_inside_both_fences():
    values = CLEAN["latitude"].copy()
    values[0] = 4188.0
    b = bounds_for(values)
    clipped = b.clip(values[:2])
    assert not b.mask(clipped).any() and clipped[1] == values[1] and clipped[0] < 4188.0


def test_the_low_tail_of_a_positive_normal_column_is_not_a_decimal_shift():
    # log space stretches values near zero: 0.1 in a normal(5, 1) column is 4.9 sigma down, not a shift
    values = np.random.default_rng(12).normal(5, 1, N)
    values[:3] = [0.1, 0.08, 0.05]
    assert not bounds_for(values).mask(values).any()
    values[3] = 500.0  # x100 on a typical value is caught
    flagged = bounds_for(values).mask(values)
    assert flagged[3] and flagged.sum() == 1
