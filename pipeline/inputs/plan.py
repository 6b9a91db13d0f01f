"""Input planning, on the machine that builds the pipeline: match files, settle the format, infer one schema.

Everything that can be wrong with the inputs' names, formats or columns is found here, before the pipeline
starts, and reported with the file and column. The plan lists read units (a CSV or TFRecord file, a
Parquet row group, or consecutive small row groups up to UNIT_ROWS / UNIT_BYTES) that the runner spreads over
workers.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from expectations.missing_policy import ALL_FEATURES
from pipeline.errors import ConfigError, InputError
from pipeline.files import is_remote, match, size
from pipeline.inputs.formats import (csv_head, csv_problem, csv_reader, decode_examples, header_guess, open_input,
                                     parquet_problem, read_record_batches, sniff_delimiter)
from transforms.labels import LabelSpec
from transforms.columns import REASONS, RESERVED, ROW_INDEX, SOURCE_FILE, UNPARSEABLE, indicator_name
from transforms.conform import ARROW_TYPES
from transforms.columns import SOURCE_TYPE_KEY
from transforms.text_values import sample_kinds, widened_kind

FORMATS = ("csv", "parquet", "tfrecord")
_EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".tfrecord": "tfrecord",
               ".tfrecords": "tfrecord", ".tfr": "tfrecord"}
CSV_SAMPLE_BYTES = 1 << 20
TFRECORD_SAMPLE = 2000
SEQUENCE_PROBE = 100  # records checked for tf.SequenceExample feature_lists


UNIT_ROWS = 65_536  # Parquet row groups are read together up to this many rows
UNIT_BYTES = 64 << 20  # or this many (uncompressed) bytes
PLAN_THREADS = min(4, os.cpu_count() or 1)  # files inspected at a time while planning (more contend for the GIL)
TASK_BYTES = 8 << 20  # consecutive read units smaller than this are read as one task (one bundle), e.g. small files
INFER_TOGETHER = 64  # small CSV files whose kinds are inferred with one set of Arrow kernel calls


@dataclasses.dataclass(frozen=True)
class ReadUnit:
    path: str
    columns: tuple[str, ...]  # the file's own columns, in its order
    row_groups: tuple[int, ...] = ()  # Parquet only: consecutive row groups read as one unit
    row_offset: int = 0  # index of the unit's first row within its file
    delimiter: str = ","  # CSV only
    nbytes: int = 0  # its size: the file's bytes (CSV, TFRecord), its row groups' uncompressed bytes (Parquet)


@dataclasses.dataclass(frozen=True)
class InputPlan:
    patterns: tuple[str, ...]
    format: str
    kinds: Mapping[str, str]  # column -> int | float | string | int_list | float_list
    units: tuple[ReadUnit, ...]
    skipped: tuple[str, ...] = ()  # matched, but written by nanguard (an earlier run's outputs): not read
    # Parquet columns whose unified type does not hold their values as they are (decimal, timestamp, date, time,
    # duration), the same type in every file: the quarantine writes them in this type, verbatim. (Narrower ints
    # and floats widen exactly, so they need no copy.)
    original_types: Mapping[str, pa.DataType] = dataclasses.field(default_factory=dict)
    # Parquet columns' Arrow types as read (bool, timestamp[us, tz=UTC], ...) where every file agrees: what
    # type expectations and error messages name. Columns absent here are of their unified type.
    source_types: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def type_name(self, column: str) -> str:
        """The column's type as the user knows it: its Parquet type, else its unified Arrow type."""
        return self.source_types.get(column) or str(ARROW_TYPES[self.kinds[column]])

    @property
    def temporal(self) -> frozenset[str]:
        """Columns read from timestamps, dates or times (written as seconds)."""
        return frozenset(c for c, t in self.original_types.items() if pa.types.is_temporal(t)
                         and not pa.types.is_duration(t))

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(u.path for u in self.units))

    @property
    def tasks(self) -> tuple[tuple[ReadUnit, ...], ...]:
        """The units in order, consecutive ones grouped up to TASK_BYTES: what a worker reads in one go. A
        thousand small files are a few tasks, not a thousand bundles (each with its own per-bundle cost)."""
        tasks, current, nbytes = [], [], 0
        for unit in self.units:
            if current and nbytes + unit.nbytes > TASK_BYTES:
                tasks.append(tuple(current))
                current, nbytes = [], 0
            current.append(unit)
            nbytes += unit.nbytes
        if current:
            tasks.append(tuple(current))
        return tuple(tasks)

    @property
    def schema(self) -> pa.Schema:
        """The unified schema of every batch: the data columns, then nanguard's own."""
        fields = [pa.field(c, ARROW_TYPES[k], metadata={SOURCE_TYPE_KEY: self.source_types[c]}
                           if c in self.source_types else None) for c, k in self.kinds.items()]
        fields += [pa.field(SOURCE_FILE, pa.string()), pa.field(ROW_INDEX, pa.int64())]
        if self.format != "parquet":
            fields.append(pa.field(UNPARSEABLE, pa.string()))
        return pa.schema(fields)

    @property
    def quarantine_schema(self) -> pa.Schema:
        """The quarantine file's schema: the columns as read (original types), nanguard's own, __reasons."""
        fields = [pa.field(f.name, self.original_types.get(f.name, f.type)) for f in self.schema]
        return pa.schema(fields + [pa.field(REASONS, pa.list_(pa.string()))])


def format_of(path: str) -> str | None:
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return _EXTENSIONS.get(os.path.splitext(name)[1])


def match_inputs(patterns: tuple[str, ...], exclude: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
    """(the files the patterns match, each once, in pattern then name order; those left out because they are in
    `exclude`: real paths of files nanguard itself wrote)."""
    files: list[str] = []
    seen: set[str] = set()
    skipped: list[str] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            raise InputError(f"--input {pattern}: is a directory; give a file or a glob such as '{pattern}/*.csv'")
        try:
            found = match(pattern)
        except Exception as e:  # Beam raises BeamIOError for unknown schemes and unreachable buckets
            raise InputError(f"--input {pattern}: cannot list it ({e})") from None
        paths = sorted(p for p in found if not p.endswith("/"))
        if not paths and not is_remote(pattern) and os.path.isfile(pattern):
            paths = [pattern]  # a name holding glob characters ('data[1].csv') that names a file as it is
        ours = [p for p in paths if not is_remote(p) and os.path.realpath(p) in exclude]
        skipped += [p for p in ours if p not in skipped]
        paths = [p for p in paths if p not in ours]
        if not paths:
            why = (f"matches only files nanguard wrote in its output directory ({ours[0]})" if ours
                   else "matches no file; check the path and quote globs so the shell does not expand them")
            raise InputError(f"--input {pattern}: {why}")
        for p in paths:
            key = p if is_remote(p) else os.path.realpath(p)  # one file named two ways is read once
            if key not in seen:
                seen.add(key)
                files.append(p)
    return files, skipped


def plan_inputs(patterns: tuple[str, ...], fmt: str | None = None, vector_columns: tuple[str, ...] = (),
                exclude: frozenset[str] = frozenset(), delimiter: str | None = None) -> InputPlan:
    """The plan for reading `patterns`; `exclude`: real paths never to read (nanguard's own outputs);
    `delimiter`: the CSV field separator (None: sniffed per file)."""
    files, skipped = match_inputs(patterns, exclude)
    if fmt is None:
        found = {f: format_of(f) for f in files}
        unknown = [f for f, k in found.items() if k is None]
        if unknown:
            raise InputError(f"{unknown[0]}: cannot tell the format from the extension; pass --format "
                             f"{'|'.join(FORMATS)}")
        kinds_seen = sorted(set(found.values()))
        if len(kinds_seen) > 1:
            raise InputError(f"inputs mix formats ({', '.join(kinds_seen)}); run one format at a time or pass --format")
        fmt = kinds_seen[0]
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt}: not one of {', '.join(FORMATS)}")
    inspect = {"csv": lambda path, vector: _inspect_csv(path, vector, delimiter), "parquet": _inspect_parquet,
               "tfrecord": _inspect_tfrecord}[fmt]
    units: list[ReadUnit] = []
    kinds: dict[str, str] = {}
    where: dict[str, str] = {}
    originals: dict[str, pa.DataType | None] = {}
    any_rows = False
    inspected = _kinds_settled(_inspect_in_order(files, inspect, vector_columns), frozenset(vector_columns))
    for path, (file_units, file_kinds, has_rows) in zip(files, inspected):
        any_rows |= has_rows
        if fmt != "tfrecord" and kinds and set(file_kinds) != set(kinds):
            _schema_drift(files[0], path, set(kinds), set(file_kinds))
        units.extend(file_units)
        if fmt == "parquet":
            for field in _parquet_schema(path):
                seen = originals.setdefault(field.name, field.type)
                if seen is not None and seen != field.type:
                    originals[field.name] = None  # files disagree: the unified type it is
        for col, kind in file_kinds.items():
            if col in RESERVED:
                raise InputError(f"{path}: column '{col}' collides with a column nanguard adds; rename it")
            kinds[col] = _unify(col, kinds.get(col), kind, where.get(col), path)
            where.setdefault(col, path)
    kinds = {c: (k or "string") for c, k in kinds.items()}
    if not kinds:
        raise InputError(f"{files[0]}: no columns found; is it empty?")
    if not any_rows:
        where = files[0] if len(files) == 1 else f"none of the {len(files)} input files"
        raise InputError(f"{where}: no data rows (only a header or schema); check that the export finished")
    original_types = {c: t for c, t in originals.items()
                      if t is not None and (pa.types.is_decimal(t) or pa.types.is_temporal(t))}
    source_types = {c: str(t) for c, t in originals.items() if t is not None and c in kinds}
    return InputPlan(tuple(patterns), fmt, kinds, tuple(units), tuple(skipped), original_types, source_types)


def _schema_drift(first: str, path: str, expected: set, got: set) -> None:
    """CSV and Parquet files of one input must have the same columns (tf.Example features may be absent)."""
    extra, lacking = sorted(got - expected), sorted(expected - got)
    what = "; ".join(x for x in (f"has {', '.join(extra)} that {first} lacks" if extra else "",
                                 f"lacks {', '.join(lacking)}" if lacking else "") if x)
    raise InputError(f"{path}: columns differ from {first}: it {what}; give files with the same columns, or run "
                     f"them separately")


def _unify(col: str, a: str | None, b: str | None, where_a: str | None, where_b: str) -> str | None:
    if a is None or a == b:
        return b if a is None else a
    if b is None:
        return a
    pair = {a, b}
    if pair == {"int", "float"}:
        return "float"
    if pair == {"int_list", "float_list"}:
        return "float_list"
    if pair <= {"int", "float", "int_list", "float_list"}:
        return "float_list"
    raise InputError(f"column '{col}' is {a} in {where_a} but {b} in {where_b}; make the files agree "
                     f"(a column must hold numbers in every file, or text in every file)")


def _inspect_csv(path: str, vector_columns, delimiter: str | None = None):
    """A CSV file's columns and kinds. Kinds come from the first CSV_SAMPLE_BYTES; when the file is longer, the
    rest is read too for the columns that could still change (integer columns that meet a decimal, columns
    empty so far), so a kind never depends on where in the file a value sits."""
    head = csv_head(path)
    delimiter = delimiter or sniff_delimiter(path, head)
    guess = header_guess(head, delimiter)
    if guess is not None and len(set(guess)) == len(guess):
        # One Arrow reader for the header and the kinds, when Python's reading of the header is Arrow's too.
        with open_input(path) as f:
            try:
                reader = csv_reader(f, guess, CSV_SAMPLE_BYTES, delimiter)
                if tuple(reader.schema.names) == guess:
                    kinds, any_rows = _scan_kinds(reader, guess, vector_columns)
                    return [ReadUnit(path, guess, delimiter=delimiter, nbytes=size(path))], kinds, any_rows
            except (pa.ArrowInvalid, OSError) as e:
                raise csv_problem(path, e, guess) from None
    names = _header_names(path, delimiter)
    _no_duplicates(path, names)
    with open_input(path) as f:
        try:
            kinds, any_rows = _scan_kinds(csv_reader(f, names, CSV_SAMPLE_BYTES, delimiter), names, vector_columns)
        except (pa.ArrowInvalid, OSError) as e:
            raise csv_problem(path, e, names) from None
    return [ReadUnit(path, names, delimiter=delimiter, nbytes=size(path))], kinds, any_rows


@dataclasses.dataclass(frozen=True)
class _WholeSample:
    """A CSV file read whole in its first batch: its kinds are inferred later, together with other such files'
    (_kinds_settled), with one set of Arrow kernel calls for many small files instead of one set each."""
    batch: pa.RecordBatch


def _scan_kinds(reader, names: tuple[str, ...], vector_columns) -> tuple[dict[str, str | None] | _WholeSample, bool]:
    """(kinds, whether there is a row) from a text reader of the file: the first batch decides, later batches
    only widen the columns that could still change. A file that is all in its first batch: (_WholeSample, True)."""
    batches = _batches(reader)
    head = list(itertools.islice(batches, 2))
    if len(head) == 1 and head[0].num_rows:
        return _WholeSample(head[0]), True
    kinds: dict[str, str | None] = {n: ("float_list" if n in vector_columns else None) for n in names}
    any_rows = False
    first = True
    for batch in itertools.chain(head, batches):
        any_rows |= batch.num_rows > 0
        open_kinds = [n for n, k in kinds.items() if k in (None, "int") and n not in vector_columns]
        if not first and not open_kinds:
            break
        if first and batch.num_rows:
            kinds.update(sample_kinds([batch], frozenset(vector_columns))[0])
        for i, name in enumerate(names):
            if not first and name in open_kinds:
                kinds[name] = widened_kind(kinds[name], batch.column(i))
        first = False
    return kinds, any_rows


def _batches(reader):
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return


def _kinds_settled(inspected, vector_columns: frozenset[str]):
    """Each file's (units, kinds, any rows) in order, the kinds of files read whole in their first batch inferred
    INFER_TOGETHER files at a time. An inspection error is raised after the files before it are given, as in
    a sequential loop."""
    chunk: list = []
    it = iter(inspected)
    while True:
        try:
            result = next(it)
        except StopIteration:
            break
        except Exception:
            yield from _settle(chunk, vector_columns)
            raise
        chunk.append(result)
        if len(chunk) == INFER_TOGETHER:
            yield from _settle(chunk, vector_columns)
            chunk = []
    yield from _settle(chunk, vector_columns)


def _settle(chunk: list, vector_columns: frozenset[str]) -> list:
    samples = [kinds for _, kinds, _ in chunk if isinstance(kinds, _WholeSample)]
    inferred = iter(sample_kinds([s.batch for s in samples], vector_columns))
    return [(units, next(inferred) if isinstance(kinds, _WholeSample) else kinds, rows)
            for units, kinds, rows in chunk]


def _header_names(path: str, delimiter: str) -> tuple[str, ...]:
    """The header as Arrow's CSV reader reads it."""
    with open_input(path) as f:
        try:
            return tuple(csv_reader(f, None, CSV_SAMPLE_BYTES, delimiter).schema.names)
        except (pa.ArrowInvalid, OSError) as e:
            raise csv_problem(path, e) from None


def _inspect_parquet(path: str, vector_columns):
    with open_input(path) as f:
        try:
            pf = pq.ParquetFile(f)
            schema = pf.schema_arrow
            groups = [pf.metadata.row_group(i) for i in range(pf.metadata.num_row_groups)]
            sizes = [(g.num_rows, g.total_byte_size) for g in groups]
        except (pa.ArrowInvalid, OSError) as e:
            raise parquet_problem(path, e) from None
    names = tuple(schema.names)
    _no_duplicates(path, names)
    kinds = {f.name: _arrow_kind(path, f) for f in schema}
    units, offset, group, first, rows, unit_bytes = [], 0, [], 0, 0, 0
    for i, (n, nbytes) in enumerate(sizes):  # row groups coalesced into units of up to UNIT_ROWS / UNIT_BYTES:
        if group and (rows + n > UNIT_ROWS or unit_bytes + nbytes > UNIT_BYTES):  # a unit (and its bundle) per
            units.append(ReadUnit(path, names, tuple(group), first, nbytes=unit_bytes))  # one-row group
            group, first, rows, unit_bytes = [], offset, 0, 0  # cost 332 s for 5,000
        group.append(i)
        rows, unit_bytes, offset = rows + n, unit_bytes + nbytes, offset + n
    if group:
        units.append(ReadUnit(path, names, tuple(group), first, nbytes=unit_bytes))
    return units, kinds, offset > 0


def _parquet_schema(path: str) -> pa.Schema:
    with open_input(path) as f:
        return pq.ParquetFile(f).schema_arrow


def _arrow_kind(path: str, field: pa.Field) -> str:
    t = field.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_duration(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_temporal(t):
        return "float"  # a timestamp, date or time: seconds (transforms.conform.epoch_seconds)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        v = t.value_type
        if pa.types.is_integer(v) or pa.types.is_boolean(v):
            return "int_list"
        if pa.types.is_floating(v):
            return "float_list"
        raise InputError(f"{path}: column '{field.name}' is {t}; nanguard reads lists of numbers only")
    if pa.types.is_nested(t):
        raise InputError(f"{path}: column '{field.name}' is {t}; nested columns are not supported, flatten it")
    return "string"


def _inspect_tfrecord(path: str, vector_columns):
    kinds: dict[str, str] = {}
    records = next(read_record_batches(path, TFRECORD_SAMPLE), [])  # the first records decide the kinds
    _no_sequence_examples(path, records[:SEQUENCE_PROBE])
    if records:
        batch = decode_examples(records, path)
        for name, arr in zip(batch.schema.names, batch.columns):
            if pa.types.is_null(arr.type) or pa.types.is_null(arr.type.value_type):
                kinds[name] = None  # a feature with no kind (and so no value) in every sampled record
                continue
            t = arr.type.value_type
            base = "int" if pa.types.is_integer(t) else "float" if pa.types.is_floating(t) else "string"
            present = ~arr.is_null().to_numpy(zero_copy_only=False)
            multi = name in vector_columns or bool((arr.value_lengths().to_numpy(zero_copy_only=False)[present] > 1).any())
            kinds[name] = base + "_list" if multi and base != "string" else base
    return [ReadUnit(path, tuple(kinds), nbytes=size(path))], kinds, bool(records)


def _inspect_in_order(files: list[str], inspect, vector_columns):
    """Each file's inspection, in file order, PLAN_THREADS files at a time: opening, reading and Arrow's kernels
    release the GIL, and on an object store each file costs round trips. A file's error is raised when its turn
    comes, as in a sequential loop (files after it are not waited for)."""
    if len(files) == 1:
        yield inspect(files[0], vector_columns)
        return
    pool = ThreadPoolExecutor(max_workers=PLAN_THREADS, thread_name_prefix="nanguard-plan")
    try:
        for future in [pool.submit(inspect, path, vector_columns) for path in files]:
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _no_sequence_examples(path: str, records: list[bytes]) -> None:
    """tf.SequenceExample records parse as tf.Example with their feature_lists silently dropped: refuse them."""
    from tensorflow.core.example import example_pb2
    for i, record in enumerate(records):
        try:
            lists = example_pb2.SequenceExample.FromString(record).feature_lists.feature_list
        except Exception:  # noqa: BLE001 - not a SequenceExample; the Example decoder judges it
            continue
        if lists:
            raise InputError(f"{path}: record {i} is a tf.SequenceExample (feature_lists {', '.join(sorted(lists))}); "
                             f"nanguard reads tf.Example only and would drop its sequences unchecked. Flatten "
                             f"them into tf.Example features")


def _no_duplicates(path: str, names) -> None:
    dupes = sorted({n for n in names if list(names).count(n) > 1})
    if dupes:
        raise InputError(f"{path}: duplicate column name(s) {', '.join(repr(d) for d in dupes)}; rename them")


def check_columns(plan: InputPlan, labels: tuple[LabelSpec, ...], passthrough: tuple[str, ...] = (),
                  missing: tuple[str, ...] = ()) -> None:
    """Every --label, --passthrough and --missing column exists, each label column holds what its kind needs,
    and --missing names columns of single numbers whose COL__missing indicator name is free."""
    for lab in labels:
        kind = plan.kinds.get(lab.column)
        if kind is None:
            raise ConfigError(f"--label {lab.column}: no such column (columns: {', '.join(plan.kinds)})")
        want = ("int_list", "float_list") if lab.is_vector else ("int", "float")
        if kind not in want:
            hint = "a list of numbers" if lab.is_vector else "one number per row"
            raise ConfigError(f"--label {lab.column}:{lab.describe()}: column holds {kind}, the kind needs {hint}")
    for col in passthrough:
        if col not in plan.kinds:
            raise ConfigError(f"--passthrough {col}: no such column (columns: {', '.join(plan.kinds)})")
    for col in missing:
        if col == ALL_FEATURES:
            continue
        if col not in plan.kinds:
            raise ConfigError(f"--missing {col}=...: no such column (columns: {', '.join(plan.kinds)})")
        if plan.kinds[col] not in ("int", "float"):
            raise ConfigError(f"--missing {col}=...: '{col}' holds {plan.kinds[col]}; a policy applies to columns of "
                              f"single numbers")
    taken = [c for c in plan.kinds if indicator_name(c) in plan.kinds]
    if missing and taken:
        raise ConfigError(f"--missing: column '{indicator_name(taken[0])}' already exists in the input, where the "
                          f"indicator of '{taken[0]}' would go; rename it")
