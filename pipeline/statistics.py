"""TFDV statistics of the raw and the written data, and the clean-data schema and anomalies.

TFDV's GenerateStatistics reads list-typed Arrow columns, so raw batches are wrapped (one value per row);
the written batches already are lists. The schema is inferred from the clean statistics with float_domain
disallow_nan/disallow_inf and the observed range; validating the clean statistics against it must yield no
anomalies, which proves nothing non-finite reached the shards.
"""
from __future__ import annotations

import contextlib
import io

import apache_beam as beam
import pyarrow as pa

with contextlib.redirect_stderr(io.StringIO()):  # TFDV announces its (unused) IPython visualization on import
    import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2

from transforms.columns import RESERVED, is_list, to_list_array


def for_tfdv(batch: pa.RecordBatch) -> pa.RecordBatch:
    cols, names = [], []
    for name, arr in zip(batch.schema.names, batch.columns):
        if name in RESERVED:
            continue
        cols.append(arr if is_list(arr.type) else to_list_array(arr))
        names.append(name)
    return pa.RecordBatch.from_arrays(cols, names=names)


class WriteStatistics(beam.PTransform):
    """RecordBatches -> DatasetFeatureStatisticsList written to `path` (binary proto)."""

    def __init__(self, path: str, wrap: bool):
        super().__init__()
        self._path, self._wrap = path, wrap

    def expand(self, batches: beam.PCollection):
        if self._wrap:
            batches = batches | "AsLists" >> beam.Map(for_tfdv).with_output_types(pa.RecordBatch)
        return (batches
                | "GenerateStatistics" >> tfdv.GenerateStatistics(tfdv.StatsOptions())
                | "WriteStatistics" >> tfdv.WriteStatisticsToBinaryFile(self._path))


def clean_schema_and_anomalies(clean_stats_path: str, feature_ranges: dict[str, tuple[float, float]]):
    """(schema, anomalies) of the written data; feature_ranges: float features' allowed [min, max]."""
    stats = tfdv.load_stats_binary(clean_stats_path)
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
