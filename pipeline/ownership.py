"""What nanguard owns in an output directory: the manifest of the files a run published, and the lock a running
run holds.

--overwrite may replace only files a manifest lists; anything else there is the user's and is never deleted or
replaced. The manifest is rewritten before a publish touches anything (listing old and new files) and again when
it is done, so at every instant it covers each file nanguard wrote. The lock (pid and host of the holder) keeps a
second run out of a directory a first is writing; a lock whose process is gone (a run killed on this host) is
taken over.
"""
from __future__ import annotations

import json
import os
import socket
import time

from pipeline.errors import ConfigError

MANIFEST = ".nanguard-manifest.json"
LOCK = ".nanguard.lock"
MANIFEST_FORMAT = 1


def owned_files(out: str) -> dict[str, dict]:
    """{path relative to `out` (with '/'): {"size", "mtime_ns"} as published} from the manifest; for an output an
    earlier nanguard wrote without one, what its report vouches for (legacy_owned_files); else {}."""
    path = os.path.join(out, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        return {str(p): dict(entry) for p, entry in doc["files"].items()}
    except FileNotFoundError:
        return legacy_owned_files(out)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"--output {out}: {MANIFEST} is unreadable ({e}); nanguard cannot tell its own files "
                          f"from yours there, so it will not overwrite them. Choose another --output") from None


# What every nanguard output held beside its shards and quarantine files before manifests were written.
LEGACY_FILES = ("report.json", "report.html", "validation_result.json", "suite.json", "feature_spec.json",
                "normalization.json", "schema.pbtxt", "anomalies.pbtxt", "stats/raw.pb", "stats/clean.pb")
LEGACY_SLACK_NS = 120 * 10**9  # report.html and the model check's rewrite came seconds after report.json


def legacy_owned_files(out: str) -> dict[str, dict]:
    """An output published before manifests existed: its report's shards and quarantine files and the fixed
    outputs, as long as none was modified after the run (later than its report.json, give or take the seconds
    between the last writes). Anything else there stays the user's."""
    report_path = os.path.join(out, "report.json")
    try:
        with open(report_path, encoding="utf-8") as f:
            report = json.load(f)
        listed = [f[key] for kind in ("shards", "quarantine") for f in report["outputs"][kind]
                  for key in ("path", "index") if key in f]
        limit = os.lstat(report_path).st_mtime_ns + LEGACY_SLACK_NS
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    owned = {}
    for rel in set(listed) | set(LEGACY_FILES):
        path = os.path.join(out, rel)
        if os.path.isfile(path) and not os.path.islink(path) and os.lstat(path).st_mtime_ns <= limit:
            owned[rel] = stamp(path)
    return owned


def write_manifest(out: str, files: dict[str, dict]) -> None:
    tmp = os.path.join(out, MANIFEST + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"format": MANIFEST_FORMAT, "written_by": "nanguard", "files": dict(sorted(files.items()))}, f,
                  indent=1)
    os.replace(tmp, os.path.join(out, MANIFEST))


def stamp(path: str) -> dict:
    """What the manifest records of a file: enough to see that it was edited or replaced since."""
    st = os.lstat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_ours(out: str, rel: str, owned: dict[str, dict]) -> bool:
    """The file at `rel` is one nanguard published and nobody has changed since."""
    path = os.path.join(out, rel)
    return rel in owned and not os.path.islink(path) and stamp(path) == owned[rel]


def files_under(root: str) -> set[str]:
    """Every file (and symlink) below root, relative, with '/'."""
    found = set()
    for base, dirs, names in os.walk(root):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
            found.add(os.path.relpath(os.path.join(base, name), root).replace(os.sep, "/"))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    """Held while a run writes into `out`; a second run exits 2 naming the holder."""

    def __init__(self, out: str):
        self.out, self.path = out, os.path.join(out, LOCK)
        self._held = False

    def acquire(self) -> "OutputLock":
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                    time.gmtime())}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder and holder.get("host") == me["host"] and isinstance(holder.get("pid"), int) \
                        and not _alive(holder["pid"]):
                    os.remove(self.path)  # its run was killed; nobody else is writing here
                    continue
                who = (f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}" if holder
                       else "a run whose lock file is unreadable")
                raise ConfigError(f"--output {self.out}: another nanguard run is writing there ({who}); wait for "
                                  f"it to finish, or remove {self.path} if that run is gone") from None
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(me, f)
            self._held = True
            return self
        raise ConfigError(f"--output {self.out}: cannot take {self.path}; remove it if no nanguard run is writing "
                          f"there")

    def _holder(self) -> dict | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                doc = json.load(f)
            return doc if isinstance(doc, dict) else None
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self._held:
            self._held = False
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
