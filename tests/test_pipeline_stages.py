"""Pipeline stages on TestPipeline: CheckRows outputs, and the profile (background partials, merged) on a runner."""
import json
import math

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from expectations import CompileOptions, compile_suite, default_suite
from pipeline.files import read_json
from pipeline.stages.check import SumCountsFn
from pipeline.stages.profile import MergeProfilesFn, Profile
from pipeline.stages.written import WrittenProfile
from pipeline.stages.check import QUARANTINE_TAG, CheckRows
from transforms.labels import LabelSpec


def nan_equal(a, b):
    return all((x == y) or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
               for x, y in zip(a, b)) and len(a) == len(b)


def batches():
    rng = np.random.default_rng(3)
    out = []
    for i in range(4):
        x = rng.normal(size=1000)
        y = rng.uniform(size=1000)
        x[[5, 6]] = [np.nan, np.inf]
        y[7] = 2.0
        x[8] = 1e30
        out.append(pa.RecordBatch.from_pydict({"x": x, "y": y, "__source_file": ["f"] * 1000,
                                               "__row_index": np.arange(i * 1000, (i + 1) * 1000)}))
    return out


def test_check_rows_quarantines_every_bad_row_with_all_reasons():
    schema = batches()[0].schema
    compiled = compile_suite(default_suite(), schema, CompileOptions(labels=(LabelSpec("y", "probability"),)))
    with TestPipeline() as p:
        raw = p | "Raw" >> beam.Create(batches())
        profile = raw | Profile(columns=("x", "y"), with_sketch=True)
        checked = raw | CheckRows(compiled=compiled, raw_profile=profile)
        clean_rows = checked.clean | "CleanRows" >> beam.Map(lambda b: b.num_rows) | "SumClean" >> beam.CombineGlobally(sum)
        reasons = (checked.quarantine | beam.FlatMap(lambda b: zip(b.column("__row_index").to_pylist(),
                                                                    b.column("__reasons").to_pylist()))
                   | beam.Map(lambda r: (r[0] % 1000, tuple(r[1]))) | beam.Distinct())
        counts = checked.counts | beam.CombineGlobally(SumCountsFn())
        assert_that(clean_rows, equal_to([4 * 996]), label="clean")
        assert_that(reasons, equal_to([(5, ("nan:x",)), (6, ("pos_inf:x",)), (7, ("label_probability:y",)),
                                       (8, ("extreme:x",))]), label="reasons")
        assert_that(counts | beam.Map(lambda c: (c.rows, c.clean_rows, c.quarantined_rows,
                                                 c.by_reason["extreme:x"])),
                    equal_to([(4000, 3984, 16, 4)]), label="counts")


def test_profile_on_a_runner_matches_one_accumulator():
    data = batches()
    with TestPipeline() as p:
        out = (p | beam.Create(data) | beam.Reshuffle() | Profile(columns=("x",), with_sketch=True)  # bundles as the runner cuts them
               | beam.Map(lambda a: (a.rows, a.profiles["x"].nan, a.profiles["x"].pos_inf,
                                     a.profiles["x"].max, a.profiles["x"].summary())))
        x = np.concatenate([b.column("x").to_numpy() for b in data])
        finite = x[np.isfinite(x)]
        from transforms.profile import ProfileAccumulator
        acc = ProfileAccumulator(("x",), True)
        for b in data:
            acc.add_batch(b)
        assert_that(out, equal_to([(4000, 4, 4, float(finite.max()), acc.profiles["x"].summary())],
                                  equals_fn=lambda a, b: nan_equal(list(a[:4]), list(b[:4]))
                                  and nan_equal(list(a[4].values()), list(b[4].values()))))


def test_profile_of_no_rows_is_an_empty_profile(tmp_path):
    path = str(tmp_path / "profile.json")
    with TestPipeline() as p:
        out = (p | beam.Create([]).with_output_types(pa.RecordBatch)
               | Profile(columns=("x",), with_sketch=True, save_to=path)
               | beam.Map(lambda a: (a.rows, a.profiles["x"].finite)))
        assert_that(out, equal_to([(0, 0)]))
    saved = read_json(path)
    assert saved["rows"] == 0 and saved["columns"]["x"]["finite"] == 0 and saved["sketches"] == {}


def test_a_merged_profile_is_saved_with_its_sketches_and_passed_on_without_them(tmp_path, monkeypatch):
    """The step that merges a profile saves it and passes on the sketch-free copy: the only profiles with
    sketches that cross a step boundary are the bundles' partials on their way to the merge (a merged
    1,000-column profile is ~96 MB; each crossing pickles and unpickles it)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.stages.local_runner import new_pipeline
    from transforms.profile import ProfileAccumulator
    from transforms.quantile_sketch import QuantileSketch
    crossed = []  # every pickling of a profile, whichever coder does it

    def getstate(acc):
        crossed.append((acc.rows, any(c.sketch is not None for c in acc.profiles.values())))
        return acc.__dict__
    monkeypatch.setattr(ProfileAccumulator, "__getstate__", getstate, raising=False)
    data = batches()
    path = str(tmp_path / "profile.json")
    with new_pipeline(PipelineOptions()) as p:
        out = (p | beam.Create(data, reshuffle=False)  # one bundle: one partial
               | Profile(columns=("x", "y"), with_sketch=True, save_to=path)
               | beam.Map(lambda a: (a.rows, [c.sketch for c in a.profiles.values()], a.profiles["x"].bulk())))
        whole = ProfileAccumulator(("x", "y"), True)
        for b in data:
            whole.add_batch(b)
        assert_that(out, equal_to([(4000, [None, None], whole.profiles["x"].bulk())]))
    assert [rows for rows, sketched in crossed if sketched and rows] == [4000]  # the one partial, to the merge
    saved = read_json(path)
    for c in ("x", "y"):
        sketch = QuantileSketch.from_dict(saved["sketches"][c])
        assert sketch.quantiles([0.01, 0.5, 0.99]) == whole.profiles[c].sketch.quantiles([0.01, 0.5, 0.99])


def test_merging_partial_profiles_gives_the_same_summary_on_every_split():
    from transforms.profile import ProfileAccumulator
    data = batches()
    fn = MergeProfilesFn(("x", "y"), True)

    def partial(part):
        acc = ProfileAccumulator(("x", "y"), True)
        for b in part:
            acc.add_batch(b)
        return acc

    whole = partial(data)
    expected = {c: whole.profiles[c].summary() for c in ("x", "y")}
    for cuts in ([], [1], [2], [1, 3], [1, 2, 3]):
        bounds = [0, *cuts, len(data)]
        partials = [partial(data[a:b]) for a, b in zip(bounds, bounds[1:])]
        for order in (partials, partials[::-1]):
            acc = fn.create_accumulator()
            for part in order:
                acc = fn.add_input(acc, part)
            merged = fn.extract_output(fn.merge_accumulators([acc, fn.create_accumulator()]))
            assert merged.rows == 4000
            for c in ("x", "y"):
                got = merged.profiles[c].summary()
                assert got.keys() == expected[c].keys()
                assert nan_equal(list(got.values()), list(expected[c].values())), (cuts, c)


def test_record_batches_travel_with_the_arrow_coder_and_are_sized_without_encoding():
    from pipeline.stages.coders import RecordBatchCoder
    batch = pa.RecordBatch.from_pydict({
        "x": pa.array([1.5, None, float("nan"), float("-inf")]),
        "v": pa.array([[1.0, 2.0], None, [], [3.0]], pa.list_(pa.float32())),
        "s": pa.array(["a", None, "ünï", ""]),
        "__row_index": pa.array([0, 1, 2, 3], pa.int64())})
    coder = beam.coders.registry.get_coder(pa.RecordBatch)
    assert isinstance(coder, RecordBatchCoder)
    back = coder.decode(coder.encode(batch))
    assert back.schema == batch.schema and back.to_pydict().keys() == batch.to_pydict().keys()
    assert back.column("v").to_pylist() == batch.column("v").to_pylist()
    assert back.column("s").to_pylist() == batch.column("s").to_pylist()
    assert nan_equal(back.column("x").to_pylist(), batch.column("x").to_pylist())
    assert coder.estimate_size(batch) == batch.nbytes
    schema = batches()[0].schema
    compiled = compile_suite(default_suite(), schema, CompileOptions())
    p = beam.Pipeline()
    raw = p | beam.Create(batches()).with_output_types(pa.RecordBatch)
    profile = raw | Profile(columns=("x", "y"), with_sketch=True)
    checked = raw | CheckRows(compiled=compiled, raw_profile=profile)
    for pcoll in (checked.clean, checked[QUARANTINE_TAG]):  # what the runner encodes them with
        assert isinstance(beam.coders.registry.get_coder(pcoll.element_type), RecordBatchCoder)


def test_accumulators_cross_steps_with_coders_that_size_them_without_pickling(monkeypatch):
    """Beam sizes the first elements of every PCollection for its metrics; a profile or TFDV accumulator is
    sized from its arrays, not by pickling it (a 1,000-column profile pickles to ~100 MB)."""
    import pickle

    from pipeline.stages import coders
    from pipeline.stages.profile import ProfileCoder
    from pipeline.stages.statistics import (StatisticsAccumulators, StatisticsAccumulatorsCoder, StatisticsPartial,
                                            WriteCleanAndRawStatistics, tfdv_generators)
    from transforms.profile import ProfileAccumulator
    acc = ProfileAccumulator(("x", "y"), True)
    for b in batches():
        acc.add_batch(b)
    partial = StatisticsPartial(tfdv_generators())
    partial.add(batches()[0])
    tfdv_accs = partial.compacted()
    for coder, value in ((ProfileCoder(), acc), (StatisticsAccumulatorsCoder(), tfdv_accs)):
        assert isinstance(beam.coders.registry.get_coder(coder.to_type_hint()), type(coder))
        data = coder.encode(value)
        with monkeypatch.context() as m:
            m.setattr(coders.pickle, "dumps", lambda *a, **k: (_ for _ in ()).throw(AssertionError("pickled")))
            assert coder.estimate_size(value) > 0
        assert type(coder.decode(data)) is type(value)
    assert ProfileCoder().estimate_size(acc) == acc.nbytes() >= acc.profiles["x"].sketch.nbytes
    assert nan_equal(list(pickle.loads(pickle.dumps(acc)).profiles["x"].summary().values()),
                     list(acc.profiles["x"].summary().values()))
    p = beam.Pipeline()  # the PCollections are typed so the runner picks these coders
    raw = p | beam.Create(batches()).with_output_types(pa.RecordBatch)
    profile = raw | "Profile" >> Profile(columns=("x", "y"), with_sketch=True)
    assert isinstance(beam.coders.registry.get_coder(profile.element_type), ProfileCoder)
    _ = (raw, raw) | "Stats" >> WriteCleanAndRawStatistics(columns=("x", "y"), clean_path="/nonexistent/c.pb",
                                                           raw_path="/nonexistent/r.pb")
    _ = raw | "Written" >> WrittenProfile()

    class Typed(beam.pipeline.PipelineVisitor):
        """Every PCollection inside the merges, with its type: one typed Any (the combine's own output, when its
        CombineFn declares no types) gets a pickling coder, and Beam pickles its first elements to size them."""
        types = {}

        def visit_transform(self, node):
            if node.full_label.startswith(("Stats/Merge", "Profile/Merge", "Written/Merge")):
                for out in node.outputs.values():
                    self.types[node.full_label] = out.element_type
    p.visit(Typed())
    untyped = {label: t for label, t in Typed.types.items() if "Any" in str(t)}
    assert len(Typed.types) >= 12 and not untyped, untyped
    assert (Typed.types["Stats/MergeClean/Combine/ParDo(CombineValuesDoFn)"]  # one per part
            == beam.typehints.Tuple[int, StatisticsAccumulators])
    assert Typed.types["Profile/Merge/UnKey"] is ProfileAccumulator


def test_json_files_write_non_finite_numbers_as_null_and_plain_objects_unchanged(tmp_path):
    from pipeline.files import write_json
    plain_obj = {"lat": 41.88, "ts": 1_400_000_000, "ids": [2**53 - 1], "city": "Chicago", "none": None}
    for indent in (None, 2):
        path = write_json(str(tmp_path / f"a{indent}.json"), plain_obj, indent=indent)
        assert json.loads(open(path).read()) == plain_obj
        path = write_json(str(tmp_path / f"b{indent}.json"),
                          {"std": float("inf"), "q": [float("nan"), -float("inf"), 1.5], "k": {3: (1.0, 2.0)}},
                          indent=indent)
        assert json.loads(open(path).read()) == {"std": None, "q": [None, None, 1.5], "k": {"3": [1.0, 2.0]}}


def test_a_batch_too_wide_to_encode_at_once_is_encoded_a_slice_at_a_time_into_the_same_shards(tmp_path, monkeypatch):
    """A batch whose records would exceed SLICE_BYTES is encoded a row slice at a time (a 5,000-column table's
    batch is a gigabyte of records); the shards hold the same records, each listed by the shard index."""
    import os

    import pyarrow.parquet as pq
    import tensorflow as tf

    import pipeline
    import pipeline.stages.shards as shards
    from realistic import trips
    from transforms import tfrecord_encoding

    src = str(tmp_path / "trips.parquet")
    pq.write_table(trips(3_000, seed=4), src)
    encoded_rows = []
    encode = shards.encode_batch
    monkeypatch.setattr(shards, "encode_batch", lambda b, *a: encoded_rows.append(b.num_rows) or encode(b, *a))

    def records_by_row(out):
        """Per shard: {(source file, row index): serialized record}, from the records and the index."""
        found = []
        for entry in read_json(os.path.join(out, "report.json"))["outputs"]["shards"]:
            index = pq.read_table(os.path.join(out, entry["index"])).to_pydict()
            records = [r.numpy() for r in tf.data.TFRecordDataset(os.path.join(out, entry["path"]), "GZIP")]
            assert len(records) == len(index["__row_index"]) == entry["rows"]
            found.append(dict(zip(zip(index["__source_file"], index["__row_index"]), records)))
        return found

    flags = dict(labels=["tips:regression"], missing=["impute:median"], passthrough=["trip_id"], num_shards=3)
    whole = pipeline.run(inputs=[src], output=str(tmp_path / "whole"), **flags)
    assert encoded_rows == [whole["counts"]["clean_rows"]]  # one batch, encoded at once
    monkeypatch.setattr(tfrecord_encoding, "SLICE_BYTES", 64 << 10)  # ~64 KB of records: ~250 rows a slice
    encoded_rows.clear()
    sliced = pipeline.run(inputs=[src], output=str(tmp_path / "sliced"), **flags)
    assert len(encoded_rows) > 5 and sum(encoded_rows) == sliced["counts"]["clean_rows"]
    assert whole["counts"] == sliced["counts"] and whole["passed"] and sliced["passed"]
    assert records_by_row(str(tmp_path / "sliced")) == records_by_row(str(tmp_path / "whole"))
