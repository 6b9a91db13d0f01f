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
    text = clean_text(arr)
    present = len(text) - text.null_count
    if present == 0:
        return "string"
    is_float = _matches(text, FLOAT_PATTERN)
    numbers = int(is_float.sum())
    others = present - numbers
    if numbers <= others or others > max(MAX_TEXT_SHARE * present, 1):
        return "string"
    is_int = _matches(text, INT_PATTERN)
    return "int" if is_int.sum() == is_float.sum() else "float"


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
