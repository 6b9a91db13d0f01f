"""nanguard's own expectation types as Great Expectations custom expectations (pandas engine).

Importing this module registers them with GE, so a suite that uses them loads with
`gx.ExpectationSuite(**json)` and validates in GE itself, with the answers nanguard gives:

    import expectations.ge_custom  # noqa: F401  (registers the types)
    suite = gx.ExpectationSuite(**json.load(open("suite.json")))

Like nanguard, these count over every row: a null (missing or NaN) is unexpected for finite, probability
vector and one-hot, and is not an overflow for fit_dtype or an extreme value for not_be_extreme. The
extreme-value bounds come from the column's exact 0.1% / 50% / 99.9% quantiles here; nanguard takes them from
its sketch (exact up to 8192 distinct values, within 0.1% of rank beyond). GE is imported only by this module.
"""
from __future__ import annotations

import math
import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, _format_map_output
from great_expectations.expectations.expectation_configuration import parse_result_format
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

from transforms.extreme import DEFAULT_THRESHOLD, bounds_are_usable, extreme_bounds
from transforms.row_checks import DTYPE_MAX

__all__ = ["ExpectColumnValuesToBeFinite", "ExpectColumnValuesToFitDtype", "ExpectColumnValuesToNotBeExtreme",
           "ExpectColumnValuesToBeProbabilityVector", "ExpectColumnValuesToBeOneHot"]


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


class _ColumnValuesFinite(ColumnMapMetricProvider):
    condition_metric_name = "column_values.nanguard_finite"
    filter_column_isnull = False

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return pd.Series(np.isfinite(_numbers(column)), index=column.index)


class _ColumnValuesFitDtype(ColumnMapMetricProvider):
    condition_metric_name = "column_values.nanguard_fit_dtype"
    condition_value_keys = ("dtype",)
    filter_column_isnull = False

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, dtype="float32", **kwargs):
        v = _numbers(column)
        with np.errstate(invalid="ignore"):
            return pd.Series(~(np.isfinite(v) & (np.abs(v) > DTYPE_MAX[dtype])), index=column.index)


class _ColumnValuesNotExtreme(ColumnMapMetricProvider):
    condition_metric_name = "column_values.nanguard_not_extreme"
    condition_value_keys = ("threshold",)
    filter_column_isnull = False

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, threshold=DEFAULT_THRESHOLD, **kwargs):
        v = _numbers(column)
        finite = np.sort(v[np.isfinite(v)])
        ok = np.ones(v.size, dtype=bool)
        if finite.size:
            lo, med, hi = (finite[math.floor(q * (finite.size - 1))] for q in (0.001, 0.5, 0.999))
            if bounds_are_usable(med, lo, hi):
                ok = ~extreme_bounds(med, lo, hi, threshold).mask(v)
        return pd.Series(ok, index=column.index)


def _vector_ok(cell, tolerance: float, one_hot: bool) -> bool:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return False
    v = np.asarray(cell, dtype=np.float64)
    if v.size == 0 or not np.isfinite(v).all() or (v < 0).any():
        return False
    if one_hot and not np.isin(v, (0.0, 1.0)).all():
        return False
    return abs(float(v.sum()) - 1.0) <= tolerance


def _vector_metric(name: str, one_hot: bool) -> type:
    """The column-map metric (GE registers it when the class is created) for one of the two vector types."""

    class _ColumnValuesVector(ColumnMapMetricProvider):
        condition_metric_name = name
        condition_value_keys = ("tolerance",)
        filter_column_isnull = False

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column, tolerance=1e-4, **kwargs):
            return column.map(lambda cell: _vector_ok(cell, tolerance, one_hot=one_hot)).astype(bool)

    return _ColumnValuesVector


_vector_metric("column_values.nanguard_probability_vector", one_hot=False)
_vector_metric("column_values.nanguard_one_hot", one_hot=True)


class _OverEveryRow(ColumnMapExpectation):
    """nanguard's types judge every row, nulls included: `mostly` is over the row count (as GE's not_be_null)."""

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        result_format = parse_result_format(self._get_result_format(runtime_configuration=runtime_configuration))
        total = metrics.get("table.row_count") or 0
        unexpected = metrics.get(f"{self.map_metric}.unexpected_count") or 0
        mostly = self._get_success_kwargs().get("mostly") or 1.0
        success = total == 0 or (total - unexpected) / total >= mostly
        return _format_map_output(result_format=result_format, success=success, element_count=total,
                                  nonnull_count=None, unexpected_count=unexpected,
                                  unexpected_list=metrics.get(f"{self.map_metric}.unexpected_values"),
                                  unexpected_index_list=metrics.get(f"{self.map_metric}.unexpected_index_list"))


class ExpectColumnValuesToBeFinite(_OverEveryRow):
    """Expect every value to be present and finite: missing, NaN, +Inf and -Inf are unexpected."""
    map_metric = "column_values.nanguard_finite"
    success_keys = ("mostly",)


class ExpectColumnValuesToFitDtype(_OverEveryRow):
    """Expect finite values to fit a float dtype (float16, bfloat16, float32, float64) without overflowing."""
    dtype: str = "float32"
    map_metric = "column_values.nanguard_fit_dtype"
    success_keys = ("dtype", "mostly")


class ExpectColumnValuesToNotBeExtreme(_OverEveryRow):
    """Expect finite values within `threshold` times the spread of the column's bulk around its median."""
    threshold: float = DEFAULT_THRESHOLD
    map_metric = "column_values.nanguard_not_extreme"
    success_keys = ("threshold", "mostly")


class ExpectColumnValuesToBeProbabilityVector(_OverEveryRow):
    """Expect each cell to be a non-empty list of finite, non-negative numbers summing to 1 within tolerance."""
    tolerance: float = 1e-4
    map_metric = "column_values.nanguard_probability_vector"
    success_keys = ("tolerance", "mostly")


class ExpectColumnValuesToBeOneHot(_OverEveryRow):
    """Expect each cell to be a list of 0s and 1s with exactly one 1."""
    tolerance: float = 1e-4
    map_metric = "column_values.nanguard_one_hot"
    success_keys = ("tolerance", "mostly")

