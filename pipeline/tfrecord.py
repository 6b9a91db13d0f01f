"""TFRecord files of tf.Example: batched reads through tf.data (C++; CRC-checked) and tfx_bsl decoding."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tfx_bsl.coders import example_coder  # noqa: E402

from pipeline.errors import InputError  # noqa: E402


def read_record_batches(path: str, batch_size: int):
    """Lists of serialized records, batch_size at a time; a corrupt file is an InputError naming it."""
    compression = "GZIP" if path.lower().endswith(".gz") else ""
    ds = tf.data.TFRecordDataset(path, compression_type=compression).batch(batch_size)
    it = iter(ds)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except (tf.errors.DataLossError, tf.errors.OpError) as e:
            raise InputError(f"{path}: not a readable TFRecord file ({e.message.splitlines()[0]}); "
                             f"if it is gzip-compressed, name it *.tfrecord.gz") from None
        yield batch.numpy().tolist()


def decode_examples(records: list[bytes], path: str):
    """A RecordBatch of list columns, one per feature seen in these records."""
    try:
        return example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)
    except Exception as e:
        raise InputError(f"{path}: cannot decode its records as tf.Example ({str(e).splitlines()[0]}); every "
                         f"record must be a tf.Example and give each feature the same type") from None
