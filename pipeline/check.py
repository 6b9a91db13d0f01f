"""CheckRows: the compiled suite over every batch; clean rows out, quarantined rows and counts tagged.

Extreme-value bounds come from the raw profile side input and are bound once per DoFn instance.
Every reason is also a Beam counter in the 'nanguard' namespace.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from expectations.compiler import CompiledSuite
from transforms.quarantine import check_batch

QUARANTINE_TAG = "quarantine"
COUNTS_TAG = "counts"


class _CheckRowsFn(beam.DoFn):
    def __init__(self, compiled: CompiledSuite, progress=None, pass_name: str = ""):
        self._compiled = compiled
        self._rules = None
        self._counters = {}
        self._progress, self._pass = progress, pass_name
        self._writer = None

    def setup(self):
        if self._progress is not None:
            self._writer = self._progress.writer(self._pass)

    def finish_bundle(self):
        if self._writer is not None:
            self._writer.flush()

    def process(self, batch, raw_profile):
        if self._rules is None:
            bound = self._compiled.bind(raw_profile.profiles)
            self._indices = [i for i, _ in bound]
            self._rules = [r for _, r in bound]
        outcome = check_batch(batch, self._rules)
        counts = {"rows": batch.num_rows, "clean_rows": outcome.clean.num_rows,
                  "quarantined_rows": outcome.quarantined.num_rows}
        counts.update({f"reason/{k}": v for k, v in outcome.reason_counts.items()})
        for idx, hits in zip(self._indices, outcome.rule_counts):
            counts[f"expectation/{idx}"] = counts.get(f"expectation/{idx}", 0) + hits
        for reason, hits in outcome.reason_counts.items():
            if reason not in self._counters:
                self._counters[reason] = Metrics.counter("nanguard", reason)
            self._counters[reason].inc(hits)
        if self._writer is not None and outcome.quarantined.num_rows:
            self._writer.add(quarantined=outcome.quarantined.num_rows)
        if outcome.clean.num_rows:
            yield outcome.clean
        if outcome.quarantined.num_rows:
            yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, outcome.quarantined)
        yield beam.pvalue.TaggedOutput(COUNTS_TAG, counts)


class CheckRows(beam.PTransform):
    """PCollection[RecordBatch] -> DoOutputsTuple(main=clean batches, quarantine=batches with __reasons, counts)."""

    def __init__(self, compiled: CompiledSuite, raw_profile: beam.PCollection, progress=None, pass_name: str = ""):
        super().__init__()
        self._compiled = compiled
        self._raw_profile = raw_profile
        self._progress, self._pass = progress, pass_name  # a progress.ProgressSink, or None

    def expand(self, batches: beam.PCollection):
        return batches | "Check" >> beam.ParDo(
            _CheckRowsFn(self._compiled, self._progress, self._pass), beam.pvalue.AsSingleton(self._raw_profile)).with_outputs(
            QUARANTINE_TAG, COUNTS_TAG, main="clean")
