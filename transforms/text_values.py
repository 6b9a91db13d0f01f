"""Text cells (CSV) to numbers, vectorized with Arrow's RE2 kernels.

Accepted float spellings: decimal and exponent forms, nan, inf, infinity (any case, optional sign); 1e400
parses to +Inf. Empty and whitespace-only cells are missing. A cell that is not a number ('abc', '1,5') is
unparseable: its row is a row fault, not a reason to type the whole column as text.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FLOAT_PATTERN = r"(?i)^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|inf|infinity|nan)$"
INT_PATTERN = r"^[+-]?[0-9]{1,18}$"  # 18 digits always fit int64
# A column is numeric when numbers outnumber the other cells of its sample and those others are at most
# this share of the non-empty cells (or a single cell): a stray 'abc' is a row fault, not a text column.
MAX_TEXT_SHARE = 0.1


def clean_text(arr: pa.Array) -> pa.Array:
    """Trimmed text with empty cells as null."""
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _matches(text: pa.Array, pattern: str) -> np.ndarray:
    return pc.fill_null(pc.match_substring_regex(text, pattern), False).to_numpy(zero_copy_only=False)


def infer_kind(arr: pa.Array) -> str:
    """'int', 'float' or 'string' for a sample of a text column; an all-empty sample is 'string'."""
    return infer_kinds([arr])[0]


def infer_kinds(arrays: list[pa.Array]) -> list[str]:
    """infer_kind of each sample, with one pass of each Arrow kernel over all of them together (a small CSV
    file's columns cost one set of kernel calls, not one per column)."""
    if not arrays:
        return []
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    text = clean_text(pa.concat_arrays([a if a.type == pa.string() else a.cast(pa.string()) for a in arrays]))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])

    def per_column(mask: np.ndarray) -> np.ndarray:
        sums = np.add.reduceat(mask.astype(np.int64), starts) if mask.size else np.zeros(len(arrays), np.int64)
        return np.where(lengths > 0, sums, 0)  # reduceat gives an empty segment its start's value

    present = per_column(~text.is_null().to_numpy(zero_copy_only=False))
    numbers = per_column(_matches(text, FLOAT_PATTERN))
    ints = per_column(_matches(text, INT_PATTERN))
    kinds = []
    for p, num, i in zip(present, numbers, ints):
        others = p - num
        if p == 0 or num <= others or others > max(MAX_TEXT_SHARE * p, 1):
            kinds.append("string")
        else:
            kinds.append("int" if i == num else "float")
    return kinds


def parse_numbers(arr: pa.Array, kind: str) -> tuple[pa.Array, np.ndarray]:
    """(float64 or int64 column, unparseable mask); unparseable cells become null in the column."""
    text = clean_text(arr)
    ok = _matches(text, INT_PATTERN if kind == "int" else FLOAT_PATTERN)
    present = ~text.is_null().to_numpy(zero_copy_only=False)
    bad = present & ~ok
    if bad.any():
        text = pc.if_else(pa.array(bad), pa.scalar(None, pa.string()), text)
    text = pc.replace_substring_regex(text, r"^\+", "")  # '+5', '+inf': numbers, which Arrow's cast refuses
    return pc.cast(text, pa.int64() if kind == "int" else pa.float64()), bad


def sample_kinds(samples: list[pa.RecordBatch], vector_columns=frozenset()) -> list[dict[str, str | None]]:
    """Each sample's column kinds: infer_kind's, 'float_list' for vector_columns, None for a column with no value
    in the sample (still open: a later sample decides). Every sample's columns go through one infer_kinds call,
    so many small CSV files cost one set of Arrow kernel calls, not one set each."""
    kinds = [{n: ("float_list" if n in vector_columns else None) for n in s.schema.names} for s in samples]
    where, arrays = [], []
    for k, sample in zip(kinds, samples):
        for name, column in zip(sample.schema.names, sample.columns):
            if name not in vector_columns:
                where.append((k, name, column.null_count == len(column)))
                arrays.append(column)
    for (k, name, empty), kind in zip(where, infer_kinds(arrays)):
        k[name] = None if kind == "string" and empty else kind
    return kinds


def widened_kind(kind: str | None, arr: pa.Array) -> str | None:
    """The kind a column inferred from an earlier sample takes after seeing these cells too: an integer column
    becomes float when a decimal number appears; a column empty so far takes the kind of its first cells (None
    while still empty). Text stays text, and a stray word in a numeric column stays a row fault."""
    if kind == "int":
        text = clean_text(arr)
        decimal = _matches(text, FLOAT_PATTERN) & ~_matches(text, INT_PATTERN)
        return "float" if decimal.any() else "int"
    if kind is None:
        present = len(arr) - clean_text(arr).null_count
        return infer_kind(arr) if present else None
    return kind


def parse_number_lists(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Cells like '0;1;0', '0.2 0.8' or '[0.2, 0.8]' to list<float64>; (column, unparseable mask)."""
    text = clean_text(arr)
    missing = text.is_null().to_numpy(zero_copy_only=False)
    stripped = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.fill_null(text, ""), r"^\[|\]$", ""))
    parts = pc.split_pattern_regex(stripped, r"[;,\s]+")
    offsets = np.asarray(parts.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    values, bad_elem = parse_numbers(parts.flatten(), "float")
    c = np.concatenate([[0], np.cumsum(bad_elem)])
    bad = ((c[offsets[1:]] - c[offsets[:-1]]) > 0) & ~missing
    lists = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values,
                                     mask=pa.array(missing) if missing.any() else None)
    return lists, bad
