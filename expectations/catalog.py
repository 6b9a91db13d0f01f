"""Every expectation type nanguard evaluates, what kind it is, and which on_fail actions it takes.

Row types are checked on every row (vectorized per batch) and their violating rows are quarantined, repaired
or counted; aggregate types are evaluated once, on the raw profile, and pass or fail the dataset. nanguard's
own types cover what Great Expectations lacks; expectations.ge_custom registers them with GE.
"""
from __future__ import annotations

# Great Expectations' row (column map, column pair map, multicolumn map) types.
GE_ROW_TYPES = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_value_z_scores_to_be_less_than",
    "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_multicolumn_sum_to_equal",
    "expect_column_value_lengths_to_be_between",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
)
# nanguard's own row types (registered as GE custom expectations by expectations.ge_custom).
NANGUARD_ROW_TYPES = (
    "expect_column_values_to_be_finite",
    "expect_column_values_to_fit_dtype",
    "expect_column_values_to_not_be_extreme",
    "expect_column_values_to_be_probability_vector",
    "expect_column_values_to_be_one_hot",
)
# Great Expectations' aggregate (column aggregate and table) types, evaluated on the raw profile.
AGGREGATE_TYPES = (
    "expect_column_values_to_be_of_type",
    "expect_column_values_to_be_in_type_list",
    "expect_column_min_to_be_between",
    "expect_column_max_to_be_between",
    "expect_column_mean_to_be_between",
    "expect_column_median_to_be_between",
    "expect_column_stdev_to_be_between",
    "expect_column_sum_to_be_between",
    "expect_column_quantile_values_to_be_between",
    "expect_column_proportion_of_non_null_values_to_be_between",
    "expect_table_row_count_to_be_between",
    "expect_column_to_exist",
    "expect_table_columns_to_match_set",
    "expect_column_distinct_values_to_be_in_set",
    "expect_column_unique_value_count_to_be_between",
)
ROW_TYPES = GE_ROW_TYPES + NANGUARD_ROW_TYPES
SUPPORTED = ROW_TYPES + AGGREGATE_TYPES

# Types that also apply to text columns; every other column type needs numbers.
ANY_COLUMN_TYPES = ("expect_column_values_to_not_be_null", "expect_column_values_to_be_null",
                    "expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set",
                    "expect_column_pair_values_a_to_be_greater_than_b", "expect_column_proportion_of_non_null_values_to_be_between",
                    "expect_column_to_exist", "expect_column_distinct_values_to_be_in_set",
                    "expect_column_unique_value_count_to_be_between")
# Types that need a text column.
TEXT_TYPES = ("expect_column_value_lengths_to_be_between", "expect_column_values_to_match_regex",
              "expect_column_values_to_not_match_regex")
# Row types whose violating value has a nearest allowed value to clip to.
CLIPPABLE = ("expect_column_values_to_be_between", "expect_column_values_to_fit_dtype",
             "expect_column_values_to_not_be_extreme", "expect_column_value_z_scores_to_be_less_than")
# Row types on one numeric column whose violating value can be replaced by the column's clean mean or median.
IMPUTABLE = ("expect_column_values_to_not_be_null", "expect_column_values_to_be_between",
             "expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set",
             "expect_column_value_z_scores_to_be_less_than", "expect_column_values_to_be_finite",
             "expect_column_values_to_fit_dtype", "expect_column_values_to_not_be_extreme")

ROW_ACTIONS = ("quarantine", "clip", "impute", "warn", "fail")
AGGREGATE_ACTIONS = ("fail", "warn")
IMPUTE_STATISTICS = ("mean", "median")


def default_action(etype: str) -> str:
    return "fail" if etype in AGGREGATE_TYPES else "quarantine"


def actions_for(etype: str) -> tuple[str, ...]:
    if etype in AGGREGATE_TYPES:
        return AGGREGATE_ACTIONS
    return tuple(a for a in ROW_ACTIONS if (a != "clip" or etype in CLIPPABLE) and (a != "impute" or etype in IMPUTABLE))

# The arguments each type takes, as Great Expectations 1.24 defines them (its pydantic fields; nanguard's own types
# as expectations.ge_custom registers them), less those that only describe or render an expectation. A suite
# argument outside these is refused when the suite is compiled: GE refuses it too ("extra fields not
# permitted"), and silently dropping a misspelled bound would remove the check.
DESCRIPTIVE_ARGUMENTS = frozenset({"result_format", "catch_exceptions", "meta", "notes", "description", "id",
                                   "batch_id", "rendered_content", "severity", "condition_parser", "row_condition"})
# Row types a row_condition (condition_parser "pandas") can restrict: every static row rule. A z-score or
# extreme-value rule takes its moments or quantiles from the whole column, and an aggregate from the whole
# profile, so a condition there would need a profile of the selected rows: refused.
CONDITIONAL_TYPES = tuple(t for t in ("expect_column_values_to_not_be_null", "expect_column_values_to_be_null",
                                      "expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
                                      "expect_column_values_to_not_be_in_set",
                                      "expect_column_pair_values_a_to_be_greater_than_b",
                                      "expect_multicolumn_sum_to_equal", "expect_column_value_lengths_to_be_between",
                                      "expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex",
                                      "expect_column_values_to_be_finite", "expect_column_values_to_fit_dtype",
                                      "expect_column_values_to_be_probability_vector",
                                      "expect_column_values_to_be_one_hot"))
_COLUMN, _BOUNDS = ("column",), ("min_value", "max_value", "strict_min", "strict_max")
ARGUMENTS = {
    "expect_column_values_to_not_be_null": _COLUMN + ("mostly",),
    "expect_column_values_to_be_null": _COLUMN + ("mostly",),
    "expect_column_values_to_be_between": _COLUMN + _BOUNDS + ("mostly",),
    "expect_column_values_to_be_in_set": _COLUMN + ("value_set", "mostly"),
    "expect_column_values_to_not_be_in_set": _COLUMN + ("value_set", "mostly"),
    "expect_column_value_z_scores_to_be_less_than": _COLUMN + ("threshold", "double_sided", "mostly"),
    "expect_column_pair_values_a_to_be_greater_than_b": ("column_A", "column_B", "or_equal", "ignore_row_if",
                                                         "mostly"),
    "expect_multicolumn_sum_to_equal": ("column_list", "sum_total", "ignore_row_if", "mostly"),
    "expect_column_values_to_be_finite": _COLUMN + ("mostly",),
    "expect_column_values_to_fit_dtype": _COLUMN + ("dtype", "mostly"),
    "expect_column_values_to_not_be_extreme": _COLUMN + ("threshold", "mostly"),
    "expect_column_values_to_be_probability_vector": _COLUMN + ("tolerance", "mostly"),
    "expect_column_values_to_be_one_hot": _COLUMN + ("tolerance", "mostly"),
    "expect_column_values_to_be_of_type": _COLUMN + ("type_", "mostly"),
    "expect_column_values_to_be_in_type_list": _COLUMN + ("type_list", "mostly"),
    "expect_column_min_to_be_between": _COLUMN + _BOUNDS,
    "expect_column_max_to_be_between": _COLUMN + _BOUNDS,
    "expect_column_mean_to_be_between": _COLUMN + _BOUNDS,
    "expect_column_median_to_be_between": _COLUMN + _BOUNDS,
    "expect_column_stdev_to_be_between": _COLUMN + _BOUNDS,
    "expect_column_sum_to_be_between": _COLUMN + _BOUNDS,
    "expect_column_quantile_values_to_be_between": _COLUMN + ("quantile_ranges", "allow_relative_error"),
    "expect_column_proportion_of_non_null_values_to_be_between": _COLUMN + _BOUNDS,
    "expect_table_row_count_to_be_between": _BOUNDS,
    "expect_column_to_exist": _COLUMN + ("column_index",),
    "expect_table_columns_to_match_set": ("column_set", "exact_match"),
    "expect_column_value_lengths_to_be_between": _COLUMN + _BOUNDS + ("mostly",),
    "expect_column_values_to_match_regex": _COLUMN + ("regex", "mostly"),
    "expect_column_values_to_not_match_regex": _COLUMN + ("regex", "mostly"),
    "expect_column_distinct_values_to_be_in_set": _COLUMN + ("value_set",),
    "expect_column_unique_value_count_to_be_between": _COLUMN + _BOUNDS,
}
# Arguments GE takes that nanguard does not evaluate yet: refused with a reason rather than ignored.
NOT_EVALUATED = {
    "windows": "windows (dynamic bounds from earlier runs) are a GE Cloud feature nanguard does not evaluate; give "
               "fixed bounds",
}
