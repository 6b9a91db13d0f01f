"""Read: the plan's read units to bounded pyarrow RecordBatches in the unified schema.

Units (a CSV or TFRecord file; a Parquet row group, or consecutive small ones up to 65,536 rows) are spread
over workers by the runner; each unit streams in batches (inputs.formats), and is conformed to the plan's
schema with its source file and row index attached.
"""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from pipeline.inputs.formats import raw_batches
from pipeline.inputs.plan import InputPlan, ReadUnit
from pipeline.progress import ProgressSink
from pipeline.stages import coders  # noqa: F401  (registers the RecordBatch coder)
from pipeline.errors import InputError
from transforms.conform import ConformError, conform


class ReadUnitFn(beam.DoFn):
    """One read unit -> its conformed batches, in file order."""

    def __init__(self, plan: InputPlan, progress: ProgressSink | None = None, pass_name: str = ""):
        self._kinds = dict(plan.kinds)
        self._format = plan.format
        self._keep_original = frozenset(plan.original_types)
        self._progress, self._pass = progress, pass_name
        self._writer = None

    def setup(self):
        if self._progress is not None:
            self._writer = self._progress.writer(self._pass)

    def process(self, unit: ReadUnit):
        first = unit.row_offset
        for raw in raw_batches(self._format, unit.path, unit.columns, unit.row_groups, unit.delimiter):
            if raw.num_rows:
                try:
                    yield conform(raw, self._kinds, unit.path, first, self._format, self._keep_original)
                except ConformError as e:
                    raise InputError(f"{unit.path}: {e}") from None
                first += raw.num_rows
                if self._writer is not None:
                    self._writer.add(rows=raw.num_rows)

    def finish_bundle(self):
        if self._writer is not None:
            self._writer.flush()


class ReadBatches(beam.PTransform):
    """PBegin -> PCollection[pa.RecordBatch] of every input row, with __source_file and __row_index."""

    def __init__(self, *, plan: InputPlan, progress: ProgressSink | None = None, pass_name: str = ""):
        super().__init__()
        self._plan = plan
        self._progress, self._pass = progress, pass_name

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[pa.RecordBatch]:
        # Create reshuffles more than one unit itself, which spreads them over workers; no Reshuffle of ours.
        return (pbegin
                | "Units" >> beam.Create(list(self._plan.units))
                | "Read" >> beam.ParDo(ReadUnitFn(self._plan, self._progress, self._pass)).with_output_types(
                    pa.RecordBatch))
