"""Where a run's time goes, from the runner's own per-step execution-time metrics (no profiler overhead):

    python -m benchmarks.steps INPUT [--wide] [--statistics-columns N] [-- BEAM_ARGS...]

Runs nanguard on INPUT (the benchmark's labels, into bench-data/out-steps) and prints the wall and CPU seconds
of each fused stage that ran for 0.1 s or more (so how many cores each pass kept busy), and the seconds each step
spent processing bundles, summed over bundles and grouped by the first two levels of the step name, largest
first, with the driver's phases (graph construction, the runner, the report) around them. --wide runs with the
wide table's flags (make bench's wide case) instead of the trips table's; --statistics-columns sets RunConfig.statistics_columns. Each stage's line ends with the peak
resident memory (VmRSS, sampled every 50 ms by a thread) while it ran, and the run's peak is printed last.
"""
from __future__ import annotations

import collections
import functools
import logging
import os
import sys
import threading
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    beam_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--") if "--" in argv else len(argv)]
    wide = "--wide" in own
    settings = {}
    if "--statistics-columns" in own:  # RunConfig's statistics_columns (the CLI's --statistics-columns)
        settings["statistics_columns"] = int(own[own.index("--statistics-columns") + 1])
    import apache_beam as beam
    from apache_beam.metrics import monitoring_infos

    import pipeline.report.assemble as assemble
    import pipeline.runner as runner
    import pipeline.stages.graph as graph
    from benchmarks.data import LABELS, MISSING, PASSTHROUGH
    from benchmarks.run import WIDE_FLAGS
    flags = dict(WIDE_FLAGS) if wide else {"labels": LABELS, "missing": MISSING, "passthrough": PASSTHROUGH}
    from pipeline.config import RunConfig
    logging.getLogger("apache_beam").setLevel(logging.ERROR)

    phases: dict[str, float] = collections.Counter()
    results = []

    def timed(owner, name, label, keep=False):
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def wrapper(*a, **k):
            started = time.perf_counter()
            try:
                out = fn(*a, **k)
                if keep:
                    results.append(out)
                return out
            finally:
                phases[label] += time.perf_counter() - started
        setattr(owner, name, wrapper)

    from apache_beam.runners.portability.fn_api_runner import fn_runner
    stages = []  # (wall, process CPU, stage name, peak RSS MB while it ran) per fused stage's bundle
    sampled = {"peak": 0.0, "stage": 0.0}
    done = threading.Event()

    def sample_rss():
        while not done.wait(0.05):
            rss = _rss_mb()
            sampled["peak"], sampled["stage"] = max(sampled["peak"], rss), max(sampled["stage"], rss)
    threading.Thread(target=sample_rss, daemon=True).start()

    execute = fn_runner.FnApiRunner._execute_bundle

    @functools.wraps(execute)
    def execute_timed(self, context, bundle_context_manager, bundle_input):
        wall, cpu = time.perf_counter(), time.process_time()
        sampled["stage"] = _rss_mb()
        try:
            return execute(self, context, bundle_context_manager, bundle_input)
        finally:
            stages.append((time.perf_counter() - wall, time.process_time() - cpu,
                           bundle_context_manager.stage.name, max(sampled["stage"], _rss_mb())))
    fn_runner.FnApiRunner._execute_bundle = execute_timed

    timed(graph, "build", "build the graph")  # run() imports these modules' functions when it runs
    timed(beam.Pipeline, "run", "runner (bundles + its own set-up)", keep=True)
    timed(assemble, "assemble", "assemble report.json")
    timed(assemble, "render_html", "report.html")
    started = time.perf_counter()
    runner.run(RunConfig.from_settings(inputs=[argv[0]], output=os.path.join(ROOT, "bench-data", "out-steps"),
                                       labels=list(flags["labels"]), missing=list(flags["missing"]),
                                       passthrough=list(flags["passthrough"]),
                                       overwrite=True, max_quarantine_fraction=0.01,
                                       beam_args=tuple(beam_args), **settings))
    total = time.perf_counter() - started
    done.set()
    steps: dict[str, float] = collections.Counter()
    for info in results[-1].monitoring_infos():
        if info.urn.endswith(("process_bundle_msecs:v1", "start_bundle_msecs:v1", "finish_bundle_msecs:v1")):
            value = monitoring_infos.extract_metric_result_map_value(info)
            step = info.labels.get("PTRANSFORM", "?")
            steps["/".join(step.split("/")[:2])] += value / 1000
    print(f"{total:7.2f} s  run() in all")
    for label, seconds in phases.items():
        print(f"{seconds:7.2f} s  {label}")
    print(f"{sum(w for w, _, _, _ in stages):7.2f} s  in {len(stages)} fused stages; those over 0.1 s "
          f"(wall, CPU of this process, cores busy, the stage's first step, peak RSS while it ran):")
    for wall, cpu, name, rss in stages:
        if wall >= 0.1:
            first = name.strip("()").split(")+(")[0].split("/")[0].replace("ref_AppliedPTransform_", "")
            print(f"{wall:9.2f} s {cpu:6.2f} s {cpu / wall:5.2f}  {first:<24} {rss:8.0f} MB")
    print(f"{sum(steps.values()):7.2f} s  inside bundles, by step:")
    for step, seconds in sorted(steps.items(), key=lambda kv: -kv[1]):
        if seconds >= 0.01:
            print(f"{seconds:9.2f} s  {step}")
    print(f"{sampled['peak']:7.0f} MB  peak RSS sampled (the process's high-water mark: {_peak_mb():.0f} MB)")
    return 0


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
