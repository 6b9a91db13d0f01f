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
)
ROW_TYPES = GE_ROW_TYPES + NANGUARD_ROW_TYPES
SUPPORTED = ROW_TYPES + AGGREGATE_TYPES

# Types that also apply to text columns; every other column type needs numbers.
ANY_COLUMN_TYPES = ("expect_column_values_to_not_be_null", "expect_column_values_to_be_null",
                    "expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set",
                    "expect_column_pair_values_a_to_be_greater_than_b", "expect_column_proportion_of_non_null_values_to_be_between",
                    "expect_column_to_exist")
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
