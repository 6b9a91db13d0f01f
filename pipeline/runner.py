"""run(config) -> report: plan, build, run, report, publish; nothing else.

Each step lives where the data flow puts it: inputs.plan finds every problem with the inputs before the pipeline
starts, stages.graph builds the Beam graph, report.assemble turns its artifacts into the report, staging
publishes the staged outputs atomically (or discards them when anything fails, Ctrl-C and SIGTERM included).
"""
from __future__ import annotations

import dataclasses
import time

from expectations.compiler import CompileOptions, compile_suite
from expectations.errors import SuiteError
from expectations.suite import MAX_SUITE_BYTES, default_suite, load_suite
from pipeline.baseline import check_features, load_baseline
from pipeline.config import RunConfig
from pipeline.errors import ConfigError
from pipeline.files import read_bytes, read_json
from pipeline.inputs.plan import check_columns, plan_inputs
from pipeline.progress import Log, Monitor, ProgressSink
from pipeline.report.drift import SERVING, compare, missing_rates, missing_shifts, overlay_histograms
from pipeline.stages.artifacts import PROGRESS_DIR, RAW_PROFILE, RAW_STATS
from pipeline.staging import claim_output, discard, nanguard_written, new_stage, publish

# Beam, TFDV and TensorFlow take seconds to import. Everything above is light, so a bad flag, a missing column or
# a bad suite is reported before any of them loads (run() imports them after those checks).


def run(config: RunConfig | None = None, *, log: Log | None = None, **settings) -> dict:
    """Runs the pipeline and returns the report; a failed gate raises nothing (read report['passed']).

    Give a RunConfig, or its fields as keywords (labels as 'COL:KIND' strings are parsed):
    `run(inputs=["train.parquet"], output="out", labels=["y:binary"])`. With `log` (a progress.Log),
    progress goes to stderr every few seconds. Bad configuration or input raises pipeline.errors.NanguardError.
    """
    if config is None:
        config = RunConfig.from_settings(**settings)
    elif settings:
        raise TypeError("give either a RunConfig or keyword settings, not both")
    started = time.time()
    baseline = None
    if config.baseline is not None:
        baseline = load_baseline(config.baseline, config.allow_failed_baseline)
        labels = () if config.environment == SERVING else (config.labels or baseline.labels)  # serving: no label
        config = dataclasses.replace(config, labels=labels, suite=config.suite or baseline.suite,
                                     missing=config.missing or baseline.missing)
    plan = plan_inputs(config.inputs, config.format, tuple(lab.column for lab in config.labels if lab.is_vector),
                       exclude=frozenset(nanguard_written(config.output)), delimiter=config.delimiter)
    check_columns(plan, config.labels, config.passthrough, tuple(c for c, _ in config.missing))
    if baseline is not None:
        check_features(baseline, [c for c in features_of(plan, config) if c not in config.passthrough])
    try:
        suite = (load_suite(config.suite, lambda path: read_bytes(path, MAX_SUITE_BYTES)) if config.suite
                 else default_suite())
        compiled = compile_suite(suite, plan.schema, CompileOptions(
            config.labels, config.passthrough, config.extreme_threshold, config.extreme_action,
            config.mixed_precision, dict(config.missing)))
    except SuiteError as e:
        raise ConfigError(str(e)) from None
    if baseline is not None:
        compiled = dataclasses.replace(compiled, bulk=baseline.bulk)
    from apache_beam.options.pipeline_options import StandardOptions

    from pipeline.report.assemble import assemble, settle, write_report
    from pipeline.stages import graph
    from pipeline.stages.local_runner import new_pipeline, pipeline_options
    loaded_model = None  # loaded once, here, before the pipeline; checked on the staged shards after it
    if config.model is not None:
        from pipeline.training.model_check import preflight
        loaded_model = preflight(model_check_config(config, data=config.output), features_of(plan, config))
    options = pipeline_options(config.beam_args)
    runner = str(options.view_as(StandardOptions).runner)
    if plan.skipped and log:
        log.event("skipped_inputs", f"[nanguard] --input: left out {len(plan.skipped)} file(s) nanguard wrote in "
                                    f"{config.output} (e.g. {plan.skipped[0]})", skipped=list(plan.skipped))
    lock = claim_output(config.output, config.overwrite, plan.files)
    staged = new_stage(config.output)
    try:
        p = new_pipeline(options)
        graph.build(p, plan=plan, compiled=compiled, config=config, staged=staged,
                    progress=ProgressSink(staged.path(PROGRESS_DIR)) if log else None,
                    frozen=baseline.normalization if baseline else None)
        if log:
            log.event("start", f"[nanguard] {len(plan.files)} {plan.format} file(s), {len(plan.kinds)} columns; "
                               f"runner {runner}", files=len(plan.files), format=plan.format, columns=len(plan.kinds))
            with Monitor(staged.path(PROGRESS_DIR), log):
                p.run().wait_until_finish()
        else:
            p.run().wait_until_finish()
        report = assemble(config=config, plan=plan, compiled=compiled, suite=suite, staged=staged, runner=runner,
                          seconds=time.time() - started)
        report["baseline"] = baseline.record if baseline else None
        if baseline is not None:
            raw = read_json(staged.artifact(RAW_PROFILE))
            report["drift"] = dict(compare(baseline.stats, staged.stats(RAW_STATS), config.drift,
                                           tuple(lab.column for lab in baseline.labels), config.environment),
                                   action=config.drift.action,
                                   missing=missing_shifts(baseline.missing_rates, missing_rates(raw["columns"]),
                                                          config.drift.missing_rate),
                                   histograms=overlay_histograms(baseline.histograms, raw))
        if config.model is not None:
            check_model_on_staged(report, config, staged.root, loaded_model)
        write_report(settle(report), staged=staged, suite=suite, output=config.output)
        publish(staged, config.output)
    except BaseException:  # a failure, Ctrl-C or SIGTERM: nothing half-written stays behind
        discard(staged)
        raise
    finally:
        if lock is not None:
            lock.release()
    return report


def features_of(plan, config: RunConfig) -> tuple[str, ...]:
    """The numeric scalar columns the shards will hold besides labels: what a single-input model is fed by default
    (pass-through columns included, as the model checker feeds them)."""
    return tuple(c for c, k in plan.kinds.items() if k in ("int", "float") and c not in
                 {lab.column for lab in config.labels})


def model_check_config(config: RunConfig, data: str, loaded=None):
    """The model check `run --model` does on its staged output (a training.model_check.ModelCheckConfig);
    loaded: the model's handler from the preflight, so it is not loaded again."""
    from pipeline.training.model_check import ModelCheckConfig
    return ModelCheckConfig(model=config.model, data=data, label=config.check_label, loss=config.model_loss,
                            mixed_precision=config.mixed_precision, features=config.model_features,
                            safe_mode=not config.unsafe_model, custom_objects=config.custom_objects,
                            verify_data=False,  # `run --model` checks its own staged output, not yet gated
                            loaded=loaded)


def check_model_on_staged(report: dict, config: RunConfig, stage: str, loaded=None) -> None:
    """Runs the model checker on the staged shards; its verdict joins the gate when the report is settled."""
    from pipeline.training.model_check import check_model
    if report["counts"]["clean_rows"] == 0:
        return  # nothing to run the model on; the gate already fails
    result = check_model(model_check_config(config, data=stage, loaded=loaded))
    result["data"] = config.output  # it ran on the staged copy of what is published there
    report["model_check"] = result
    report["run"]["seconds"] = round(report["run"]["seconds"] + result["seconds"], 3)
