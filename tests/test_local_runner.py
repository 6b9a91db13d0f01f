"""The default runner is Beam's in-process FnApiRunner, chosen without Beam's DirectRunner trying (and
downloading) Prism first."""
import gc
import sys
import types
import weakref

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability import prism_runner
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate
from apache_beam.transforms.userstate import BagStateSpec

from pipeline.demo_data import LABELS, make_table, write_table
from pipeline.runner import run
from pipeline.stages import dofn_specs
from pipeline.stages.local_runner import in_process_runner, is_direct, pipeline_options
from pipeline.suite_init import init_suite


@pytest.mark.parametrize("args, direct", [
    ((), True), (("--runner=DirectRunner",), True), (("--runner=direct",), True),
    (("--runner=PrismRunner",), False), (("--runner=PortableRunner",), False)])
def test_direct_runner_requests_are_recognised(args, direct):
    assert is_direct(pipeline_options(args)) is direct


def test_in_process_runner_carries_the_options_to_its_workers():
    options = PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    runner = in_process_runner(options)
    assert isinstance(runner, fn_runner.FnApiRunner)
    carried = runner._provision_info.provision_info.pipeline_options
    assert str(carried["beam:option:direct_num_workers:v1"]) == "2"
    assert carried["beam:option:direct_running_mode:v1"] == "multi_processing"


@pytest.fixture
def in_process(monkeypatch):
    """The pipelines the in-process FnApiRunner ran (by their transforms' labels)."""
    ran = []
    original = fn_runner.FnApiRunner.run_pipeline

    def recording(self, pipeline, options):
        ran.append({t.full_label for t in pipeline.transforms_stack[0].parts})
        return original(self, pipeline, options)

    monkeypatch.setattr(fn_runner.FnApiRunner, "run_pipeline", recording)
    return ran


@pytest.fixture
def no_network(monkeypatch):
    fetched = []

    def refuse(url, *a, **k):
        fetched.append(url)
        raise AssertionError(f"nanguard's default runner tried to fetch {url}")

    monkeypatch.setattr(prism_runner, "urlopen", refuse)
    return fetched


def test_default_run_never_fetches_prism(tmp_path, no_network, in_process):
    src = str(tmp_path / "in.csv")
    write_table(make_table(500, faults_per_kind=1, seed=3).table, src, "csv")
    report = run(inputs=[src], output=str(tmp_path / "out"), labels=list(LABELS))
    assert no_network == []
    assert len(in_process) == 1 and {"ReadForProfile", "Fit", "Normalize", "WriteShards"} <= in_process[0]
    assert report["run"]["runner"] == "DirectRunner" and report["counts"]["input_rows"] == 500


def test_suite_init_never_fetches_prism(tmp_path, no_network, in_process):
    src = str(tmp_path / "in.csv")
    write_table(make_table(300, faults_per_kind=1, seed=4).table, src, "csv")
    suite = init_suite((src,), str(tmp_path / "suite.json"))
    assert no_network == []
    assert len(in_process) == 1 and {"Read", "Profile"} <= in_process[0]
    assert {e["kwargs"].get("column") for e in suite["expectations"]} >= {"f0", "unscaled", "label_prob"}


class _CountPerKey(beam.DoFn):
    """A stateful DoFn: its state spec must still be found (and used) with the introspection kept per instance."""
    SEEN = BagStateSpec("seen", beam.coders.VarIntCoder())

    def process(self, element, seen=beam.DoFn.StateParam(SEEN)):
        seen.add(element[1])
        yield element[0], sum(seen.read())


class _Plain(beam.DoFn):
    def process(self, element):
        yield element


def test_dofn_introspection_is_answered_once_per_instance_and_stateful_dofns_still_work():
    dofn_specs.install()
    dofn_specs.install()  # idempotent: Beam's own function is wrapped once
    asked = []
    own = userstate.get_dofn_specs.beams_own
    memo = dofn_specs.answered_once(lambda d: asked.append(d) or own(d))
    first, second = _CountPerKey(), _CountPerKey()
    states, timers = memo(first)
    assert {s.name for s in states} == {"seen"} and not timers
    states.clear()  # a caller changing its answer changes no later answer
    assert {s.name for s in memo(first)[0]} == {"seen"} and len(asked) == 1
    assert {s.name for s in memo(second)[0]} == {"seen"} and len(asked) == 2
    assert memo(_Plain()) == (set(), set()) and len(asked) == 3
    with TestPipeline() as p:  # with the installed memo
        out = (p | beam.Create([("a", 1), ("a", 2), ("b", 5)]) | beam.ParDo(_CountPerKey())
               | beam.CombinePerKey(max))
        assert_that(out, equal_to([("a", 3), ("b", 5)]))


def test_options_views_are_made_once_and_read_and_write_the_same_values(monkeypatch):
    import copy
    import pickle

    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions, TypeOptions
    options = pipeline_options(("--direct_num_workers=3", "--no_pipeline_type_check"))
    made = []
    real = PipelineOptions.view_as

    def counting(self, cls):
        made.append(cls)
        return real(self, cls)
    monkeypatch.setattr(PipelineOptions, "view_as", counting)
    views = [options.view_as(StandardOptions) for _ in range(50)]
    assert options.view_as(TypeOptions).pipeline_type_check is False
    monkeypatch.undo()
    assert made == [TypeOptions] and all(v is views[0] for v in views)  # StandardOptions: made by pipeline_options
    views[0].runner = "PrismRunner"
    assert options.get_all_options()["runner"] == "PrismRunner" and not is_direct(options)
    for twin in (copy.deepcopy(options), pickle.loads(pickle.dumps(options))):
        assert twin.view_as(DirectOptions).direct_num_workers == 3
        assert twin.view_as(StandardOptions).runner == "PrismRunner"
        twin.view_as(StandardOptions).runner = "DirectRunner"  # a copy's views are its own
        assert is_direct(twin) and not is_direct(options)


class _Held:
    """A stage's element that a test can watch being freed (a weak reference sees it go)."""


def _watch():
    """What the test's steps record, shared by reference: the runner runs unpickled copies of the steps, so a
    module global of this file could be a copy; sys.modules is this process's."""
    return sys.modules.setdefault("nanguard_test_watch", types.SimpleNamespace(held=[], alive=[]))


def test_a_finished_stages_last_element_is_let_go_when_the_next_stage_runs():
    """Beam's PerWindowInvoker keeps the last element of a DoFn with side inputs in its argument list, and the
    in-process worker caches the stage's bundle processor for reuse: every finished stage kept its last batch
    (on a wide table, a whole pass's worth of memory each). The next stage shuts the finished one's processors
    down, so its elements are freed."""
    from pipeline.stages.local_runner import new_pipeline
    watch = _watch()
    watch.held.clear()
    watch.alive.clear()

    def hold(held, side):
        _watch().held.append(weakref.ref(held))
        return side

    def look(_):
        gc.collect()
        _watch().alive.append(sum(ref() is not None for ref in _watch().held))
        return 0

    with new_pipeline(pipeline_options(())) as p:
        side = beam.pvalue.AsSingleton(p | "Side" >> beam.Create([7]))
        made = (p | "Indexes" >> beam.Create([0, 1, 2], reshuffle=False)
                | "Make" >> beam.Map(lambda i: _Held())  # made in the stage, not pickled into the graph
                | "Hold" >> beam.Map(hold, side))
        _ = (made | "Key" >> beam.Map(lambda s: (0, s)) | "Group" >> beam.GroupByKey()  # a later stage
             | "Look" >> beam.Map(look))
    assert len(watch.held) == 3 and watch.alive == [0]
