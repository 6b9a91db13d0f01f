"""WriteShards: normalized batches -> Encode -> Stage -> Finalize: sharded TFRecord files, streamed and finalized
atomically.

Each bundle writes its rows to temp files of its own and emits their names; only names that reach the
finalize step (bundles that committed) are used, so a retried bundle can neither duplicate nor lose rows.
With gzip, each temp file is one complete gzip member (mtime 0), compressed where it is staged by ISA-L's
deflate (python-isal; standard gzip that any reader inflates), on a background thread that overlaps with the
rest of the bundle's work (the compressor releases the GIL). Finalize concatenates one shard's temp files in
a stable order into data/part-SSSSS-of-NNNNN.tfrecord[.gz] (a multi-member gzip file, which gzip and tf.data
read as one stream) and hashes the bytes as written. Memory per worker is a few batches' encoded bytes plus
one open file per shard.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pickle
import uuid
import zlib

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from isal import isal_zlib

from pipeline.stages import coders  # noqa: F401  (registers the RecordBatch coder)
from pipeline.stages.artifacts import INDEX_DIR
from pipeline.stages.background import SerialWorker, bundle_output
from pipeline.stages.normalize import PLACEMENT
from transforms.columns import ROW_INDEX, SOURCE_FILE, drop_columns
from transforms.sharding import rows_by_shard, shard_ids
from transforms.tfrecord_encoding import encode_framed, frame_records, row_slices

WRITTEN_TAG = "written"

_CHUNK = 1 << 20
# ISA-L level 1 (of 0-3): several times zlib level 1's speed for about the same size on float features, which
# barely compress further anyway (BENCHMARKS.md has the figures).
GZIP_LEVEL = 1


def _gzip_compressor():
    """One gzip member's compressor (wbits 31: gzip header and trailer, mtime 0)."""
    return isal_zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)


# Encoded chunks a bundle may have queued for the writer thread before process() waits for the oldest.
MAX_PENDING_WRITES = 4


class _StagedShard:
    """One bundle's temp file for one shard: framed records, gzip-compressed as they arrive when asked, and its
    sidecar of their (source file, row index), appended chunk by chunk so memory does not grow with rows."""

    def __init__(self, path: str, gzip: bool):
        self.path, self.rows = path, 0
        self._file = FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
        self._ids = FileSystems.create(ids_path(path), compression_type=CompressionTypes.UNCOMPRESSED)
        self._comp = _gzip_compressor() if gzip else None
        self._digest = hashlib.sha256()  # of the bytes as written: a shard of one temp file is this file

    def write(self, blocks, ids: tuple[list, np.ndarray, np.ndarray]) -> None:
        """Appends framed records (bytes-like blocks: contiguous uint8 arrays or bytes, in order) and their ids:
        (source file names, each record's index into them, each record's row index)."""
        for block in blocks:
            if self._comp:
                self._put(self._comp.compress(block))
            else:  # bytes for any Beam filesystem's writer, not only local files
                self._put(block if isinstance(block, bytes) else block.tobytes())
        self._ids.write(pickle.dumps(ids, protocol=pickle.HIGHEST_PROTOCOL))

    def _put(self, data: bytes) -> None:
        self._file.write(data)
        self._digest.update(data)

    def close(self) -> None:
        if self._comp:
            self._put(self._comp.flush())
        self._file.close()
        self._ids.close()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


def ids_path(staged: str) -> str:
    """The sidecar of a temp shard file: its records' (source file, row index), as successive pickled chunks."""
    return staged + ".ids"


@dataclasses.dataclass
class EncodedBatch:
    """One batch's framed records split by shard: per shard, its blocks of bytes, its row count and the
    (source file, row index) of its first row, which names the bundle's temp file for a stable order."""
    blocks: dict[int, list]
    rows: dict[int, int]
    first: dict[int, tuple[str, int]]
    # per shard: (source file names, each record's index into them, each record's row index), in record order
    ids: dict[int, tuple[list, np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)


def encode_batch(batch: pa.RecordBatch, num_shards: int, encoder) -> EncodedBatch:
    """A normalized batch (written columns, then PLACEMENT) -> its framed records by shard. The vectorized
    encoder takes float32, int64 and bytes columns; a batch it declines (free text of many lengths, long
    lists) is encoded by `encoder` (tfx_bsl's RecordBatchToExamplesEncoder)."""
    names = batch.schema.names
    # Source files dictionary-encoded: one per batch in practice, and no Python string per row.
    sources = batch.column(names.index(SOURCE_FILE)).dictionary_encode()
    source_of = sources.indices.to_numpy(zero_copy_only=False)
    source_names = sources.dictionary.to_pylist()
    rows = batch.column(names.index(ROW_INDEX)).to_numpy(zero_copy_only=False)
    shards = np.empty(batch.num_rows, dtype=np.int64)
    for code, source in enumerate(source_names):
        sel = source_of == code
        shards[sel] = shard_ids(source, rows[sel], num_shards)
    written = drop_columns(batch, PLACEMENT)
    framed = encode_framed(written, shards)  # each shard's records their own arrays: split() copies nothing
    records = encoder.encode(written) if framed is None else None
    if framed is not None:  # records in layout-group order: the ids follow the same order
        blocks, members = framed.split(num_shards)
    else:
        members = rows_by_shard(shards, num_shards)
        blocks = [[frame_records([records[i] for i in m])] for m in members]
    out = EncodedBatch({}, {}, {})
    for k, member in enumerate(members):
        if member.size:
            first = member[0]
            out.blocks[k], out.rows[k] = blocks[k], int(member.size)
            out.first[k] = (source_names[source_of[first]], int(rows[first]))
            out.ids[k] = (source_names, source_of[member].astype(np.int32), rows[member].astype(np.int64))
    return out


class EncodedBatchCoder(beam.coders.Coder):
    """Pickles (only where a runner moves encoded batches between workers), and estimates an element's size
    from its buffers: Beam samples element sizes by encoding them otherwise, megabytes at a time."""

    def encode(self, value: EncodedBatch) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def decode(self, data: bytes) -> EncodedBatch:
        return pickle.loads(data)

    def estimate_size(self, value: EncodedBatch) -> int:
        return sum(memoryview(b).nbytes for blocks in value.blocks.values() for b in blocks)

    def to_type_hint(self):
        return EncodedBatch

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))


beam.coders.registry.register_coder(EncodedBatch, EncodedBatchCoder)


class EncodeFn(beam.DoFn):
    """Normalized batches -> EncodedBatch (main output; a wide batch's rows a slice at a time, so that only a
    slice's records are in memory beside the batch) and the written batch, placement dropped, on 'written'
    (for the written-values profile)."""

    def __init__(self, num_shards: int):
        self._num_shards = num_shards

    def setup(self):
        from tfx_bsl.coders import example_coder
        self._encoder = example_coder.RecordBatchToExamplesEncoder()

    def process(self, batch: pa.RecordBatch):
        written = drop_columns(batch, PLACEMENT)
        for start, stop in row_slices(written):  # sized by what is encoded: not the source file's name
            yield encode_batch(batch.slice(start, stop - start), self._num_shards, self._encoder)
        yield beam.pvalue.TaggedOutput(WRITTEN_TAG, written)


class StageShardsFn(beam.DoFn):
    """EncodedBatch -> temp shard files per bundle; (shard, (temp path, rows)) emitted when the bundle is done.

    Compressing and writing runs on one writer thread per DoFn instance, in submission order, so a shard's temp
    file holds its records in input order."""

    def __init__(self, tmp_dir: str, gzip: bool):
        self._tmp_dir = tmp_dir
        self._gzip = gzip

    def setup(self):
        self._writer = SerialWorker("nanguard-stage", MAX_PENDING_WRITES)

    def start_bundle(self):
        self._writer.reset()  # a failed bundle's queued writes go to temp files nobody will commit
        self._files = {}  # shard -> _StagedShard
        self._bundle = uuid.uuid4().hex[:12]

    def process(self, encoded: EncodedBatch):
        for k in sorted(encoded.blocks):
            f = self._open(k, *encoded.first[k])
            f.rows += encoded.rows[k]
            self._writer.submit(f.write, encoded.blocks[k], encoded.ids[k])
        return ()

    def _open(self, shard: int, source: str, first_row: int) -> _StagedShard:
        if shard not in self._files:
            # Sorting temp names by (shard, source, first row) gives finalize a stable order.
            name = f"{shard:05d}-{zlib.crc32(source.encode()):08x}-{first_row:015d}-{self._bundle}.tfrecord"
            self._files[shard] = _StagedShard(FileSystems.join(self._tmp_dir, name), self._gzip)
        return self._files[shard]

    def finish_bundle(self):
        for f in self._files.values():
            self._writer.submit(f.close)
        self._writer.drain()
        for shard, f in sorted(self._files.items()):
            yield bundle_output((shard, (f.path, f.rows, f.sha256)))

    def teardown(self):
        if getattr(self, "_writer", None) is not None:  # setup may have failed before creating it
            self._writer.close()


class FinalizeShardFn(beam.DoFn):
    """(shard, staged temp files) -> the final shard: their bytes concatenated in name order, hashed."""

    def __init__(self, data_dir: str, index_dir: str, num_shards: int, gzip: bool):
        self._data_dir, self._index_dir, self._num_shards, self._gzip = data_dir, index_dir, num_shards, gzip

    def process(self, element):
        shard, groups = element
        staged = sorted(groups["staged"])
        name = f"part-{shard:05d}-of-{self._num_shards:05d}.tfrecord" + (".gz" if self._gzip else "")
        path = FileSystems.join(self._data_dir, name)
        if len(staged) == 1:  # the common case, one bundle wrote the shard: its bytes are the shard's, hashed
            tmp, _, sha256 = staged[0]  # as they were written, and renamed rather than copied
            if FileSystems.exists(tmp):  # (else an earlier attempt of this step renamed it already)
                if FileSystems.exists(path):
                    FileSystems.delete([path])
                elif not FileSystems.exists(self._data_dir):
                    FileSystems.mkdirs(self._data_dir)  # create() makes parents; rename() does not
                FileSystems.rename([tmp], [path])
        else:
            sha256 = self._concatenate([tmp for tmp, _, _ in staged], path)
        index = self._write_index(shard, [tmp for tmp, _, _ in staged])
        leftovers = [p for tmp, _, _ in staged for p in (tmp, ids_path(tmp)) if FileSystems.exists(p)]
        if leftovers:
            FileSystems.delete(leftovers)
        yield {"path": f"data/{name}", "rows": int(sum(r for _, r, _ in staged)), "sha256": sha256,
               "index": index}

    def _concatenate(self, staged: list[str], path: str) -> str:
        """The shard as its temp files' bytes in name order (a valid empty gzip file when there are none); its
        SHA-256."""
        digest = hashlib.sha256()
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as out:
            for tmp in staged:
                with FileSystems.open(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    while chunk := f.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            if self._gzip and not staged:  # an empty shard is still a valid gzip file
                empty = gzip_member(b"")
                digest.update(empty)
                out.write(empty)
        return digest.hexdigest()

    def _write_index(self, shard: int, staged: list[str]) -> str:
        """index/part-SSSSS-of-NNNNN.parquet: row k holds the __source_file and __row_index of the shard's
        record k (the shard's temp files' sidecars, in the same order as their records). Streamed: the sidecars
        are read chunk by chunk and written INDEX_ROW_GROUP rows at a time, so memory does not grow with the
        shard's rows (as whole columns, a 2.5M-row shard's file names alone were ~125 MB of strings)."""
        name = f"part-{shard:05d}-of-{self._num_shards:05d}.parquet"
        with FileSystems.create(FileSystems.join(self._index_dir, name),
                                compression_type=CompressionTypes.UNCOMPRESSED) as f:
            with pq.ParquetWriter(f, INDEX_SCHEMA) as writer:
                pending, rows = [], 0
                for chunk in _id_chunks(staged):
                    pending.append(chunk)
                    rows += len(chunk[1])
                    if rows >= INDEX_ROW_GROUP:
                        writer.write_table(_index_table(pending))
                        pending, rows = [], 0
                if pending:
                    writer.write_table(_index_table(pending))
        return f"{INDEX_DIR}/{name}"


INDEX_ROW_GROUP = 1 << 19  # rows of the shard index written at a time (one Parquet row group each)
INDEX_SCHEMA = pa.schema([pa.field(SOURCE_FILE, pa.string()), pa.field(ROW_INDEX, pa.int64())])


def _id_chunks(staged: list[str]):
    """The (source file names, each record's index into them, each record's row index) chunks of these temp
    files' sidecars, in order, one at a time."""
    for tmp in staged:
        with FileSystems.open(ids_path(tmp), compression_type=CompressionTypes.UNCOMPRESSED) as f:
            while True:
                try:
                    yield pickle.load(f)
                except EOFError:  # the end of the sidecar
                    break


def _index_table(chunks: list) -> pa.Table:
    sources = [pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(names, pa.string()))
               .cast(pa.string()) for names, codes, _ in chunks]
    rows = [pa.array(row_index, pa.int64()) for _, _, row_index in chunks]
    return pa.Table.from_arrays([pa.chunked_array(sources, pa.string()), pa.chunked_array(rows, pa.int64())],
                                schema=INDEX_SCHEMA)


def gzip_member(data: bytes) -> bytes:
    comp = _gzip_compressor()
    return comp.compress(data) + comp.flush()


class WriteShards(beam.PTransform):
    """Normalized batches -> (written batches for statistics, one dict per final shard: path, rows, sha256)."""

    def __init__(self, *, num_shards: int, data_dir: str, index_dir: str, tmp_dir: str, gzip: bool):
        super().__init__()
        self._num_shards = num_shards
        self._data_dir, self._index_dir, self._tmp_dir, self._gzip = data_dir, index_dir, tmp_dir, gzip

    def expand(self, normalized: beam.PCollection[pa.RecordBatch]
               ) -> tuple[beam.PCollection[pa.RecordBatch], beam.PCollection[dict]]:
        encoded = normalized | "Encode" >> beam.ParDo(EncodeFn(self._num_shards)).with_outputs(
            WRITTEN_TAG, main="encoded")
        # Outputs of with_outputs take no type hint; their coders (and Beam's cheap size estimates) follow these.
        encoded.encoded.element_type = EncodedBatch
        encoded[WRITTEN_TAG].element_type = pa.RecordBatch
        staged = encoded.encoded | "Stage" >> beam.ParDo(StageShardsFn(self._tmp_dir, self._gzip))
        shard_keys = normalized.pipeline | "ShardIds" >> beam.Create([(k, None) for k in range(self._num_shards)])
        shards = ({"all": shard_keys, "staged": staged}
                  | "GroupByShard" >> beam.CoGroupByKey()
                  | "Finalize" >> beam.ParDo(FinalizeShardFn(self._data_dir, self._index_dir, self._num_shards, self._gzip)))
        return encoded[WRITTEN_TAG], shards
