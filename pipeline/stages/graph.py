"""The Beam graph, stage by stage as in design.md's data flow; each stage a named step.

The input is read three times so that memory does not grow with rows:
  profile pass: Read -> RawProfile (exact profile, quantile sketches)
  fit pass:     Read -> Check -> CleanProfile -> Fit (normalization, output columns)
                             -> Statistics (TFDV of the clean and the quarantined rows: clean.pb, raw.pb)
  (a table wider than --statistics-columns: one statistics pass per group of columns instead,
   ReadForStatistics<g> -> CheckForStatistics<g> -> that group's Statistics steps, so memory follows the group)
  write pass:   Read -> Check -> Normalize -> WriteShards (Encode, Stage, Finalize) -> WrittenProfile
                              -> WriteQuarantine;  Check counts -> Counts
TFDV runs once per column, over the rows in their original units (stages.statistics): in the fit pass, or in
its group's statistics pass.
Small results are saved as JSON artifacts (stages.artifacts) for the driver to assemble the report from.
"""
from __future__ import annotations

import uuid

import apache_beam as beam
import pyarrow as pa

from expectations.compiler import CompiledSuite
from pipeline.config import RunConfig
from pipeline.files import write_json
from pipeline.inputs.plan import InputPlan
from pipeline.progress import PASSES, STATISTICS_PASS, ProgressSink
from pipeline.stages.artifacts import (CLEAN_PROFILE, CLEAN_STATS, COUNTS, DATA_DIR, INDEX_DIR, OUTPUTS, QUARANTINE,
                                       QUARANTINE_DIR, RAW_PROFILE, RAW_STATS, SHARDS, TMP_DIR, WRITTEN,
                                       StagedRun)
from pipeline.stages.check import CheckRows, SumCountsFn
from pipeline.stages.fit import FitNormalization, outputs_json
from pipeline.stages.kept_reads import KeepReads
from pipeline.stages.normalize import Normalize
from pipeline.stages.profile import Profile
from pipeline.stages.quarantine import WriteQuarantine
from pipeline.stages.read import ReadBatches
from pipeline.stages.shards import WriteShards
from pipeline.stages.statistics import WriteCleanAndRawStatistics, statistics_groups
from pipeline.stages.written import WrittenProfile

PROFILE_PASS, FIT_PASS, WRITE_PASS = PASSES


def _save(path: str, obj) -> str:
    """An artifact: compact JSON, read back only by the driver."""
    return write_json(path, obj, indent=None)


def build(p: beam.Pipeline, *, plan: InputPlan, compiled: CompiledSuite, config: RunConfig, staged: StagedRun,
          progress: ProgressSink | None = None, frozen: dict | None = None) -> None:
    """frozen: feature -> Scaling of a --baseline, applied as it is instead of fitting on the clean profile."""
    columns = tuple(plan.kinds)
    labels = tuple(lab.column for lab in config.labels)

    run_token = uuid.uuid4().hex

    def read(name: str, pass_name: str) -> beam.PCollection[pa.RecordBatch]:
        # Small read tasks are read from their files once; the later passes take the first one's batches.
        keep = KeepReads(run=run_token, later_passes=len(PASSES) - 1 - PASSES.index(pass_name))
        return p | name >> ReadBatches(plan=plan, progress=progress, pass_name=pass_name, keep=keep)

    # The checks and the fit get each profile without its sketches (ProfileAccumulator.without_sketches): the
    # step that merges a profile saves it whole for the report and passes on the sketch-free copy (stages.profile).
    raw_profile = read("ReadForProfile", PROFILE_PASS) | "RawProfile" >> Profile(
        columns=columns, with_sketch=True, save_to=staged.artifact(RAW_PROFILE))

    fit_pass = read("ReadForFit", FIT_PASS) | "CheckForFit" >> CheckRows(
        compiled=compiled, raw_profile=raw_profile, progress=progress, pass_name=FIT_PASS)
    clean_profile = fit_pass.clean | "CleanProfile" >> Profile(
        columns=columns, with_sketch=True, save_to=staged.artifact(CLEAN_PROFILE))
    # TFDV's statistics of the clean and quarantined rows: in the fit pass, or, for a table wider than one group of
    # --statistics-columns, in a pass of their own per group (the fit pass's checks again, each group's columns
    # accumulated), so that one group's TFDV state is all a pass holds. Two statistics threads for the clean rows:
    # TFDV is most of the fit pass's CPU, and one thread of it made the run ~10-15% slower for ~80 MB less peak RSS
    # (BENCHMARKS.md).
    groups = statistics_groups(columns, config.statistics_columns)
    if len(groups) == 1:
        sides = (fit_pass.clean, fit_pass.quarantine)
    else:
        sides = ()
        for g in range(len(groups)):  # reading the files (read()'s kept batches are counted for the 3 passes)
            checked = (p | f"ReadForStatistics{g}" >> ReadBatches(plan=plan, progress=progress,
                                                                   pass_name=STATISTICS_PASS)
                       | f"CheckForStatistics{g}" >> CheckRows(compiled=compiled, raw_profile=raw_profile))
            sides += (checked.clean, checked.quarantine)
    _ = sides | "Statistics" >> WriteCleanAndRawStatistics(columns=columns, clean_path=staged.stats(CLEAN_STATS),
                                                           raw_path=staged.stats(RAW_STATS), clean_lanes=2,
                                                           groups=groups)
    outputs = clean_profile | "Fit" >> FitNormalization(plan=plan, labels=labels, passthrough=config.passthrough,
                                                        method=config.normalize, filled=compiled.fills_missing,
                                                        indicators=compiled.indicators, frozen=frozen)

    write_pass = read("ReadForWrite", WRITE_PASS) | "CheckForWrite" >> CheckRows(
        compiled=compiled, raw_profile=raw_profile, clean_profile=clean_profile, progress=progress,
        pass_name=WRITE_PASS)
    normalized = write_pass.clean | "Normalize" >> Normalize(outputs=outputs)
    written, shards = normalized | "WriteShards" >> WriteShards(
        num_shards=config.num_shards, data_dir=staged.path(DATA_DIR), index_dir=staged.path(INDEX_DIR),
        tmp_dir=staged.path(TMP_DIR),
        gzip=config.compression == "gzip")
    written_profile = written | "WrittenProfile" >> WrittenProfile()
    quarantine = write_pass.quarantine | "WriteQuarantine" >> WriteQuarantine(
        out_dir=staged.path(QUARANTINE_DIR), tmp_dir=staged.path(TMP_DIR),
        schema=plan.quarantine_schema)
    counts = write_pass.counts | "Counts" >> beam.CombineGlobally(SumCountsFn())

    _ = outputs | "SaveOutputs" >> beam.Map(lambda o: _save(staged.artifact(OUTPUTS), outputs_json(o)))
    _ = written_profile | "SaveWritten" >> beam.Map(lambda w: _save(staged.artifact(WRITTEN), w.to_json()))
    _ = counts | "SaveCounts" >> beam.Map(lambda c: _save(staged.artifact(COUNTS), c.to_json()))
    _ = (shards | "ListShards" >> beam.combiners.ToList()
         | "SaveShards" >> beam.Map(lambda s: _save(staged.artifact(SHARDS), sorted(s, key=lambda d: d["path"]))))
    # WriteQuarantine yields exactly one file (empty when nothing was quarantined): no combine needed.
    _ = quarantine | "SaveQuarantine" >> beam.Map(lambda q: _save(staged.artifact(QUARANTINE), [q]))
