"""Fit: normalization parameters from the clean profile, and what every column becomes in the shards.

The clean profile (exact float64 moments and range of the clean rows, merged over all workers) is the fit's
whole input, so fitting is one small step on one element; transforms.example_encoding decides each column's
role, dtype and tf.Example spec and transforms.normalize its scaling (zero-variance safe).
"""
from __future__ import annotations

import apache_beam as beam

from pipeline.inputs.plan import InputPlan
from transforms.example_encoding import OutputColumn, plan_output_columns
from transforms.profile import ProfileAccumulator


class FitNormalization(beam.PTransform):
    """PCollection[ProfileAccumulator] (one clean profile) -> PCollection[tuple[OutputColumn, ...]] (one)."""

    def __init__(self, *, plan: InputPlan, labels: tuple[str, ...], passthrough: tuple[str, ...], method: str,
                 filled: frozenset = frozenset(), indicators: dict | None = None, frozen: dict | None = None):
        super().__init__()
        self._kinds, self._labels, self._passthrough, self._method = dict(plan.kinds), labels, passthrough, method
        self._filled, self._indicators = frozenset(filled), dict(indicators or {})
        self._frozen = dict(frozen) if frozen else None

    def expand(self, clean_profile: beam.PCollection[ProfileAccumulator]
               ) -> beam.PCollection[tuple[OutputColumn, ...]]:
        return clean_profile | "PlanOutputs" >> beam.Map(plan_output_columns, self._kinds, self._labels,
                                                         self._passthrough, self._method, self._filled,
                                                         self._indicators, self._frozen)


def outputs_json(outputs: tuple[OutputColumn, ...]) -> list[dict]:
    """The driver's copy of the fitted outputs: name, role, dtype, tf.Example spec, normalization."""
    return [{"name": o.name, "role": o.role, "dtype": o.dtype, "spec": o.spec(),
             "normalization": o.scaling.to_dict() if o.scaling else None} for o in outputs]
