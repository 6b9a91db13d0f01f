"""Sample training tables with planted faults, for `nanguard demo`, the tests and the benchmarks.

Every planted fault is recorded, so a test can assert that the quarantine holds exactly the planted rows.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from transforms.reasons import Code, label, overflow, reason

LABELS = ("label_prob:probability", "label_class:class=5")


@dataclasses.dataclass
class PlantedTable:
    table: pa.Table
    bad_rows: dict[int, set[str]]  # row -> the reasons nanguard must give

    @property
    def bad_row_set(self) -> set[int]:
        return set(self.bad_rows)

    def expected_reasons(self, fmt: str) -> dict[int, set[str]]:
        """Reasons per bad row as nanguard must report them for a file of this format."""
        if fmt != "tfrecord":
            return self.bad_rows
        too_big = {overflow("float32", "f0"), reason(Code.EXTREME, "f0")}
        return {r: (reasons - too_big) | {reason(Code.POS_INF, "f0")} if too_big <= reasons else reasons
                for r, reasons in self.bad_rows.items()}


def make_table(rows: int = 200_000, faults_per_kind: int = 10, seed: int = 7) -> PlantedTable:
    """Unit-scale features f0..f4, an unscaled one (x1e4), a constant, two labels and a text column,
    with NaN, +Inf, -Inf, 1e30 (extreme), 1e39 (beyond float32), missing values and invalid labels planted."""
    rng = np.random.default_rng(seed)
    cols = {f"f{i}": rng.normal(i, 1 + i, rows) for i in range(5)}
    cols["unscaled"] = rng.normal(0, 1e4, rows)
    cols["constant"] = np.full(rows, 3.0)
    cols["label_prob"] = rng.uniform(0, 1, rows)
    cols["label_class"] = rng.integers(0, 5, rows).astype(np.int64)
    missing_f4 = np.zeros(rows, dtype=bool)
    bad: dict[int, set[str]] = {}
    picks = iter(rng.permutation(rows))
    plants = [("f0", np.nan, reason(Code.NAN, "f0")), ("f1", np.inf, reason(Code.POS_INF, "f1")),
              ("f2", -np.inf, reason(Code.NEG_INF, "f2")), ("f3", 1e30, reason(Code.EXTREME, "f3")),
              ("f0", 1e39, overflow("float32", "f0")),
              ("label_prob", 2.0, label("probability", "label_prob")),
              ("label_prob", -0.5, label("probability", "label_prob")),
              ("label_class", 7, label("class", "label_class")), ("label_class", -1, label("class", "label_class"))]
    for col, value, why in plants:
        for _ in range(faults_per_kind):
            r = int(next(picks))
            cols[col][r] = value
            bad.setdefault(r, set()).add(why)
            if why == overflow("float32", "f0"):
                bad[r].add(reason(Code.EXTREME, "f0"))  # 1e39 is far outside f0's bulk too
    for _ in range(faults_per_kind):
        r = int(next(picks))
        missing_f4[r] = True
        bad.setdefault(r, set()).add(reason(Code.MISSING, "f4"))
    arrays = {k: pa.array(v) for k, v in cols.items()}
    arrays["f4"] = pa.array(cols["f4"], mask=missing_f4)
    arrays["city"] = pa.array(rng.choice(np.array(["lisbon", "oslo", "quito"]), rows))
    return PlantedTable(pa.table(arrays), bad)


def write_table(table: pa.Table, path: str, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=50_000)
    elif fmt == "csv":
        pacsv.write_csv(table, path)
    elif fmt == "tfrecord":
        _write_tfrecord(table, path)
    else:
        raise ValueError(fmt)


def _write_tfrecord(table: pa.Table, path: str) -> None:
    from tfx_bsl.coders import example_coder

    from transforms.tfrecord_encoding import frame_records
    from transforms.columns import to_list_array

    encoder = example_coder.RecordBatchToExamplesEncoder()
    with open(path, "wb") as f:
        for batch in table.to_batches(max_chunksize=20_000):
            # tf.Example holds float32: a planted 1e39 is already +Inf in a TFRecord file.
            lists = pa.RecordBatch.from_arrays(
                [to_list_array(c, pa.binary() if pa.types.is_string(c.type) else
                               pa.float32() if pa.types.is_floating(c.type) else None) for c in batch.columns],
                names=batch.schema.names)
            f.write(frame_records(encoder.encode(lists)))
