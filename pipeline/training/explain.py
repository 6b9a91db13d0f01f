"""Explaining a model check failure: re-run the first failing batch eagerly and name the rows (shard and record),
the quantity that failed, and the first layer whose output is non-finite."""
from __future__ import annotations

import os

import numpy as np

from transforms.columns import ROW_INDEX, SOURCE_FILE

from pipeline.stages.artifacts import INDEX_DIR
from pipeline.training.model_check import MAX_ROWS_NAMED, PROB_TOLERANCE, Step, dense, features_of, var_name


def explain(step: Step, data_dir: str, batch_size: int, paths, index: int, columns) -> dict:
    """Re-runs the first failing batch eagerly: which rows, which quantity, which layer."""
    import tensorflow as tf
    from pipeline.training.dataset import read_shards

    ds = read_shards(data_dir, batch_size, columns=columns, with_ids=True, paths=paths)
    batch = next(iter(ds.skip(index).take(1)))
    data = {k: v for k, v in batch.items() if not k.startswith("__")}
    out, _, loss, grads = step.quantities(data)
    flat = [tf.cast(o, tf.float32).numpy() for o in tf.nest.flatten(out)]
    rows = np.zeros(flat[0].shape[0], bool)
    quantity = None
    for o in flat:
        rows |= ~np.isfinite(o.reshape(o.shape[0], -1)).all(axis=1)
    if rows.any():
        quantity = "output"
    if quantity is None and step.head is not None:
        o = flat[0].reshape(flat[0].shape[0], -1)
        bad = ((o < 0) | (o > 1)).any(axis=1)
        if step.head == "softmax":
            bad |= np.abs(o.sum(axis=1) - 1) > PROB_TOLERANCE
        if bad.any():
            rows, quantity = bad, "probability output"
    if quantity is None and loss is not None and not np.isfinite(float(loss)):
        rows, quantity = _per_row(step, data, lambda o, l, g: not np.isfinite(float(l))), "loss"
    if quantity is None and grads:
        bad_vars = [var_name(v) for v, g in zip(step.variables, grads)
                    if g is not None and not np.isfinite(dense(g).numpy()).all()]
        if bad_vars:
            quantity = f"gradient of {', '.join(bad_vars[:3])}"
            rows = _per_row(step, data, lambda o, l, g: any(
                x is not None and not np.isfinite(dense(x).numpy()).all() for x in g))
    if quantity is None and step.probe is not None:
        _, acts = step.forward(features_of(data, step.plan))
        for a in acts:
            a = tf.cast(a, tf.float32).numpy()
            rows |= ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
        if rows.any():
            quantity = "activation beyond float16 range"
    shard, record = batch["__shard"].numpy(), batch["__record"].numpy()
    named = [{"offset": int(i), "shard": os.path.relpath(paths[shard[i]], data_dir) if "://" not in paths[0]
              else paths[shard[i]], "record": int(record[i])} for i in np.flatnonzero(rows)[:MAX_ROWS_NAMED]]
    for row in named:  # where the row came from, when the output has the shard's index (index/)
        row.update(source_row(data_dir, row["shard"], row["record"]) or {})
    layer = _first_bad_layer(step.model, data, step.plan, rows if rows.any() else None)
    if layer is None and quantity and quantity.startswith("gradient of "):
        layer = quantity[len("gradient of "):].split("/")[0].split(",")[0]
    return {"batch": index, "quantity": quantity or "unknown", "rows_failing": int(rows.sum()), "rows": named,
            "layer": layer}


def source_row(out_dir: str, shard: str, record: int) -> dict | None:
    """{"source_file", "row_index"} of a shard's record, from index/part-*.parquet; None without an index."""
    import pyarrow.parquet as pq
    from pipeline.files import exists, join, open_read

    name = os.path.basename(shard).split(".tfrecord")[0] + ".parquet"
    path = join(out_dir, INDEX_DIR, name)
    if not exists(path):
        return None
    with open_read(path) as f:
        row = pq.read_table(f).slice(record, 1).to_pylist()
    return {"source_file": row[0][SOURCE_FILE], "row_index": row[0][ROW_INDEX]} if row else None


def _per_row(step: Step, data: dict, is_bad) -> "np.ndarray":
    """Which rows of one batch, checked one at a time, make `is_bad(outputs, loss, grads)` true."""
    n = int(next(iter(data.values())).shape[0])
    bad = np.zeros(n, bool)
    for i in range(n):
        out, _, loss, grads = step.quantities({k: v[i:i + 1] for k, v in data.items()})
        bad[i] = is_bad(out, loss, grads)
    return bad


def _first_bad_layer(model, data: dict, plan, rows) -> str | None:
    """The first layer, in order, whose output is non-finite for the failing rows (models with layers only)."""
    probe, names = model.layer_probe()
    if probe is None:
        return None
    acts = probe(features_of(data, plan), training=False)
    acts = acts if isinstance(acts, (list, tuple)) else [acts]
    for name, a in zip(names, acts):
        a = np.asarray(a, dtype=np.float32)
        a = a.reshape(a.shape[0], -1)
        if rows is not None:
            a = a[rows]
        if not np.isfinite(a).all():
            return name
    return None
