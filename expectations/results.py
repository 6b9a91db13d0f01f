"""GE's success rule for row expectations, from nanguard's counts.

Great Expectations evaluates a column map expectation over the rows it does not skip: non-null values for most
column types (on pandas, NaN is null), every row for not-null and be-null (and for nanguard's own types), the
rows ignore_row_if keeps for column-pair and multicolumn types. It succeeds when the share of expected rows
among those is at least `mostly` (default 1); with no row to look at, it succeeds.
"""
from __future__ import annotations


def column_map_result(expectation: dict, unexpected: int, element_count: int, evaluated: int) -> dict:
    """{"success", "element_count", "unexpected_count", "unexpected_percent", "missing_count"} as GE reports.

    evaluated: the rows GE evaluates (its nonnull_count), from the rule's domain."""
    mostly = float(expectation["kwargs"].get("mostly", 1.0) or 1.0)
    success = evaluated == 0 or (float(evaluated) - float(unexpected)) / float(evaluated) >= mostly
    return {"success": bool(success), "element_count": element_count, "unexpected_count": unexpected,
            "unexpected_percent": 100.0 * unexpected / evaluated if evaluated else 0.0,
            "missing_count": element_count - evaluated}
