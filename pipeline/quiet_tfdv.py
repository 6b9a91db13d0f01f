"""TensorFlow Data Validation, imported once and quietly: on import TFDV prints a notice about its (unused)
IPython visualization to stderr, which would break the CLI's one-line errors and JSON logs."""
from __future__ import annotations

import contextlib
import io

with contextlib.redirect_stderr(io.StringIO()):
    import tensorflow_data_validation as tfdv  # noqa: F401  (also registers TFDV's RecordBatch coder)

__all__ = ["tfdv"]
