"""Statistics: TFDV statistics of the raw and the written data, written as binary protos.

The statistics are TFDV's own: its generators (`get_generators(StatsOptions(), in_memory=True)`: basic
statistics and the sketch-based top-k/uniques), its accumulators, its merge and its output, the same path as
`tfdv.generate_statistics_from_dataframe`. Only the driving differs from `tfdv.GenerateStatistics`: each DoFn
instance feeds its batches to the generators on a background thread (TFDV's quantile sketches, most of its
time, release the GIL), so statistics overlap with checking and encoding instead of running as a separate
Beam combine; one partial accumulator per bundle is then merged by a CombineGlobally and extracted.

TFDV reads list-typed Arrow columns, so raw batches are wrapped (one value per row); the written batches
already are lists. The driver infers the clean schema and its anomalies from them (report.anomalies).
"""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import statistics_pb2

from pipeline.quiet_tfdv import tfdv
from pipeline.stages import coders  # noqa: F401  (registers the RecordBatch coder)
from pipeline.stages.background import MAX_PENDING_BATCHES, AccumulateInBackground
from transforms.columns import is_list, is_nanguards, to_list_array


def for_tfdv(batch: pa.RecordBatch) -> pa.RecordBatch:
    cols, names = [], []
    for name, arr in zip(batch.schema.names, batch.columns):
        if is_nanguards(name):
            continue
        cols.append(arr if is_list(arr.type) else to_list_array(arr))
        names.append(name)
    return pa.RecordBatch.from_arrays(cols, names=names)


def tfdv_generators() -> list:
    """TFDV's combiner generators for its default StatsOptions, set up for use."""
    generators = stats_impl.get_generators(tfdv.StatsOptions(), in_memory=True)
    for g in generators:
        g.setup()
    return generators


class StatisticsPartial:
    """One bundle's TFDV accumulators (one per generator); only the bundle's worker thread adds to them."""

    def __init__(self, generators: list, wrap: bool):
        self.generators, self.wrap, self.rows = generators, wrap, 0
        self.accumulators = [g.create_accumulator() for g in generators]

    def add(self, batch: pa.RecordBatch) -> None:
        batch = for_tfdv(batch) if self.wrap else batch
        self.accumulators = [g.add_input(a, batch) for g, a in zip(self.generators, self.accumulators)]
        self.rows += batch.num_rows

    def compacted(self) -> list:
        return [g.compact(a) for g, a in zip(self.generators, self.accumulators)]


class _AccumulateStatisticsFn(AccumulateInBackground):
    """Batches -> TFDV accumulators per bundle and lane; each lane has its own generators."""

    def __init__(self, wrap: bool, lanes: int):
        super().__init__("nanguard-stats", lanes, MAX_PENDING_BATCHES)
        self._wrap = wrap

    def setup(self):
        self._generators = [tfdv_generators() for _ in range(self._num_lanes)]

    def new_partial(self, lane: int) -> StatisticsPartial:
        return StatisticsPartial(self._generators[lane], self._wrap)

    def add(self, partial: StatisticsPartial, batch: pa.RecordBatch) -> None:
        partial.add(batch)

    def output(self, partial: StatisticsPartial):
        return partial.compacted() if partial.rows else None


class MergeStatisticsFn(beam.CombineFn):
    """Bundles' TFDV accumulators -> DatasetFeatureStatisticsList (TFDV's merge and extract_output)."""

    def _generators(self) -> list:
        if getattr(self, "_gens", None) is None:
            self._gens = tfdv_generators()
        return self._gens

    def create_accumulator(self):
        return None

    def add_input(self, accumulator, partial):
        return self.merge_accumulators([accumulator, partial])

    def merge_accumulators(self, accumulators):
        parts = [a for a in accumulators if a is not None]
        if len(parts) <= 1:
            return parts[0] if parts else None
        return [g.merge_accumulators(list(accs)) for g, accs in zip(self._generators(), zip(*parts))]

    def compact(self, accumulator):
        if accumulator is None:
            return None
        return [g.compact(a) for g, a in zip(self._generators(), accumulator)]

    def extract_output(self, accumulator) -> statistics_pb2.DatasetFeatureStatisticsList:
        generators = self._generators()
        if accumulator is None:
            accumulator = [g.create_accumulator() for g in generators]
        return stats_impl.extract_statistics_output(accumulator, generators)


class ComputeStatistics(beam.PTransform):
    """RecordBatches -> one DatasetFeatureStatisticsList. wrap: the batches hold plain (not list) columns.

    lanes: statistics threads per DoFn instance. A pass whose main thread has less to do than TFDV (the raw
    profile pass) gains from 2; the write pass's main thread (encoding) is already the slower side, and a second
    lane there only adds memory (each thread's malloc arena keeps what it freed). BENCHMARKS.md has the figures.
    """

    def __init__(self, *, wrap: bool, lanes: int = 1):
        super().__init__()
        self._wrap, self._lanes = wrap, lanes

    def expand(self, batches: beam.PCollection[pa.RecordBatch]
               ) -> beam.PCollection[statistics_pb2.DatasetFeatureStatisticsList]:
        return (batches
                | "Accumulate" >> beam.ParDo(_AccumulateStatisticsFn(self._wrap, self._lanes))
                | "Merge" >> beam.CombineGlobally(MergeStatisticsFn()))


def _write_proto(stats: statistics_pb2.DatasetFeatureStatisticsList, path: str) -> str:
    with FileSystems.create(path) as f:
        f.write(stats.SerializeToString())
    return path


class WriteStatistics(beam.PTransform):
    """RecordBatches -> DatasetFeatureStatisticsList written to `path` (binary proto, as TFDV writes it)."""

    def __init__(self, *, path: str, wrap: bool, lanes: int = 1):
        super().__init__()
        self._path, self._wrap, self._lanes = path, wrap, lanes

    def expand(self, batches: beam.PCollection[pa.RecordBatch]) -> beam.PCollection[str]:
        return (batches
                | "GenerateStatistics" >> ComputeStatistics(wrap=self._wrap, lanes=self._lanes)
                | "WriteStatistics" >> beam.Map(_write_proto, self._path))
