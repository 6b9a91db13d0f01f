"""The runner for `--runner=DirectRunner` (nanguard's default): Beam's in-process FnApiRunner, chosen directly.

Beam 2.69's DirectRunner first tries its Go-based PrismRunner, and to do so downloads the Prism binary from
GitHub at run time; only when that fails does it fall back to the FnApiRunner. nanguard must not fetch code
while it runs, and a runner that changes with the network would make results depend on where a job runs. So
a DirectRunner request gets the FnApiRunner as the DirectRunner would build it (pipeline options passed to
the workers), including `--direct_num_workers` and `--direct_running_mode`. Prism stays available by name:
`--runner=PrismRunner`.

The options are a PipelineOptions whose views are made once per options class (ViewsOnce): Beam asks for a
view (`view_as(StandardOptions)`, `view_as(TypeOptions)`) about twice for every transform it applies, and each
view builds an argparse parser and parses the flags again: ~420 views in a 100-row run, about a third of
building its graph (BENCHMARKS.md).
"""
from __future__ import annotations

import contextlib
import io

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline.errors import ConfigError
from pipeline.stages.background import release_freed_memory
from pipeline.stages import dofn_specs

_DIRECT_NAMES = frozenset({"direct", "directrunner"})


def is_direct(options: PipelineOptions) -> bool:
    runner = options.view_as(StandardOptions).runner
    return isinstance(runner, str) and runner.lower() in _DIRECT_NAMES


def in_process_runner(options: PipelineOptions):
    """An FnApiRunner carrying these options to its workers, as Beam's DirectRunner builds its fallback, that
    shuts down a stage's bundle processors once another stage runs (_StagesLetGo)."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return _stages_let_go(fn_runner.FnApiRunner)(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


def _stages_let_go(runner_class):
    """The FnApiRunner, shutting down each stage's cached bundle processors when the next stage starts.

    An in-process worker keeps a stage's bundle processor for reuse until it has been idle for 60 s (Beam's own
    cache), and a processor holds the last element of every DoFn with side inputs: Beam's PerWindowInvoker writes
    each element into an argument list it keeps. So every finished stage kept its last batch for the rest of the
    run: one batch per pass, a whole pass's worth (311 MB) on the 5,000-column table, and one more for each
    statistics pass of a wide table (BENCHMARKS.md). A batch pipeline's stages run one after another, so the one
    that ran before has nothing left to do when another starts; if it has (more bundles of it later), Beam sets up
    a new processor. Only in-process workers are reached; a gRPC worker's cache is its own process's."""

    class _StagesLetGo(runner_class):
        def _execute_bundle(self, runner_execution_context, bundle_context_manager, bundle_input):
            stage = (bundle_context_manager.process_bundle_descriptor.id, bundle_context_manager.worker_handlers)
            previous = getattr(self, "_previous_stage", None)
            if previous is not None and previous[0] != stage[0]:
                _shut_down_processors(*previous)
                release_freed_memory()  # what the stage freed, before the next one's allocations fragment it
            self._previous_stage = stage
            return super()._execute_bundle(runner_execution_context, bundle_context_manager, bundle_input)

    return _StagesLetGo


def _shut_down_processors(descriptor_id: str, handlers) -> None:
    """Shuts down the cached bundle processors of one stage's descriptor in its in-process workers (their DoFns'
    teardown runs); other workers are left alone."""
    for handler in handlers:
        cache = getattr(handler, "bundle_processor_cache", None)
        cached = getattr(cache, "cached_bundle_processors", None)
        if cached is None:
            continue
        for processor in cached.pop(descriptor_id, []):
            processor.shutdown()


class ViewsOnce(PipelineOptions):
    """PipelineOptions that make each view once. A view is the same options seen through another options class:
    it holds nothing of its own (every view of one options object reads and writes the same option values), so
    one view per class serves every caller. Copies and pickles start without the views."""

    def view_as(self, cls):
        views = self.__dict__.setdefault("_views", {})
        view = views.get(cls)
        if view is None:
            view = views[cls] = super().view_as(cls)
        return view

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_views", None)
        return state


def pipeline_options(beam_args: tuple[str, ...]) -> PipelineOptions:
    """Beam options from the arguments after `--`; the DirectRunner (so: the in-process runner) when none is named.
    A bad option is a one-line ConfigError (Beam's own parser prints its whole usage and exits)."""
    options = ViewsOnce(list(beam_args))
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):
            options.get_all_options()
    except SystemExit:
        said = [line for line in usage.getvalue().splitlines() if "error:" in line]
        raise ConfigError(f"Beam options after --: {said[-1].split('error:', 1)[1].strip() if said else usage.getvalue()}"
                          f" (see `python -m apache_beam.examples.wordcount --help` for Beam's options)") from None
    std = options.view_as(StandardOptions)
    if std.runner is None:
        std.runner = "DirectRunner"
    return options


def new_pipeline(options: PipelineOptions) -> beam.Pipeline:
    """A Beam pipeline on the runner the options name, the in-process FnApiRunner for the DirectRunner. Beam's
    DoFn introspection is answered once per DoFn from here on (stages.dofn_specs)."""
    dofn_specs.install()
    try:
        return beam.Pipeline(runner=in_process_runner(options) if is_direct(options) else None, options=options)
    except ValueError as e:
        if "runner" not in str(e).lower():
            raise
        raise ConfigError(f"-- --runner={options.view_as(StandardOptions).runner}: not a Beam runner "
                          f"({str(e).split('.', 1)[0]}); e.g. DirectRunner, DataflowRunner, FlinkRunner") from None
