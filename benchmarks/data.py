"""The benchmark table: N rows of 32 float32 features, two labels and what real tables hold beside them: an
int64 trip id near 2^52, a categorical city name and a nullable tip (5% null) (~210 MB Parquet at 1M rows),
with planted faults in 0.05% of rows (NaN, +/-Inf, 1e30, invalid labels); and the equivalent GE suite.
`text=False` writes the same table without the city column (what text costs is the difference)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FEATURES = [f"f{i:02d}" for i in range(32)]
LABELS = ("label_prob:probability", "label_class:class=5")
MISSING = ("tip=indicator:median",)  # the nullable column's policy in every bench run
PASSTHROUGH = ("trip_id",)  # written as it is (int64), never a feature
CHUNK = 250_000
TABLE = "trips-{rows}{suffix}.parquet"  # file names under bench-data/ (the all-float table was table-N.parquet)


def table_name(rows: int, text: bool = True) -> str:
    return TABLE.format(rows=rows, suffix="" if text else "-notext")
# Chicago-area community names (Zipf-like weights): a categorical string column of a few distinct lengths.
CITIES = ["Loop", "Near North Side", "Lincoln Park", "Lake View", "West Town", "Near West Side", "Uptown",
          "Logan Square", "Hyde Park", "Edgewater", "Rogers Park", "Austin", "Evanston", "Oak Park", "O'Hare",
          "Garfield Ridge", "Bridgeport", "Pilsen", "Chinatown", "Wicker Park"]
ID_BASE = 2**52  # ids as large as float64 can still count exactly


def write_table(path: str, rows: int, seed: int = 0, text: bool = True) -> int:
    """Writes the table in chunks (memory stays flat for 10M rows); returns the number of planted bad rows."""
    weights = 1.0 / np.arange(1, len(CITIES) + 1)
    weights /= weights.sum()
    rng = np.random.default_rng(seed)
    planted = 0
    writer = None
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        cols = {f: (rng.normal(i % 7, 1 + i % 5, n)).astype(np.float32) for i, f in enumerate(FEATURES)}
        prob = rng.uniform(0, 1, n)
        cls = rng.integers(0, 5, n).astype(np.int64)
        bad = rng.choice(n, size=max(1, n // 2000), replace=False)
        for j, r in enumerate(bad):
            kind = j % 6
            f = FEATURES[(j * 7) % 32]
            if kind == 0:
                cols[f][r] = np.nan
            elif kind == 1:
                cols[f][r] = np.inf
            elif kind == 2:
                cols[f][r] = -np.inf
            elif kind == 3:
                cols[f][r] = 1e30
            elif kind == 4:
                prob[r] = 2.0
            else:
                cls[r] = 7
        planted += len(bad)
        extra = {"trip_id": ID_BASE + np.arange(start, start + n, dtype=np.int64) * 7}
        city = np.asarray(CITIES, dtype=object)[rng.choice(len(CITIES), size=n, p=weights)]
        if text:
            extra["city"] = pa.array(city, pa.string())
        tip = rng.lognormal(0.5, 0.8, n)
        extra["tip"] = pa.array(tip, mask=rng.uniform(size=n) < 0.05)
        table = pa.table({**cols, "label_prob": prob, "label_class": cls, **extra})
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=65_536)
    writer.close()
    return planted


def ge_suite() -> dict:
    """67 expectations in GE 1.x JSON, of the kinds a training-data suite holds: not-null per feature, ranges and
    z-scores, column pairs, a multicolumn sum, column aggregates and the labels' rules."""
    expectations = []
    for i, f in enumerate(FEATURES):
        expectations.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": f}})
        if i < 13:
            expectations.append({"type": "expect_column_values_to_be_between",
                                 "kwargs": {"column": f, "min_value": -100.0, "max_value": 100.0}})
        elif i < 27:
            expectations.append({"type": "expect_column_value_z_scores_to_be_less_than",
                                 "kwargs": {"column": f, "threshold": 6.0, "double_sided": True, "mostly": 0.999}})
    expectations += [
        {"type": "expect_column_pair_values_a_to_be_greater_than_b",
         "kwargs": {"column_A": FEATURES[27], "column_B": FEATURES[28], "mostly": 0.3}},
        {"type": "expect_column_pair_values_a_to_be_greater_than_b",
         "kwargs": {"column_A": FEATURES[29], "column_B": FEATURES[30], "or_equal": True, "mostly": 0.3}},
        {"type": "expect_multicolumn_sum_to_equal", "kwargs": {"column_list": [FEATURES[30], FEATURES[31]],
                                                               "sum_total": 0.0}},
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": FEATURES[0], "min_value": -1.0,
                                                                "max_value": 1.0}},
        {"type": "expect_column_stdev_to_be_between", "kwargs": {"column": FEATURES[1], "min_value": 0.1,
                                                                 "max_value": 100.0}},
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "label_prob", "min_value": 0.0, "max_value": 1.0}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "label_class"}},
        {"type": "expect_column_values_to_be_in_set",
         "kwargs": {"column": "label_class", "value_set": [0, 1, 2, 3, 4]}},
    ]
    return {"name": "bench", "expectations": expectations, "meta": {}}


def write_wide_table(path: str, rows: int, columns: int = 5_000, seed: int = 0) -> None:
    """A feature table thousands of columns wide, as they come: a flattened float32 embedding (40%), a sensor
    grid of offset readings around 20 +/- 3 with 1% nulls (40%), one-hot int64 blocks (20%), an id and a label."""
    rng = np.random.default_rng(seed)
    n_embed, n_grid = int(columns * 0.4), int(columns * 0.4)
    n_onehot = columns - n_embed - n_grid
    cols: dict[str, pa.Array] = {"row_id": pa.array(ID_BASE + np.arange(rows, dtype=np.int64))}
    for i in range(n_embed):
        cols[f"emb_{i:04d}"] = pa.array(rng.standard_normal(rows).astype(np.float32))
    for i in range(n_grid):
        cols[f"grid_{i:04d}"] = pa.array(20 + 3 * rng.standard_normal(rows), mask=rng.uniform(size=rows) < 0.01)
    hot = rng.integers(0, n_onehot, rows)
    for i in range(n_onehot):
        cols[f"onehot_{i:04d}"] = pa.array((hot == i).astype(np.int64))
    cols["label_prob"] = pa.array(rng.uniform(0, 1, rows))
    pq.write_table(pa.table(cols), path, row_group_size=rows)
