"""Kept reads: a small read task's conformed batches, kept in this process for the later passes that read it.

The input is read three times (stages.graph). For large units that costs throughput, which three reads pay
anyway; for small ones it costs the per-file work three times: opening a CSV file with Arrow's reader alone is
~0.5-1.5 ms, whatever its size, and a thousand 20-row files were read in ~1.4 s a pass (BENCHMARKS.md). So the
first pass that reads a task of small units (every unit at most SMALL_UNIT_BYTES) offers its conformed batches
here, up to KEEP_BYTES in all, and the later passes take them instead of reading the files again.

Keeping is only ever a shortcut: a pass that finds nothing kept (another worker process read the task, the
budget was spent, another run's batches replaced these) reads the files as it would without it. Entries are
dropped when the last pass that needs them has taken them; a run's first offer drops whatever an earlier run
in this process left (a run that failed between passes), so at most one run's budget is ever held. Batches
are immutable (Arrow), so the later passes get the very batches the first pass yielded.
"""
from __future__ import annotations

import dataclasses
import threading

import pyarrow as pa

from pipeline.inputs.plan import ReadUnit

SMALL_UNIT_BYTES = 1 << 20  # units this small (a file's bytes, a Parquet unit's uncompressed bytes) are kept
KEEP_BYTES = 64 << 20  # at most this many bytes of conformed batches kept in a process at a time


@dataclasses.dataclass(frozen=True)
class KeepReads:
    """How one pass's read keeps or takes batches. run: the run's token (one per built graph); later_passes:
    how many passes after this one read the same tasks (0 for the last)."""
    run: str
    later_passes: int

    def __post_init__(self):
        if not self.run:
            raise ValueError("KeepReads.run: a run token is required")
        if self.later_passes < 0:
            raise ValueError(f"KeepReads.later_passes: {self.later_passes}; must be >= 0")

    def worth_keeping(self, task: tuple[ReadUnit, ...]) -> bool:
        return self.later_passes > 0 and all(unit.nbytes <= SMALL_UNIT_BYTES for unit in task)


@dataclasses.dataclass
class _Entry:
    batches: tuple[pa.RecordBatch, ...]
    nbytes: int
    uses: int  # takes left before it is dropped


class KeptBatches:
    """Batches keyed by (run token, read task), each kept for a number of takes, within a byte budget."""

    def __init__(self, budget: int):
        self._budget = budget
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, tuple[ReadUnit, ...]], _Entry] = {}
        self._run: str | None = None
        self._held = 0

    @property
    def held_bytes(self) -> int:
        return self._held

    def room(self, run: str) -> int:
        """Bytes still free for this run (another run's entries would be dropped by its first offer)."""
        with self._lock:
            return self._budget - (self._held if run == self._run else 0)

    def offer(self, run: str, task: tuple[ReadUnit, ...], batches: list[pa.RecordBatch], uses: int) -> bool:
        """Keep these batches for `uses` takes if they fit in the budget; whether they were kept."""
        nbytes = sum(b.nbytes for b in batches)
        with self._lock:
            if run != self._run:  # a new run: what an earlier one left is never taken
                self._entries.clear()
                self._run, self._held = run, 0
            old = self._entries.pop((run, task), None)
            if old is not None:
                self._held -= old.nbytes
            if uses <= 0 or self._held + nbytes > self._budget:
                return False
            self._entries[(run, task)] = _Entry(tuple(batches), nbytes, uses)
            self._held += nbytes
            return True

    def take(self, run: str, task: tuple[ReadUnit, ...]) -> tuple[pa.RecordBatch, ...] | None:
        """The kept batches of this task, or None; the last take drops them."""
        with self._lock:
            entry = self._entries.get((run, task))
            if entry is None:
                return None
            entry.uses -= 1
            if entry.uses <= 0:
                del self._entries[(run, task)]
                self._held -= entry.nbytes
            return entry.batches


KEPT = KeptBatches(KEEP_BYTES)  # this process's; every read DoFn in it shares it
