"""The model checker: runs the model over the cleaned shards and proves outputs, loss and gradients finite.

Sits after the shards are written (`nanguard check-model`, or `nanguard run --model`). One compiled
tf.function per batch computes every check; counters live in device variables and the host reads them
once every POLL_EVERY batches, not per batch. When a check fails, training.explain re-runs the first failing
batch eagerly to name the rows (shard and record), the quantity, and the first layer whose output is non-finite.
Models are reached through training.model's handlers.
"""
from __future__ import annotations

import dataclasses
import re
import time

from pipeline.errors import ConfigError

POLL_EVERY = 64  # batches between host reads of the device counters
PROB_TOLERANCE = 1e-3  # softmax rows must sum to 1 within this
FLOAT16_MAX = 65504.0
MAX_ROWS_NAMED = 20
DEVICES = ("auto", "cpu", "gpu")
OUTPUT_KINDS = ("auto", "probability", "any")


@dataclasses.dataclass(frozen=True)
class ModelCheckConfig:
    model: object  # a path (.keras, .h5, SavedModel dir) or a keras.Model
    data: str  # a nanguard output directory
    label: str | None = None
    loss: object = None  # a Keras loss name or callable; None: the model's compiled loss, if any
    batch_size: int = 256
    max_batches: int | None = None
    mixed_precision: bool = False
    device: str = "auto"
    features: tuple[str, ...] | None = None
    outputs: str = "auto"
    safe_mode: bool = True
    custom_objects: str | None = None  # a module (or .py file) that registers the model's custom Keras objects
    # The data's own gate: shards of a run whose gate failed (or that changed since) are refused unless
    # allow_failed; verify_data=False only where the caller vouches for the data (`run --model` on its staging).
    allow_failed: bool = False
    verify_data: bool = True
    # The handler preflight() made from `model`, so `run --model` loads the model once (it can be large);
    # `model` still names it in the result.
    loaded: object = None

    def __post_init__(self):
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"--batch-size {self.batch_size}: needs a whole number >= 1")
        if self.max_batches is not None and (not isinstance(self.max_batches, int) or self.max_batches < 1):
            raise ConfigError(f"--max-batches {self.max_batches}: needs a whole number >= 1")
        if self.device not in DEVICES:
            raise ConfigError(f"--device {self.device}: not one of {', '.join(DEVICES)}")
        if self.outputs not in OUTPUT_KINDS:
            raise ConfigError(f"--outputs {self.outputs}: not one of {', '.join(OUTPUT_KINDS)}")


# ---------------------------------------------------------------- inputs

def _input_plan(model, spec: dict, roles: dict, label: str | None, features):
    """How batches feed the model: ('dict', names) for named inputs, ('stack', names) for one matrix."""
    names = model.input_names()
    if features is None and names and all(n in spec for n in names):
        return "dict", tuple(names)
    if names and len(names) > 1 and features is None:
        raise ConfigError(f"the model has inputs {', '.join(names)}, not all of which are features of the shards "
                          f"({', '.join(spec)}); name the model's inputs like the features")
    if features is not None:
        chosen = list(features)
        unknown = [c for c in chosen if c not in spec]
        if unknown:
            raise ConfigError(f"--features {','.join(unknown)}: not in feature_spec.json (features: {', '.join(spec)})")
    else:
        chosen = [n for n, s in spec.items() if n != label and roles.get(n) != "label" and _scalar_number(s)]
    bad = [c for c in chosen if not _scalar_number(spec[c])]
    if bad:
        raise ConfigError(f"--features {','.join(bad)}: a stacked input needs numeric features with one value per "
                          f"example; these are lists, strings or may be missing")
    if not chosen:
        raise ConfigError("no numeric features to feed the model; name them with --features")
    width = model.input_width()
    if width is not None and width != len(chosen):
        raise ConfigError(f"the model takes {width} input values per example but the shards have {len(chosen)} "
                          f"numeric non-label features ({', '.join(chosen)}); choose them with --features")
    return "stack", tuple(chosen)


def _scalar_number(s) -> bool:
    import tensorflow as tf
    return isinstance(s, tf.io.FixedLenFeature) and list(s.shape) == [] and s.dtype in (tf.float32, tf.int64)


def features_of(batch: dict, plan):
    import tensorflow as tf
    how, names = plan
    if how == "dict":
        return {n: batch[n] for n in names}
    return tf.stack([tf.cast(batch[n], tf.float32) for n in names], axis=1)


# ---------------------------------------------------------------- loss and outputs

def _loss_fn(model, loss):
    """(callable(y_true, y_pred) -> scalar, its name), or (None, why there is no loss check)."""
    import keras
    if loss is None:
        loss = model.loss
        if loss is None:
            return None, "no --loss and the model has no compiled loss"
    if isinstance(loss, str):
        try:
            fn = keras.losses.get(loss)
        except ValueError:
            raise ConfigError(f"--loss {loss}: not a Keras loss (e.g. binary_crossentropy, "
                              f"sparse_categorical_crossentropy, mse)") from None
        return fn, loss
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    return loss, name


def _probability_head(model, outputs: str) -> str | None:
    """'softmax', 'sigmoid', 'probability' (told) or None."""
    if outputs == "probability":
        return "probability"
    return None if outputs == "any" else model.probability_head()


# ---------------------------------------------------------------- device

def _device(choice: str) -> tuple[str, str]:
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if choice == "gpu" and not gpus:
        raise ConfigError("--device gpu: TensorFlow sees no GPU here; use --device auto or cpu")
    if gpus and choice != "cpu":
        details = tf.config.experimental.get_device_details(gpus[0])
        return "/GPU:0", f"GPU:0 ({details.get('device_name', 'GPU')})"
    return "/CPU:0", "CPU"


# ---------------------------------------------------------------- the check

def check_model(config: ModelCheckConfig) -> dict:
    """Runs the checks; returns the result that goes to report.json['model_check'] (see `passed`)."""
    import tensorflow as tf
    from pipeline.report.gate import derived_failures
    from pipeline.training.dataset import DatasetRefusedError, feature_spec, read_shards, report_of, shard_paths, verify
    from pipeline.training.explain import explain
    from pipeline.training.model import as_handler

    started = time.time()
    spec = feature_spec(config.data)
    data_failures = None  # not verified
    if config.verify_data:
        try:
            report = verify(config.data, allow_failed=config.allow_failed)
        except DatasetRefusedError as e:
            raise type(e)(e.message.replace("pass allow_failed=True", "pass --allow-failed")) from None
        data_failures = derived_failures(report)
    else:
        report = report_of(config.data) or {}
    paths = shard_paths(config.data, report)  # the report just read, not read again
    roles = {k: v.get("role") for k, v in report.get("features", {}).items()}
    if config.label is not None and config.label not in spec:
        raise ConfigError(f"--label {config.label}: not in {config.data}/feature_spec.json (features: "
                          f"{', '.join(spec)})")
    device, device_name = _device(config.device)
    with tf.device(device):
        model = config.loaded if config.loaded is not None else as_handler(config.model, config.safe_mode,
                                                                           config.custom_objects)
        model_name = config.model if isinstance(config.model, str) else model.name
        if config.mixed_precision:
            model = model.mixed_clone()
        plan = _input_plan(model, spec, roles, config.label, config.features)
        loss_fn, loss_name = _loss_fn(model, config.loss)
        if config.label is None and loss_fn is not None:
            loss_fn, loss_name = None, "no --label, so no loss"
        head = _probability_head(model, config.outputs)
        probe, probed_layers = model.layer_probe() if config.mixed_precision else (None, [])
        variables = list(model.trainable_variables) if loss_fn is not None else []
        step = Step(model, plan, config.label, loss_fn, head, variables, probe)
        columns = list(plan[1]) + ([config.label] if config.label else [])
        ds = read_shards(config.data, config.batch_size, columns=columns, with_ids=True, paths=paths)
        if config.max_batches:
            ds = ds.take(config.max_batches)
        batches, stopped_early = 0, False
        checked_from = time.time()
        for batch in ds:
            try:
                step(batch, tf.constant(batches, tf.int64))
            except Exception as e:  # noqa: BLE001 - the model's own code or graph failed on real data
                detail = _error_text(e)
                raise ConfigError(f"--model {model_name}: the model raised on batch {batches} ({type(e).__name__}: "
                                  f"{detail}); check its inputs (--features, --label) and its code") from None
            batches += 1
            if batches % POLL_EVERY == 0 and int(step.first_bad.numpy()) >= 0:
                stopped_early = True  # the first failure is known; the rest of the data cannot un-fail it
                break
        seconds = time.time() - checked_from
        totals = step.read()
        failure = None
        if totals["first_bad"] >= 0:
            failure = explain(step, config.data, config.batch_size, paths, totals["first_bad"], columns)
    examples = totals["examples"]
    checks = {
        "outputs_finite": {"checked": True, "nonfinite_values": totals["bad_outputs"]},
        "probability_outputs": {"checked": head is not None, "head": head,
                                "values_outside_0_1": totals["bad_prob_values"],
                                "rows_not_summing_to_1": totals["bad_prob_rows"]},
        "loss_finite": {"checked": loss_fn is not None, "loss": loss_name, "nonfinite_batches": totals["bad_loss"]},
        "gradients_finite": {"checked": loss_fn is not None, "variables": len(variables),
                             "nonfinite_by_variable": {var_name(v): n for v, n in zip(variables, totals["bad_grads"])
                                                       if n}},
        "float16_overflow": {"checked": config.mixed_precision,
                             "nonfinite_activations_by_layer": {name: n for name, n in
                                                                zip(probed_layers, totals["fp16_by_layer"]) if n}},
    }
    failures = _failure_lines(checks, failure, config.mixed_precision)
    return {
        "passed": not failures,
        "data_gate_failures": data_failures,  # the data's own gate (None: not verified here)
        "failures": failures,
        "model": str(model_name),
        "data": config.data,
        "label": config.label,
        "inputs": {"mode": plan[0], "features": list(plan[1])},
        "mixed_precision": config.mixed_precision,
        "device": device_name,
        "batches": batches,
        "examples": examples,
        "seconds": round(time.time() - started, 3),
        "examples_per_second": round(examples / seconds, 1) if seconds > 0 else None,
        "stopped_early": stopped_early,
        "checks": checks,
        "failure": failure,
    }


def _error_text(e: Exception) -> str:
    """The line of a TensorFlow error that says what went wrong, without the graph's node and frame listing."""
    text = getattr(e, "message", None) or str(e) or type(e).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith(("Graph execution error", "Detected at node", "File ", "[[",
                                                           "Traceback", "(defined at"))] or lines or [text]
    line = re.sub(r"\{\{function_node [^}]*\}\}", "", said[-1])
    return re.sub(r"\s*(\[\[.*|\[Op:.*)$", "", line).strip()


def var_name(v) -> str:
    return getattr(v, "path", None) or v.name


def _failure_lines(checks: dict, failure: dict | None, mixed: bool) -> list[str]:
    lines = []
    c = checks
    if c["outputs_finite"]["nonfinite_values"]:
        lines.append(f"model outputs: {c['outputs_finite']['nonfinite_values']} non-finite values")
    p = c["probability_outputs"]
    if p["values_outside_0_1"] or p["rows_not_summing_to_1"]:
        lines.append(f"probability outputs ({p['head']}): {p['values_outside_0_1']} values outside [0, 1], "
                     f"{p['rows_not_summing_to_1']} rows not summing to 1 within {PROB_TOLERANCE:g}")
    if c["loss_finite"]["nonfinite_batches"]:
        lines.append(f"loss {c['loss_finite']['loss']}: non-finite in {c['loss_finite']['nonfinite_batches']} "
                     f"batch(es)")
    bad = c["gradients_finite"]["nonfinite_by_variable"]
    if bad:
        lines.append(f"gradients: non-finite for {len(bad)} variable(s): {', '.join(list(bad)[:5])}")
    if mixed and c["float16_overflow"]["nonfinite_activations_by_layer"]:
        by = c["float16_overflow"]["nonfinite_activations_by_layer"]
        lines.append(f"mixed_float16: activations beyond float16 range (+/-{FLOAT16_MAX:g}) in layer(s) "
                     f"{', '.join(f'{k} ({v})' for k, v in by.items())}")
    if failure is not None:
        rows = ", ".join(f"{r['shard']} record {r['record']}" + _source(r) for r in failure["rows"][:3])
        lines.append(f"first failure: batch {failure['batch']}, {failure['quantity']}, "
                     f"{failure['rows_failing']} row(s)" + (f" e.g. {rows}" if rows else "") +
                     (f", first non-finite layer '{failure['layer']}'" if failure.get("layer") else ""))
    return lines


class Step:
    """The compiled per-batch check and its device-side counters."""

    def __init__(self, model, plan, label, loss_fn, head, variables, probe):
        import tensorflow as tf
        self.model, self.plan, self.label, self.loss_fn, self.head = model, plan, label, loss_fn, head
        self.variables, self.probe = variables, probe
        self.n_layers = len(probe.outputs) if probe is not None else 0
        self.counters = tf.Variable(tf.zeros([5], tf.int64), trainable=False)  # examples, bad out/prob/rows/loss
        self.first_bad = tf.Variable(tf.constant(-1, tf.int64), trainable=False)
        self.bad_grads = tf.Variable(tf.zeros([max(len(variables), 1)], tf.int64), trainable=False)
        self.fp16 = tf.Variable(tf.zeros([max(self.n_layers, 1)], tf.int64), trainable=False)
        # No jit_compile: XLA rejects some layers, and it has not been measured to help here (BENCHMARKS.md).
        self._fn = tf.function(self._check, reduce_retracing=True)

    def __call__(self, batch, index):
        self._fn({k: v for k, v in batch.items() if not k.startswith("__")}, index)

    def forward(self, x, training=False):
        if self.probe is not None:
            acts = self.probe(x, training=training)
            acts = acts if isinstance(acts, (list, tuple)) else [acts]
            return acts[-1], acts
        return self.model(x, training=training), []

    def quantities(self, batch):
        """outputs, activations, loss, gradients of one batch (eager or traced)."""
        import tensorflow as tf
        x = features_of(batch, self.plan)
        if self.loss_fn is None:
            out, acts = self.forward(x)
            return out, acts, None, []
        with tf.GradientTape() as tape:
            out, acts = self.forward(x)
            loss = tf.reduce_mean(tf.cast(self.loss_fn(_align(batch[self.label], out), out), tf.float32))
        grads = tape.gradient(loss, self.variables)
        return out, acts, loss, grads

    def _check(self, batch, index):
        import tensorflow as tf
        out, acts, loss, grads = self.quantities(batch)
        flat = [tf.cast(o, tf.float32) for o in tf.nest.flatten(out)]
        n = tf.cast(tf.shape(flat[0])[0], tf.int64)
        bad_out = tf.add_n([_count(~tf.math.is_finite(o)) for o in flat])
        bad_prob = bad_rows = tf.constant(0, tf.int64)
        if self.head is not None:
            o = flat[0]
            finite = tf.math.is_finite(o)
            bad_prob = _count(finite & ((o < 0.0) | (o > 1.0)))
            if self.head == "softmax":
                bad_rows = _count(tf.abs(tf.reduce_sum(o, axis=-1) - 1.0) > PROB_TOLERANCE)
        bad_loss = tf.constant(0, tf.int64) if loss is None else tf.cast(~tf.math.is_finite(loss), tf.int64)
        if grads:
            per_var = tf.stack([_count(~tf.math.is_finite(dense(g))) if g is not None
                                else tf.constant(0, tf.int64) for g in grads])
            self.bad_grads.assign_add(per_var)
            bad_grad = tf.reduce_sum(per_var)
        else:
            bad_grad = tf.constant(0, tf.int64)
        bad_act = tf.constant(0, tf.int64)
        if acts and self.probe is not None:
            per_layer = tf.stack([_count(~tf.math.is_finite(tf.cast(a, tf.float32))) for a in acts])
            self.fp16.assign_add(per_layer)
            bad_act = tf.reduce_sum(per_layer)
        self.counters.assign_add(tf.stack([n, bad_out, bad_prob, bad_rows, bad_loss]))
        failed = (bad_out + bad_prob + bad_rows + bad_loss + bad_grad + bad_act) > 0
        self.first_bad.assign(tf.where((self.first_bad < 0) & failed, index, self.first_bad))

    def read(self) -> dict:
        c = [int(v) for v in self.counters.numpy()]
        return {"examples": c[0], "bad_outputs": c[1], "bad_prob_values": c[2], "bad_prob_rows": c[3],
                "bad_loss": c[4], "first_bad": int(self.first_bad.numpy()),
                "bad_grads": [int(v) for v in self.bad_grads.numpy()][:len(self.variables)],
                "fp16_by_layer": [int(v) for v in self.fp16.numpy()][:self.n_layers]}


def _count(mask):
    import tensorflow as tf
    return tf.reduce_sum(tf.cast(mask, tf.int64))


def dense(g):
    import tensorflow as tf
    return g.values if isinstance(g, tf.IndexedSlices) else g


def _align(y, out):
    """A [B] label against a [B, 1] output gets the trailing axis Keras losses expect."""
    import tensorflow as tf
    o = tf.nest.flatten(out)[0]
    if y.shape.rank is not None and o.shape.rank is not None and y.shape.rank == o.shape.rank - 1 \
            and o.shape[-1] == 1:
        y = tf.expand_dims(y, -1)
    if y.dtype.is_floating and o.dtype != y.dtype:
        y = tf.cast(y, o.dtype)
    return y


def _failed(check: dict) -> bool:
    """Whether a check in result["checks"] found anything (its counts are the only non-boolean numbers)."""
    found = [v for k, v in check.items() if k not in ("checked", "variables", "head", "loss")]
    return any(bool(v) for v in found if isinstance(v, (int, dict)) and not isinstance(v, bool))


def preflight(config: ModelCheckConfig, available: tuple[str, ...]):
    """Before a pipeline runs: the model loads, and a single-input model's width matches the numeric features
    the shards will have (`available`, or config.features), so a mismatch is not found only after the run.
    Returns the loaded model's handler (ModelCheckConfig.loaded), for the check after the run."""
    from pipeline.training.model import as_handler
    model = as_handler(config.model, config.safe_mode, config.custom_objects)
    if config.features is not None:
        unknown = [f for f in config.features if f not in available]
        if unknown:
            raise ConfigError(f"--model-features {','.join(unknown)}: not numeric features of the input "
                              f"(features: {', '.join(available)})")
    names = model.input_names()
    if names and all(n in available for n in names):
        return model  # named inputs, fed by name
    chosen = config.features if config.features is not None else available
    width = model.input_width()
    if width is not None and width != len(chosen):
        raise ConfigError(f"--model {config.model}: takes {width} input values per example but the shards will "
                          f"have {len(chosen)} numeric non-label features ({', '.join(chosen)}); choose them with "
                          f"--model-features")
    return model


def summary(result: dict) -> str:
    """Human lines for the CLI."""
    rate = result["examples_per_second"]
    head = (f"model check: {result['examples']} examples in {result['batches']} batches on {result['device']}"
            f" ({rate:,.0f} examples/s)" if rate else f"model check: {result['examples']} examples on "
                                                     f"{result['device']}")
    lines = [head]
    if result.get("data_gate_failures"):
        lines.append(f"  data: the nanguard gate of {result['data']} FAILED ({'; '.join(result['data_gate_failures'])}); "
                     f"checked anyway (--allow-failed)")
    for name, c in result["checks"].items():
        if c["checked"]:
            lines.append(f"  {name.replace('_', ' ')}: {'NO' if _failed(c) else 'yes'}")
    f = result["failure"]
    if f:
        lines.append(f"  first failing batch {f['batch']}: {f['quantity']} non-finite or invalid in "
                     f"{f['rows_failing']} row(s)" + (f", first at layer '{f['layer']}'" if f["layer"] else ""))
        for r in f["rows"][:5]:
            lines.append(f"    {r['shard']} record {r['record']}{_source(r)} (batch offset {r['offset']})")
    lines.append("model check: " + ("PASSED" if result["passed"] else "FAILED"))
    lines.extend(f"  - {x}" for x in result["failures"])
    return "\n".join(lines)


def _source(row: dict) -> str:
    """' = row R of FILE' where the output's index names the input row a shard record came from."""
    return f" = row {row['row_index']} of {row['source_file']}" if "source_file" in row else ""
