"""CheckRows: the compiled suite over every batch; clean (and repaired) rows out, quarantined rows and counts tagged.

Extreme-value bounds and z-score moments come from the raw profile side input and are bound once per DoFn
instance. In the write pass, the clean profile side input gives the values `impute` fills in; in the fit
pass those cells are left missing so the clean profile is taken over clean values only. Every reason is also
a Beam counter in the 'nanguard' namespace.
"""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from expectations.compiler import CompiledSuite
from pipeline import coders  # noqa: F401  (registers the RecordBatch coder)
from transforms.quarantine import SAMPLE_SIZE, check_batch

QUARANTINE_TAG = "quarantine"
COUNTS_TAG = "counts"


class _CheckRowsFn(beam.DoFn):
    def __init__(self, compiled: CompiledSuite, progress=None, pass_name: str = "", samples: int = 0):
        self._compiled = compiled
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
                self._impute = {c: clean_profile.profiles[c].statistic(stat)
                                for c, stat in self._compiled.impute.items()}
        outcome = check_batch(batch, self._rules, self._impute, self._samples)
        counts = {"rows": batch.num_rows, "clean_rows": outcome.clean.num_rows,
                  "quarantined_rows": outcome.quarantined.num_rows}
        counts.update({f"reason/{k}": v for k, v in outcome.reason_counts.items()})
        counts.update({f"repaired/{k}": v for k, v in outcome.repaired.items()})
        for idx, hits, domain, sample in zip(self._indices, outcome.rule_counts, outcome.rule_domains,
                                             outcome.samples):
            counts[f"expectation/{idx}"] = counts.get(f"expectation/{idx}", 0) + hits
            counts[f"domain/{idx}"] = counts.get(f"domain/{idx}", 0) + domain
            if sample:
                counts[f"samples/{idx}"] = sample
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
    """PCollection[RecordBatch] -> DoOutputsTuple(main=clean batches, quarantine=batches with __reasons, counts).

    With clean_profile (the write pass), `impute` fills in clean statistics and the counts carry the first
    unexpected values of each expectation in input order (GE's partial_unexpected_list)."""

    def __init__(self, compiled: CompiledSuite, raw_profile: beam.PCollection, progress=None, pass_name: str = "",
                 clean_profile: beam.PCollection | None = None):
        super().__init__()
        self._compiled = compiled
        self._raw_profile = raw_profile
        self._clean_profile = clean_profile
        self._progress, self._pass = progress, pass_name  # a progress.ProgressSink, or None

    def expand(self, batches: beam.PCollection):
        fn = _CheckRowsFn(self._compiled, self._progress, self._pass,
                          SAMPLE_SIZE if self._clean_profile is not None else 0)
        side = [beam.pvalue.AsSingleton(self._raw_profile)]
        if self._clean_profile is not None:
            side.append(beam.pvalue.AsSingleton(self._clean_profile))
        outputs = batches | "Check" >> beam.ParDo(fn, *side).with_outputs(QUARANTINE_TAG, COUNTS_TAG, main="clean")
        for tag in ("clean", QUARANTINE_TAG):  # tagged outputs take no type hint; their coder follows this
            outputs[tag].element_type = pa.RecordBatch
        return outputs
