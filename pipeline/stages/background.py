"""Background threads for DoFns: SerialWorker (one thread, calls in order, bounded backlog) and
AccumulateInBackground (a DoFn folding a bundle's batches into partial accumulators on such threads).

A DoFn hands work that releases the GIL (gzip, TFDV's quantile sketches, numpy) to its worker and goes on with the
next batch, so the two overlap on two cores. The backlog bound is the memory bound: submit() waits for the
oldest call once `max_pending` are queued. An error raised on the thread is re-raised by the submit() or
drain() that collects it, so the bundle fails (and is retried) like any other error. Calls must work on
state owned by their bundle, never on the DoFn: reset() stops what a failed bundle left queued, but a call
already running finishes.

Each thread that allocates gets a glibc malloc arena of its own, which keeps what it freed; a pass that used
background threads calls release_freed_memory() when they are done, so the next pass starts from less RSS.
"""
from __future__ import annotations

import collections
import ctypes
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

# Batches a bundle may have queued for its background thread before process() waits for the oldest: the
# memory bound of every AccumulateInBackground stage.
MAX_PENDING_BATCHES = 2


def _malloc_trim():
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only; elsewhere nothing to trim
    except OSError:
        return None


_MALLOC_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Hand memory that threads freed back to the OS (glibc keeps it in each thread's arena otherwise)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def bundle_output(value) -> WindowedValue:
    """What finish_bundle emits once the background work is done (these pipelines are in the global window)."""
    return WindowedValue(value, MIN_TIMESTAMP, [GlobalWindow()])


class SerialWorker:
    def __init__(self, name: str, max_pending: int):
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: collections.deque = collections.deque()
        self._max_pending = max_pending

    def submit(self, fn: Callable, *args) -> None:
        while len(self._pending) >= self._max_pending:
            self._pending.popleft().result()  # re-raises the worker's error here
        self._pending.append(self._pool.submit(fn, *args))

    def drain(self) -> None:
        """Wait for every submitted call; re-raise the first error."""
        while self._pending:
            self._pending.popleft().result()

    def reset(self) -> None:
        """Forget a failed bundle's backlog: cancel what has not started, wait for what has (errors dropped)."""
        pending, self._pending = list(self._pending), collections.deque()
        for future in pending:
            future.cancel()
        for future in pending:
            if not future.cancelled():
                future.exception()

    def close(self) -> None:
        self.reset()
        self._pool.shutdown(wait=True)


class AccumulateInBackground(beam.DoFn):
    """Batches -> partial accumulators per bundle, built on background threads ("lanes").

    Batches go round-robin to `lanes` threads, each folding into its own partial (no state is shared between
    threads); at the end of the bundle each partial's output() is emitted. The threads live for one bundle:
    a finished pass leaves no idle threads (nor their malloc arenas) behind. Subclasses give new_partial(lane),
    add(partial, work) (run on the lane's thread) and output(partial) (what to emit; None emits nothing); they
    may route a batch otherwise (route: e.g. a share of its columns to every lane), finish a partial on its
    lane's thread once every batch is in (finish: e.g. compact it), and emit the bundle's partials otherwise
    (outputs: e.g. one value for all lanes).
    """

    def __init__(self, name: str, lanes: int = 1, max_pending: int = MAX_PENDING_BATCHES):
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self._name, self._num_lanes, self._max_pending = name, lanes, max_pending
        self._workers = []

    def new_partial(self, lane: int):
        raise NotImplementedError

    def add(self, partial, work) -> None:
        raise NotImplementedError

    def output(self, partial):
        raise NotImplementedError

    def route(self, batch) -> list[tuple[int, object]]:
        """(lane, what that lane's add() gets) pairs for a batch with rows: the whole batch to the next lane."""
        lane = self._next % self._num_lanes
        self._next += 1
        return [(lane, batch)]

    def finish(self, partial) -> None:
        """Run on the lane's thread after its last add(), before outputs(): work that reallocates the partial
        belongs here, where the memory it frees is in the thread's own malloc arena and is reused at once (from
        another thread, glibc keeps the freed memory in this thread's arena while the new copy grows another)."""

    def outputs(self, partials: list) -> list:
        """What the bundle emits for its lanes' partials (None: nothing): each lane's output()."""
        return [self.output(partial) for partial in partials]

    def start_bundle(self):
        self._close_workers()  # a failed bundle's threads
        self._workers = [SerialWorker(f"{self._name}-{i}", self._max_pending) for i in range(self._num_lanes)]
        self._partials = [self.new_partial(i) for i in range(self._num_lanes)]
        self._next = 0

    def process(self, batch):
        if batch.num_rows:
            for lane, work in self.route(batch):
                self._workers[lane].submit(self.add, self._partials[lane], work)
        return ()

    def finish_bundle(self):
        for worker, partial in zip(self._workers, self._partials):
            worker.submit(self.finish, partial)
        for worker in self._workers:
            worker.drain()
        self._close_workers()
        release_freed_memory()
        partials, self._partials = self._partials, []  # the DoFn instance outlives the bundle: it must not hold them
        outputs = self.outputs(partials)
        del partials  # outputs() may hand out its values one by one, each freed once the runner has taken it
        for value in outputs:
            if value is not None:
                yield bundle_output(value)

    def _close_workers(self):
        for worker in self._workers:
            worker.close()
        self._workers = []

    def teardown(self):
        self._close_workers()
