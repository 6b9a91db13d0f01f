"""Assemble: the staged artifacts of a finished pipeline -> report.json's content and the files beside it.

Reads what the graph left (stages.artifacts), checks the written values (report.written), writes the clean
schema, normalization.json,
feature_spec.json and suite.json, and returns the report; the gate is settled last (settle), once every
verdict that joins it (the model check's too) is in, and the report is written once (write_report).
"""
from __future__ import annotations

from importlib import metadata

from google.protobuf import text_format

from expectations.compiler import CompiledSuite
from expectations.results import expectation_results
from expectations.suite import Suite, written_suite
from expectations.value_sets import externalize
from expectations.value_sets import file_name as value_set_file
from expectations.validation_result import dumps as dump_validation_result
from expectations.validation_result import validation_result
from transforms.columns import indicator_name
from pipeline.config import RunConfig
from pipeline.files import read_json, write_json, write_text
from pipeline.inputs.plan import InputPlan
from pipeline.report.gate import gate_failures
from pipeline.report.histograms import feature_histograms
from pipeline.report.integrity import checksums
from pipeline.report.schema import clean_schema
from pipeline.report.written import written_findings
from pipeline.report.html import render_html
from pipeline.stages.artifacts import (CLEAN_PROFILE, CLEAN_STATS, COUNTS, OUTPUTS, QUARANTINE, RAW_PROFILE, SHARDS,
                                       WRITTEN, StagedRun)
from transforms.counts import RowCounts

SCHEMA_VERSION = 1


def version() -> str:
    try:
        return metadata.version("nanguard")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def assemble(*, config: RunConfig, plan: InputPlan, compiled: CompiledSuite, suite: Suite, staged: StagedRun,
             runner: str, seconds: float) -> dict:
    """The report of a finished pipeline (gate not settled yet); writes the files the report points to."""
    raw, clean = read_json(staged.artifact(RAW_PROFILE)), read_json(staged.artifact(CLEAN_PROFILE))
    counts, outputs = RowCounts.from_json(read_json(staged.artifact(COUNTS))), read_json(staged.artifact(OUTPUTS))
    shards, quarantine = read_json(staged.artifact(SHARDS)), read_json(staged.artifact(QUARANTINE))
    written = read_json(staged.artifact(WRITTEN))
    fills = {c: v for c, v in compiled.impute.items() if not isinstance(v, str)}
    findings = written_findings(written, outputs, clean, fills, config.mixed_precision)
    write_text(staged.path("schema.pbtxt"), text_format.MessageToString(clean_schema(staged.stats(CLEAN_STATS))))
    write_json(staged.path("normalization.json"), {o["name"]: o["normalization"] for o in outputs
                                                     if o["normalization"]})
    write_json(staged.path("feature_spec.json"), {o["name"]: o["spec"] for o in outputs})
    value_sets: dict[str, list] = {}  # large value sets, written once (expectations.value_sets)
    write_json(staged.path("suite.json"), externalize(written_suite(config.suite or "packaged default suite", suite,
                                                                    list(compiled.expectations)), value_sets))
    histograms = feature_histograms(raw, clean, plan.kinds)
    input_rows = raw["rows"]
    clean_rows, bad_rows = counts.clean_rows, counts.quarantined_rows
    columns = {name: plan.type_name(name) for name in plan.kinds}
    report = {
        "schema_version": SCHEMA_VERSION,
        "passed": False,
        "gate": {"failures": [], "thresholds": {"max_quarantine_fraction": config.max_quarantine_fraction}},
        "counts": {"input_rows": input_rows, "clean_rows": clean_rows, "quarantined_rows": bad_rows,
                   "by_rule": dict(sorted(counts.by_reason.items())), "repaired": dict(sorted(counts.repaired.items())),
                   "warned": dict(sorted(counts.warned.items()))},
        "reconciliation": {
            "input_rows_equal_clean_plus_quarantined": input_rows == clean_rows + bad_rows,
            "shard_rows_equal_clean_rows": sum(s["rows"] for s in shards) == clean_rows,
            "quarantine_file_rows_equal_quarantined_rows": sum(q["rows"] for q in quarantine) == bad_rows,
            "fit_pass_rows_equal_write_pass_rows": clean["rows"] == clean_rows,
            "written_profile_rows_equal_clean_rows": written["rows"] == clean_rows,
        },
        "features": _features(outputs, plan.kinds, raw, clean, histograms),
        "dropped_columns": {name: "every value is missing in the clean rows" for name in _dropped(plan.kinds, outputs)},
        "expectations": externalize(expectation_results(compiled, counts, raw, columns), value_sets),
        "anomalies": findings,
        "written": written["columns"],
        "outputs": {"shards": shards, "quarantine": quarantine, "feature_spec": "feature_spec.json",
                    "normalization": "normalization.json", "checksums": checksums(staged.root)},
        "model_check": None,
        "run": {"nanguard_version": version(), "runner": runner, "inputs": list(config.inputs),
                "format": plan.format, "files": len(plan.files), "seconds": round(seconds, 3)},
    }
    for hex_digest, values in value_sets.items():
        write_json(staged.path(value_set_file(hex_digest)), values)
    return report


def settle(report: dict) -> dict:
    """Derives the gate from everything in the report (report.gate's rules) and records the verdict."""
    report["gate"]["failures"] = gate_failures(report)
    report["passed"] = not report["gate"]["failures"]
    return report


def write_report(report: dict, *, staged: StagedRun, suite: Suite, output: str) -> None:
    """report.json, the GE validation result and report.html of a settled report, each written once."""
    write_json(staged.path("report.json"), report)
    write_text(staged.path("validation_result.json"), dump_validation_result(validation_result(
        suite.name, report["expectations"], {"nanguard_version": report["run"]["nanguard_version"],
                                              "inputs": report["run"]["inputs"], "output": output})))
    write_text(staged.path("report.html"), render_html(report))


def _features(outputs: list[dict], kinds: dict, raw: dict, clean: dict, histograms: dict) -> dict:
    """Per input column written: kind, role, raw and clean profiles, normalization, histogram; a column with a
    --missing indicator names it (the indicator itself is a 0/1 column with no profile of its own)."""
    out = {}
    written = {x["name"] for x in outputs}
    for o in outputs:
        name = o["name"]
        if name not in kinds:  # an indicator column, named by the column it belongs to
            continue
        out[name] = {"kind": kinds[name], "role": o["role"], "raw": raw["columns"][name],
                     "clean": clean["columns"][name], "normalization": o["normalization"],
                     "histogram": histograms.get(name)}
        if indicator_name(name) in written:
            out[name]["missing_indicator"] = indicator_name(name)
    return out


def _dropped(kinds: dict, outputs: list[dict]) -> list[str]:
    """Input columns the shards leave out: numeric features with no value in any clean row."""
    written = {o["name"] for o in outputs}
    return [name for name in kinds if name not in written]
