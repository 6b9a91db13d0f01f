"""Read: the plan's read tasks to bounded pyarrow RecordBatches in the unified schema.

Units (a CSV or TFRecord file; a Parquet row group, or consecutive small ones up to 65,536 rows) are grouped
into tasks (consecutive small units, InputPlan.tasks) that the runner spreads over workers; each unit streams
in batches (inputs.formats), conformed to the plan's schema with its source file and row index attached.
Raw batches smaller than MIN_BATCH_ROWS (small files, small row groups) are joined, across the units of a
task, before they are conformed: every step from parsing on costs something per batch, and a thousand 20-row
batches cost it a thousand times. A task of small units is read from its files once: the first pass keeps its
conformed batches for the later passes (stages.kept_reads).
"""
from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa

from pipeline.inputs.formats import raw_batches
from pipeline.inputs.plan import InputPlan, ReadUnit
from pipeline.progress import ProgressSink
from pipeline.stages import coders  # noqa: F401  (registers the RecordBatch coder)
from pipeline.stages.kept_reads import KEPT, KeepReads
from pipeline.errors import InputError
from transforms.conform import ConformError, conform


MIN_BATCH_ROWS = 8192  # smaller raw batches wait to be joined with the next ones of their task


class ReadUnitFn(beam.DoFn):
    """One read task (a tuple of units) -> its conformed batches, in file order; small ones joined."""

    def __init__(self, plan: InputPlan, progress: ProgressSink | None = None, pass_name: str = "",
                 keep: KeepReads | None = None):
        self._kinds = dict(plan.kinds)
        self._format = plan.format
        self._keep_original = frozenset(plan.original_types)
        self._progress, self._pass = progress, pass_name
        self._keep = keep
        self._writer = None

    def setup(self):
        if self._progress is not None:
            self._writer = self._progress.writer(self._pass)

    def process(self, task: tuple[ReadUnit, ...]):
        keep = self._keep
        kept = KEPT.take(keep.run, task) if keep is not None else None
        if kept is not None:
            if self._writer is not None:
                self._writer.add(rows=sum(b.num_rows for b in kept))
            yield from kept
            return
        if keep is None or not keep.worth_keeping(task):
            yield from self._read(task)
            return
        room, held, nbytes = KEPT.room(keep.run), [], 0
        for batch in self._read(task):
            if held is not None:
                nbytes += batch.nbytes
                if nbytes <= room:
                    held.append(batch)
                else:  # over the budget: the later passes read the files again
                    held = None
            yield batch
        if held is not None:
            KEPT.offer(keep.run, task, held, uses=keep.later_passes)

    def _read(self, task: tuple[ReadUnit, ...]):
        """The task's conformed batches, read from its files."""
        pending: list[tuple[pa.RecordBatch, ReadUnit, int]] = []  # raw batches, joined before conforming
        rows = 0
        for unit in task:
            for raw, first in self._raw_batches(unit):
                if pending and raw.schema != pending[0][0].schema:
                    yield self._conform(pending)
                    pending, rows = [], 0
                pending.append((raw, unit, first))
                rows += raw.num_rows
                if rows >= MIN_BATCH_ROWS:
                    yield self._conform(pending)
                    pending, rows = [], 0
        if pending:
            yield self._conform(pending)

    def _raw_batches(self, unit: ReadUnit):
        """(raw batch, index of its first row in the file) of one unit."""
        first = unit.row_offset
        for raw in raw_batches(self._format, unit.path, unit.columns, unit.row_groups, unit.delimiter):
            if raw.num_rows:
                yield raw, first
                first += raw.num_rows
                if self._writer is not None:
                    self._writer.add(rows=raw.num_rows)

    def _conform(self, parts: list[tuple[pa.RecordBatch, ReadUnit, int]]) -> pa.RecordBatch:
        """One conformed batch of raw batches (of one or several files), each row keeping its file and index."""
        if len(parts) == 1:
            raw, unit, first = parts[0]
            return self._conform_one(raw, unit.path, first)
        joined = pa.Table.from_batches([raw for raw, _, _ in parts]).combine_chunks().to_batches()[0]
        paths = list(dict.fromkeys(unit.path for _, unit, _ in parts))
        codes = np.concatenate([np.full(raw.num_rows, paths.index(unit.path), np.int32) for raw, unit, _ in parts])
        sources = pa.array(paths, pa.string()).take(pa.array(codes))
        rows = np.concatenate([np.arange(first, first + raw.num_rows, dtype=np.int64) for raw, _, first in parts])
        try:
            return conform(joined, self._kinds, sources, rows, self._format, self._keep_original)
        except ConformError as e:
            for raw, unit, first in parts:  # name the file the fault is in
                self._conform_one(raw, unit.path, first)
            raise InputError(f"{paths[0]} (or another of the {len(paths)} files read with it): {e}") from None

    def _conform_one(self, raw: pa.RecordBatch, path: str, first: int) -> pa.RecordBatch:
        try:
            return conform(raw, self._kinds, path, first, self._format, self._keep_original)
        except ConformError as e:
            raise InputError(f"{path}: {e}") from None

    def finish_bundle(self):
        if self._writer is not None:
            self._writer.flush()


class ReadBatches(beam.PTransform):
    """PBegin -> PCollection[pa.RecordBatch] of every input row, with __source_file and __row_index."""

    def __init__(self, *, plan: InputPlan, progress: ProgressSink | None = None, pass_name: str = "",
                 keep: KeepReads | None = None):
        super().__init__()
        self._plan = plan
        self._progress, self._pass = progress, pass_name
        self._keep = keep

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[pa.RecordBatch]:
        # Create reshuffles more than one unit itself, which spreads them over workers; no Reshuffle of ours.
        return (pbegin
                | "Units" >> beam.Create(list(self._plan.tasks))
                | "Read" >> beam.ParDo(ReadUnitFn(self._plan, self._progress, self._pass, self._keep))
                .with_output_types(pa.RecordBatch))
