"""What the written values must satisfy, checked on nanguard's exact profile of them (transforms.written_values).

Every float feature in the shards must be finite, inside the range the normalization maps the clean range to,
and, under --mixed-precision, inside float16's range. Each finding is one {feature, description}; any finding
fails the gate (report.gate). TFDV's statistics are of the clean rows in original units and do not see the
written values, so this is the one check of them.
"""
from __future__ import annotations

import numpy as np

FLOAT16_MAX = float(np.finfo(np.float16).max)


def written_range(output: dict, clean: dict, fill: float | None = None):
    """The range a float feature may take in the shards: normalized clean min/max (with float32 slack), widened
    to a constant the column's missing cells are imputed with (--missing COL=impute:VALUE)."""
    p = clean["columns"][output["name"]]
    if p.get("min") is None:
        return None
    lo, hi = p["min"], p["max"]
    if fill is not None:
        lo, hi = min(lo, fill), max(hi, fill)
    norm = output["normalization"]
    if norm and norm["method"] != "none":
        lo, hi = (lo - norm["offset"]) / norm["scale"], (hi - norm["offset"]) / norm["scale"]
    slack = 1e-6 * max(1.0, abs(lo), abs(hi))
    return lo - slack, hi + slack


def written_findings(written: dict, outputs: list[dict], clean: dict, fills: dict,
                     mixed_precision: bool = False) -> list[dict]:
    """[{feature, description}] for each float feature whose written values break a check, in output order.

    written: WrittenValues.to_json(); clean: the clean profile; fills: column -> constant imputed value."""
    findings = []
    for o in outputs:
        name, w = o["name"], written["columns"].get(o["name"])
        if o["dtype"] != "float32" or w is None:
            continue
        bad = w["nan"] + w["posinf"] + w["neginf"]
        if bad:
            findings.append({"feature": name, "description": (
                f"{bad} non-finite value{'s' if bad != 1 else ''} written (NaN {w['nan']}, +Inf {w['posinf']}, "
                f"-Inf {w['neginf']}); a rule with on_fail warn or none let them through")})
        if w["min"] is None:
            continue
        allowed = written_range(o, clean, fills.get(name)) if name in clean["columns"] else None
        if allowed is not None and (w["min"] < allowed[0] or w["max"] > allowed[1]):
            findings.append({"feature": name, "description": (
                f"written values span [{w['min']:.7g}, {w['max']:.7g}], outside [{allowed[0]:.7g}, "
                f"{allowed[1]:.7g}], the range the normalization maps the clean range to")})
        if mixed_precision and max(abs(w["min"]), abs(w["max"])) > FLOAT16_MAX:
            findings.append({"feature": name, "description": (
                f"written values reach {max(abs(w['min']), abs(w['max'])):.7g}, beyond float16's "
                f"{FLOAT16_MAX:g}, and the model trains in mixed_float16 (--mixed-precision)")})
    return findings
