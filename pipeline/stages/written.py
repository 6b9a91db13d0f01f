"""WrittenProfile: the exact profile of the values as written (transforms.written_values), one per run.

Each batch is profiled where it is encoded (numpy over the float32 lists, a small fraction of encoding's cost)
and the partial profiles are merged by a CombineFn whose result does not depend on merge order or grouping.
"""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from transforms.written_values import WrittenValues


@beam.typehints.with_input_types(pa.RecordBatch)
@beam.typehints.with_output_types(WrittenValues)
class MergeWrittenFn(beam.CombineFn):
    """Written batches -> their WrittenValues (merges in any order and grouping give the same result)."""

    def create_accumulator(self) -> WrittenValues:
        return WrittenValues()

    def add_input(self, acc: WrittenValues, batch: pa.RecordBatch) -> WrittenValues:
        return acc.add_batch(batch)

    def merge_accumulators(self, accs) -> WrittenValues:
        out = WrittenValues()
        for a in accs:
            out = out.merge(a)
        return out

    def extract_output(self, acc: WrittenValues) -> WrittenValues:
        return acc


class WrittenProfile(beam.PTransform):
    """PCollection[RecordBatch] of written (list-typed) batches -> one WrittenValues."""

    def expand(self, written: beam.PCollection[pa.RecordBatch]) -> beam.PCollection[WrittenValues]:
        return written | "Merge" >> beam.CombineGlobally(MergeWrittenFn())
