"""The end-of-run summary a person reads on stdout: counts, top reasons, constant columns, outputs, verdict."""
from __future__ import annotations

MAX_REASONS = 12


def summary(report: dict, out: str) -> str:
    c = report["counts"]
    lines = [f"nanguard: {c['input_rows']} rows in, {c['clean_rows']} clean, {c['quarantined_rows']} quarantined "
             f"({report['run']['seconds']:.1f}s, {report['run']['runner']})"]
    for reason, n in sorted(c["by_rule"].items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_REASONS]:
        lines.append(f"  {n:>9}  {reason}")
    for title, kept in (("kept, repaired cells", c["repaired"]), ("kept, warned rows", c["warned"])):
        if kept:
            lines.append(f"  {title}: " + ", ".join(f"{reason} {n}" for reason, n in
                                                    sorted(kept.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_REASONS]))
    constant = [k for k, f in report["features"].items() if (f.get("normalization") or {}).get("constant")]
    if constant:
        lines.append(f"  constant columns (scale 1, written as 0): {', '.join(constant)}")
    if report.get("dropped_columns"):
        lines.append(f"  left out of the shards (no value in any clean row): {', '.join(report['dropped_columns'])}")
    lines.append(f"outputs: {out}/data ({len(report['outputs']['shards'])} shards), {out}/quarantine, "
                 f"{out}/report.json")
    mc = report.get("model_check")
    if mc:
        lines.append(f"model check: {'passed' if mc['passed'] else 'FAILED'} ({mc['examples']} examples on "
                     f"{mc['device']})")
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines.append(f"gate: {verdict}")
    lines.extend(f"  - {f}" for f in report["gate"]["failures"])
    return "\n".join(lines)
