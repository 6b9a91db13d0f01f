"""Column layouts: Arrow columns as numpy views, and scalar columns as the list columns TFDV and tf.Example need.

Sits under every stage: readers produce scalar Arrow columns (missing = null), checks and profiles read them
as float64 numpy views with a separate missing mask, and the writers turn them into list columns.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Columns nanguard adds to every batch it reads; never features.
SOURCE_FILE = "__source_file"
ROW_INDEX = "__row_index"
REASONS = "__reasons"
UNPARSEABLE = "__unparseable"
RESERVED = (SOURCE_FILE, ROW_INDEX, REASONS, UNPARSEABLE)
# A column's values as read, before conforming to the unified type (a Parquet decimal or timestamp, say), riding
# along as "__original__<column>" so that quarantined rows are written verbatim, in their original Arrow type.
ORIGINAL_PREFIX = "__original__"
# Schema field metadata: the column's Arrow type as read, when the unified type differs (bool read as int64, a
# timestamp read as float64 seconds); what messages and type expectations name.
SOURCE_TYPE_KEY = b"nanguard.source_type"
MISSING_SUFFIX = "__missing"  # --missing COL=indicator writes COL__missing, 1 where COL was null


def type_name(field: pa.Field) -> str:
    """The type a user knows a column by: as read (field metadata), else its Arrow type."""
    source = (field.metadata or {}).get(SOURCE_TYPE_KEY)
    return source.decode() if source else str(field.type)


def is_temporal_field(field: pa.Field) -> bool:
    """A column read from a timestamp, date or time (its values are seconds)."""
    return type_name(field).startswith(("timestamp", "date", "time"))


def indicator_name(column: str) -> str:
    return column + MISSING_SUFFIX


def is_nanguards(name: str) -> bool:
    """A column nanguard added to a batch (never a feature, never in statistics)."""
    return name in RESERVED or name.startswith(ORIGINAL_PREFIX)


def with_originals_restored(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with each conformed column replaced by its original values (dropping the riders)."""
    names = batch.schema.names
    riders = {n[len(ORIGINAL_PREFIX):]: batch.column(i) for i, n in enumerate(names) if n.startswith(ORIGINAL_PREFIX)}
    if not riders:
        return batch
    keep = [(n, riders.get(n, batch.column(i))) for i, n in enumerate(names) if not n.startswith(ORIGINAL_PREFIX)]
    return pa.RecordBatch.from_arrays([a for _, a in keep], names=[n for n, _ in keep])


def without_originals(batch: pa.RecordBatch) -> pa.RecordBatch:
    names = batch.schema.names
    if not any(n.startswith(ORIGINAL_PREFIX) for n in names):
        return batch
    keep = [i for i, n in enumerate(names) if not n.startswith(ORIGINAL_PREFIX)]
    return pa.RecordBatch.from_arrays([batch.column(i) for i in keep], names=[names[i] for i in keep])


def is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def missing_mask(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.zeros(len(arr), dtype=bool)
    return arr.is_null().to_numpy(zero_copy_only=False)


def float_values(arr: pa.Array) -> np.ndarray:
    """float64 values of a numeric column; missing entries read as NaN (use missing_mask to tell them apart)."""
    if not pa.types.is_float64(arr.type):
        arr = pc.cast(arr, pa.float64(), safe=False)  # ints beyond 2**53 round, as float64 does
    return arr.to_numpy(zero_copy_only=False)


class BatchView:
    """Read-only view of one RecordBatch that converts each column at most once for all rules that read it."""

    def __init__(self, batch: pa.RecordBatch):
        self.batch = batch
        self._numeric: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._lists: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._masks: dict[int, np.ndarray] = {}

    @property
    def num_rows(self) -> int:
        return self.batch.num_rows

    def column(self, name: str) -> pa.Array:
        return self.batch.column(self.batch.schema.get_field_index(name))

    def numeric(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(float64 values, missing mask) of a scalar numeric column."""
        if name not in self._numeric:
            arr = self.column(name)
            self._numeric[name] = (float_values(arr), missing_mask(arr))
        return self._numeric[name]

    def rows_where(self, condition) -> np.ndarray:
        """condition.mask(self), computed once per condition object for every rule that asks (a row condition
        restricts both what a rule flags and the rows it counts as evaluated). The result must not be changed."""
        key = id(condition)  # conditions outlive the view (they belong to the compiled suite): ids stay unique
        if key not in self._masks:
            self._masks[key] = condition.mask(self)
        return self._masks[key]

    def lists(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row offsets, float64 flat values, missing mask) of a list-of-numbers column."""
        if name not in self._lists:
            arr = self.column(name)
            missing = missing_mask(arr)
            offsets = np.asarray(arr.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
            flat = float_values(arr.values)  # values of null slots are excluded by the offsets below
            base = offsets[0]
            flat = flat[base:offsets[-1]]
            self._lists[name] = (offsets - base, flat, missing)
        return self._lists[name]


def to_list_array(arr: pa.Array, values_type: pa.DataType | None = None) -> pa.ListArray:
    """Wrap a scalar column as a list column: one value per row, missing rows as null empty lists.

    Null rows get zero-length slots because tfx_bsl's example encoder reads the offsets, not the validity bitmap.
    """
    if arr.null_count:
        missing = missing_mask(arr)
        offsets = np.zeros(len(arr) + 1, dtype=np.int32)
        np.cumsum(~missing, out=offsets[1:])
        values, mask = arr.drop_null(), pa.array(missing)
    else:
        offsets = np.arange(len(arr) + 1, dtype=np.int32)
        values, mask = arr, None
    if values_type is not None and values.type != values_type:
        values = pc.cast(values, values_type, safe=False)
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)


def append_columns(batch: pa.RecordBatch, named: dict[str, pa.Array]) -> pa.RecordBatch:
    """The batch with `named` columns after its own. One new batch for all of them: a batch is rebuilt whole,
    so appending columns one at a time is quadratic in the columns (BENCHMARKS.md)."""
    if not named:
        return batch
    return pa.RecordBatch.from_arrays(list(batch.columns) + list(named.values()),
                                      names=batch.schema.names + list(named))


def drop_columns(batch: pa.RecordBatch, names) -> pa.RecordBatch:
    # batch.schema.names builds a new list of every name: asked once, not once per column (which was quadratic
    # in the columns; BENCHMARKS.md)
    dropped, all_names = set(names), batch.schema.names
    keep = [i for i, n in enumerate(all_names) if n not in dropped]
    return pa.RecordBatch.from_arrays([batch.column(i) for i in keep], names=[all_names[i] for i in keep])
