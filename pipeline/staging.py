"""The output directory: claim it (checks and the lock), stage a run inside it, publish the staged run, discard a
failed one.

Everything is written to a staging directory inside the output directory and moved into place only when the
run completed. Before anything is removed, publish checks that every file it will replace is one an earlier
run published and nobody changed since (pipeline.ownership's manifest); then report.json goes out first and the
new one comes in last, so an interrupted run never leaves a report that says passed next to outputs it does not
describe, and a failed check leaves the earlier output whole. Files nanguard did not write are never touched.
Staging left by runs that were killed is swept at publish.
"""
from __future__ import annotations

import os
import shutil
import uuid

from pipeline.errors import ConfigError
from pipeline.files import delete, is_remote, join, match, rename
from pipeline.ownership import LOCK, MANIFEST, OutputLock, files_under, is_ours, owned_files, stamp, write_manifest
from pipeline.stages.artifacts import ARTIFACTS_DIR, PROGRESS_DIR, TMP_DIR, StagedRun

# What a run publishes; --overwrite replaces these, and only the files of them that nanguard wrote
# (anomalies.pbtxt: published by earlier versions; removed where nanguard wrote it).
OUTPUTS = ("data", "index", "quarantine", "stats", "schema.pbtxt", "anomalies.pbtxt", "normalization.json",
           "feature_spec.json", "suite.json", "value_sets", "validation_result.json", "report.html", "report.json")
REPORT = "report.json"
STAGING_PREFIX = ".nanguard-staging-"
_WORK_DIRS = (ARTIFACTS_DIR, TMP_DIR, PROGRESS_DIR)  # staged, never published
MAX_NAMED = 5


def is_within(path: str, directory: str) -> bool:
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def claim_output(path: str, overwrite: bool, inputs: tuple[str, ...] = ()) -> OutputLock | None:
    """Checks the output directory, creates it and takes its lock (release it when the run ends; None for object
    stores, which have no directories to refuse: staging keeps partial runs apart there)."""
    if is_remote(path):
        return None
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"--output {path}: is a file; give a directory")
    holding = [f for f in inputs if not is_remote(f) and is_within(f, path)]
    if holding:
        raise ConfigError(f"--output {path}: holds the input file {holding[0]}; nanguard does not write where its "
                          f"input lives. Choose an --output outside the input's directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--output {path}: cannot create it ({e.strerror})") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"--output {path}: not writable")
    lock = OutputLock(path).acquire()
    try:
        if not overwrite and [n for n in os.listdir(path) if n != LOCK]:
            raise ConfigError(f"--output {path}: directory is not empty; pass --overwrite to replace nanguard's "
                              f"outputs there")
        refuse_foreign(path)
    except BaseException:
        lock.release()
        raise
    return lock


def foreign_files(out: str) -> list[str]:
    """The files a publish would replace that nanguard did not write (or that changed since it did)."""
    owned = owned_files(out)
    theirs = []
    for name in OUTPUTS:
        target = os.path.join(out, name)
        if os.path.islink(target):
            theirs.append(f"{name} (a symbolic link)")
        elif os.path.isdir(target):
            theirs += [f"{name}/{rel}" for rel in sorted(files_under(target)) if not is_ours(out, f"{name}/{rel}", owned)]
        elif os.path.exists(target) and not is_ours(out, name, owned):
            theirs.append(name)
    return theirs


def refuse_foreign(out: str) -> None:
    theirs = foreign_files(out)
    if theirs:
        more = f" and {len(theirs) - MAX_NAMED} more" if len(theirs) > MAX_NAMED else ""
        raise ConfigError(f"--output {out}: --overwrite replaces only what nanguard wrote there, and "
                          f"{', '.join(theirs[:MAX_NAMED])}{more} {'is' if len(theirs) == 1 else 'are'} not (or "
                          f"changed since); move {'it' if len(theirs) == 1 else 'them'} away or choose another "
                          f"--output")


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
    """Moves staged outputs into place: old report first out, new report last in; only nanguard's files go."""
    if is_remote(out):
        return _publish_remote(staged.root, out)
    stage = staged.root
    for work in _WORK_DIRS:
        shutil.rmtree(os.path.join(stage, work), ignore_errors=True)
    refuse_foreign(out)  # again: a file may have appeared since the run started; nothing is removed yet
    new = {rel: stamp(os.path.join(stage, rel)) for rel in files_under(stage)}
    old = {rel: entry for rel, entry in owned_files(out).items() if os.path.lexists(os.path.join(out, rel))}
    write_manifest(out, {**old, **new})  # covers both while they are swapped
    if REPORT in old:
        os.remove(os.path.join(out, REPORT))
    for rel in sorted(old):
        if rel != REPORT:
            os.remove(os.path.join(out, rel))
    for name in OUTPUTS:
        target = os.path.join(out, name)
        if os.path.isdir(target) and not os.path.islink(target) and not files_under(target):
            shutil.rmtree(target)  # emptied of nanguard's files (refuse_foreign found no others)
    for name in OUTPUTS:
        if name != REPORT and os.path.exists(os.path.join(stage, name)):
            os.replace(os.path.join(stage, name), os.path.join(out, name))
    write_manifest(out, new)
    os.replace(os.path.join(stage, REPORT), os.path.join(out, REPORT))
    shutil.rmtree(stage, ignore_errors=True)
    sweep(out)


def sweep(out: str) -> None:
    """Removes the staging directories of runs that were killed earlier."""
    for leftover in os.listdir(out):
        if leftover.startswith(STAGING_PREFIX):
            shutil.rmtree(os.path.join(out, leftover), ignore_errors=True)


def nanguard_written(out: str) -> set[str]:
    """Real paths of the files nanguard wrote in `out` (published or staged): never read back as input."""
    if is_remote(out) or not os.path.isdir(out):
        return set()
    written = {os.path.realpath(os.path.join(out, rel)) for rel in owned_files(out)}
    for name in os.listdir(out):
        if name.startswith(STAGING_PREFIX) or name in (MANIFEST, LOCK):
            root = os.path.join(out, name)
            written |= {os.path.realpath(os.path.join(root, rel)) for rel in files_under(root)} or {
                os.path.realpath(root)}
    return written


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
