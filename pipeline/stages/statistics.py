"""Statistics: TFDV statistics of the clean rows and of every input row, in original units, as binary protos.

One TFDV pass, in the fit pass, where clean and quarantined rows are first known: the clean rows' accumulators
give `clean.pb`, and their merge with the quarantined rows' accumulators gives `raw.pb` (every input row). Both
are in the input's units, so they are comparable with each other and across runs (baselines, drift). What the
written (normalized) values must satisfy is checked by nanguard's own exact profile of them (written_values).

The statistics are TFDV's own: its generators (`get_generators(StatsOptions(), in_memory=True)`: basic
statistics and the sketch-based top-k/uniques), its accumulators, its merge and its output, the same path as
`tfdv.generate_statistics_from_dataframe`. Only the driving differs from `tfdv.GenerateStatistics`: each DoFn
instance feeds its batches to the generators on a background thread (TFDV's quantile sketches, most of its
time, release the GIL), so statistics overlap with checking and encoding instead of running as a separate
Beam combine; one partial accumulator per bundle is then merged by a CombineGlobally and extracted.

TFDV reads list-typed Arrow columns, so checked batches are wrapped (one value per row); nanguard's own columns
(__source_file, __reasons, ...) are left out. The driver infers schema.pbtxt from clean.pb (report.schema).
"""
from __future__ import annotations

import pickle

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

    def __init__(self, generators: list):
        self.generators, self.rows = generators, 0
        self.accumulators = [g.create_accumulator() for g in generators]

    def add(self, batch: pa.RecordBatch) -> None:
        batch = for_tfdv(batch)
        self.accumulators = [g.add_input(a, batch) for g, a in zip(self.generators, self.accumulators)]
        self.rows += batch.num_rows

    def compacted(self) -> list:
        return [g.compact(a) for g, a in zip(self.generators, self.accumulators)]


class _AccumulateStatisticsFn(AccumulateInBackground):
    """Batches -> TFDV accumulators per bundle and lane; each lane has its own generators."""

    def __init__(self, lanes: int):
        super().__init__("nanguard-stats", lanes, MAX_PENDING_BATCHES)

    def setup(self):
        self._generators = [tfdv_generators() for _ in range(self._num_lanes)]

    def new_partial(self, lane: int) -> StatisticsPartial:
        return StatisticsPartial(self._generators[lane])

    def add(self, partial: StatisticsPartial, batch: pa.RecordBatch) -> None:
        partial.add(batch)

    def output(self, partial: StatisticsPartial):
        return partial.compacted() if partial.rows else None


class MergeStatisticsFn(beam.CombineFn):
    """Bundles' TFDV accumulators -> DatasetFeatureStatisticsList (TFDV's merge and extract_output).

    TFDV merges into the first accumulator in place, so a partial must reach exactly one MergeStatisticsFn."""

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


CLEAN, QUARANTINED = "clean", "quarantined"  # the two kinds of partials MergeCleanAndRawFn keeps apart


class MergeCleanAndRawFn(beam.CombineFn):
    """(kind, partial) pairs -> (clean statistics, raw statistics): the clean partials merged, and the clean and
    quarantined partials merged. The clean accumulator is copied (pickled) before the raw merge takes it over."""

    def __init__(self):
        self._merge = MergeStatisticsFn()

    def create_accumulator(self) -> dict:
        return {CLEAN: None, QUARANTINED: None}

    def add_input(self, acc: dict, element) -> dict:
        kind, partial = element
        acc[kind] = self._merge.merge_accumulators([acc[kind], partial])
        return acc

    def merge_accumulators(self, accs) -> dict:
        accs = list(accs)
        return {k: self._merge.merge_accumulators([a[k] for a in accs]) for k in (CLEAN, QUARANTINED)}

    def compact(self, acc: dict) -> dict:
        return {k: self._merge.compact(v) for k, v in acc.items()}

    def extract_output(self, acc: dict):
        clean = acc[CLEAN]
        copy = pickle.loads(pickle.dumps(clean, protocol=pickle.HIGHEST_PROTOCOL)) if clean is not None else None
        raw = self._merge.merge_accumulators([copy, acc[QUARANTINED]])
        return self._merge.extract_output(clean), self._merge.extract_output(raw)


class AccumulateStatistics(beam.PTransform):
    """Checked RecordBatches -> TFDV partials per bundle and lane, each tagged with `kind` (CLEAN, QUARANTINED).

    lanes: statistics threads per DoFn instance. A pass whose main thread has less to do than TFDV gains from 2;
    a second lane where the main thread is the slower side only adds memory (each thread's malloc arena keeps
    what it freed). BENCHMARKS.md has the figures."""

    def __init__(self, *, kind: str, lanes: int = 1):
        super().__init__()
        if kind not in (CLEAN, QUARANTINED):
            raise ValueError(f"kind {kind!r} is not one of {CLEAN!r}, {QUARANTINED!r}")
        self._kind, self._lanes = kind, lanes

    def expand(self, batches: beam.PCollection[pa.RecordBatch]) -> beam.PCollection[tuple]:
        return (batches
                | "Accumulate" >> beam.ParDo(_AccumulateStatisticsFn(self._lanes))
                | "Tag" >> beam.Map(lambda partial, kind: (kind, partial), self._kind))


def _write_proto(stats: statistics_pb2.DatasetFeatureStatisticsList, path: str) -> str:
    with FileSystems.create(path) as f:
        f.write(stats.SerializeToString())
    return path


class WriteCleanAndRawStatistics(beam.PTransform):
    """Tagged partials (AccumulateStatistics of the clean and of the quarantined rows) -> clean.pb and raw.pb."""

    def __init__(self, *, clean_path: str, raw_path: str):
        super().__init__()
        self._clean_path, self._raw_path = clean_path, raw_path

    def expand(self, partials: beam.PCollection[tuple]) -> beam.PCollection[str]:
        return (partials
                | "Merge" >> beam.CombineGlobally(MergeCleanAndRawFn())
                | "Write" >> beam.FlatMap(lambda both, paths: [_write_proto(s, p) for s, p in zip(both, paths)],
                                          (self._clean_path, self._raw_path)))
