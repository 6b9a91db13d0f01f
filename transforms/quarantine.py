"""Split a checked batch into clean rows and quarantined rows that carry every reason they violated.

Quarantined rows keep their original values (NaN/Inf included) plus __source_file, __row_index and
__reasons; nothing is dropped. Reason lists are built with array operations; the per-row lists come out
in rule order.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from transforms.columns import REASONS, UNPARSEABLE, BatchView, append_column, drop_columns
from transforms.row_checks import QUARANTINE


@dataclasses.dataclass
class CheckOutcome:
    clean: pa.RecordBatch
    quarantined: pa.RecordBatch  # may have zero rows
    reason_counts: dict[str, int]  # rows violating each reason, warn-only rules included
    rule_counts: list[int]  # rows violating each rule (any of its reasons), in rule order


def check_batch(batch: pa.RecordBatch, rules) -> CheckOutcome:
    view = BatchView(batch)
    n = batch.num_rows
    bad = np.zeros(n, dtype=bool)
    counts: dict[str, int] = {}
    quarantining: list[tuple[str, np.ndarray]] = []
    rule_counts = []
    for rule in rules:
        any_reason = np.zeros(n, dtype=bool)
        for reason, mask in rule.evaluate(view):
            hits = int(np.count_nonzero(mask))
            if not hits:
                continue
            any_reason |= mask
            counts[reason] = counts.get(reason, 0) + hits
            if rule.action == QUARANTINE:
                bad |= mask
                quarantining.append((reason, mask))
        rule_counts.append(int(np.count_nonzero(any_reason)))
    bad_rows = np.nonzero(bad)[0]
    quarantined = append_column(batch.filter(pa.array(bad)), REASONS, _reason_lists(n, bad_rows, quarantining))
    clean = batch.filter(pa.array(~bad)) if bad_rows.size else batch
    if UNPARSEABLE in clean.schema.names:
        clean = drop_columns(clean, [UNPARSEABLE])
    return CheckOutcome(clean, quarantined, counts, rule_counts)


def _reason_lists(n: int, bad_rows: np.ndarray, quarantining) -> pa.ListArray:
    position = np.full(n, -1, dtype=np.int64)
    position[bad_rows] = np.arange(bad_rows.size)
    names = [reason for reason, _ in quarantining]
    rows = [position[np.nonzero(mask)[0]] for _, mask in quarantining]
    ids = [np.full(r.size, i, dtype=np.int64) for i, r in enumerate(rows)]
    rows_all = np.concatenate(rows) if rows else np.empty(0, np.int64)
    ids_all = np.concatenate(ids) if ids else np.empty(0, np.int64)
    order = np.lexsort((ids_all, rows_all))
    offsets = np.zeros(bad_rows.size + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows_all, minlength=bad_rows.size), out=offsets[1:])
    values = pa.array(names, pa.string()).take(pa.array(ids_all[order])) if names else pa.array([], pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets), values)
