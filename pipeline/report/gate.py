"""The gate: a small function of the report. Also reads and validates a report for `nanguard gate`."""
from __future__ import annotations

import json
import os
from importlib import resources

from pipeline.errors import InputError
from pipeline.files import exists, is_remote, join, read_bytes
from pipeline.report.drift import drift_failures
from transforms.reasons import Code, label_code, split


def gate_failures(report: dict) -> list[str]:
    """Why training must not start on this output; empty when it may."""
    counts = report["counts"]
    threshold = report["gate"]["thresholds"]["max_quarantine_fraction"]
    failures = []
    n, bad, clean = counts["input_rows"], counts["quarantined_rows"], counts["clean_rows"]
    if n == 0:
        failures.append("the input has no rows")
    elif bad / n > threshold:
        failures.append(f"quarantined {100 * bad / n:.2f}% of rows ({bad} of {n}) > max {100 * threshold:.2f}% "
                        f"(--max-quarantine-fraction {threshold}){_hints(counts.get('by_rule', {}))}")
    if n and clean == 0:
        failures.append("no clean rows: every row was quarantined")
    for check, ok in report["reconciliation"].items():
        if not ok:
            failures.append(f"row counts do not reconcile: {check.replace('_', ' ')} is false")
    anomalies = report["anomalies"]
    if anomalies:
        listed = "; ".join(f"{a['feature']}: {a['description']}" for a in anomalies[:5])
        failures.append(f"the written values break {len(anomalies)} check{'' if len(anomalies) == 1 else 's'} "
                        f"(report.json anomalies): {listed}")
    for i, e in enumerate(report.get("expectations", [])):
        if e["action"] == "fail" and not e["success"]:
            failures.append(f"expectation {i} failed with on_fail fail: {describe(e)}")
    failures.extend(drift_failures(report.get("drift")))
    check = report.get("model_check")
    if check and not check["passed"]:
        failures.extend(f"model check: {f}" for f in check["failures"])
    return failures


def _hints(by_rule: dict) -> str:
    """What would change the commonest causes: a missing-value policy, a regression label."""
    hints = []
    missing = sorted({split(r)[1] for r in by_rule if split(r)[0] == Code.MISSING.value})
    if missing:
        hints.append(f"null values in {', '.join(missing[:5])}: choose a policy with --missing COL=impute:median "
                     f"(or indicator)")
    targets = sorted({split(r)[1] for r in by_rule if split(r)[0] == label_code("probability")})
    if targets:
        hints.append(f"label(s) {', '.join(targets)} outside [0, 1]: a continuous target is --label COL:regression")
    return "; " + "; ".join(hints) if hints else ""


def describe(e: dict) -> str:
    """One line for an expectation's result: type, column, arguments and what was observed."""
    args = ", ".join(f"{k}={v!r}" for k, v in e["kwargs"].items() if k != "column")
    what = f"{e['type']}({e['column'] or ''}{', ' if e['column'] and args else ''}{args})"
    if e.get("kind") == "aggregate":
        return f"{what}: observed {e.get('observed_value')!r}"
    return f"{what}: {e['unexpected_count']} unexpected of {e['element_count'] - e['missing_count']} evaluated rows"


def report_schema() -> dict:
    return json.loads(resources.files("pipeline.report").joinpath("schemas/report.schema.json").read_text("utf-8"))


def locate(path: str) -> tuple[str, str]:
    """(report.json's path, the output directory) for a path naming either."""
    if os.path.isdir(path) if not is_remote(path) else not path.endswith(".json"):
        return join(path, "report.json"), path
    return path, os.path.dirname(path) if not is_remote(path) else path.rsplit("/", 1)[0]


def read_report(path: str) -> dict:
    """A report.json (or the output directory holding one, on any Beam filesystem), validated against the
    shipped JSON Schema."""
    import jsonschema
    path, _ = locate(path)
    try:
        if not exists(path):
            raise FileNotFoundError(path)
        report = json.loads(read_bytes(path).decode("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no report here; did the run finish? (nanguard writes report.json last)") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a readable report ({e})") from None
    except RecursionError:
        raise InputError(f"{path}: not a readable report (JSON nested too deeply)") from None
    try:
        jsonschema.validate(report, report_schema())
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise InputError(f"{path}: not a valid nanguard report at {where}: {e.message}") from None
    return report


def derived_failures(report: dict) -> list[str]:
    """The gate's failures as its rules give them from the report's content (an edited "passed" changes
    nothing); the recorded failures when the report says it failed for a reason the rules cannot see."""
    return gate_failures(report) or ([] if report["passed"] else list(report["gate"]["failures"]) or
                                     ["report.json says the gate failed"])


def gate(path: str) -> tuple[bool, list[str]]:
    """(passed, failures) of a finished run, re-derived from its report and checked against the bytes it
    vouches for (a shard deleted, truncated or swapped, or feature_spec.json edited, fails the gate)."""
    from pipeline.report.integrity import integrity_failures
    report = read_report(path)
    failures = derived_failures(report) + integrity_failures(locate(path)[1] or ".", report)
    return not failures, failures
