"""Split a checked batch into clean rows and quarantined rows that carry every reason they violated.

Quarantined rows keep their original values (NaN/Inf included) plus __source_file, __row_index and
__reasons; nothing is dropped. Reason lists are built with array operations; the per-row lists come out
in rule order.

Every rule is evaluated on the values as read. Rows that violate a `quarantine` or `fail` rule go to
quarantine; in the rows that stay, values that violate a `clip` rule are moved to the rule's nearest allowed
value and values that violate an `impute` rule are replaced by the clean mean or median of their column
(`impute` maps column -> value; None, in the fit pass, leaves the cell missing so the clean statistics are
taken over clean values only). A cell to impute without a clean value to impute from sends its row to
quarantine instead: a repair that cannot be made is never silently skipped.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from transforms.columns import (REASONS, ROW_INDEX, SOURCE_FILE, UNPARSEABLE, BatchView, append_columns, drop_columns,
                                indicator_name, without_originals)
from transforms.reasons import Code, reason
from transforms.row_checks import CLIP, IMPUTE, REMOVES_ROWS, WARN, MissingCells

SAMPLE_SIZE = 20  # GE's partial_unexpected_list length


@dataclasses.dataclass
class CheckOutcome:
    clean: pa.RecordBatch
    quarantined: pa.RecordBatch  # may have zero rows
    reason_counts: dict[str, int]  # rows violating each reason, warn-only and repaired ones included
    rule_counts: list[int]  # rows violating each rule (any of its reasons), in rule order
    rule_domains: list[int] = dataclasses.field(default_factory=list)  # rows each rule evaluates (GE's nonnull)
    repaired: dict[str, int] = dataclasses.field(default_factory=dict)  # "clipped:<col>" / "imputed:<col>" -> cells
    samples: list[list] = dataclasses.field(default_factory=list)  # per rule: [[(source, row), values], ...]
    quarantined_by: dict[str, int] = dataclasses.field(default_factory=dict)  # rows each reason sent to quarantine
    warned: dict[str, int] = dataclasses.field(default_factory=dict)  # rows each warn-only reason flagged (kept)
    # rule index -> rows its row_condition selects (GE's element_count for such a rule); rules without one: none
    rule_selected: dict[int, int] = dataclasses.field(default_factory=dict)


def rule_columns(rule) -> tuple[str, ...]:
    """The columns a rule reads, for samples of unexpected values (empty for table-wide rules)."""
    if hasattr(rule, "columns"):
        return tuple(rule.columns)
    if hasattr(rule, "column"):
        return (rule.column,)
    return ()


def check_batch(batch: pa.RecordBatch, rules, impute: dict | None = None, samples: int = 0) -> CheckOutcome:
    view = BatchView(batch)
    n = batch.num_rows
    bad = np.zeros(n, dtype=bool)
    counts: dict[str, int] = {}
    removed: dict[str, int] = {}
    warned: dict[str, int] = {}
    quarantining: list[tuple[str, np.ndarray]] = []
    rule_counts, rule_domains, rule_samples = [], [], []
    rule_selected: dict[int, int] = {}
    repairs: list[tuple[object, np.ndarray]] = []
    for index, rule in enumerate(rules):
        any_reason = np.zeros(n, dtype=bool)
        for why, mask in rule.evaluate(view):
            hits = int(np.count_nonzero(mask))
            if not hits:
                continue
            any_reason |= mask
            counts[why] = counts.get(why, 0) + hits
            if rule.action in REMOVES_ROWS or (
                    rule.action == IMPUTE and impute is not None and impute.get(rule.column) is None):
                bad |= mask  # (for impute: nothing clean to impute from)
                quarantining.append((why, mask))
                removed[why] = removed.get(why, 0) + hits
            elif rule.action == WARN:
                warned[why] = warned.get(why, 0) + hits
        hits = int(np.count_nonzero(any_reason))
        rule_counts.append(hits)
        domain = rule.domain(view) if hasattr(rule, "domain") else None
        rule_domains.append(n if domain is None else int(np.count_nonzero(domain)))
        condition = getattr(rule, "condition", None)  # a row_condition (transforms.conditions.Conditional)
        if condition is not None:
            rule_selected[index] = int(np.count_nonzero(view.rows_where(condition)))
        rule_samples.append(_sample(batch, any_reason, rule_columns(rule), samples) if samples and hits else [])
        if rule.action in (CLIP, IMPUTE) and hits:
            repairs.append((rule, any_reason))
    repaired_batch, repaired = _repair(batch, view, repairs, bad, impute) if repairs else (batch, {})
    if impute is not None:  # the write pass: indicator columns beside the imputed ones
        repaired_batch = _with_indicators(repaired_batch, view, rules)
    bad_rows = np.nonzero(bad)[0]
    quarantined = append_columns(batch.filter(pa.array(bad)), {REASONS: _reason_lists(n, bad_rows, quarantining)})
    kept = without_originals(repaired_batch)  # the riders go with quarantined rows only
    clean = kept.filter(pa.array(~bad)) if bad_rows.size else kept
    if UNPARSEABLE in clean.schema.names:
        clean = drop_columns(clean, [UNPARSEABLE])
    return CheckOutcome(clean, quarantined, counts, rule_counts, rule_domains, repaired, rule_samples, removed, warned,
                        rule_selected)


def _with_indicators(batch: pa.RecordBatch, view: BatchView, rules) -> pa.RecordBatch:
    """COL__missing (int64 1 where COL was null, else 0) for each MissingCells rule with an indicator."""
    return append_columns(batch, {indicator_name(rule.column): pa.array(view.numeric(rule.column)[1].astype(np.int64))
                                  for rule in rules if isinstance(rule, MissingCells) and rule.indicator})


def _repair(batch: pa.RecordBatch, view: BatchView, repairs, bad: np.ndarray, impute: dict | None):
    """The batch with clip/impute rules applied to rows that stay, and the repaired cell counts."""
    columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    repaired: dict[str, int] = {}
    for rule, mask in repairs:
        mask = mask & ~bad
        if not mask.any():
            continue
        col = rule.column
        values, missing = columns.get(col) or (view.numeric(col)[0].copy(), view.numeric(col)[1].copy())
        integer = pa.types.is_integer(batch.schema.field(col).type)
        if rule.action == CLIP:
            values[mask] = rule.clip(values[mask], integer)
            key = reason(Code.CLIPPED, col)
        elif impute is None:  # fit pass: leave the cell out of the clean statistics
            missing[mask] = True
            key = reason(Code.IMPUTED, col)
        else:
            values[mask] = np.round(impute[col]) if integer else impute[col]
            missing[mask] = False
            key = reason(Code.IMPUTED, col)
        columns[col] = (values, missing)
        repaired[key] = repaired.get(key, 0) + int(np.count_nonzero(mask))
    if not columns:
        return batch, repaired
    arrays = list(batch.columns)
    for col, (values, missing) in columns.items():
        i = batch.schema.get_field_index(col)
        typ = batch.schema.field(i).type
        arr = pa.array(values, mask=missing if missing.any() else None)
        arrays[i] = arr.cast(typ, safe=False) if arr.type != typ else arr
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema), repaired


def _sample(batch: pa.RecordBatch, mask: np.ndarray, columns: tuple[str, ...], k: int) -> list:
    """The first k flagged rows as [[source file, row index], value or [values]], in row order."""
    if not columns:
        return []
    rows = pa.array(np.nonzero(mask)[0][:k])
    schema = batch.schema  # lookups by name through the schema's index (schema.names builds a list per call)
    if schema.get_field_index(SOURCE_FILE) >= 0 and schema.get_field_index(ROW_INDEX) >= 0:
        keys = zip(batch.column(SOURCE_FILE).take(rows).to_pylist(), batch.column(ROW_INDEX).take(rows).to_pylist())
    else:
        keys = (("", int(r)) for r in rows.to_pylist())
    values = [[None if v != v else v for v in batch.column(c).take(rows).to_pylist()]  # NaN is null
              for c in columns]
    cells = values[0] if len(columns) == 1 else [list(v) for v in zip(*values)]
    return [[list(key), cell] for key, cell in zip(keys, cells)]


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
