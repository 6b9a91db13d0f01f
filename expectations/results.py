"""GE's success rule for column map expectations, from nanguard's counts.

Great Expectations evaluates a column map expectation over the non-null values (on pandas, NaN is null), and it
succeeds when the share of expected values among them is at least `mostly` (default 1). Not-null and be-null
are the exceptions: they count over every row. An expectation with no value to look at succeeds.
"""
from __future__ import annotations

OVER_ALL_ROWS = {"expect_column_values_to_not_be_null", "expect_column_values_to_be_null"}
# Great Expectations' own column map types that nanguard evaluates (the others are nanguard's, over all rows).
GE_COLUMN_MAP_TYPES = {"expect_column_values_to_not_be_null", "expect_column_values_to_be_null",
                       "expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
                       "expect_column_values_to_not_be_in_set"}


def column_map_result(expectation: dict, unexpected: int, element_count: int, nonnull: int) -> dict:
    """{"success", "element_count", "unexpected_count", "unexpected_percent", "missing_count"} as GE reports."""
    over = element_count if expectation["type"] in OVER_ALL_ROWS else nonnull
    mostly = float(expectation["kwargs"].get("mostly", 1.0))
    success = over == 0 or (over - unexpected) / over >= mostly
    return {"success": bool(success), "element_count": element_count, "unexpected_count": unexpected,
            "unexpected_percent": 100.0 * unexpected / over if over else 0.0,
            "missing_count": element_count - nonnull}
