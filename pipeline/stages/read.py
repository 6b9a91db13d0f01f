"""Read: the plan's read tasks to bounded pyarrow RecordBatches in the unified schema.

Units (a CSV or TFRecord file; a Parquet row group, or consecutive small ones up to 65,536 rows) are grouped
into tasks (consecutive small units, InputPlan.tasks) that the runner spreads over workers; each unit streams
in batches (inputs.formats), conformed to the plan's schema with its source file and row index attached.
Batches smaller than MIN_BATCH_ROWS (small files, small row groups) are joined, across the units of a task,
into one: every later step costs something per batch, and a thousand 20-row batches cost a thousand times.
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


MIN_BATCH_ROWS = 8192  # smaller conformed batches wait to be joined with the next ones of their task


class ReadUnitFn(beam.DoFn):
    """One read task (a tuple of units) -> its conformed batches, in file order; small ones joined."""

    def __init__(self, plan: InputPlan, progress: ProgressSink | None = None, pass_name: str = ""):
        self._kinds = dict(plan.kinds)
        self._format = plan.format
        self._keep_original = frozenset(plan.original_types)
        self._progress, self._pass = progress, pass_name
        self._writer = None

    def setup(self):
        if self._progress is not None:
            self._writer = self._progress.writer(self._pass)

    def process(self, task: tuple[ReadUnit, ...]):
        pending: list[pa.RecordBatch] = []
        rows = 0
        for unit in task:
            for batch in self._unit_batches(unit):
                if pending and batch.schema != pending[0].schema:
                    yield _joined(pending)
                    pending, rows = [], 0
                pending.append(batch)
                rows += batch.num_rows
                if rows >= MIN_BATCH_ROWS:
                    yield _joined(pending)
                    pending, rows = [], 0
        if pending:
            yield _joined(pending)

    def _unit_batches(self, unit: ReadUnit):
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


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


class ReadBatches(beam.PTransform):
    """PBegin -> PCollection[pa.RecordBatch] of every input row, with __source_file and __row_index."""

    def __init__(self, *, plan: InputPlan, progress: ProgressSink | None = None, pass_name: str = ""):
        super().__init__()
        self._plan = plan
        self._progress, self._pass = progress, pass_name

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[pa.RecordBatch]:
        # Create reshuffles more than one unit itself, which spreads them over workers; no Reshuffle of ours.
        return (pbegin
                | "Units" >> beam.Create(list(self._plan.tasks))
                | "Read" >> beam.ParDo(ReadUnitFn(self._plan, self._progress, self._pass)).with_output_types(
                    pa.RecordBatch))
