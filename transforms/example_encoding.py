"""Clean rows to tf.Example: normalized float32 features, labels and pass-through columns unchanged.

Builds the list-typed RecordBatch that both tfx_bsl's C++ RecordBatchToExamplesEncoder and TFDV's clean
statistics read, so the statistics describe exactly what is written. Also produces the matching
tf.io.parse_example spec.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.columns import BatchView, indicator_name, is_list, is_numeric, to_list_array
from transforms.normalize import Scaling

FEATURE, LABEL, PASSTHROUGH = "feature", "label", "passthrough"
_VALUE_TYPES = {"float32": pa.float32(), "int64": pa.int64(), "string": pa.binary()}  # tf.Example's list types


@dataclasses.dataclass(frozen=True)
class OutputColumn:
    name: str
    role: str  # feature (normalized), label or passthrough (unchanged)
    dtype: str  # float32, int64 or string: the tf.Example list type
    scaling: Scaling | None = None
    # FixedLenFeature shape when every written example has the same number of values ([] for scalars);
    # None means VarLenFeature (values may be missing, or lists vary in length).
    shape: tuple[int, ...] | None = ()

    def spec(self) -> dict:
        if self.shape is None:
            return {"kind": "VarLenFeature", "dtype": self.dtype}
        return {"kind": "FixedLenFeature", "dtype": self.dtype, "shape": list(self.shape)}


def to_output_batch(batch: pa.RecordBatch, columns: tuple[OutputColumn, ...]) -> pa.RecordBatch:
    """The list-typed batch of what gets written, in `columns` order."""
    view = BatchView(batch)
    arrays = []
    for col in columns:
        arr = view.column(col.name)
        if col.scaling is not None:
            values, missing = view.numeric(col.name)
            scaled = pa.array(col.scaling.apply(values), mask=missing if missing.any() else None)
            arrays.append(to_list_array(scaled))
        elif is_list(arr.type):
            arrays.append(_list_of(arr, _VALUE_TYPES[col.dtype]))
        elif is_numeric(arr.type):
            arrays.append(to_list_array(arr, _VALUE_TYPES[col.dtype]))
        else:
            arrays.append(to_list_array(pc.cast(arr, pa.string()), pa.binary()))
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in columns])


def _list_of(arr: pa.Array, value_type: pa.DataType) -> pa.ListArray:
    """A list column with null rows as zero-length slots, values cast to the output type."""
    if arr.null_count:
        arr = pc.if_else(arr.is_null(), pa.scalar([], arr.type), arr)  # tf.Example has no null list
    offsets = np.asarray(arr.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    values = arr.values.slice(offsets[0], offsets[-1] - offsets[0])
    return pa.ListArray.from_arrays(pa.array((offsets - offsets[0]).astype(np.int32)),
                                    pc.cast(values, value_type, safe=False))


def plan_output_columns(clean, kinds: dict, labels: tuple[str, ...], passthrough: tuple[str, ...],
                        method: str, filled: frozenset = frozenset(), indicators: Mapping[str, str] = {},
                        frozen: Mapping[str, Scaling] | None = None) -> tuple[OutputColumn, ...]:
    """What each column becomes in the shards, given the clean profile (a ProfileAccumulator).

    Numeric scalar columns that are not labels or pass-through are features, normalized with `method`
    fitted on the clean rows. Lists of numbers that are not labels, and text, pass through unchanged.
    `filled` columns have every null cell imputed in the write pass (so they are FixedLen although the clean
    profile, taken before imputing, saw nulls); a column in `indicators` is followed by its COL__missing 0/1
    column, "always" or "where_missing" (where its clean rows had nulls). `frozen` (a baseline's scalings)
    replaces the fit: every run that shares a baseline writes a raw value the same way.
    """
    from transforms.normalize import fit

    out = []
    for name, kind in kinds.items():
        p = clean.profiles[name]
        role = LABEL if name in labels else PASSTHROUGH if name in passthrough or kind not in ("int", "float") \
            else FEATURE
        dtype = {"int": "int64", "float": "float32", "string": "string",
                 "int_list": "int64", "float_list": "float32"}[kind]
        if role == FEATURE:
            dtype = "float32"
        if role == FEATURE and p.rows > 0 and p.missing == p.rows:
            continue  # no value in any clean row: nothing to learn from, left out and reported (dropped_columns)
        always_present = (p.missing == 0 or name in filled) and p.rows > 0
        if kind.endswith("_list"):
            shape = (p.min_len,) if always_present and p.min_len is not None and p.min_len == p.max_len else None
        else:
            shape = () if always_present else None
        scaling = (frozen[name] if frozen is not None else fit(p, method)) if role == FEATURE else None
        out.append(OutputColumn(name, role, dtype, scaling, shape))
        if indicators.get(name) == "always" or (indicators.get(name) and p.missing > 0):
            out.append(OutputColumn(indicator_name(name), PASSTHROUGH, "int64", None, ()))
    return tuple(out)
