"""A Keras callback for the training side: stop at the first non-finite loss and point at the nanguard report.

The last line of defence after the gate and the model check: if the loss still goes NaN, training stops at
once (no epochs of NaN weights) with a message that says where to look.
"""
from __future__ import annotations

import math
import sys

import keras


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training when the batch loss is NaN or +/-Inf; `message` then says when and what to run next."""

    def __init__(self, nanguard_output: str | None = None, model_path: str | None = None):
        super().__init__()
        self.nanguard_output = nanguard_output
        self.model_path = model_path
        self.message: str | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        self.model.stop_training = True
        where = f"loss became {float(loss)} at epoch {self._epoch}, batch {batch}; training stopped"
        if self.nanguard_output:
            model = self.model_path or "MODEL.keras"
            hint = (f"nanguard report: {self.nanguard_output}/report.json (`nanguard gate {self.nanguard_output}`); "
                    f"find the layer with `nanguard check-model --model {model} --data {self.nanguard_output} "
                    f"--label LABEL`")
        else:
            hint = "run the data through `nanguard run` and the model through `nanguard check-model` to find the cause"
        self.message = f"{where}. {hint}"
        print(f"nanguard: {self.message}", file=sys.stderr)
