"""Drift against a baseline: TFDV's own comparators between the baseline's statistics and today's.

Both sides are `stats/raw.pb` (every input row, in original units, so two runs are comparable whatever their
normalization). The schema is inferred from the baseline's statistics, each feature gets TFDV's drift
comparator (L-infinity distance for categorical features, Jensen-Shannon divergence for numeric ones) with its
threshold, and `tfdv.validate_statistics(today, schema, previous_statistics=baseline)` does the rest: the
distances are TFDV's, and so are the other anomalies against the baseline's schema (new categorical values, a
feature that became missing, a changed type). With an environment (SERVING), the labels are expected absent.
"""
from __future__ import annotations

import dataclasses

from pipeline.files import read_bytes

DEFAULT_MISSING_RATE = 0.05  # absolute change in a feature's share of missing (null) values
DEFAULT_CATEGORICAL = 0.1  # L-infinity distance between the two value distributions
DEFAULT_NUMERIC = 0.15  # Jensen-Shannon divergence between the two histograms (why 0.15: docs/cli.md, Baselines)
TRAINING, SERVING = "TRAINING", "SERVING"


@dataclasses.dataclass(frozen=True)
class DriftConfig:
    categorical: float = DEFAULT_CATEGORICAL
    numeric: float = DEFAULT_NUMERIC
    per_feature: tuple[tuple[str, float], ...] = ()  # (feature, threshold) overrides
    action: str = "fail"  # fail | warn
    missing_rate: float = DEFAULT_MISSING_RATE  # largest change in a feature's share of missing values

    def __post_init__(self):
        for name, value in (("categorical", self.categorical), ("numeric", self.numeric),
                            ("the missing rate", self.missing_rate), *self.per_feature):
            if not 0 < value <= 1:
                raise ValueError(f"drift threshold for {name}: {value} is not in (0, 1]")
        if self.action not in ("fail", "warn"):
            raise ValueError(f"drift action {self.action!r} is not fail or warn")


def read_stats(path: str):
    from tensorflow_metadata.proto.v0 import statistics_pb2
    return statistics_pb2.DatasetFeatureStatisticsList.FromString(read_bytes(path))


def compare(baseline_stats: str, stats: str, config: DriftConfig, labels: tuple[str, ...] = (),
            environment: str | None = None) -> dict:
    """{"features": [{feature, measure, value, threshold, drifted}], "anomalies": [{feature, description}]}."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

    from pipeline.quiet_tfdv import tfdv
    base, today = read_stats(baseline_stats), read_stats(stats)
    schema = tfdv.infer_schema(base)
    overrides = dict(config.per_feature)
    if environment is not None:
        schema.default_environment.extend([TRAINING, SERVING])
    for feature in schema.feature:
        categorical = feature.type == schema_pb2.BYTES or feature.HasField("domain") or feature.HasField("string_domain")
        threshold = overrides.get(feature.name, config.categorical if categorical else config.numeric)
        if categorical:
            feature.drift_comparator.infinity_norm.threshold = threshold
        else:
            feature.drift_comparator.jensen_shannon_divergence.threshold = threshold
        if environment is not None and feature.name in labels:
            feature.not_in_environment.append(SERVING)
    anomalies = tfdv.validate_statistics(today, schema, previous_statistics=base,
                                         environment=environment)
    features = []
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        for m in info.drift_measurements:
            measure = {1: "L_INFTY", 2: "JENSEN_SHANNON_DIVERGENCE"}.get(m.type, str(m.type))
            features.append({"feature": name, "measure": measure, "value": m.value, "threshold": m.threshold,
                             "drifted": m.value > m.threshold})
    found = []
    for name, info in sorted(anomalies.anomaly_info.items()):
        other = [r.description for r in info.reason if not anomalies_pb2.AnomalyInfo.Type.Name(r.type).startswith(
            "COMPARATOR_")]  # the distances themselves are in `features`
        if other:
            found.append({"feature": name, "description": " ".join(other)})
    return {"features": sorted(features, key=lambda f: f["feature"]), "anomalies": found}


def parse_thresholds(texts) -> tuple[float | None, tuple[tuple[str, float], ...]]:
    """--drift-threshold [COL=]X flags -> (the global threshold or None, per-feature overrides)."""
    default, per = None, []
    for text in texts:
        column, sep, value = text.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--drift-threshold {text}: give a number in (0, 1], or COL=NUMBER") from None
        if sep:
            per.append((column, number))
        else:
            default = number
    return default, tuple(per)


def missing_rates(profile_columns: dict) -> dict:
    """feature -> share of its rows with a missing (null) value, from a profile's or a report's raw summaries."""
    return {name: s["missing"] / s["count"] for name, s in profile_columns.items() if s.get("count")}


def missing_shifts(baseline: dict, today: dict, threshold: float) -> list[dict]:
    """Features whose share of missing values moved by more than `threshold` (absolute) from the baseline's."""
    return [{"feature": name, "baseline": baseline[name], "today": today[name], "threshold": threshold}
            for name in sorted(set(baseline) & set(today)) if abs(today[name] - baseline[name]) > threshold]


PER_ROWS = 10_000  # overlay histograms are drawn per this many rows, so days of any size compare


def overlay_histograms(baseline_histograms: dict, raw_profile: dict) -> dict:
    """{feature: {"edges", "baseline", "today"}}: today's raw values binned on the baseline's edges (from this
    run's raw quantile sketches), both as counts per PER_ROWS rows, values outside the edges included at the
    ends, for report.html's drift charts."""
    import numpy as np

    from transforms.quantile_sketch import QuantileSketch
    out = {}
    for name, h in baseline_histograms.items():
        sketch = raw_profile.get("sketches", {}).get(name)
        if sketch is None:
            continue
        below, counts, above = QuantileSketch.from_dict(sketch).histogram(np.asarray(h["edges"]))
        mine = np.asarray(counts, float)
        mine[0] += below
        mine[-1] += above
        theirs = np.asarray(h["counts"], float)
        theirs[0] += h["below"]
        theirs[-1] += h["above"]
        scale = (lambda c: (c * PER_ROWS / c.sum()).round(3).tolist() if c.sum() else c.tolist())
        out[name] = {"edges": h["edges"], "baseline": scale(theirs), "today": scale(mine)}
    return out


def drift_failures(drift: dict | None) -> list[str]:
    """The gate's reasons from a drift result whose action is fail."""
    if not drift or drift.get("action") != "fail":
        return []
    out = [f"feature '{f['feature']}' drifted from the baseline: {f['measure']} {f['value']:.4g} > threshold "
           f"{f['threshold']:g} (--drift-threshold {f['feature']}=X, or --drift-action warn)"
           for f in drift["features"] if f["drifted"]]
    out += [f"against the baseline's schema, {a['feature']}: {a['description']}" for a in drift["anomalies"]]
    out += [f"feature '{m['feature']}' is missing in {100 * m['today']:.1f}% of rows against {100 * m['baseline']:.1f}% "
            f"in the baseline (more than {100 * m['threshold']:g} points; --drift-missing-rate X)"
            for m in drift.get("missing", [])]
    return out
