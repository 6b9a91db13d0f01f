"""The benchmark table: N rows of 32 float32 features and two labels (~200 MB Parquet at 1M rows), with
planted faults in 0.05% of rows (NaN, +/-Inf, 1e30, invalid labels), and the equivalent GE suite."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FEATURES = [f"f{i:02d}" for i in range(32)]
LABELS = ("label_prob:probability", "label_class:class=5")
CHUNK = 250_000


def write_table(path: str, rows: int, seed: int = 0) -> int:
    """Writes the table in chunks (memory stays flat for 4M rows); returns the number of planted bad rows."""
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
        table = pa.table({**cols, "label_prob": prob, "label_class": cls})
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=65_536)
    writer.close()
    return planted


def ge_suite() -> dict:
    """67 row-level expectations in GE 1.x JSON: not-null and a range per feature, and the labels' rules."""
    expectations = []
    for f in FEATURES:
        expectations.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": f}})
        expectations.append({"type": "expect_column_values_to_be_between",
                             "kwargs": {"column": f, "min_value": -100.0, "max_value": 100.0}})
    expectations += [
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "label_prob", "min_value": 0.0, "max_value": 1.0}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "label_class"}},
        {"type": "expect_column_values_to_be_in_set",
         "kwargs": {"column": "label_class", "value_set": [0, 1, 2, 3, 4]}},
    ]
    return {"name": "bench", "expectations": expectations, "meta": {}}
