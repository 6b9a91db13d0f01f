"""Statistics: TFDV statistics of the clean rows and of every input row, in original units, as binary protos.

One TFDV pass, in the fit pass, where clean and quarantined rows are first known: the clean rows' accumulators
give `clean.pb`, and their merge with the quarantined rows' accumulators gives `raw.pb` (every input row). Both
are in the input's units, so they are comparable with each other and across runs (baselines, drift). What the
written (normalized) values must satisfy is checked by nanguard's own exact profile of them (written_values).

The statistics are TFDV's own: its generators (`get_generators(StatsOptions(), in_memory=True)`: basic
statistics and the sketch-based top-k/uniques), its accumulators, its merge and its output, the same path as
`tfdv.generate_statistics_from_dataframe`. Only the driving differs from `tfdv.GenerateStatistics`: each DoFn
instance feeds its batches to the generators on background threads (TFDV's quantile sketches, most of its
time, release the GIL), so statistics overlap with checking and encoding instead of running as a separate
Beam combine. Two threads split the columns, not the rows: each feature has one accumulator per bundle, as
in TFDV alone. One partial accumulator per bundle is then merged by a CombineGlobally per side (clean,
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


def for_tfdv(batch: pa.RecordBatch, indices: tuple[int, ...] | None = None) -> pa.RecordBatch:
    """The batch as TFDV reads it: list-typed columns, nanguard's own left out; only the columns at `indices`
    when given. The rows are kept even when no column is (TFDV counts the examples of every batch)."""
    names = batch.schema.names
    keep = [i for i in (range(len(names)) if indices is None else indices) if not is_nanguards(names[i])]
    if not keep:
        if not batch.num_rows:
            return pa.RecordBatch.from_arrays([], names=[])
        return pa.Table.from_batches([batch]).drop(names).to_batches()[0]  # no columns, the rows still count
    cols = [batch.column(i) for i in keep]
    return pa.RecordBatch.from_arrays([c if is_list(c.type) else to_list_array(c) for c in cols],
                                      names=[names[i] for i in keep])


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

    def add(self, batch: pa.RecordBatch, indices: tuple[int, ...] | None = None) -> None:
        batch = for_tfdv(batch, indices)
        self.accumulators = [g.add_input(a, batch) for g, a in zip(self.generators, self.accumulators)]
        self.rows += batch.num_rows

    def compacted(self) -> StatisticsAccumulators:
        return StatisticsAccumulators(g.compact(a) for g, a in zip(self.generators, self.accumulators))


def union_of_column_shares(partials: list[StatisticsPartial], order: list[str]) -> StatisticsAccumulators:
    """Partials that each saw every row of a bundle, for a disjoint share of its columns -> one set of
    accumulators: every feature's entry from the partial that has it, in the columns' `order`. TFDV's
    accumulators are mappings from feature path to that feature's state, beside the example counts, which every
    partial has in full; TFDV's merge would add those up, so the first partial's are kept instead."""
    shares = [p.compacted() for p in partials]
    position = {name: i for i, name in enumerate(order)}
    union = StatisticsAccumulators()
    for accumulators in zip(*shares):
        first = accumulators[0]
        entries = {}
        for acc in accumulators:
            for path, state in acc.items():
                if path in entries:
                    raise ValueError(f"feature {path} is in two column shares; shares must be disjoint")
                entries[path] = state
        for path in list(first):
            del first[path]
        for path in sorted(entries, key=lambda p: (position.get(p.steps()[0], len(position)), p.steps())):
            first[path] = entries[path]
        union.append(first)
    return union


class _AccumulateStatisticsFn(AccumulateInBackground):
    """Batches -> TFDV accumulators, one set per bundle. The lanes split the columns, not the rows: each lane
    gets every batch and folds its share of the columns (fixed for the bundle by where a column first
    appears), so every feature has one accumulator per bundle whatever the lanes. Its quantile sketches are
    TFDV's largest state (megabytes a numeric feature) and the statistics are those of one accumulator over
    the bundle's batches; split by rows, each lane held sketches of every feature."""

    def __init__(self, lanes: int):
        super().__init__("nanguard-stats", lanes, MAX_PENDING_BATCHES)

    def setup(self):
        self._generators = [tfdv_generators() for _ in range(self._num_lanes)]

    def start_bundle(self):
        super().start_bundle()
        self._lane_of: dict[str, int] = {}  # column -> its lane; in the order columns first appeared

    def new_partial(self, lane: int) -> StatisticsPartial:
        return StatisticsPartial(self._generators[lane])

    def route(self, batch: pa.RecordBatch) -> list[tuple[int, tuple[pa.RecordBatch, tuple[int, ...]]]]:
        names = batch.schema.names
        new = [n for n in names if n not in self._lane_of and not is_nanguards(n)]
        for i, name in enumerate(new):  # contiguous shares of about equal numbers of columns
            self._lane_of[name] = i * self._num_lanes // len(new)
        shares = [[] for _ in range(self._num_lanes)]
        for i, name in enumerate(names):
            if name in self._lane_of:
                shares[self._lane_of[name]].append(i)
        return [(lane, (batch, tuple(share))) for lane, share in enumerate(shares)]

    def add(self, partial: StatisticsPartial, work: tuple[pa.RecordBatch, tuple[int, ...]]) -> None:
        partial.add(*work)

    def outputs(self, partials: list[StatisticsPartial]) -> list:
        return [union_of_column_shares(partials, list(self._lane_of))] if partials[0].rows else []


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

    clean_lanes: statistics threads per DoFn instance for the clean rows, each folding its share of the columns
    over every row (so the statistics do not depend on it). A pass whose main thread has less to do than TFDV
    gains from 2; a second lane where the main thread is the slower side only adds memory (each thread's malloc
    arena keeps what it freed). BENCHMARKS.md has the figures."""

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
