"""The Beam pipeline and everything around it: CLI, readers, writers, report and gate.

Attributes load lazily so that importing a light module (errors, report) does not import Beam and TF.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "RunConfig": "pipeline.config",
    "run": "pipeline.runner",
    "gate": "pipeline.gate",
    "read_report": "pipeline.gate",
    "NanguardError": "pipeline.errors",
    "ConfigError": "pipeline.errors",
    "InputError": "pipeline.errors",
    "ModelCheckConfig": "pipeline.model_check",
    "check_model": "pipeline.model_check",
    "load_dataset": "pipeline.dataset",
    "DatasetRefusedError": "pipeline.dataset",
    "GateNotPassedError": "pipeline.dataset",
    "ShardIntegrityError": "pipeline.dataset",
    "NonFiniteLossGuard": "pipeline.training_guard",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
