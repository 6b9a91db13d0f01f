"""Vectorized tf.Example encoding and TFRecord framing.

A batch of list columns of float32, int64 and bytes (what transforms.example_encoding writes) is encoded
without a per-row Python step: rows are grouped by their layout (the number of values per column, the varint
width of int64 values, the length of bytes values), and within a group every serialized Example has the same
length, so the group is a (rows, bytes) uint8 matrix filled column slice by column slice, a cache-sized tile
of rows at a time (BENCHMARKS.md has what the tiles buy); given each row's shard, one matrix per shard, the
group's rows sorted by shard. The batch's rows are put in (group, shard) order once, and each column's values
gathered in that order once, so every group reads a contiguous run of them. Categorical strings have a few
distinct lengths, so they add a few groups, not a per-row step.
Framing adds the TFRecord header (the same for every row of a group) and each record's masked CRC32C (one C
call per record). Batches with more layouts than max_groups(rows) (free text of many lengths, long lists)
return None and are encoded by tfx_bsl's C++ encoder instead.

The bytes are a valid tf.Example: Features' map entries in column order, packed float/int64 lists, an empty
list for an empty one, an empty Feature for a null one (as tfx_bsl writes them). tests/test_kernels.py reads
them back through tf.data (which checks lengths and CRCs) and compares them with tfx_bsl's encoding.
"""
from __future__ import annotations

import struct

import google_crc32c
import numpy as np
import pyarrow as pa


MAX_GROUPS = 64  # layouts a batch may always have; larger batches may have one per MIN_GROUP_ROWS rows
MIN_GROUP_ROWS = 256  # below this many rows per layout on average, the per-group set-up outweighs tfx_bsl
TILE_BYTES = 1 << 20  # records are assembled and checksummed in tiles of about this size, while in L2 cache
# ... but of at least this many rows: each tile costs a numpy call per value column, which for wide records (a
# 5,000-column row is ~100 KB: 10 rows a tile) cost far more than the cache saves (BENCHMARKS.md)
MIN_TILE_ROWS = 1024
MAX_LIST = 16  # longer int64 and bytes lists go to tfx_bsl (the layout tracks each value's width or length)
# A batch whose records would take more than this is encoded this many bytes of records at a time: a wide
# table's batch (5,000 columns: ~100 KB a record) would otherwise be a gigabyte of records at once, beside the
# batch itself. The trips table's 65,536-row batches (~45 MB of records) are encoded whole (BENCHMARKS.md).
SLICE_BYTES = 128 << 20
# What a feature costs in a record beyond its name and values: the map entry's, key's, Feature's and list's
# tags and lengths.
FEATURE_OVERHEAD = 12
FLOAT, INT, BYTES = "float", "int", "bytes"


def max_groups(rows: int) -> int:
    return max(MAX_GROUPS, rows // MIN_GROUP_ROWS)


def row_slices(batch: pa.RecordBatch, budget: int | None = None) -> list[tuple[int, int]]:
    """(start, stop) row ranges covering the batch, in order, whose records take about `budget` bytes
    (SLICE_BYTES unless given) at most, estimated from the batch's bytes and its feature names (an upper bound
    for float32 and int64 values)."""
    budget = SLICE_BYTES if budget is None else budget
    n = batch.num_rows
    if n == 0:
        return [(0, 0)]
    per_row = batch.nbytes / n + sum(len(name.encode("utf-8")) + FEATURE_OVERHEAD for name in batch.schema.names)
    step = max(1, int(budget // per_row))
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def _kind(t: pa.DataType) -> str | None:
    if pa.types.is_float32(t):
        return FLOAT
    if pa.types.is_int64(t):
        return INT
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return BYTES
    return None


def _binary_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(value offsets into data, data as uint8) of a binary or string array without nulls."""
    buffers = values.buffers()
    width = 8 if pa.types.is_large_binary(values.type) or pa.types.is_large_string(values.type) else 4
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if width == 8 else np.int32, count=len(values) + 1,
                            offset=values.offset * width).astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.empty(0, np.uint8)
    return offsets, data


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _varint_widths(u: np.ndarray) -> np.ndarray:
    """Bytes each uint64 takes as a varint (1..10)."""
    w = np.ones(u.shape, dtype=np.int64)
    for shift in range(7, 64, 7):
        w += (u >> np.uint64(shift)) > 0
    return w


def _varint_matrix(u: np.ndarray, width: int) -> np.ndarray:
    """(n, width) varint bytes of uint64 values that all take `width` bytes."""
    out = np.empty((u.size, width), dtype=np.uint8)
    for j in range(width):
        byte = ((u >> np.uint64(7 * j)) & np.uint64(0x7F)).astype(np.uint8)
        out[:, j] = byte | (0x80 if j < width - 1 else 0)
    return out


def _mask(crc):
    """TFRecord's CRC masking, of a Python int or elementwise of a uint64 array (the caller narrows to 32 bits)."""
    return ((crc >> 15) | (crc << 17)) + 0xA282EAD8


def masked_crc(data) -> int:
    """TFRecord's masked CRC32C of a bytes-like object."""
    return _mask(google_crc32c.value(data)) & 0xFFFFFFFF


def frame_records(records: list[bytes]) -> bytes:
    """TFRecord framing of serialized records one by one (for records another encoder made): length, masked
    CRC32C of length, data, masked CRC32C of data."""
    parts = []
    for r in records:
        header = struct.pack("<Q", len(r))
        parts.append(header + struct.pack("<I", masked_crc(header)) + r + struct.pack("<I", masked_crc(r)))
    return b"".join(parts)


def _masked_crcs(rows: np.ndarray) -> np.ndarray:
    """Masked CRC32C of each row of a (m, n) uint8 matrix, little-endian uint32: one C call per row, driven by
    map() rather than Python bytecode, and the masking vectorized."""
    return _mask(np.fromiter(map(google_crc32c.value, rows), dtype=np.uint64, count=rows.shape[0])).astype("<u4")


class FramedRecords:
    """Framed TFRecord bytes of a batch's rows, by layout group and, within a group, by key; split() hands
    them out by key."""

    def __init__(self, groups: list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]):
        # (row indices sorted by key, ascending within a key; the keys present, ascending; one (rows, L) uint8
        # array of framed records per key present, each its own array)
        self._groups = groups

    def split(self, n: int) -> tuple[list[list[np.ndarray]], list[np.ndarray]]:
        """(blocks, rows) for each key 0..n-1: the framed records of the rows holding it as contiguous uint8
        blocks, group by group, rows ascending within a group; and the batch rows those blocks hold, in their
        order: what a shard index must list beside the records. The blocks are the records themselves, each
        key's its own arrays, so one key's records can be freed while another's are still in use."""
        blocks: list[list[np.ndarray]] = [[] for _ in range(n)]
        rows_of: list[list[np.ndarray]] = [[] for _ in range(n)]
        for rows, part_keys, parts in self._groups:
            start = 0
            for key, part in zip(part_keys, parts):
                blocks[key].append(part)
                rows_of[key].append(rows[start:start + len(part)])
                start += len(part)
        return blocks, [np.concatenate(r) if r else np.empty(0, np.int64) for r in rows_of]


def encode_framed(batch: pa.RecordBatch, keys: np.ndarray | None = None) -> FramedRecords | None:
    """The batch as framed tf.Example records, or None when the fast path does not apply (a type other than
    float32, int64 and bytes lists, null values inside a list, or too many row layouts). keys (the shard key
    of each row; none: every row key 0): each layout group's rows are encoded in key order, rows ascending
    within a key, each key's records into an array of their own, so that split() hands out the records
    themselves, not a sorted copy, and a shard's records are freed once written whatever the other shards'."""
    n = batch.num_rows
    columns = []
    for name, arr in zip(batch.schema.names, batch.columns):
        t = arr.type
        kind = _kind(t.value_type) if pa.types.is_list(t) else None
        if kind is None:
            return None
        offsets = np.asarray(arr.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
        counts = np.diff(offsets)
        if arr.null_count:  # tfx_bsl writes a null row's feature as an empty Feature: count -1
            counts = np.where(arr.is_null().to_numpy(zero_copy_only=False), -1, counts)
        values = arr.values.slice(offsets[0], offsets[-1] - offsets[0])
        if values.null_count:
            return None
        flat = _binary_buffers(values) if kind == BYTES else values.to_numpy(zero_copy_only=False)
        columns.append((name.encode("utf-8"), kind, offsets - offsets[0], counts, flat))
    # Each row's layout: values per column, and each value's varint width (int64) or length (bytes).
    layout = []
    widths = []  # per column: None (float32), each value's varint width (int64) or byte length (bytes)
    for _, kind, offsets, counts, flat in columns:
        layout.append(counts)
        if kind == FLOAT:
            widths.append(None)
            continue
        w = _varint_widths(flat.view(np.uint64)) if kind == INT else np.diff(flat[0])
        longest = int(counts.max()) if n else 0
        if longest > MAX_LIST:
            return None
        for j in range(longest):
            has = counts > j
            layout.append(np.where(has, w[np.minimum(offsets[:-1] + j, max(w.size - 1, 0))] if w.size else 0, 0))
        widths.append(w)
    group_of = _layout_groups(layout, n, max_groups(n))
    if group_of is None:
        return None
    # Every row in (group, key) order, rows ascending within both: each group's rows, and each key's within
    # them, are then one contiguous run, and each column's values are gathered into that order once for all
    # groups (one pass over a column that stays in cache, instead of one per group: BENCHMARKS.md).
    keys = np.zeros(n, np.int64) if keys is None else np.asarray(keys, np.int64)
    order = np.lexsort((keys, group_of))
    sorted_groups, sorted_keys = group_of[order], keys[order]
    group_starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]) if n else np.empty(0, int)
    key_starts = np.flatnonzero(np.r_[True, (sorted_groups[1:] != sorted_groups[:-1])
                                      | (sorted_keys[1:] != sorted_keys[:-1])]) if n else np.empty(0, int)
    identity = n > 0 and bool(np.all(order[1:] > order[:-1]))
    ordered = [_in_order(order, identity, column) for column in columns]
    groups = []
    for lo, hi in zip(group_starts, [*group_starts[1:], n]):
        cuts = key_starts[(key_starts >= lo) & (key_starts < hi)]
        records = _encode_group(order, int(lo), int(hi), columns, ordered, widths, [*(cuts - lo), hi - lo])
        groups.append((order[lo:hi], sorted_keys[cuts], records))
    return FramedRecords(groups)


def _in_order(order: np.ndarray, identity: bool, column) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A column with its rows in `order`: (starts, values). starts: each row's first value's index into the
    column's values, or None when every row holds exactly one value (the index is then the row's). values:
    each row's value, for a float32 or int64 column whose rows hold at most one (None otherwise); a null or
    empty row's entry is a placeholder that its group never reads."""
    _, kind, offsets, counts, flat = column
    n = order.size
    single = n > 0 and int(counts.min()) == int(counts.max()) == 1  # offsets are then 0, 1, ..., n
    starts = None if single else offsets[:-1][order]
    if kind == BYTES or n == 0 or int(counts.max()) > 1:
        return starts, None
    values = flat if kind == FLOAT else flat.view(np.uint64)
    if single:
        return None, (values if identity else values[order])
    return starts, (values[np.minimum(starts, values.size - 1)] if values.size else None)


def _layout_groups(layout: list[np.ndarray], n: int, limit: int) -> np.ndarray | None:
    """A group id per row such that rows share an id exactly when their layouts are equal; None beyond
    `limit` layouts. Mixed-radix codes over each column's distinct values (1-D uniques only)."""
    code = np.zeros(n, dtype=np.int64)
    radix = 1
    for values in layout:
        if values.size and values.min() == values.max():
            continue  # the same in every row
        distinct, inverse = np.unique(values, return_inverse=True)
        radix *= len(distinct)  # at most limit * n: no overflow
        code = code * len(distinct) + inverse
        if radix > limit:  # compact, and give up when the rows really hold too many layouts
            distinct_codes, code = np.unique(code, return_inverse=True)
            radix = len(distinct_codes)
            if radix > limit:
                return None
    return code


def _bytes_payload(idx: np.ndarray, flat: tuple[np.ndarray, np.ndarray], lengths: np.ndarray) -> np.ndarray:
    """(m, bytes) uint8 of the bytes values idx (m rows of k value indices), each as tag, varint length and
    data (lengths equal by row)."""
    value_offsets, data = flat
    parts = []
    for j in range(idx.shape[1]):
        length = int(lengths[idx[0, j]])
        prefix = np.frombuffer(b"\x0a" + _varint(length), np.uint8)
        parts.append(np.broadcast_to(prefix, (idx.shape[0], prefix.size)))
        if length:
            parts.append(data[value_offsets[idx[:, j]][:, None] + np.arange(length)])
    return np.concatenate(parts, axis=1)


def _encode_group(order: np.ndarray, lo: int, hi: int, columns, ordered, widths,
                  cuts: list[int]) -> list[np.ndarray]:
    """The framed records of the rows order[lo:hi], which share one layout, as one (rows, framed length)
    uint8 array per part of them [cuts[i]:cuts[i + 1]]. ordered: each column's starts and single values
    in `order` (_in_order)."""
    m = hi - lo
    pieces: list = []  # bytes (the same in every row) or (m, w) uint8 matrices
    body_len = 0
    for (key, kind, _, counts, flat), (starts_all, values_all), w in zip(columns, ordered, widths):
        k = int(counts[order[lo]])
        if k < 0:  # a null value: an empty Feature (no list at all), as tfx_bsl writes it
            entry = b"\x0a" + _varint(len(key)) + key + b"\x12\x00"
            pieces.append(b"\x0a" + _varint(len(entry)) + entry)
            body_len += len(pieces[-1])
            continue
        if k == 1 and values_all is not None:
            one, idx = values_all[lo:hi], None
        else:
            starts = order[lo:hi] if starts_all is None else starts_all[lo:hi]
            one, idx = None, starts[:, None] + np.arange(k)
        if kind == BYTES:  # BytesList: each value its own length-delimited field (not packed)
            payload = _bytes_payload(idx, flat, w) if k else None
            payload_len, inner, tag = (payload.shape[1] if k else 0), b"", b"\x0a"
        elif kind == FLOAT:
            payload_len = 4 * k
            if k:
                values = one.reshape(m, 1) if idx is None else flat[idx]
                payload = values.astype("<f4", copy=False)  # float32: written as 4-byte units below
                inner = b"\x0a" + _varint(payload_len)
            else:
                payload, inner = None, b""
            tag = b"\x12"
        else:
            if k:
                vals = one.reshape(m, 1) if idx is None else flat.view(np.uint64)[idx]
                first = int(order[lo] if starts_all is None else starts_all[lo])  # the first row's first value
                vw = w[first:first + k]  # the same in every row of the group, value by value
                payload = np.concatenate([_varint_matrix(vals[:, j], int(vw[j])) for j in range(k)], axis=1)
                payload_len = payload.shape[1]
                inner = b"\x0a" + _varint(payload_len)
            else:
                payload, payload_len, inner = None, 0, b""
            tag = b"\x1a"
        list_len = len(inner) + payload_len
        feature = tag + _varint(list_len)
        feature_len = len(feature) + list_len
        entry = b"\x0a" + _varint(len(key)) + key + b"\x12" + _varint(feature_len)
        entry_len = len(entry) + feature_len
        head = b"\x0a" + _varint(entry_len)
        pieces.append(head + entry + feature + inner)
        body_len += len(head) + entry_len
        if payload is not None:
            pieces.append(payload)
    example_head = b"\x0a" + _varint(body_len)
    record_len = len(example_head) + body_len
    header = struct.pack("<Q", record_len)
    header += struct.pack("<I", masked_crc(header))
    # One template row holds every constant byte; broadcasting it is one pass over the matrix, after which
    # only the value columns are written (a narrow strided copy per piece costs about as much as the fill).
    template = np.zeros(len(header) + record_len + 4, dtype=np.uint8)
    values = []  # (position, matrix)
    pos = 0
    for piece in [header, example_head] + pieces:
        if isinstance(piece, bytes):
            template[pos:pos + len(piece)] = np.frombuffer(piece, np.uint8)
            pos += len(piece)
        else:
            values.append((pos, piece))
            pos += piece.shape[1] * piece.itemsize
    rows_per_tile = max(MIN_TILE_ROWS, TILE_BYTES // template.size)
    parts = []
    for begin, end in zip(cuts[:-1], cuts[1:]):
        out = np.empty((end - begin, template.size), dtype=np.uint8)
        for a in range(begin, end, rows_per_tile):  # tile by tile, so the stores below hit rows still in cache
            b = min(a + rows_per_tile, end)
            tile = out[a - begin:b - begin]
            tile[:] = template
            for at, piece in values:
                if piece.dtype == np.uint8:
                    tile[:, at:at + piece.shape[1]] = piece[a:b]
                    continue
                for j in range(piece.shape[1]):  # an unaligned strided float32 view: one 4-byte store per row
                    np.ndarray((b - a,), "<f4", buffer=out, offset=(a - begin) * out.strides[0] + at + 4 * j,
                               strides=(out.strides[0],))[:] = piece[a:b, j]
            tile[:, pos:] = _masked_crcs(tile[:, len(header):pos]).view(np.uint8).reshape(b - a, 4)
        parts.append(out)
    return parts
