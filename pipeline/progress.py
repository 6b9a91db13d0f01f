"""Progress of a long run, on any runner: workers write small counter files, the driver sums and prints them.

Beam's metrics reach the driver only when a pipeline ends on the local runners, so each reading or checking
DoFn instance instead keeps its own counts and rewrites one tiny JSON file under the staging directory at most
every FLUSH_SECONDS (and at the end of each bundle). The driver's monitor thread globs those files every few
seconds and prints rows read and quarantined per pass: text lines, or JSON lines for schedulers.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import uuid

FLUSH_SECONDS = 2.0
PASSES = ("profile", "fit", "write")  # the three reads of the input (see graph.py)
# A wide table's TFDV statistics passes, one read per group of columns (graph.py): their reads add up here, and
# the progress line shows them after fit (they read its rows again; the runner may interleave them with it).
STATISTICS_PASS = "statistics"
_SHOWN = (PASSES[0], PASSES[1], STATISTICS_PASS, PASSES[2])


class ProgressSink:
    """Where workers report progress; picklable (a directory path)."""

    def __init__(self, directory: str):
        self.directory = directory

    def writer(self, pass_name: str) -> "_Writer":
        return _Writer(self.directory, pass_name)


class _Writer:
    def __init__(self, directory: str, pass_name: str):
        from apache_beam.io.filesystems import FileSystems
        self._path = FileSystems.join(directory, f"{pass_name}-{uuid.uuid4().hex}.json")
        self._counts = {"pass": pass_name, "rows": 0, "quarantined": 0}
        self._last = 0.0

    def add(self, rows: int = 0, quarantined: int = 0) -> None:
        self._counts["rows"] += rows
        self._counts["quarantined"] += quarantined
        if time.monotonic() - self._last >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        from apache_beam.io.filesystems import FileSystems
        self._last = time.monotonic()
        try:
            with FileSystems.create(self._path) as f:
                f.write(json.dumps(self._counts).encode())
        except OSError:
            pass  # progress is advisory; the run's own outputs and counts do not depend on it


def read_progress(directory: str) -> dict:
    """{pass: {"rows", "quarantined"}} summed over every writer's latest file."""
    from apache_beam.io.filesystems import FileSystems
    totals = {p: {"rows": 0, "quarantined": 0} for p in PASSES}
    try:
        files = [m.path for m in FileSystems.match([FileSystems.join(directory, "*.json")])[0].metadata_list]
    except Exception:  # noqa: BLE001 - nothing written yet (the directory may not exist)
        return totals
    for path in files:
        try:
            with FileSystems.open(path) as f:
                c = json.loads(f.read().decode())
        except (OSError, ValueError):
            continue  # being rewritten right now; the next poll reads it
        t = totals.setdefault(c["pass"], {"rows": 0, "quarantined": 0})
        t["rows"] += c["rows"]
        t["quarantined"] += c["quarantined"]
    return totals


class Log:
    """Progress and summary lines on stderr: 'text', 'json' (one object per line) or quiet."""

    def __init__(self, fmt: str = "text", quiet: bool = False, stream=None):
        if fmt not in ("text", "json"):
            raise ValueError(f"--log-format {fmt}: not one of text, json")
        self.fmt, self.quiet = fmt, quiet
        self._stream = stream

    @property
    def stream(self):
        return self._stream or sys.stderr

    def event(self, name: str, text: str, **fields) -> None:
        if self.quiet:
            return
        if self.fmt == "json":
            line = json.dumps({"event": name, "time": round(time.time(), 3), **fields}, sort_keys=False)
        else:
            line = text
        print(line, file=self.stream, flush=True)

    def progress(self, elapsed: float, totals: dict) -> None:
        active = [p for p in _SHOWN if p in totals and totals[p]["rows"]]
        stage = active[-1] if active else "planning"
        if stage == "write" and totals["write"]["rows"] >= totals["profile"]["rows"]:
            stage = "finishing (shards, statistics, report)"
        parts = [f"{p} {totals[p]['rows']:,} rows" + (f", {totals[p]['quarantined']:,} quarantined"
                                                      if p in (PASSES[1], PASSES[2]) else "") for p in active]
        self.event("progress", f"[nanguard {elapsed:6.1f}s] {stage}: " + (" | ".join(parts) or "starting"),
                   elapsed_s=round(elapsed, 1), stage=stage,
                   rows_read=totals["profile"]["rows"], rows_written_pass=totals["write"]["rows"],
                   rows_quarantined=totals["write"]["quarantined"], passes=totals)


class Monitor:
    """A daemon thread printing progress every `interval` seconds while the pipeline runs."""

    def __init__(self, directory: str, log: Log, interval: float = 3.0):
        self._directory, self._log, self._interval = directory, log, interval
        self._stop = threading.Event()
        self._started = time.time()
        self._thread = threading.Thread(target=self._loop, name="nanguard-progress", daemon=True)

    def __enter__(self) -> "Monitor":
        if not self._log.quiet:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval + 1)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._log.progress(time.time() - self._started, read_progress(self._directory))
