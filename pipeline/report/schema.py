"""schema.pbtxt: TFDV's schema of the clean rows, inferred from clean.pb (original units), floats finite.

It is what later data (an eval split, serving requests) can be validated against with TFDV itself:
`tfdv.validate_statistics(stats, tfdv.load_schema_text("out/schema.pbtxt"))`.
"""
from __future__ import annotations

from tensorflow_metadata.proto.v0 import schema_pb2

from pipeline.files import read_bytes
from pipeline.quiet_tfdv import tfdv


def clean_schema(clean_stats_path: str) -> schema_pb2.Schema:
    """TFDV's inferred schema of clean.pb, with float_domain disallow_nan and disallow_inf on float features."""
    from tensorflow_metadata.proto.v0 import statistics_pb2
    stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(read_bytes(clean_stats_path))
    schema = tfdv.infer_schema(stats)
    for feature in schema.feature:
        if feature.type == schema_pb2.FLOAT:
            feature.float_domain.disallow_nan = True
            feature.float_domain.disallow_inf = True
    return schema
