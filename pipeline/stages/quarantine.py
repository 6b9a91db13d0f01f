"""WriteQuarantine: quarantined rows, verbatim with __source_file, __row_index and __reasons, to one Parquet file.

Each bundle writes a temp Parquet file of its own and emits its name when the bundle is done; finalize copies
the committed temp files' row groups into quarantine/quarantine-00000-of-00001.parquet in a stable order and
hashes it, so a retried bundle neither duplicates nor loses rows.
"""
from __future__ import annotations

import hashlib
import uuid

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.stages import coders  # noqa: F401  (registers the RecordBatch coder)
from pipeline.stages.background import bundle_output
from transforms.columns import with_originals_restored

_CHUNK = 1 << 20


class StageQuarantineFn(beam.DoFn):
    def __init__(self, tmp_dir: str):
        self._tmp_dir = tmp_dir

    def start_bundle(self):
        self._writer = None

    def process(self, batch: pa.RecordBatch):
        batch = with_originals_restored(batch)  # verbatim: each column in the type it was read in
        if self._writer is None:
            path = FileSystems.join(self._tmp_dir, f"quarantine-{uuid.uuid4().hex}.parquet")
            f = FileSystems.create(path)
            self._writer = (pq.ParquetWriter(f, batch.schema), f, path, 0)
        w, f, path, rows = self._writer
        w.write_batch(batch)
        self._writer = (w, f, path, rows + batch.num_rows)
        return ()  # outputs only from finish_bundle (once the bundle's file is complete)

    def finish_bundle(self):
        if self._writer is not None:
            w, f, path, rows = self._writer
            w.close()
            f.close()
            yield bundle_output((0, (path, rows)))


class FinalizeQuarantineFn(beam.DoFn):
    def __init__(self, out_dir: str, schema: pa.Schema):
        self._out_dir, self._schema = out_dir, schema

    def process(self, element):
        _, groups = element
        staged = sorted(groups["staged"])
        name = "quarantine-00000-of-00001.parquet"
        path = FileSystems.join(self._out_dir, name)
        rows = 0
        with FileSystems.create(path) as out:
            writer = pq.ParquetWriter(out, self._schema)
            for tmp, _ in staged:
                with FileSystems.open(tmp) as f:
                    pf = pq.ParquetFile(f)
                    for i in range(pf.num_row_groups):
                        table = pf.read_row_group(i)
                        rows += table.num_rows
                        writer.write_table(table)
            writer.close()
        if staged:
            FileSystems.delete([tmp for tmp, _ in staged])
        digest = hashlib.sha256()
        with FileSystems.open(path) as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        yield {"path": f"quarantine/{name}", "rows": rows, "sha256": digest.hexdigest()}


class WriteQuarantine(beam.PTransform):
    """Quarantined batches -> one Parquet file (empty, with the schema, when nothing was quarantined)."""

    def __init__(self, *, out_dir: str, tmp_dir: str, schema: pa.Schema):
        super().__init__()
        self._out_dir, self._tmp_dir, self._schema = out_dir, tmp_dir, schema

    def expand(self, quarantined: beam.PCollection[pa.RecordBatch]) -> beam.PCollection[dict]:
        staged = quarantined | "Stage" >> beam.ParDo(StageQuarantineFn(self._tmp_dir))
        anchor = quarantined.pipeline | "Anchor" >> beam.Create([(0, None)])
        return ({"all": anchor, "staged": staged} | "Gather" >> beam.CoGroupByKey()
                | "Finalize" >> beam.ParDo(FinalizeQuarantineFn(self._out_dir, self._schema)))
