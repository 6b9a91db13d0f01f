"""The models the checker runs, behind one interface: a handler per model kind (Keras, TensorFlow SavedModel).

The check loop (training.model_check) and the failure explanation (training.explain) ask a handler for what
they need: calling the model, its variables and compiled loss, its input names and width, whether its head
emits probabilities, a probe of every layer's output, a mixed_float16 twin. A kind that cannot answer says so
(None, or a ConfigError naming the flag), so the loop has no per-kind branches.
"""
from __future__ import annotations

import os

from pipeline.errors import ConfigError, InputError


class KerasModel:
    """A Keras model (Sequential, functional or subclassed)."""

    def __init__(self, model):
        self.model = model
        self.name = getattr(model, "name", "model")

    def __call__(self, inputs, training=False):
        return self.model(inputs, training=training)

    @property
    def trainable_variables(self) -> list:
        return list(self.model.trainable_variables)

    @property
    def loss(self):
        return getattr(self.model, "loss", None)

    def input_names(self) -> list[str]:
        inputs = getattr(self.model, "inputs", None)
        return [getattr(t, "name", None) or "" for t in inputs] if inputs else []

    def input_width(self) -> int | None:
        """Values per example of a single 2-D input, else None."""
        inputs = getattr(self.model, "inputs", None)
        shape = inputs[0].shape if inputs and len(inputs) == 1 else None
        return shape[-1] if shape is not None and len(shape) == 2 else None

    def probability_head(self) -> str | None:
        """'softmax' or 'sigmoid' when the last layer emits probabilities, else None."""
        layers = getattr(self.model, "layers", None)
        if not layers:
            return None
        last = layers[-1]
        activation = getattr(last, "activation", None)
        name = getattr(activation, "__name__", "") if activation is not None else ""
        if type(last).__name__ == "Softmax" or name == "softmax":
            return "softmax"
        if name == "sigmoid":
            return "sigmoid"
        return None

    def layer_probe(self):
        """(a model returning every layer's output, the layers' names), or (None, []) when they cannot be
        probed (a subclassed model, say)."""
        import keras
        layers = getattr(self.model, "layers", None)
        if not layers or not getattr(self.model, "inputs", None):
            return None, []
        probed, outputs = [], []
        for layer in layers:
            if type(layer).__name__ == "InputLayer":
                continue
            try:
                out = layer.output
            except (AttributeError, ValueError):
                continue
            if isinstance(out, (list, tuple)):
                continue
            probed.append(layer.name)
            outputs.append(out)
        if not outputs:
            return None, []
        return keras.Model(self.model.inputs, outputs), probed

    def mixed_clone(self) -> "KerasModel":
        """The same model and weights under the mixed_float16 policy (output layer kept float32, as Keras
        advises)."""
        import keras
        if not hasattr(self.model, "get_config"):
            raise ConfigError("--mixed-precision needs a Keras Sequential or functional model")
        last = self.model.layers[-1] if self.model.layers else None

        def clone(layer):
            config = layer.get_config()
            if layer is not last:
                config["dtype"] = "mixed_float16"
            return layer.__class__.from_config(config)

        try:
            twin = keras.models.clone_model(self.model, clone_function=clone)
        except (ValueError, TypeError, NotImplementedError) as e:
            raise ConfigError(f"--mixed-precision: cannot rebuild this model under mixed_float16 ({e}); build it "
                              f"under keras.mixed_precision.set_global_policy('mixed_float16') and check it "
                              f"without the flag") from None
        twin.set_weights(self.model.get_weights())
        return KerasModel(twin)


class SavedModel:
    """A TensorFlow SavedModel's serving signature, called like a model (no layers to probe)."""

    def __init__(self, path: str):
        import tensorflow as tf
        self.path = path
        try:
            self._loaded = tf.saved_model.load(path)
        except (OSError, ValueError, tf.errors.OpError) as e:
            detail = (getattr(e, "message", None) or str(e)).strip().splitlines()[0]
            raise InputError(f"--model {path}: TensorFlow cannot load this SavedModel ({detail}); is it complete, "
                             f"with its variables/ folder?") from None
        names = [k for k in ("serving_default", "serve") if k in self._loaded.signatures]
        if not names:
            raise InputError(f"--model {path}: the SavedModel has no serving_default signature "
                             f"(signatures: {', '.join(self._loaded.signatures) or 'none'})")
        self._fn = self._loaded.signatures[names[0]]
        self._input_names = sorted(self._fn.structured_input_signature[1])
        self.trainable_variables = list(getattr(self._loaded, "trainable_variables", []))
        self.loss = None
        self.name = os.path.basename(path.rstrip("/"))

    def __call__(self, inputs, training=False):
        if not isinstance(inputs, dict):
            inputs = {self._input_names[0]: inputs}
        out = self._fn(**inputs)
        return out[sorted(out)[0]] if len(out) == 1 else out

    def input_names(self) -> list[str]:
        return self._input_names

    def input_width(self) -> int | None:
        return None

    def probability_head(self) -> str | None:
        return None  # a signature does not say; --outputs probability tells

    def layer_probe(self):
        return None, []

    def mixed_clone(self) -> "SavedModel":
        raise ConfigError("--mixed-precision needs a Keras Sequential or functional model")


def import_custom_objects(spec: str) -> None:
    """Imports the module (a dotted name, or a .py file) that registers a model's custom layers and losses with
    Keras (keras.saving.register_keras_serializable), so the model loads by name."""
    import importlib
    import importlib.util
    try:
        if spec.endswith(".py"):
            found = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(spec))[0], spec)
            if found is None or found.loader is None:
                raise ImportError(f"no module at {spec}")
            module = importlib.util.module_from_spec(found)
            found.loader.exec_module(module)
        else:
            importlib.import_module(spec)
    except (ImportError, OSError, SyntaxError) as e:
        raise InputError(f"--custom-objects {spec}: cannot import it ({e}); give a module name on the Python "
                         f"path or a .py file") from None


def load_model(path: str, safe_mode: bool = True, custom_objects: str | None = None):
    """A handler for the model at `path`: .keras/.h5 (safe_mode on: no arbitrary code) or a SavedModel dir.
    custom_objects: a module that registers the model's custom objects, imported first."""
    import keras
    if custom_objects:
        import_custom_objects(custom_objects)
    if not os.path.exists(path) and "://" not in path:
        raise InputError(f"--model {path}: no such file or directory")
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise InputError(f"--model {path}: a directory without saved_model.pb; give a .keras or .h5 file or "
                             f"a TensorFlow SavedModel directory")
        return SavedModel(path)
    if not path.endswith((".keras", ".h5", ".hdf5")):
        raise InputError(f"--model {path}: unknown model format; give a .keras or .h5 file or a SavedModel "
                         f"directory")
    with open(path, "rb") as f:
        magic = f.read(8)
    if path.endswith(".keras") and not magic.startswith(b"PK"):
        raise InputError(f"--model {path}: not a .keras file (a .keras file is a zip archive); is it truncated, or "
                         f"saved in another format?")
    if path.endswith((".h5", ".hdf5")) and magic != b"\x89HDF\r\n\x1a\n":
        raise InputError(f"--model {path}: not an HDF5 file; is it truncated, or saved in another format?")
    try:
        return KerasModel(keras.models.load_model(path, safe_mode=safe_mode))
    except (ValueError, OSError, TypeError) as e:
        if "safe_mode" in str(e) or "unsafe" in str(e).lower():
            raise InputError(f"--model {path}: refused by Keras safe_mode (the model holds code, e.g. a Lambda "
                             f"layer). Load it only if you trust its author: --unsafe-model") from None
        if any(s in str(e) for s in ("Could not locate", "Unknown", "deserializ")):
            raise InputError(f"--model {path}: Keras cannot rebuild it: it uses a custom layer, loss or function "
                             f"Keras does not know ({str(e).splitlines()[0][:200]}); pass the module that registers "
                             f"them with --custom-objects") from None
        raise InputError(f"--model {path}: Keras cannot load it ({str(e).splitlines()[0]})") from None


def as_handler(model, safe_mode: bool = True, custom_objects: str | None = None):
    """A handler for a path or an in-memory keras.Model."""
    if isinstance(model, str):
        return load_model(model, safe_mode, custom_objects)
    return model if isinstance(model, (KerasModel, SavedModel)) else KerasModel(model)
