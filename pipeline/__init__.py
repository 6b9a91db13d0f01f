"""The Beam pipeline and everything around it, in the order of the data flow:
inputs/ (plan and formats) -> stages/ (the Beam graph) -> report/ (report, gate, HTML) -> training/ (loader,
model check, loss guard); runner.run() ties them together, cli.py is the command line.

Attributes load lazily so that importing a light module (errors, the gate) does not import Beam and TF.
"""
from __future__ import annotations

import importlib
import os

# TensorFlow's C++ logs off for nanguard's own imports of TF (the CLI prints one line per error); a user who set
# TF_CPP_MIN_LOG_LEVEL keeps theirs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_EXPORTS = {
    "RunConfig": "pipeline.config",
    "run": "pipeline.runner",
    "gate": "pipeline.report.gate",
    "read_report": "pipeline.report.gate",
    "NanguardError": "pipeline.errors",
    "ConfigError": "pipeline.errors",
    "InputError": "pipeline.errors",
    "ModelCheckConfig": "pipeline.training.model_check",
    "check_model": "pipeline.training.model_check",
    "load_dataset": "pipeline.training.dataset",
    "DatasetRefusedError": "pipeline.training.dataset",
    "GateNotPassedError": "pipeline.training.dataset",
    "ShardIntegrityError": "pipeline.training.dataset",
    "NonFiniteLossGuard": "pipeline.training.guard",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
