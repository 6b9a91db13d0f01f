"""The values as written: an exact profile of the float features of the list-typed batches the shards encode.

For each float32 column: how many values it holds, how many are NaN, +Inf and -Inf, and its finite min and max.
This is what proves that nothing non-finite or out of range reached the shards (report.written checks it
against the range the normalization maps the clean range to); TFDV's statistics are of the clean rows in
their original units and cannot say it. Merging is exact and order-free (counts add, min/max compare).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa


@dataclasses.dataclass
class WrittenColumn:
    values: int = 0
    nan: int = 0
    posinf: int = 0
    neginf: int = 0
    min: float = np.inf  # over finite values; +inf while there is none
    max: float = -np.inf

    def add(self, values: np.ndarray) -> None:
        finite = np.isfinite(values)
        self.values += values.size
        if not finite.all():
            self.nan += int(np.isnan(values).sum())
            self.posinf += int(np.isposinf(values).sum())
            self.neginf += int(np.isneginf(values).sum())
            values = values[finite]
        if values.size:
            self.min = min(self.min, float(values.min()))
            self.max = max(self.max, float(values.max()))

    def merge(self, other: "WrittenColumn") -> "WrittenColumn":
        return WrittenColumn(self.values + other.values, self.nan + other.nan, self.posinf + other.posinf,
                             self.neginf + other.neginf, min(self.min, other.min), max(self.max, other.max))

    def to_json(self) -> dict:
        finite = self.values - self.nan - self.posinf - self.neginf
        return {"values": self.values, "nan": self.nan, "posinf": self.posinf, "neginf": self.neginf,
                "min": self.min if finite else None, "max": self.max if finite else None}


@dataclasses.dataclass
class WrittenValues:
    """Per float32 list column of written batches: a WrittenColumn; rows counts the written rows."""
    rows: int = 0
    columns: dict[str, WrittenColumn] = dataclasses.field(default_factory=dict)

    def add_batch(self, batch: pa.RecordBatch) -> "WrittenValues":
        self.rows += batch.num_rows
        for name, arr in zip(batch.schema.names, batch.columns):
            if not (pa.types.is_list(arr.type) and pa.types.is_floating(arr.type.value_type)):
                continue
            flat = arr.flatten()  # the written values of the rows' lists (null rows hold none)
            values = flat.to_numpy(zero_copy_only=False) if flat.null_count == 0 else \
                flat.fill_null(np.nan).to_numpy(zero_copy_only=False)
            self.columns.setdefault(name, WrittenColumn()).add(values)
        return self

    def merge(self, other: "WrittenValues") -> "WrittenValues":
        columns = dict(self.columns)
        for name, col in other.columns.items():
            columns[name] = columns[name].merge(col) if name in columns else col
        return WrittenValues(self.rows + other.rows, columns)

    def to_json(self) -> dict:
        return {"rows": self.rows, "columns": {n: c.to_json() for n, c in sorted(self.columns.items())}}
