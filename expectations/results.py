"""Each expectation's result as Great Expectations reports it, from nanguard's counts and raw profile.

Row (column map) expectations take their counts from the write pass; aggregate expectations are evaluated on
the raw profile (expectations.aggregates).

Great Expectations evaluates a column map expectation over the rows it does not skip: non-null values for most
column types (on pandas, NaN is null), every row for not-null and be-null (and for nanguard's own types), the
rows ignore_row_if keeps for column-pair and multicolumn types. It succeeds when the share of expected rows
among those is at least `mostly` (default 1); with no row to look at, it succeeds.
"""
from __future__ import annotations

from expectations.aggregates import evaluate_aggregate
from expectations.compiler import CompiledSuite
from transforms.counts import RowCounts


def column_map_result(expectation: dict, unexpected: int, element_count: int, evaluated: int) -> dict:
    """{"success", "element_count", "unexpected_count", "unexpected_percent", "missing_count"} as GE reports.

    evaluated: the rows GE evaluates (its nonnull_count), from the rule's domain."""
    mostly = float(expectation["kwargs"].get("mostly", 1.0))  # 0 is a valid share (checked at compile)
    success = evaluated == 0 or (float(evaluated) - float(unexpected)) / float(evaluated) >= mostly
    return {"success": bool(success), "element_count": element_count, "unexpected_count": unexpected,
            "unexpected_percent": 100.0 * unexpected / evaluated if evaluated else 0.0,
            "missing_count": element_count - evaluated}


def expectation_results(compiled: CompiledSuite, counts: RowCounts, raw: dict, columns: dict[str, str]) -> list[dict]:
    """Each compiled expectation with its result: row types from the write pass's counts (`mostly` over the rows
    each rule evaluates), aggregate types from the raw profile. columns: input column -> Arrow type name."""
    rows = raw["rows"]
    out = []
    for i, e in enumerate(compiled.expectations):
        if e["kind"] == "aggregate":
            out.append(dict(e, **evaluate_aggregate(e, raw, columns)))
            continue
        evaluated = counts.evaluated.get(i, rows)  # absent: the rule was not bound (no usable bounds)
        # GE counts an expectation with a row_condition over the rows the condition selects
        result = column_map_result(e, counts.unexpected.get(i, 0), counts.selected.get(i, rows), evaluated)
        result["partial_unexpected_list"] = [value for _, value in counts.samples.get(i, [])]
        out.append(dict(e, **result))
    return out
