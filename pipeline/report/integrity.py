"""The bytes a report vouches for: SHA-256 of every shard and quarantine file (hashed as they were written) and
of the files training and serving read beside them (checksummed at assembly). `nanguard gate`, `load_dataset`
and `check-model` all verify them, so an output edited after its run (a shard swapped, feature_spec.json or
normalization.json changed) is refused everywhere alike.
"""
from __future__ import annotations

import hashlib

from pipeline.files import exists, join, open_read

# Published files beside the shards whose bytes the report records (outputs.checksums).
CHECKSUMMED = ("feature_spec.json", "normalization.json", "suite.json", "schema.pbtxt", "stats/raw.pb",
               "stats/clean.pb")
_CHUNK = 8 << 20


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open_read(path) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksums(root: str) -> dict[str, str]:
    """{name: SHA-256} of the CHECKSUMMED files under a run's (staged) directory."""
    return {name: sha256_of(join(root, name)) for name in CHECKSUMMED if exists(join(root, name))}


def integrity_failures(out_dir: str, report: dict) -> list[str]:
    """What in `out_dir` is not what its report recorded: missing files, or bytes that changed since the run."""
    recorded = [(f["path"], f["sha256"]) for kind in ("shards", "quarantine") for f in report["outputs"][kind]]
    recorded += sorted(report["outputs"].get("checksums", {}).items())  # absent in reports of older versions
    failures = []
    for name, sha in recorded:
        path = join(out_dir, name)
        if not exists(path):
            failures.append(f"{path}: listed in report.json but missing; rerun `nanguard run`")
            continue
        actual = sha256_of(path)
        if actual != sha:
            failures.append(f"{path}: SHA-256 {actual[:16]}... does not match {sha[:16]}... recorded in report.json; "
                            f"the file changed after the run. Rerun `nanguard run`")
    return failures
