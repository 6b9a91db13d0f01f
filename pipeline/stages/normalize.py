"""Normalize: clean batches -> the batches as they will be written (transforms.example_encoding): features
scaled with the fitted parameters and cast to float32, labels and pass-through columns unchanged, every column a
tf.Example list. __source_file and __row_index ride along (as plain columns, after the written ones) so the
shard writer can place each row; they are not written.
"""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from pipeline.stages import coders  # noqa: F401  (registers the RecordBatch coder)
from transforms.columns import ROW_INDEX, SOURCE_FILE
from transforms.example_encoding import OutputColumn, to_output_batch

PLACEMENT = (SOURCE_FILE, ROW_INDEX)  # the columns the shard writer places rows by


def normalize_batch(batch: pa.RecordBatch, outputs: tuple[OutputColumn, ...]) -> pa.RecordBatch:
    """The written columns of a clean batch, then its placement columns."""
    written = to_output_batch(batch, outputs)
    names = batch.schema.names
    return pa.RecordBatch.from_arrays(written.columns + [batch.column(names.index(c)) for c in PLACEMENT],
                                      names=written.schema.names + list(PLACEMENT))


class Normalize(beam.PTransform):
    """PCollection[RecordBatch] of clean rows -> PCollection[RecordBatch] of written rows (plus placement)."""

    def __init__(self, *, outputs: beam.PCollection[tuple[OutputColumn, ...]]):
        super().__init__()
        self._outputs = outputs

    def expand(self, clean: beam.PCollection[pa.RecordBatch]) -> beam.PCollection[pa.RecordBatch]:
        return clean | "Apply" >> beam.Map(normalize_batch, beam.pvalue.AsSingleton(self._outputs)
                                           ).with_output_types(pa.RecordBatch)
