"""Check: the compiled suite over every batch; clean (and repaired) rows out, quarantined rows and counts tagged.

Extreme-value bounds and z-score moments come from the raw profile side input and are bound once per DoFn
instance. In the write pass, the clean profile side input gives the values `impute` fills in; in the fit
pass those cells are left missing so the clean profile is taken over clean values only. Every reason is also
a Beam counter in METRICS_NAMESPACE.
"""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from expectations.compiler import CompiledSuite
from pipeline.progress import ProgressSink
from pipeline.stages import coders  # noqa: F401  (registers the RecordBatch coder)
from transforms.counts import RowCounts
from transforms.evaluate import SAMPLE_SIZE, check_batch

METRICS_NAMESPACE = "nanguard"  # Beam counters: one per reason code, named by the reason ("nan:f0")
CLEAN_TAG = "clean"
QUARANTINE_TAG = "quarantine"
COUNTS_TAG = "counts"


class CheckRowsFn(beam.DoFn):
    def __init__(self, compiled: CompiledSuite, progress: ProgressSink | None = None, pass_name: str = "",
                 samples: int = 0):
        self._compiled = compiled.for_workers()
        self._rules = None
        self._impute = None
        self._counters = {}
        self._progress, self._pass = progress, pass_name
        self._samples = samples
        self._writer = None

    def setup(self):
        if self._progress is not None:
            self._writer = self._progress.writer(self._pass)

    def finish_bundle(self):
        if self._writer is not None:
            self._writer.flush()

    def process(self, batch, raw_profile, clean_profile=None):
        if self._rules is None:
            bound = self._compiled.bind(raw_profile.profiles)
            self._indices = [i for i, _ in bound]
            self._rules = [r for _, r in bound]
            if clean_profile is not None:
                self._impute = {c: clean_profile.profiles[c].statistic(fill) if isinstance(fill, str) else fill
                                for c, fill in self._compiled.impute.items()}
        outcome = check_batch(batch, self._rules, self._impute, self._samples)
        for why, hits in outcome.reason_counts.items():
            if why not in self._counters:
                self._counters[why] = Metrics.counter(METRICS_NAMESPACE, why)
            self._counters[why].inc(hits)
        if self._writer is not None and outcome.quarantined.num_rows:
            self._writer.add(quarantined=outcome.quarantined.num_rows)
        if outcome.clean.num_rows:
            yield outcome.clean
        if outcome.quarantined.num_rows:
            yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, outcome.quarantined)
        yield beam.pvalue.TaggedOutput(COUNTS_TAG, RowCounts.of(outcome, self._indices))


class CheckRows(beam.PTransform):
    """PCollection[RecordBatch] -> DoOutputsTuple(clean batches, quarantine: batches with __reasons, counts:
    one RowCounts per batch).

    With clean_profile (the write pass), `impute` fills in clean statistics and the counts carry the first
    unexpected values of each expectation in input order (GE's partial_unexpected_list)."""

    def __init__(self, *, compiled: CompiledSuite, raw_profile: beam.PCollection,
                 clean_profile: beam.PCollection | None = None, progress: ProgressSink | None = None,
                 pass_name: str = ""):
        super().__init__()
        self._compiled = compiled
        self._raw_profile = raw_profile
        self._clean_profile = clean_profile
        self._progress, self._pass = progress, pass_name

    def expand(self, batches: beam.PCollection[pa.RecordBatch]) -> beam.pvalue.DoOutputsTuple:
        fn = CheckRowsFn(self._compiled, self._progress, self._pass,
                         SAMPLE_SIZE if self._clean_profile is not None else 0)
        side = [beam.pvalue.AsSingleton(self._raw_profile)]
        if self._clean_profile is not None:
            side.append(beam.pvalue.AsSingleton(self._clean_profile))
        outputs = batches | "Check" >> beam.ParDo(fn, *side).with_outputs(QUARANTINE_TAG, COUNTS_TAG,
                                                                         main=CLEAN_TAG)
        for tag in (CLEAN_TAG, QUARANTINE_TAG):  # tagged outputs take no type hint; their coder follows this
            outputs[tag].element_type = pa.RecordBatch
        return outputs


@beam.typehints.with_input_types(RowCounts)
@beam.typehints.with_output_types(RowCounts)
class SumCountsFn(beam.CombineFn):
    """RowCounts -> their sum (RowCounts.merge: the same on every merge path)."""

    def create_accumulator(self) -> RowCounts:
        return RowCounts()

    def add_input(self, acc: RowCounts, counts: RowCounts) -> RowCounts:
        return acc.merge(counts)

    def merge_accumulators(self, accs) -> RowCounts:
        out = RowCounts()
        for a in accs:
            out.merge(a)
        return out

    def extract_output(self, acc: RowCounts) -> RowCounts:
        return acc
