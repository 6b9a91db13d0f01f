"""Reading nanguard's shards back: `load_dataset` for training scripts, `read_shards` for the model checker.

The shards are the end of the data flow; this module is the only way back in. `load_dataset` refuses an
output whose report did not pass or whose shard bytes do not match the SHA-256 the report recorded, so a
training script cannot silently use ungated or tampered data.
"""
from __future__ import annotations

from pipeline.errors import NanguardError
from pipeline.files import exists, join, match, read_json
from pipeline.report.gate import derived_failures, read_report
from pipeline.report.integrity import integrity_failures

_CHUNK = 8 << 20


class DatasetRefusedError(NanguardError):
    """load_dataset would not hand these shards to training."""


class GateNotPassedError(DatasetRefusedError):
    """The run's report says the gate failed (or there is no finished report)."""


class ShardIntegrityError(DatasetRefusedError):
    """A shard is missing, or its bytes are not the ones the report recorded."""


def _read_json(path: str):
    return read_json(path) if exists(path) else None


def report_of(out_dir: str) -> dict | None:
    """The output's report.json as written (not validated), or None when there is none."""
    return _read_json(join(out_dir, "report.json"))


def feature_spec(out_dir: str) -> dict:
    """feature_spec.json as tf.io.parse_example features."""
    import tensorflow as tf
    raw = _read_json(join(out_dir, "feature_spec.json"))
    if raw is None:
        raise ShardIntegrityError(f"{out_dir}: no feature_spec.json; is this a nanguard output directory?")
    spec = {}
    for name, s in raw.items():
        dtype = {"float32": tf.float32, "int64": tf.int64, "string": tf.string}[s["dtype"]]
        spec[name] = (tf.io.FixedLenFeature(s["shape"], dtype) if s["kind"] == "FixedLenFeature"
                      else tf.io.VarLenFeature(dtype))
    return spec


def shard_paths(out_dir: str, report: dict | None = None) -> list[str]:
    """The shard files, in shard order: from the report (given, or report.json) when there is one, else from
    data/."""
    report = report if report else report_of(out_dir)
    if report is not None:
        return [join(out_dir, s["path"]) for s in report["outputs"]["shards"]]
    return sorted(match(join(out_dir, "data/part-*.tfrecord*")))


def verify(out_dir: str, allow_failed: bool = False, checksums: bool = True) -> dict:
    """The report of a finished run whose shards may be trained on; raises DatasetRefusedError otherwise.

    The gate is re-derived from the report as `nanguard gate` does (an edited "passed" does not count), and with
    `checksums` every shard and every file beside them must hash to what the report recorded."""
    if not exists(join(out_dir, "report.json")):
        raise GateNotPassedError(f"{out_dir}: no report.json, so the run did not finish (or this is not a nanguard "
                                 f"output); rerun `nanguard run` and train only when its gate passes")
    try:
        report = read_report(out_dir)
    except NanguardError as e:
        raise DatasetRefusedError(e.message) from None
    failures = derived_failures(report)
    if failures and not allow_failed:
        raise GateNotPassedError(f"{out_dir}: the nanguard gate FAILED ({'; '.join(failures) or 'see report.json'}); "
                                 f"fix the data, or pass allow_failed=True to load it anyway")
    if checksums:
        problems = integrity_failures(out_dir, report)
        if problems:
            raise ShardIntegrityError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                                      + " (or pass verify_checksums=False if you changed it on purpose)")
    return report


def _same_meaning(dirs: list[str]) -> None:
    """Outputs read together must hold the same features, normalized the same way."""
    first_norm, first_spec = _read_json(join(dirs[0], "normalization.json")), _read_json(join(dirs[0], "feature_spec.json"))
    for d in dirs[1:]:
        if _read_json(join(d, "normalization.json")) != first_norm:
            raise DatasetRefusedError(f"{d}: its normalization differs from {dirs[0]}'s, so the same raw value is "
                                      f"written differently in each; run it with --baseline {dirs[0]} to share one")
        if _read_json(join(d, "feature_spec.json")) != first_spec:
            raise DatasetRefusedError(f"{d}: its features (feature_spec.json) differ from {dirs[0]}'s")


def read_shards(out_dir: str, batch_size: int, *, columns=None, with_ids: bool = False, shuffle_buffer: int = 0,
                seed: int | None = None, drop_remainder: bool = False, paths: list[str] | None = None):
    """Batches of parsed examples (dicts of tensors) from the shards.

    with_ids adds '__shard' (index into `paths`) and '__record' (record number within it) to each batch,
    so a failing example can be named exactly; its batches are then cut within one shard (a shard's last
    batch may be short). Reads interleave over shards, deterministically unless shuffling.
    """
    import tensorflow as tf
    paths = shard_paths(out_dir) if paths is None else paths
    if not paths:
        raise ShardIntegrityError(f"{out_dir}: no shards under data/; did `nanguard run` write any clean rows?")
    spec = feature_spec(out_dir)
    if columns is not None:
        unknown = [c for c in columns if c not in spec]
        if unknown:
            raise NanguardError(f"{', '.join(unknown)}: not in {out_dir}/feature_spec.json "
                                f"(features: {', '.join(spec)})")
        spec = {c: spec[c] for c in columns}
    compression = "GZIP" if paths[0].endswith(".gz") else ""
    files = tf.data.Dataset.from_tensor_slices((paths, tf.range(len(paths), dtype=tf.int64)))

    def records(path, index):
        return tf.data.TFRecordDataset(path, compression_type=compression, buffer_size=_CHUNK)

    def id_batches(path, index):
        # Ids per batch, not per record (a per-record map costs a noticeable share of the read): batches are
        # cut within one shard, so record numbers are the batch's offset plus a range, computed in parse(). No
        # map inside the interleave: with one there, some reads stalled for seconds.
        batches = records(path, index).batch(batch_size, drop_remainder=drop_remainder).enumerate()
        return tf.data.Dataset.zip((tf.data.Dataset.from_tensors(index).repeat(), batches))

    if with_ids:
        if shuffle_buffer:
            raise ValueError("with_ids reads in shard order; it does not shuffle")
        ds = files.interleave(id_batches, cycle_length=min(len(paths), 8), block_length=1,
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    elif shuffle_buffer:  # records one by one through the shuffle buffer
        ds = files.interleave(records, cycle_length=min(len(paths), 8), block_length=64,
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        ds = ds.shuffle(shuffle_buffer, seed=seed).batch(batch_size, drop_remainder=drop_remainder)
    else:
        # Batched within each shard, interleaved as batches, then rebatched so only the last batch is short:
        # a tf.data element per record costs more than parsing it.
        ds = files.interleave(lambda path, index: records(path, index).batch(batch_size),
                              cycle_length=min(len(paths), 8), block_length=1,
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.rebatch(batch_size, drop_remainder=drop_remainder)

    def parse(*batch):
        if not with_ids:
            return tf.io.parse_example(batch[0], spec)
        index, (number, serialized) = batch
        parsed = tf.io.parse_example(serialized, spec)
        parsed["__shard"] = tf.fill(tf.shape(serialized), index)
        parsed["__record"] = number * batch_size + tf.range(tf.size(serialized, tf.int64))
        return parsed

    # tf.data's autotuner off: AUTOTUNE then means one call per core. With it on, the model checker's read
    # stalled for seconds in about half its runs (same CPU time, idle cores) and load_dataset read slower
    # (BENCHMARKS.md). A caller's own with_options() still overrides this.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle_buffer) \
             .prefetch(tf.data.AUTOTUNE).with_options(options)


def load_dataset(out_dir, batch_size: int, label: str | None = None, *, features=None, shuffle: bool = False,
                 shuffle_buffer: int = 10_000, seed: int | None = None, drop_remainder: bool = False,
                 allow_failed: bool = False, verify_checksums: bool = True):
    """A tf.data.Dataset of a nanguard output (or a list of outputs: train and later days), for training.

    Yields feature dicts, or (features, label) pairs when `label` is given. Refuses (GateNotPassedError)
    an output whose gate failed unless allow_failed=True, (ShardIntegrityError) a shard whose SHA-256
    does not match report.json unless verify_checksums=False, and (DatasetRefusedError) outputs whose
    normalization or features differ: their values would not mean the same (run them with --baseline).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: needs a whole number >= 1")
    dirs = [out_dir] if isinstance(out_dir, str) else list(out_dir)
    if not dirs:
        raise ValueError("load_dataset needs an output directory, or a list of them")
    reports = [verify(d, allow_failed=allow_failed, checksums=verify_checksums) for d in dirs]
    _same_meaning(dirs)
    out_dir, report = dirs[0], reports[0]
    spec = feature_spec(out_dir)
    if label is not None and label not in spec:
        raise NanguardError(f"label={label!r}: not in {out_dir}/feature_spec.json (features: {', '.join(spec)})")
    columns = None if features is None else list(features) + ([label] if label and label not in features else [])
    ds = read_shards(out_dir, batch_size, columns=columns,
                     paths=[p for d, r in zip(dirs, reports) for p in shard_paths(d, r)],
                     shuffle_buffer=shuffle_buffer if shuffle else 0,
                     seed=seed, drop_remainder=drop_remainder)
    if label is None:
        return ds
    return ds.map(lambda batch: ({k: v for k, v in batch.items() if k != label}, batch[label]))
