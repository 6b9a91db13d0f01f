"""CombineFns: the exact profile of a PCollection of RecordBatches, and sums of count dictionaries.

Both are lifted by the runner (partial combines per bundle), so only small accumulators are shuffled.
"""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from transforms.profile import ProfileAccumulator
from transforms.quarantine import SAMPLE_SIZE


class ProfileCombineFn(beam.CombineFn):
    """RecordBatches -> ProfileAccumulator over `columns` (quantile sketches when with_sketch)."""

    def __init__(self, columns: tuple[str, ...], with_sketch: bool):
        self._columns = tuple(columns)
        self._with_sketch = with_sketch

    def create_accumulator(self) -> ProfileAccumulator:
        return ProfileAccumulator(self._columns, self._with_sketch)

    def add_input(self, acc: ProfileAccumulator, batch: pa.RecordBatch) -> ProfileAccumulator:
        return acc.add_batch(batch)

    def merge_accumulators(self, accs) -> ProfileAccumulator:
        accs = iter(accs)
        out = next(accs)
        for a in accs:
            out = out.merge(a)
        return out

    def extract_output(self, acc: ProfileAccumulator) -> ProfileAccumulator:
        return acc


class SumCountsFn(beam.CombineFn):
    """dict inputs -> their key-wise sum; list values (samples of unexpected values, [[key, value], ...]) are
    merged instead: the SAMPLE_SIZE entries with the smallest keys, which are the same on every merge path."""

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, acc: dict, counts: dict) -> dict:
        for k, v in counts.items():
            if isinstance(v, list):
                acc[k] = sorted(acc.get(k, []) + v, key=lambda entry: entry[0])[:SAMPLE_SIZE]
            else:
                acc[k] = acc.get(k, 0) + v
        return acc

    def merge_accumulators(self, accs) -> dict:
        out: dict = {}
        for a in accs:
            self.add_input(out, a)
        return out

    def extract_output(self, acc: dict) -> dict:
        return dict(sorted(acc.items()))
