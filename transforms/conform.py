"""Conform a batch as read from one file to the pipeline's unified schema.

CSV text is parsed into numbers (unparseable cells become row faults with the original text kept in
__unparseable); tf.Example lists of one value become scalars (more than one value in a scalar column is a
row fault too); Parquet columns are cast. Columns a file lacks are all-missing. nanguard's own columns
__source_file and __row_index are added here.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.columns import ORIGINAL_PREFIX, ROW_INDEX, SOURCE_FILE, UNPARSEABLE, missing_mask
from transforms.text_values import parse_number_lists, parse_numbers

ARROW_TYPES = {"int": pa.int64(), "float": pa.float64(), "string": pa.string(),
               "int_list": pa.list_(pa.int64()), "float_list": pa.list_(pa.float64())}


def conform(batch: pa.RecordBatch, kinds: dict, source: str | pa.Array, first_row: int | np.ndarray, origin: str,
            keep_original: frozenset = frozenset()) -> pa.RecordBatch:
    """origin: 'csv' (all text), 'tfrecord' (all lists) or 'parquet' (typed). Columns in `keep_original` also
    ride along as read (ORIGINAL_PREFIX), for a verbatim quarantine. source and first_row: the batch's file and
    its first row's index, or (rows joined from several files) each row's file and row index."""
    n = batch.num_rows
    names = batch.schema.names
    if origin == "tfrecord":
        unknown = [c for c in names if c not in kinds]
        if unknown:  # tf.Example features the planner's sample never saw: refused, never dropped unchecked
            raise ConformError(unknown[0], "is a feature the records the schema was inferred from do not have; "
                                           "nanguard would not check it. Give every record the feature (empty "
                                           "where it is missing), or put one that has it first")
    arrays, faults = [], {}
    for col, kind in kinds.items():
        target = ARROW_TYPES[kind]
        if col not in names:
            arrays.append(pa.nulls(n, target))
            continue
        arr = batch.column(names.index(col))
        if pa.types.is_null(arr.type) or (pa.types.is_list(arr.type) and pa.types.is_null(arr.type.value_type)):
            arrays.append(pa.nulls(n, target))  # a tf.Example feature with no kind: no value in these records
            continue
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if origin == "csv" and kind != "string":
            parsed, bad = parse_numbers(arr, kind) if kind in ("int", "float") else parse_number_lists(arr)
            if bad.any():
                faults[col] = (bad, arr)
            arrays.append(parsed)
        elif origin == "tfrecord" and kind in ("int", "float", "string"):
            scalar, bad = _single_values(arr)
            if bad.any():
                faults[col] = (bad, _describe_lists(arr))
            arrays.append(scalar if kind == "string" and pa.types.is_string(scalar.type)
                          else pc.cast(scalar, target, safe=kind != "string"))
        else:
            arrays.append(_cast(arr, target, col))
    if isinstance(source, str):
        arrays.append(pa.repeat(pa.scalar(source, pa.string()), n))
        arrays.append(pa.array(np.arange(first_row, first_row + n, dtype=np.int64)))
    else:
        arrays.append(source)
        arrays.append(pa.array(np.asarray(first_row, dtype=np.int64)))
    out_names = list(kinds) + [SOURCE_FILE, ROW_INDEX]
    if origin != "parquet":
        arrays.append(_fault_texts(n, faults))
        out_names.append(UNPARSEABLE)
    for col in kinds:
        if col in keep_original and col in names:
            arrays.append(batch.column(names.index(col)))
            out_names.append(ORIGINAL_PREFIX + col)
    return pa.RecordBatch.from_arrays(arrays, names=out_names)


class ConformError(ValueError):
    """A column whose values cannot be held in the unified schema; the reader names the file."""

    def __init__(self, column: str, detail: str):
        super().__init__(f"column '{column}' {detail}")
        self.column, self.detail = column, detail


INT64_MAX = np.iinfo(np.int64).max


def _cast(arr: pa.Array, target: pa.DataType, column: str = "") -> pa.Array:
    if arr.type == target:
        return arr
    if pa.types.is_boolean(arr.type):
        arr = pc.cast(arr, pa.int8())
    if pa.types.is_temporal(arr.type) and not pa.types.is_duration(arr.type):
        return epoch_seconds(arr)
    if pa.types.is_duration(arr.type):
        arr = arr.view(pa.int64())  # a count of the column's unit (s, ms, us or ns)
    if pa.types.is_uint64(arr.type) and len(arr) - arr.null_count and pc.max(arr).as_py() > INT64_MAX:
        raise ConformError(column, f"holds unsigned values above 2^63-1 (e.g. {pc.max(arr).as_py()}), which "
                                   f"tf.Example's int64 cannot hold; cast it to float64 or string before the run")
    if pa.types.is_fixed_size_list(arr.type):  # Arrow 10 cannot cast it; rebuild it as a list
        size = arr.type.list_size
        values = arr.values.slice(arr.offset * size, len(arr) * size)
        arr = pa.ListArray.from_arrays(pa.array(np.arange(len(arr) + 1, dtype=np.int32) * size), values,
                                       mask=arr.is_null() if arr.null_count else None)
    if pa.types.is_large_list(arr.type):
        arr = pc.cast(arr, pa.list_(arr.type.value_type))
    if (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)) and pa.types.is_string(target):
        try:
            return pc.cast(arr, target)
        except pa.ArrowInvalid:
            raise ConformError(column, "holds bytes that are not UTF-8 text; nanguard reads text columns as "
                                       "UTF-8: decode it (or drop it) before the run") from None
    if pa.types.is_list(arr.type) and pa.types.is_boolean(arr.type.value_type):
        arr = pc.cast(arr, pa.list_(pa.int8()))
    return pc.cast(arr, target)


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def epoch_seconds(arr: pa.Array) -> pa.Array:
    """A timestamp, date or time column as float64 seconds: since 1970-01-01 UTC (a timestamp with a time zone
    is an instant; one without is read as UTC), or since midnight for a time of day. Nulls stay null."""
    t = arr.type
    if pa.types.is_date32(t):
        counts, per_second = arr.view(pa.int32()), 1 / 86_400
    elif pa.types.is_date64(t):
        counts, per_second = arr.view(pa.int64()), 1_000
    else:  # timestamp, time32, time64
        counts = arr.view(pa.int32() if pa.types.is_time32(t) else pa.int64())
        per_second = _PER_SECOND[t.unit]
    values = counts.to_numpy(zero_copy_only=False).astype(np.float64) / per_second
    return pa.array(values, pa.float64(), mask=arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None)


def _single_values(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """A tf.Example list column as scalars: empty lists are missing; more than one value is a fault."""
    offsets = np.asarray(arr.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    lengths = np.diff(offsets)
    missing = missing_mask(arr) | (lengths == 0)
    first = np.where(missing, offsets[0], offsets[:-1])
    values = arr.values
    if pa.types.is_large_binary(values.type) or pa.types.is_binary(values.type):
        values = pc.cast(values, pa.string())
    scalar = values.take(pa.array(np.minimum(first, max(len(values) - 1, 0)))) if len(values) else pa.nulls(
        len(arr), values.type)
    scalar = pc.if_else(pa.array(missing), pa.scalar(None, scalar.type), scalar)
    return scalar, lengths > 1


def _describe_lists(arr: pa.Array) -> pa.Array:
    return pa.array([json.dumps(v if not isinstance(v, list) or not v or not isinstance(v[0], bytes)
                                else [x.decode("utf-8", "replace") for x in v]) for v in arr.to_pylist()])


def _fault_texts(n: int, faults: dict) -> pa.Array:
    """JSON {column: original text} for rows with faults, null elsewhere (per-row work on bad rows only)."""
    if not faults:
        return pa.nulls(n, pa.string())
    any_bad = np.zeros(n, dtype=bool)
    for bad, _ in faults.values():
        any_bad |= bad
    rows = np.nonzero(any_bad)[0]
    texts: list = [None] * n
    for row in rows:
        texts[row] = json.dumps({col: original[int(row)].as_py() for col, (bad, original) in faults.items()
                                 if bad[row]}, ensure_ascii=False)
    return pa.array(texts, pa.string())
