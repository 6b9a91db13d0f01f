"""Statistics: TFDV statistics of the clean rows and of every input row, in original units, as binary protos.

One TFDV pass, in the fit pass, where clean and quarantined rows are first known: the clean rows' accumulators
give `clean.pb`, and their merge with the quarantined rows' accumulators gives `raw.pb` (every input row). Both
are in the input's units, so they are comparable with each other and across runs (baselines, drift). What the
written (normalized) values must satisfy is checked by nanguard's own exact profile of them (written_values).
TFDV holds ~360 KB a numeric feature however few the rows, so a table wider than one group of columns
(statistics_groups, --statistics-columns) gets a statistics pass per group instead of the fit pass's, each
checking the rows again and accumulating its group's columns: the same statistics, one group's state in memory
at a time.

The statistics are TFDV's own: its generators (`get_generators(StatsOptions(), in_memory=True)`: basic
statistics and the sketch-based top-k/uniques), its accumulators, its merge and its output, the same path as
`tfdv.generate_statistics_from_dataframe`. Only the driving differs from `tfdv.GenerateStatistics`: each DoFn
instance feeds its batches to the generators on background threads (TFDV's quantile sketches, most of its
time, release the GIL), so statistics overlap with checking and encoding instead of running as a separate
Beam combine. Two threads split the columns, not the rows: each feature has one accumulator per bundle, as
in TFDV alone. Each bundle's accumulators leave in parts of FEATURES_PER_PART columns, merged per part and side
(clean, quarantined) and extracted part by part; one step joins the parts' statistics and writes both files.

TFDV reads list-typed Arrow columns, so checked batches are wrapped (one value per row); nanguard's own columns
(__source_file, __reasons, ...) are left out. The driver infers schema.pbtxt from clean.pb (report.schema).
"""
from __future__ import annotations

import copy
import pickle
from typing import Iterator, Tuple

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

Statistics = statistics_pb2.DatasetFeatureStatisticsList


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

    def compact(self) -> None:
        """Compacts the quantile sketches in place (tfx_bsl's Compact(): once per sketch, a no-op after that), as
        TFDV does before accumulators cross between steps."""
        self.accumulators = [g.compact(a) for g, a in zip(self.generators, self.accumulators)]

    def compacted(self) -> StatisticsAccumulators:
        self.compact()
        return StatisticsAccumulators(self.accumulators)


def union_of_column_shares(partials: list[StatisticsPartial], order: list[str]) -> StatisticsAccumulators:
    """Partials that each saw every row of a bundle, for a disjoint share of its columns -> one set of
    accumulators: every feature's entry from the partial that has it, in the columns' `order`. TFDV's
    accumulators are mappings from feature path to that feature's state, beside the example counts, which every
    partial has in full; TFDV's merge would add those up, so the first partial's are kept instead. The partials
    are taken as they are: the lanes compacted them (_AccumulateStatisticsFn.finish)."""
    shares = [StatisticsAccumulators(p.accumulators) for p in partials]
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
        for acc in accumulators:  # every state now has one owner, so each is freed with its part
            for path in list(acc):
                del acc[path]
        for path in sorted(entries, key=lambda p: (position.get(p.steps()[0], len(position)), p.steps())):
            first[path] = entries[path]
        union.append(first)
    return union


# Features per part: accumulators cross between steps in parts of at most this many features, so no element is
# larger than ~10 MB (a numeric feature's TFDV state pickles to ~150 KB at 10,000 rows). One element holding
# every feature's state (700 MB at 5,000 features) was copied whole at every crossing, and the runner's cached
# output streams kept a buffer of twice its size after the step that wrote it (BENCHMARKS.md).
FEATURES_PER_PART = 64


def number_of_parts(columns: tuple[str, ...]) -> int:
    return max(1, -(-len(columns) // FEATURES_PER_PART))


def part_of(position: int) -> int:
    """The part of the column at this position in the input's columns."""
    return position // FEATURES_PER_PART


def statistics_groups(columns: tuple[str, ...], group_columns: int | None = None) -> tuple[range, ...]:
    """The column groups whose statistics are accumulated together, as ranges of consecutive parts: every part in
    one group (None), or groups of `group_columns` columns rounded down to whole parts (at least one part each).
    TFDV's accumulators hold ~360 KB a numeric feature whatever the rows, more as rows grow (BENCHMARKS.md), so
    a group's width bounds what one pass holds."""
    count = number_of_parts(columns)
    if group_columns is None:
        return (range(count),)
    if group_columns < 1:
        raise ValueError(f"group_columns must be >= 1, got {group_columns}")
    per_group = max(1, group_columns // FEATURES_PER_PART)
    return tuple(range(start, min(start + per_group, count)) for start in range(0, count, per_group))


def split_into_parts(accumulators: StatisticsAccumulators, columns: tuple[str, ...], parts: range | None = None
                     ) -> list[tuple[int, StatisticsAccumulators]]:
    """One bundle's accumulators -> (part, accumulators of that part's features) for every part in `parts` (by
    default every part of `columns`: consecutive runs of FEATURES_PER_PART columns, in order). Each part keeps the
    dataset-level state (the example counts: what is left of an accumulator without its feature entries), so
    every part's merge counts every row, and a part with no features in this bundle is still emitted. Consumes
    `accumulators`."""
    position = {name: i for i, name in enumerate(columns)}
    parts = range(number_of_parts(columns)) if parts is None else parts
    per_generator = []
    for acc in accumulators:
        entries = list(acc.items())
        for path, _ in entries:
            del acc[path]
        cut = {k: copy.deepcopy(acc) for k in parts}
        for path, state in entries:
            column = path.steps()[0]
            if column not in position:
                raise ValueError(f"feature {path} is not one of the input's columns {list(columns)[:5]}...; the "
                                 "statistics' parts are cut from the input's columns")
            part = part_of(position[column])
            if part not in cut:
                raise ValueError(f"feature {path} is in part {part}, outside this group's parts {parts}")
            cut[part][path] = state
        per_generator.append(cut)
    return [(k, StatisticsAccumulators(cut[k] for cut in per_generator)) for k in parts]


def join_parts(parts: list[Statistics]) -> Statistics:
    """Each part's statistics, in part order -> one DatasetFeatureStatisticsList: the first part's dataset (its
    example counts, which every part has) with every part's features after it, in order."""
    joined = Statistics()
    joined.CopyFrom(parts[0])
    for part in parts[1:]:
        for mine, theirs in zip(joined.datasets, part.datasets):
            if (mine.num_examples, mine.weighted_num_examples) != (theirs.num_examples, theirs.weighted_num_examples):
                raise ValueError(f"statistics parts disagree on the example count: {mine.num_examples} and "
                                 f"{theirs.num_examples}")
            mine.features.extend(theirs.features)
            mine.cross_features.extend(theirs.cross_features)
    return joined


class _AccumulateStatisticsFn(AccumulateInBackground):
    """Batches -> TFDV accumulators, one set per bundle, emitted in parts of FEATURES_PER_PART columns. The lanes
    split the columns, not the rows: each lane gets every batch and folds its share of the columns (fixed for the
    bundle by where a column first appears), so every feature has one accumulator per bundle whatever the lanes.
    Its quantile sketches are TFDV's largest state (megabytes a numeric feature) and the statistics are those of
    one accumulator over the bundle's batches; split by rows, each lane held sketches of every feature."""

    def __init__(self, lanes: int, columns: tuple[str, ...], parts: range | None = None):
        super().__init__("nanguard-stats", lanes, MAX_PENDING_BATCHES)
        self._columns = tuple(columns)
        self._parts = range(number_of_parts(self._columns)) if parts is None else parts
        # the input's columns of other groups' parts: left to those groups' DoFns
        self._others = frozenset(c for i, c in enumerate(self._columns) if part_of(i) not in self._parts)

    def setup(self):
        self._generators = [tfdv_generators() for _ in range(self._num_lanes)]

    def start_bundle(self):
        super().start_bundle()
        self._lane_of: dict[str, int] = {}  # column -> its lane; in the order columns first appeared

    def new_partial(self, lane: int) -> StatisticsPartial:
        return StatisticsPartial(self._generators[lane])

    def route(self, batch: pa.RecordBatch) -> list[tuple[int, tuple[pa.RecordBatch, tuple[int, ...]]]]:
        names = batch.schema.names
        new = [n for n in names if n not in self._lane_of and not is_nanguards(n) and n not in self._others]
        for i, name in enumerate(new):  # contiguous shares of about equal numbers of columns
            self._lane_of[name] = i * self._num_lanes // len(new)
        shares = [[] for _ in range(self._num_lanes)]
        for i, name in enumerate(names):
            if name in self._lane_of:
                shares[self._lane_of[name]].append(i)
        return [(lane, (batch, tuple(share))) for lane, share in enumerate(shares)]

    def add(self, partial: StatisticsPartial, work: tuple[pa.RecordBatch, tuple[int, ...]]) -> None:
        partial.add(*work)

    def finish(self, partial: StatisticsPartial) -> None:
        # Compacting replaces each sketch's buffers: on the main thread, the old ones stayed in this lane's arena
        # while the new ones grew the main arena (5,000 features: +1.7 GB at the fit pass's end; BENCHMARKS.md).
        partial.compact()

    def outputs(self, partials: list[StatisticsPartial]) -> list[tuple[int, StatisticsAccumulators]]:
        if not partials[0].rows:
            return []
        return _handed_out(split_into_parts(union_of_column_shares(partials, list(self._columns)), self._columns,
                                            self._parts))


def _handed_out(values: list) -> Iterator:
    """The values first to last, each dropped from the list as it is handed out: a bundle's parts are freed one
    by one as the runner takes them, instead of all staying in memory until the last is encoded."""
    values.reverse()
    while values:
        yield values.pop()


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

    def extract_output(self, accumulator) -> Statistics:
        generators = self._generators()
        if not accumulator:
            accumulator = [g.create_accumulator() for g in generators]
        return stats_impl.extract_statistics_output(accumulator, generators)


@beam.typehints.with_input_types(StatisticsAccumulators)
@beam.typehints.with_output_types(StatisticsAccumulators)
class MergePartialsFn(MergeStatisticsFn):
    """Bundles' TFDV accumulators of one part -> their merge, still accumulators, for _ExtractPartFn to extract
    (a part's key has at least one bundle's accumulators, so there is always a merge)."""

    def extract_output(self, accumulator) -> StatisticsAccumulators:
        return accumulator


def _write_proto(stats: Statistics, path: str) -> str:
    with FileSystems.create(path) as f:
        f.write(stats.SerializeToString())
    return path


def _extract_clean_and_raw(merge: MergeStatisticsFn, clean: StatisticsAccumulators,
                           quarantined: StatisticsAccumulators | None) -> tuple[Statistics, Statistics]:
    """(one part's clean merged accumulators, its quarantined ones) -> (its clean statistics, its raw ones).

    TFDV's extraction finalizes its sketches and a finalized sketch can no longer be merged, so raw comes first:
    the clean accumulator is merged into a copy of the quarantined one (quarantined rows are few; copying the clean
    side instead cost 147 MB and ~1.5 s at 1,000 features), and clean is extracted after, from accumulators that
    merge only read. With nothing quarantined raw is clean: one extraction, not two (TFDV's histograms are most of
    its extraction: ~14 s at 1,000 features)."""
    if not quarantined:
        clean_stats = raw_stats = merge.extract_output(clean)
    else:
        raw_stats = merge.extract_output(merge.merge_accumulators([_copied(quarantined), clean]))
        clean_stats = merge.extract_output(clean)
    return clean_stats, raw_stats


def _copied(accumulators: StatisticsAccumulators) -> StatisticsAccumulators:
    """A copy to merge into or extract: a side input is shared (the runner caches it, a retried bundle reads it
    again) and TFDV's merge and extraction change the accumulators they are given."""
    return pickle.loads(pickle.dumps(accumulators, protocol=pickle.HIGHEST_PROTOCOL))


@beam.typehints.with_output_types(Tuple[int, bytes, bytes])
class _ExtractPartFn(beam.DoFn):
    """(part, its clean rows' merged accumulators), the quarantined rows' ones by part (a side input) -> (part,
    its clean statistics, its raw statistics), serialized. One part's accumulators are in memory at a time."""

    def setup(self):
        self._merge = MergeStatisticsFn()

    def process(self, element: tuple[int, StatisticsAccumulators], quarantined: dict):
        part, clean = element
        clean_stats, raw_stats = _extract_clean_and_raw(self._merge, clean, quarantined.get(part))
        yield part, clean_stats.SerializeToString(), raw_stats.SerializeToString()


def _write_files(_, extracted: list[tuple[int, bytes, bytes]], quarantined: dict, clean_path: str, raw_path: str
                 ) -> list[str]:
    """Every part's statistics -> clean.pb and raw.pb (their paths). No part (no clean rows): the clean statistics
    are those of no rows and the raw ones the quarantined rows', extracted here."""
    parse = Statistics.FromString
    if extracted:
        ordered = sorted(extracted, key=lambda e: e[0])
        clean = join_parts([parse(e[1]) for e in ordered])
        raw = join_parts([parse(e[2]) for e in ordered])
    else:
        merge = MergeStatisticsFn()
        clean = merge.extract_output(StatisticsAccumulators())
        raw = (join_parts([merge.extract_output(_copied(quarantined[k])) for k in sorted(quarantined)])
               if quarantined else clean)
    return [_write_proto(clean, clean_path), _write_proto(raw, raw_path)]


class WriteCleanAndRawStatistics(beam.PTransform):
    """(clean RecordBatches, quarantined RecordBatches) of each column group -> clean.pb and raw.pb (their paths).

    Each side is accumulated per bundle beside the bundle's main thread, in parts of FEATURES_PER_PART columns,
    and each part is merged by its side's combine (`Merge<side>`, per part); `Extract` then extracts each clean
    part with its quarantined part (a side input), one part at a time, and `Write` joins the parts' statistics
    (small protos) into the two files. Elements stay ~10 MB however wide the table. No Flatten of the two sides:
    it would cost its own stage, where every partial is pickled and unpickled once more.

    columns: the input's columns, in order (the statistics' features follow it; the parts are cut from it).
    groups: statistics_groups(columns, ...): the parts each group's (clean, quarantined) pair accumulates, in
    order (the same rows in every pair: each group folds its own columns of them). With one group (the
    default) the steps are named as above; with more, each group's steps end in its number and `Extract` is
    per group too, so a group's TFDV state is all that one pass holds.
    clean_lanes: statistics threads per DoFn instance for the clean rows, each folding its share of the columns
    over every row (so the statistics do not depend on it). A pass whose main thread has less to do than TFDV
    gains from 2; a second lane where the main thread is the slower side only adds memory (each thread's malloc
    arena keeps what it freed). BENCHMARKS.md has the figures."""

    def __init__(self, *, columns: tuple[str, ...], clean_path: str, raw_path: str, clean_lanes: int = 1,
                 groups: tuple[range, ...] | None = None):
        super().__init__()
        if clean_lanes < 1:
            raise ValueError(f"clean_lanes must be >= 1, got {clean_lanes}")
        self._columns = tuple(columns)
        self._groups = statistics_groups(self._columns) if groups is None else tuple(groups)
        covered = [k for g in self._groups for k in g]
        if covered != list(range(number_of_parts(self._columns))):
            raise ValueError(f"groups {self._groups} must cover the {number_of_parts(self._columns)} parts of the "
                             f"columns once each, in order")
        self._clean_path, self._raw_path, self._clean_lanes = clean_path, raw_path, clean_lanes

    def expand(self, sides: tuple[beam.PCollection[pa.RecordBatch], ...]) -> beam.PCollection[str]:
        """sides: each group's clean and quarantined batches, one group after the other (clean, quarantined with
        one group; clean0, quarantined0, clean1, quarantined1, ... with several)."""
        if len(sides) != 2 * len(self._groups):
            raise ValueError(f"{len(sides)} PCollections for {len(self._groups)} column groups: give each group's "
                             f"clean and quarantined batches")
        pairs = [(sides[i], sides[i + 1]) for i in range(0, len(sides), 2)]
        pipeline = pairs[0][0].pipeline
        suffixes = [""] if len(pairs) == 1 else [str(g) for g in range(len(pairs))]
        quarantined = [_merged(q, f"Quarantined{n}", 1, self._columns, parts)
                       for (_, q), n, parts in zip(pairs, suffixes, self._groups)]
        quarantined_parts = beam.pvalue.AsDict(_one_of(quarantined, "QuarantinedParts"))
        extracted = _one_of([(_merged(c, f"Clean{n}", self._clean_lanes, self._columns, parts)
                              | f"Extract{n}" >> beam.ParDo(_ExtractPartFn(), quarantined_parts))
                             for (c, _), n, parts in zip(pairs, suffixes, self._groups)], "ExtractedParts")
        return (pipeline
                | "Once" >> beam.Create([None])
                | "Write" >> beam.FlatMap(_write_files, beam.pvalue.AsList(extracted), quarantined_parts,
                                          clean_path=self._clean_path, raw_path=self._raw_path
                                          ).with_output_types(str))


def _one_of(pcollections: list[beam.PCollection], label: str) -> beam.PCollection:
    """The groups' PCollections as one: the only one as it is (a single group's steps stay as they were), else
    flattened under `label`."""
    return pcollections[0] if len(pcollections) == 1 else pcollections | label >> beam.Flatten()


def _merged(batches: beam.PCollection[pa.RecordBatch], side: str, lanes: int, columns: tuple[str, ...],
            parts: range) -> beam.PCollection[Tuple[int, StatisticsAccumulators]]:
    """One side's batches -> (part, its TFDV accumulators) for the group's parts, per bundle (Accumulate<side>)
    then merged per part (Merge<side>); no rows on that side: nothing."""
    return (batches
            | f"Accumulate{side}" >> beam.ParDo(_AccumulateStatisticsFn(lanes, columns, parts)
                                                ).with_output_types(Tuple[int, StatisticsAccumulators])
            | f"Merge{side}" >> beam.CombinePerKey(MergePartialsFn()
                                                   ).with_output_types(Tuple[int, StatisticsAccumulators]))
