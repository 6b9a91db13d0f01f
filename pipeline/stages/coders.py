"""Beam coders for nanguard's elements: pyarrow RecordBatches (registered for every PCollection typed
pa.RecordBatch), and SizedPickleCoder, the base of the coders for accumulators (profiles, TFDV's).

Without it Beam falls back to pickle, and, worse, estimates each element's size for its metrics by encoding
it: the first elements of every PCollection are always sampled, and batches are few and large, so a run
pickled gigabytes of batches just to measure them. Here the estimate is the batch's buffer size, and the
encoding (used only where a runner moves batches between stages or workers) is Arrow's IPC stream format, as
TFDV's own RecordBatch coder (which registers itself on import and which this one replaces, so TFDV is
imported first).
"""
from __future__ import annotations

import pickle

import apache_beam as beam
import pyarrow as pa

from pipeline.quiet_tfdv import tfdv  # noqa: F401  (registers TFDV's coder, replaced below)


class RecordBatchCoder(beam.coders.Coder):
    def encode(self, batch: pa.RecordBatch) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        return sink.getvalue().to_pybytes()

    def decode(self, data: bytes) -> pa.RecordBatch:
        return pa.ipc.open_stream(data).read_next_batch()

    def estimate_size(self, batch: pa.RecordBatch) -> int:
        return batch.nbytes

    def to_type_hint(self):
        return pa.RecordBatch

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))


beam.coders.registry.register_coder(pa.RecordBatch, RecordBatchCoder)


# zstd at its default level: TFDV's accumulators of 64 features (11.7 MB pickled) compress 5.4x in 22 ms, a
# profile's sketches 4.4x. What crosses a grouping is held whole by the in-process runner, several times over
# (its grouped output, the stream that joins it, the data channel's message), so the smaller, the lower the peak.
_ZSTD = pa.Codec("zstd", compression_level=3)
_LENGTH = 8  # bytes of the pickle's length, before the compressed pickle


class SizedPickleCoder(beam.coders.Coder):
    """zstd-compressed pickle on the wire, and a size estimate that does not pickle: Beam's metrics sample the
    size of the elements of every PCollection, always the first ones, and a PickleCoder measures an element by
    pickling it. Accumulators are few and large (a 1,000-column profile's arrays are ~100 MB, TFDV's accumulators
    pickle to ~150 MB), so each was pickled about twice as often as it was moved. Subclasses give estimate_size
    and the type."""

    def encode(self, value) -> bytes:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return len(data).to_bytes(_LENGTH, "little") + _ZSTD.compress(data, asbytes=True)

    def decode(self, data: bytes):
        size = int.from_bytes(data[:_LENGTH], "little")
        return pickle.loads(_ZSTD.decompress(pa.py_buffer(data).slice(_LENGTH), decompressed_size=size,
                                             asbytes=True))

    def estimate_size(self, value) -> int:
        raise NotImplementedError

    def is_deterministic(self) -> bool:
        return False

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))
