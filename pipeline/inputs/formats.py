"""The input formats: opening a file on any Beam filesystem, and decoding CSV, Parquet and TFRecord<tf.Example>
into pyarrow RecordBatches, with every library error turned into an InputError that names the file.

The planner (inputs.plan) samples files through these functions; the read stage (stages.read) streams whole
read units through them. TensorFlow is imported only when a TFRecord file is read.
"""
from __future__ import annotations

import csv

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.errors import InputError
from pipeline.files import open_read

CSV_BLOCK_BYTES = 8 << 20
PARQUET_BATCH_ROWS = 65536
TFRECORD_BATCH_ROWS = 16384


def first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def open_input(path: str):
    """A readable file on any Beam filesystem (a local one opened directly); .gz is inflated by pyarrow (Beam's
    own decompressing file object does not work as a pyarrow input stream)."""
    try:
        raw = open_read(path)
    except Exception as e:
        raise InputError(f"{path}: cannot open it ({first_line(e)})") from None
    if path.lower().endswith(".gz"):
        return pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "gzip")
    return raw


DELIMITERS = (",", ";", "\t", "|")  # what sniffing considers, comma first on ties
SNIFF_BYTES = 64 << 10


def csv_head(path: str) -> str:
    """The first SNIFF_BYTES of a CSV file as text (a UTF-8 BOM dropped); UTF-16 is refused."""
    try:
        with open_input(path) as f:
            head = f.read(SNIFF_BYTES)
    except OSError as e:
        raise csv_problem(path, e) from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) > 3 and head[1:4:2] == b"\x00\x00"):
        raise InputError(f"{path}: UTF-16 text; nanguard reads UTF-8 CSV. Re-encode it, e.g. "
                         f"iconv -f UTF-16 -t UTF-8 {path.rsplit('/', 1)[-1]} > out.csv")
    return head.decode("utf-8", errors="replace").lstrip("\ufeff")


def header_guess(head: str, delimiter: str) -> tuple[str, ...] | None:
    """The header's column names as Python's csv module reads its first line; None when that line may not be
    the whole header (it ends inside quotes). Only a guess: the caller confirms it against Arrow's reader."""
    line = head.split("\n", 1)[0].rstrip("\r")
    if line.count('"') % 2:
        return None
    return tuple(next(csv.reader([line], delimiter=delimiter)))


def sniff_delimiter(path: str, head: str | None = None) -> str:
    """The field separator of a CSV file from its header line: the candidate that occurs most often outside
    quotes (a comma when none does: a one-column file). head: csv_head(path), when the caller has it."""
    text = csv_head(path) if head is None else head
    line = text.split("\n", 1)[0].rstrip("\r")
    unquoted = "".join(part for i, part in enumerate(line.split('"')) if i % 2 == 0)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def csv_reader(f, columns: tuple[str, ...] | None, block_size: int, delimiter: str = ","):
    """A streaming pyarrow CSV reader that keeps every cell as text (numbers are parsed by nanguard).

    In a file of one column a blank line is a row whose value is missing, not a line to skip (pyarrow's default),
    so no row is lost and row indexes stay line numbers."""
    read = pacsv.ReadOptions(block_size=block_size, use_threads=False)
    parse = pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=not (columns and len(columns) == 1))
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in columns} if columns else None,
                                   strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=True)
    return pacsv.open_csv(f, read_options=read, parse_options=parse, convert_options=convert)


def csv_problem(path: str, e: Exception, columns=None) -> InputError:
    """The user's view of a pyarrow CSV error: what is wrong with the file and how to fix it."""
    detail = first_line(e)
    if path.lower().endswith(".gz") and isinstance(e, OSError) and not isinstance(e, pa.ArrowInvalid):
        return InputError(f"{path}: not a readable gzip file ({detail}); check that it is gzip-compressed and "
                          f"complete, or drop .gz from its name")
    if "UTF8" in detail or "UTF-8" in detail:
        return InputError(f"{path}: not UTF-8 text ({detail}); re-encode it, e.g. iconv -f latin1 -t utf-8")
    if "Empty CSV file" in detail:
        return InputError(f"{path}: empty file; it needs a header row and data rows")
    if "Expected" in detail and "columns" in detail:
        fields = f"{len(columns)} fields" if columns else "as many fields as the header"
        return InputError(f"{path}: malformed CSV ({detail}); every row needs {fields} (quote fields that "
                          f"contain the separator or newlines)")
    return InputError(f"{path}: not a readable CSV file ({detail})")


def parquet_problem(path: str, e: Exception, row_group: int | None = None) -> InputError:
    if row_group is None:
        return InputError(f"{path}: not a readable Parquet file ({first_line(e)})")
    return InputError(f"{path}: corrupt Parquet row group {row_group} ({first_line(e)})")


def read_record_batches(path: str, batch_size: int):
    """Lists of serialized TFRecord records, batch_size at a time (tf.data: C++, CRC-checked); a corrupt file is
    an InputError naming it."""
    import tensorflow as tf
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


def decode_examples(records: list[bytes], path: str) -> pa.RecordBatch:
    """A RecordBatch of list columns, one per feature seen in these tf.Example records (tfx_bsl's decoder)."""
    from tfx_bsl.coders import example_coder
    try:
        return example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)
    except Exception as e:
        raise InputError(f"{path}: cannot decode its records as tf.Example ({str(e).splitlines()[0]}); every "
                         f"record must be a tf.Example and give each feature the same type") from None


def raw_batches(fmt: str, path: str, columns: tuple[str, ...], row_groups: tuple[int, ...] = (),
                delimiter: str = ","):
    """One read unit's batches as stored: CSV cells as text, Parquet as typed, TFRecord as list columns."""
    if fmt == "csv":
        with open_input(path) as f:
            reader = csv_reader(f, columns, CSV_BLOCK_BYTES, delimiter)
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except (pa.ArrowInvalid, OSError) as e:
                    raise csv_problem(path, e, columns) from None
                yield batch
    elif fmt == "parquet":
        with open_input(path) as f:
            try:
                pf = pq.ParquetFile(f)
                if len(row_groups) == 1 and pf.metadata.row_group(row_groups[0]).num_rows > PARQUET_BATCH_ROWS:
                    # one row group of many batches, however large: streamed
                    yield from pf.iter_batches(PARQUET_BATCH_ROWS, row_groups=list(row_groups))
                else:  # small row groups coalesced by the planner (bounded), or one row group of one batch: read
                    # together, cut into full batches. Streaming a row group of one batch held ~3x its bytes at
                    # once (a reader's buffers per column: 1.2 GB for a 5,000-column, 311 MB row group), reading
                    # it whole holds it once (BENCHMARKS.md)
                    table = pf.read_row_groups(list(row_groups))
                    yield from (table.combine_chunks() if table.num_rows else table).to_batches(PARQUET_BATCH_ROWS)
            except (pa.ArrowInvalid, OSError) as e:
                raise parquet_problem(path, e, row_groups[0] if row_groups else None) from None
    else:
        for records in read_record_batches(path, TFRECORD_BATCH_ROWS):
            yield decode_examples(records, path)
