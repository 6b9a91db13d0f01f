"""The output directory: refuse or prepare it, stage a run inside it, publish the staged run, discard a failed one.

Everything is written to a staging directory inside the output directory and moved into place only when the
run completed; report.json is removed first and moved in last, so an interrupted run never leaves a report that
says passed next to outputs it does not describe. Staging left by runs that were killed is swept at publish.
"""
from __future__ import annotations

import os
import shutil
import uuid

from pipeline.errors import ConfigError
from pipeline.files import delete, is_remote, join, match, rename
from pipeline.stages.artifacts import ARTIFACTS_DIR, PROGRESS_DIR, TMP_DIR, StagedRun

# What a run publishes; --overwrite replaces exactly these.
OUTPUTS = ("data", "quarantine", "stats", "schema.pbtxt", "anomalies.pbtxt", "normalization.json",
           "feature_spec.json", "suite.json", "validation_result.json", "report.html", "report.json")
REPORT = "report.json"
STAGING_PREFIX = ".nanguard-staging-"
_WORK_DIRS = (ARTIFACTS_DIR, TMP_DIR, PROGRESS_DIR)  # staged, never published


def prepare_output(path: str, overwrite: bool) -> None:
    """Refuses an output that is a file, or a non-empty directory without --overwrite; creates it otherwise."""
    if is_remote(path):
        return  # object stores have no directories to refuse; staging keeps partial runs apart
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"--output {path}: is a file; give a directory")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise ConfigError(f"--output {path}: directory is not empty; pass --overwrite to replace nanguard's outputs "
                          f"there")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--output {path}: cannot create it ({e.strerror})") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"--output {path}: not writable")


def new_stage(output: str) -> StagedRun:
    return StagedRun(join(output, STAGING_PREFIX + uuid.uuid4().hex[:12]))


def discard(staged: StagedRun) -> None:
    """Removes a staging directory (best effort: a later run's publish sweeps what is left)."""
    if not is_remote(staged.root):
        shutil.rmtree(staged.root, ignore_errors=True)
        return
    try:
        delete([staged.root])
    except Exception:  # noqa: BLE001 - nothing was staged yet, or the store is unreachable
        pass


def publish(staged: StagedRun, out: str) -> None:
    """Moves staged outputs into place: old report first out, new report last in."""
    if is_remote(out):
        return _publish_remote(staged.root, out)
    stage = staged.root
    for work in _WORK_DIRS:
        shutil.rmtree(os.path.join(stage, work), ignore_errors=True)
    if os.path.exists(os.path.join(out, REPORT)):
        os.remove(os.path.join(out, REPORT))
    for name in OUTPUTS:
        target = os.path.join(out, name)
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.remove(target)
    for name in OUTPUTS:
        if name != REPORT and os.path.exists(os.path.join(stage, name)):
            os.replace(os.path.join(stage, name), os.path.join(out, name))
    os.replace(os.path.join(stage, REPORT), os.path.join(out, REPORT))
    shutil.rmtree(stage, ignore_errors=True)
    sweep(out)


def sweep(out: str) -> None:
    """Removes the staging directories of runs that were killed earlier."""
    for leftover in os.listdir(out):
        if leftover.startswith(STAGING_PREFIX):
            shutil.rmtree(os.path.join(out, leftover), ignore_errors=True)


def _publish_remote(stage: str, out: str) -> None:
    old = match(join(out, REPORT))
    if old:
        delete(old)
    staged = match(join(stage, "**"))
    keep = [s for s in staged if not any(f"/{work}/" in s for work in _WORK_DIRS)]
    moves = [(s, join(out, s[len(stage):].lstrip("/"))) for s in keep if not s.endswith(REPORT)]
    if moves:
        rename([a for a, _ in moves], [b for _, b in moves])
    rename([join(stage, REPORT)], [join(out, REPORT)])
    delete([stage])
