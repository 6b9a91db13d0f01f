"""The clean data's TFDV schema and its anomalies: what proves nothing non-finite or out of range was written.

The schema is inferred from the clean statistics with float_domain disallow_nan/disallow_inf and the range the
normalization maps the clean range to; validating the clean statistics against it must yield no anomalies.
"""
from __future__ import annotations

from tensorflow_metadata.proto.v0 import schema_pb2

from pipeline.files import read_bytes
from pipeline.quiet_tfdv import tfdv


def clean_schema_and_anomalies(clean_stats_path: str, feature_ranges: dict[str, tuple[float, float]]):
    """(schema, anomalies) of the written data; feature_ranges: float features' allowed [min, max]."""
    from tensorflow_metadata.proto.v0 import statistics_pb2
    stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(read_bytes(clean_stats_path))
    schema = tfdv.infer_schema(stats)
    for feature in schema.feature:
        if feature.type == schema_pb2.FLOAT:
            feature.float_domain.disallow_nan = True
            feature.float_domain.disallow_inf = True
            if feature.name in feature_ranges:
                lo, hi = feature_ranges[feature.name]
                feature.float_domain.min = lo
                feature.float_domain.max = hi
    return schema, tfdv.validate_statistics(stats, schema)


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
