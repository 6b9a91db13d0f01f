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
Beam combine; one partial accumulator per bundle is then merged by a CombineGlobally per side (clean,
quarantined), and one step extracts and writes both files.

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
from pipeline.stages.coders import SizedPickleCoder
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


class StatisticsAccumulators(list):
    """TFDV's accumulators, one per generator (empty: no rows); what crosses between steps."""


# Beam's size metrics only: TFDV's accumulators pickle to about this much per feature (147 MB for 1,000
# features at 10,000 rows; the quantile sketches grow with rows).
ESTIMATED_BYTES_PER_FEATURE = 150_000


class StatisticsAccumulatorsCoder(SizedPickleCoder):
    def estimate_size(self, accs: StatisticsAccumulators) -> int:
        return ESTIMATED_BYTES_PER_FEATURE * (len(accs[0]) if accs and hasattr(accs[0], "__len__") else 1)

    def to_type_hint(self):
        return StatisticsAccumulators


beam.coders.registry.register_coder(StatisticsAccumulators, StatisticsAccumulatorsCoder)


class StatisticsPartial:
    """One bundle's TFDV accumulators (one per generator); only the bundle's worker thread adds to them."""

    def __init__(self, generators: list):
        self.generators, self.rows = generators, 0
        self.accumulators = [g.create_accumulator() for g in generators]

    def add(self, batch: pa.RecordBatch) -> None:
        batch = for_tfdv(batch)
        self.accumulators = [g.add_input(a, batch) for g, a in zip(self.generators, self.accumulators)]
        self.rows += batch.num_rows

    def compacted(self) -> StatisticsAccumulators:
        return StatisticsAccumulators(g.compact(a) for g, a in zip(self.generators, self.accumulators))


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
        parts = [a for a in accumulators if a]  # None or empty: no rows
        if len(parts) <= 1:
            return parts[0] if parts else None
        return StatisticsAccumulators(g.merge_accumulators(list(accs))
                                      for g, accs in zip(self._generators(), zip(*parts)))

    def compact(self, accumulator):
        if accumulator is None:
            return None
        return StatisticsAccumulators(g.compact(a) for g, a in zip(self._generators(), accumulator))

    def get_accumulator_coder(self) -> StatisticsAccumulatorsCoder:
        return StatisticsAccumulatorsCoder()

    def extract_output(self, accumulator) -> statistics_pb2.DatasetFeatureStatisticsList:
        generators = self._generators()
        if not accumulator:
            accumulator = [g.create_accumulator() for g in generators]
        return stats_impl.extract_statistics_output(accumulator, generators)


@beam.typehints.with_input_types(StatisticsAccumulators)
@beam.typehints.with_output_types(StatisticsAccumulators)
class MergePartialsFn(MergeStatisticsFn):
    """Bundles' TFDV accumulators -> their merge, still accumulators (empty when there were no rows), for
    _WriteStatisticsFn to extract."""

    def extract_output(self, accumulator) -> StatisticsAccumulators:
        return accumulator or StatisticsAccumulators()


def _write_proto(stats: statistics_pb2.DatasetFeatureStatisticsList, path: str) -> str:
    with FileSystems.create(path) as f:
        f.write(stats.SerializeToString())
    return path


def _write_statistics(merge: MergeStatisticsFn, clean: StatisticsAccumulators, quarantined: StatisticsAccumulators,
                      clean_path: str, raw_path: str) -> list[str]:
    """(the clean rows' merged accumulators, the quarantined rows' ones) -> clean.pb, raw.pb (their paths).

    TFDV's extraction finalizes its sketches and a finalized sketch can no longer be merged, so raw.pb comes
    first: the clean accumulator is merged into a copy of the quarantined one (quarantined rows are few; copying
    the clean side instead cost 147 MB and ~1.5 s at 1,000 features), and clean.pb is extracted after, from
    accumulators that merge only read. With nothing quarantined raw.pb is clean.pb: one extraction, not two
    (TFDV's histograms are most of its extraction: ~14 s at 1,000 features)."""
    if not quarantined:
        clean_stats = raw_stats = merge.extract_output(clean)
    else:
        copy = pickle.loads(pickle.dumps(quarantined, protocol=pickle.HIGHEST_PROTOCOL))  # a side input is shared
        raw_stats = merge.extract_output(merge.merge_accumulators([copy, clean]))
        clean_stats = merge.extract_output(clean)
    return [_write_proto(clean_stats, clean_path), _write_proto(raw_stats, raw_path)]


class _WriteStatisticsFn(beam.DoFn):
    """The clean rows' merged accumulators (the quarantined rows' ones a side input) -> clean.pb, raw.pb."""

    def __init__(self, clean_path: str, raw_path: str):
        self._clean_path, self._raw_path = clean_path, raw_path

    def setup(self):
        self._merge = MergeStatisticsFn()

    def process(self, clean: StatisticsAccumulators, quarantined: StatisticsAccumulators):
        yield from _write_statistics(self._merge, clean, quarantined, self._clean_path, self._raw_path)


class WriteCleanAndRawStatistics(beam.PTransform):
    """(clean RecordBatches, quarantined RecordBatches) -> clean.pb and raw.pb (their paths).

    Each side is accumulated per bundle beside the bundle's main thread and merged by its own combine; the two
    merged accumulators meet in one step. No Flatten: it would cost its own stage, where every partial is
    pickled and unpickled once more (measured: 9 pickles of a 147 MB accumulator at 1,000 features, now 2).
    The clean side's merge runs without Beam's default value, so `Write` takes the merged accumulator in the
    step that merged it instead of through a side input (two crossings fewer of the largest value in the run);
    when there are no clean rows, `OrEmpty` writes both files from an empty clean accumulator instead.

    clean_lanes: statistics threads per DoFn instance for the clean rows. A pass whose main thread has less to
    do than TFDV gains from 2; a second lane where the main thread is the slower side only adds memory (each
    thread's malloc arena keeps what it freed). BENCHMARKS.md has the figures."""

    def __init__(self, *, clean_path: str, raw_path: str, clean_lanes: int = 1):
        super().__init__()
        self._clean_path, self._raw_path, self._clean_lanes = clean_path, raw_path, clean_lanes

    def expand(self, batches: tuple[beam.PCollection[pa.RecordBatch], beam.PCollection[pa.RecordBatch]]
               ) -> beam.PCollection[str]:
        clean, quarantined = batches
        clean_acc = _merged(clean, "Clean", self._clean_lanes, with_default=False)
        quarantined_acc = beam.pvalue.AsSingleton(_merged(quarantined, "Quarantined", 1, with_default=True))
        written = clean_acc | "Write" >> beam.ParDo(_WriteStatisticsFn(self._clean_path, self._raw_path),
                                                    quarantined_acc)
        return (clean.pipeline
                | "Once" >> beam.Create([None])
                | "OrEmpty" >> beam.FlatMap(_written_or_empty, beam.pvalue.AsList(written), quarantined_acc,
                                            clean_path=self._clean_path, raw_path=self._raw_path
                                            ).with_output_types(str))


def _written_or_empty(_, written: list[str], quarantined: StatisticsAccumulators, clean_path: str, raw_path: str
                      ) -> list[str]:
    """The paths `Write` wrote; none (no clean rows): both files written here from an empty clean accumulator."""
    return written or _write_statistics(MergeStatisticsFn(), StatisticsAccumulators(), quarantined, clean_path,
                                        raw_path)


def _merged(batches: beam.PCollection[pa.RecordBatch], side: str, lanes: int, with_default: bool
            ) -> beam.PCollection[StatisticsAccumulators]:
    """One side's batches -> its TFDV accumulators, per bundle (Accumulate<side>) then merged (Merge<side>;
    with_default: an empty accumulator when there were no rows, else nothing)."""
    merge = beam.CombineGlobally(MergePartialsFn())
    return (batches
            | f"Accumulate{side}" >> beam.ParDo(_AccumulateStatisticsFn(lanes)
                                                ).with_output_types(StatisticsAccumulators)
            | f"Merge{side}" >> (merge if with_default else merge.without_defaults()
                                 ).with_output_types(StatisticsAccumulators))
