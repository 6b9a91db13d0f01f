"""TFDV statistics as nanguard computes them: the same protos as tfdv.GenerateStatistics, along every merge path."""
import re
import threading

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
import tensorflow_data_validation as tfdv
from apache_beam.testing.test_pipeline import TestPipeline
from google.protobuf import text_format
from tensorflow_data_validation.statistics import stats_impl

from pipeline.stages.background import SerialWorker
from pipeline.stages.statistics import (MergeStatisticsFn, StatisticsPartial, WriteCleanAndRawStatistics, for_tfdv,
                                       tfdv_generators)
from realistic import trips


def _batch(n: int, seed: int) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n).astype(np.float32)
    x[::17] = np.nan
    x[5], x[6] = np.inf, -np.inf
    x[7] = 1e-42  # subnormal
    s = pa.array([None if i % 11 == 0 else f"c{i % 7}" for i in range(n)])
    k = pa.array(rng.integers(0, 5, n))
    return pa.RecordBatch.from_arrays([pa.array(x), s, k], ["x", "s", "k"])


BATCHES = [_batch(1000, 0), _batch(500, 1), _batch(3000, 2)]
COLUMNS = ("x", "s", "k")


def _canonical(stats) -> str:
    """Text of the proto with features in name order and floats to 12 digits (merge order moves the last bit)."""
    stats = type(stats).FromString(stats.SerializeToString())
    for d in stats.datasets:
        features = sorted(d.features, key=lambda f: tuple(f.path.step))
        del d.features[:]
        d.features.extend(features)
    return re.sub(r"(?<=: )-?\d+\.\d+(e[-+]\d+)?",
                  lambda m: f"{float(m.group(0)):.12g}", text_format.MessageToString(stats))


def _with_reasons(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A quarantined batch: the same columns plus nanguard's __reasons (never in the statistics)."""
    reasons = pa.array([["nan:x"]] * batch.num_rows, pa.list_(pa.string()))
    return pa.RecordBatch.from_arrays(batch.columns + [reasons], names=batch.schema.names + ["__reasons"])


def _tfdv(p, batches, path, label):
    _ = (p | f"Create{label}" >> beam.Create(batches, reshuffle=False).with_output_types(pa.RecordBatch)
         | f"Wrap{label}" >> beam.Map(for_tfdv) | f"TFDV{label}" >> tfdv.GenerateStatistics(tfdv.StatsOptions())
         | f"Write{label}" >> tfdv.WriteStatisticsToBinaryFile(path))


def _run_both(clean, quarantined, tmp_path, lanes=1, columns=COLUMNS):
    """(ours clean, ours raw, TFDV's of the clean batches, TFDV's of all batches)."""
    paths = {k: str(tmp_path / f"{k}.pb") for k in ("clean", "raw", "tfdv_clean", "tfdv_raw")}
    with TestPipeline() as p:
        c = p | "Clean" >> beam.Create(clean, reshuffle=False).with_output_types(pa.RecordBatch)
        q = p | "Quarantined" >> beam.Create([_with_reasons(b) for b in quarantined] or [],
                                             reshuffle=False).with_output_types(pa.RecordBatch)
        _ = (c, q) | WriteCleanAndRawStatistics(columns=columns, clean_path=paths["clean"], raw_path=paths["raw"],
                                                clean_lanes=lanes)
        _tfdv(p, clean, paths["tfdv_clean"], "C")
        _tfdv(p, clean + quarantined, paths["tfdv_raw"], "R")
    return [tfdv.load_stats_binary(paths[k]) for k in ("clean", "raw", "tfdv_clean", "tfdv_raw")]


@pytest.mark.parametrize("lanes", [1, 2, 4])  # 4: more lanes than columns, one lane has none (and counts rows)
def test_clean_and_raw_statistics_are_the_ones_tfdv_generate_statistics_writes(tmp_path, lanes):
    clean, raw, theirs_clean, theirs_raw = _run_both(BATCHES[:2], BATCHES[2:], tmp_path, lanes)
    assert clean.datasets[0].num_examples == 1500 and raw.datasets[0].num_examples == 4500
    assert _canonical(clean) == _canonical(theirs_clean)  # the clean accumulators survive the raw merge
    assert _canonical(raw) == _canonical(theirs_raw)
    assert "__reasons" not in {f.path.step[0] for f in raw.datasets[0].features}


def _trips_with_faults(n: int) -> pa.Table:
    """The realistic trips table with a float32 column holding NaN, +-Inf and subnormals."""
    table = trips(n, seed=3)
    x = np.random.default_rng(4).lognormal(3.0, 2.0, n).astype(np.float32)
    x[::97], x[5], x[6], x[7] = np.nan, np.inf, -np.inf, 1e-42
    return table.append_column("sensor", pa.array(x))


@pytest.mark.parametrize("lanes", [2, 3])
def test_lanes_split_columns_so_statistics_are_one_accumulators_whatever_the_lanes(tmp_path, lanes):
    """Every lane folds every row of its share of the columns: with 2 or 3 lanes clean.pb is the statistics of
    one TFDV accumulator over the same batches, quantiles included, features in column order. 30,000 rows fill
    TFDV's quantile sketches past exact: lanes that split the rows each sketched part of every column, and the
    merged quantiles moved."""
    def batches(_=None):
        return _trips_with_faults(30_000).to_batches(4096)

    path = str(tmp_path / "clean.pb")
    with TestPipeline() as p:  # the batches are made in the pipeline: Create would pickle them into the graph
        c = p | "Seed" >> beam.Create([None]) | "Batches" >> beam.FlatMap(batches).with_output_types(pa.RecordBatch)
        q = p | "Quarantined" >> beam.Create([], reshuffle=False).with_output_types(pa.RecordBatch)
        _ = (c, q) | WriteCleanAndRawStatistics(columns=tuple(batches()[0].schema.names), clean_path=path,
                                                raw_path=str(tmp_path / "raw.pb"), clean_lanes=lanes)
    clean = tfdv.load_stats_binary(path)
    one = StatisticsPartial(tfdv_generators())
    for b in batches():
        one.add(b)
    assert clean.datasets[0].num_examples == 30_000
    assert [f.path.step[0] for f in clean.datasets[0].features] == batches()[0].schema.names
    assert _canonical(clean) == _canonical(MergeStatisticsFn().extract_output(one.compacted()))


def test_statistics_with_nothing_quarantined_or_nothing_clean(tmp_path):
    clean, raw, theirs_clean, theirs_raw = _run_both(BATCHES, [], tmp_path)
    assert _canonical(clean) == _canonical(raw) == _canonical(theirs_raw)
    clean, raw, theirs_clean, theirs_raw = _run_both([], BATCHES, tmp_path)
    assert clean.datasets[0].num_examples == 0 and not clean.datasets[0].features
    assert _canonical(raw) == _canonical(theirs_raw)


def test_with_nothing_quarantined_tfdv_extracts_once(tmp_path, monkeypatch):
    """raw.pb is clean.pb when nothing was quarantined: one extraction (TFDV's histograms, ~14 s at 1,000
    features), not two; with quarantined rows, one for each file."""
    calls = []
    real = stats_impl.extract_statistics_output
    monkeypatch.setattr(stats_impl, "extract_statistics_output", lambda *a, **k: calls.append(1) or real(*a, **k))

    def extractions(clean, quarantined) -> int:
        calls.clear()
        with TestPipeline() as p:
            c = p | "Clean" >> beam.Create(clean, reshuffle=False).with_output_types(pa.RecordBatch)
            q = p | "Quarantined" >> beam.Create([_with_reasons(b) for b in quarantined],
                                                 reshuffle=False).with_output_types(pa.RecordBatch)
            _ = (c, q) | WriteCleanAndRawStatistics(columns=COLUMNS, clean_path=str(tmp_path / "c.pb"),
                                                    raw_path=str(tmp_path / "r.pb"))
        return len(calls)

    assert extractions(BATCHES, []) == 1
    assert (tmp_path / "c.pb").read_bytes() == (tmp_path / "r.pb").read_bytes()
    assert extractions(BATCHES[:1], BATCHES[1:]) == 2


def test_statistics_of_no_rows_are_an_empty_dataset(tmp_path):
    empty = _batch(10, 0).slice(0, 0)
    clean, raw, theirs_clean, _ = _run_both([empty], [], tmp_path)
    assert clean.datasets[0].num_examples == 0 and not clean.datasets[0].features
    assert _canonical(clean) == _canonical(theirs_clean) == _canonical(raw)


@pytest.mark.parametrize("cut", [0, 1, 2, 3])
def test_merging_partial_accumulators_gives_the_single_pass_statistics(cut):
    generators = tfdv_generators()
    whole = StatisticsPartial(generators)
    for b in BATCHES:
        whole.add(b)
    combine = MergeStatisticsFn()
    partials = []
    for group in (BATCHES[:cut], BATCHES[cut:]):  # two bundles of different sizes, one maybe empty
        part = StatisticsPartial(generators)
        for b in group:
            part.add(b)
        partials.append(part.compacted() if part.rows else None)
    acc = combine.create_accumulator()
    for part in partials:
        acc = combine.add_input(acc, part)
    merged = combine.merge_accumulators([combine.create_accumulator(), combine.compact(acc)])
    single = combine.merge_accumulators([whole.compacted()])
    assert _canonical(combine.extract_output(merged)) == _canonical(combine.extract_output(single))


def test_worker_runs_calls_in_order_and_bounds_its_backlog():
    seen, gate = [], threading.Event()
    worker = SerialWorker("test", max_pending=2)
    worker.submit(gate.wait)
    worker.submit(seen.append, 1)
    blocked = threading.Thread(target=worker.submit, args=(seen.append, 2))
    blocked.start()
    blocked.join(timeout=0.2)
    assert blocked.is_alive()  # a third call waits for the oldest: the backlog is the memory bound
    gate.set()
    blocked.join(timeout=5)
    worker.drain()
    assert seen == [1, 2]
    worker.close()


def test_worker_error_is_raised_where_the_bundle_collects_it():
    worker = SerialWorker("test", max_pending=4)
    worker.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        worker.drain()
    worker.submit(lambda: None)  # usable again for the retried bundle
    worker.drain()
    worker.close()


def test_worker_reset_drops_what_a_failed_bundle_queued():
    seen, gate = [], threading.Event()
    worker = SerialWorker("test", max_pending=4)
    worker.submit(gate.wait)
    worker.submit(seen.append, "stale")
    threading.Timer(0.1, gate.set).start()
    worker.reset()
    worker.drain()
    assert seen == []
    worker.close()


def test_background_partials_are_released_once_emitted():
    """A DoFn instance outlives its bundle (runners cache them): what it emitted must not stay referenced, or a
    pass's accumulators stay in memory through the next pass."""
    from pipeline.stages.background import AccumulateInBackground

    class Sum(AccumulateInBackground):
        def new_partial(self, lane):
            return [0]

        def add(self, partial, batch):
            partial[0] += batch.num_rows

        def output(self, partial):
            return partial[0]

    fn = Sum("test", lanes=2)
    fn.start_bundle()
    for b in BATCHES:
        fn.process(b)
    assert sorted(v.value for v in fn.finish_bundle()) == [500, 4000]  # round-robin over the two lanes: 1000 + 3000, 500
    assert fn._partials == []
    fn.teardown()


def test_each_lane_finishes_its_partial_on_its_own_thread_after_its_last_batch(monkeypatch):
    """Compacting TFDV's sketches reallocates them: on another thread than the one that built them, glibc kept
    the freed buffers in the lane's arena while the new ones grew the caller's (+1.7 GB at 5,000 features). So
    each lane finishes its own partial, after every batch it was given and before anything is emitted."""
    import threading

    from pipeline.stages.background import AccumulateInBackground
    from pipeline.stages.statistics import _AccumulateStatisticsFn

    class Log(AccumulateInBackground):
        def new_partial(self, lane):
            return []

        def add(self, partial, batch):
            partial.append(("add", threading.current_thread().name, batch.num_rows))

        def finish(self, partial):
            partial.append(("finish", threading.current_thread().name, None))

        def output(self, partial):
            return list(partial)

    fn = Log("lane", lanes=2)
    fn.start_bundle()
    for b in BATCHES:
        fn.process(b)
    logs = [v.value for v in fn.finish_bundle()]
    fn.teardown()
    assert [sum(rows for kind, _, rows in log if kind == "add") for log in logs] == [4000, 500]
    for log in logs:
        assert [kind for kind, _, _ in log][-1] == "finish" and sum(kind == "finish" for kind, _, _ in log) == 1
        threads = {name for _, name, _ in log}
        assert len(threads) == 1 and threading.main_thread().name not in threads

    compacted = []  # and the statistics' lanes compact TFDV's state there
    stats = _AccumulateStatisticsFn(2, tuple(BATCHES[0].schema.names))
    original = StatisticsPartial.compact

    def compact(self):
        compacted.append(threading.current_thread().name)
        original(self)
    monkeypatch.setattr(StatisticsPartial, "compact", compact)
    stats.setup()
    stats.start_bundle()
    for b in BATCHES:
        stats.process(b)
    parts = [v.value for v in stats.finish_bundle()]
    stats.teardown()
    assert parts and sorted(compacted[:2]) == ["nanguard-stats-0_0", "nanguard-stats-1_0"]


def _wide_trips(n: int, copies: int, seed: int) -> pa.Table:
    """The trips table's columns `copies` times over (suffixed), with the faulty float32 sensor: wider than one
    statistics part."""
    base = _trips_with_faults(n) if seed == 0 else trips(n, seed=seed).append_column(
        "sensor", pa.array(np.random.default_rng(seed).lognormal(3.0, 2.0, n).astype(np.float32)))
    names, arrays = [], []
    for k in range(copies):
        for name, column in zip(base.column_names, base.columns):
            names.append(f"{name}_{k:02d}")
            arrays.append(column)
    return pa.Table.from_arrays(arrays, names=names)


def test_a_table_wider_than_one_part_gives_tfdvs_statistics_in_column_order(tmp_path):
    """Accumulators leave each bundle in parts of FEATURES_PER_PART columns and are merged and extracted part by
    part: the joined files are TFDV's statistics of the same rows, features in the input's column order, every
    part counting every row."""
    from pipeline.stages.statistics import FEATURES_PER_PART
    clean = _wide_trips(1500, 6, seed=0).to_batches(500)
    quarantined = _wide_trips(200, 6, seed=5).to_batches(150)
    columns = tuple(clean[0].schema.names)
    assert len(columns) > FEATURES_PER_PART  # two parts, the last one short
    ours_clean, ours_raw, theirs_clean, theirs_raw = _run_both(clean, quarantined, tmp_path, lanes=2,
                                                               columns=columns)
    assert ours_clean.datasets[0].num_examples == 1500 and ours_raw.datasets[0].num_examples == 1700
    for ours in (ours_clean, ours_raw):
        assert [f.path.step[0] for f in ours.datasets[0].features] == list(columns)
    assert _canonical(ours_clean) == _canonical(theirs_clean)
    assert _canonical(ours_raw) == _canonical(theirs_raw)


def test_column_groups_cover_the_parts_in_order_whole_parts_each():
    from pipeline.stages.statistics import FEATURES_PER_PART, statistics_groups
    columns = tuple(f"c{i}" for i in range(5 * FEATURES_PER_PART + 3))  # six parts, the last one of 3 columns
    assert statistics_groups(columns) == (range(6),)
    assert statistics_groups(columns, 6 * FEATURES_PER_PART) == (range(6),)
    assert statistics_groups(columns, 2 * FEATURES_PER_PART + 10) == (range(0, 2), range(2, 4), range(4, 6))
    assert statistics_groups(columns, 4 * FEATURES_PER_PART) == (range(0, 4), range(4, 6))
    assert statistics_groups(columns, 1) == tuple(range(k, k + 1) for k in range(6))  # at least one part
    assert statistics_groups(("x",), 1) == (range(1),)
    with pytest.raises(ValueError, match="group_columns"):
        statistics_groups(columns, 0)


def test_each_groups_accumulators_hold_only_that_groups_columns():
    """A group's DoFn folds its parts' columns of every batch and leaves the others to their groups: its
    partials hold no other feature, and it emits its own parts only, each counting every row."""
    from pipeline.stages.statistics import FEATURES_PER_PART, _AccumulateStatisticsFn, statistics_groups
    table = _wide_trips(300, 11, seed=0)
    columns = tuple(table.column_names)
    groups = statistics_groups(columns, FEATURES_PER_PART)
    for parts in groups:
        fn = _AccumulateStatisticsFn(2, columns, parts)
        fn.setup()
        fn.start_bundle()
        for b in table.to_batches(100):
            fn.process(b)
        emitted = [v.value for v in fn.finish_bundle()]
        assert [k for k, _ in emitted] == list(parts)
        merge = MergeStatisticsFn()
        for k, accs in emitted:
            stats = merge.extract_output(accs)
            assert stats.datasets[0].num_examples == 300
            assert ([f.path.step[0] for f in stats.datasets[0].features]
                    == list(columns[k * FEATURES_PER_PART:(k + 1) * FEATURES_PER_PART]))
        fn.teardown()


def test_groups_must_cover_every_part_once_and_come_with_their_batches(tmp_path):
    columns = tuple(f"c{i}" for i in range(130))
    with pytest.raises(ValueError, match="cover"):
        WriteCleanAndRawStatistics(columns=columns, clean_path="c", raw_path="r", groups=(range(0, 1), range(2, 3)))
    with TestPipeline() as p:
        c = p | "Clean" >> beam.Create([], reshuffle=False).with_output_types(pa.RecordBatch)
        with pytest.raises(ValueError, match="2 PCollections for 3 column groups"):
            _ = (c, c) | WriteCleanAndRawStatistics(columns=columns, clean_path="c", raw_path="r",
                                                    groups=(range(0, 1), range(1, 2), range(2, 3)))


def test_a_table_wider_than_statistics_columns_gets_the_same_outputs_from_a_pass_per_group(tmp_path, monkeypatch):
    """The CLI with --statistics-columns 64 on a 132-column trips table (ids, epoch seconds, coordinates with
    nulls, heavy-tailed fares, categorical text, a sensor with NaN/Inf/subnormals): three statistics passes, one
    a group of columns, and the same clean.pb, raw.pb, counts, gate and shards as the default one-pass run."""
    import glob
    import json
    import pyarrow.parquet as pq
    from pipeline.cli import main
    from pipeline.stages import statistics
    path = str(tmp_path / "wide.parquet")
    pq.write_table(_wide_trips(3000, 11, seed=0), path, row_group_size=1000)
    built = []
    real_init = statistics._AccumulateStatisticsFn.__init__

    def spy(self, lanes, columns, parts=None):
        built.append(parts)
        real_init(self, lanes, columns, parts)

    monkeypatch.setattr(statistics._AccumulateStatisticsFn, "__init__", spy)

    def run(out, *flags):
        built.clear()
        assert main(["run", "--input", path, "--output", str(out), "--missing", "impute:median", "--quiet",
                     "--max-quarantine-fraction", "0.5", *flags]) == 0
        report = json.load(open(out / "report.json"))
        stats = {k: tfdv.load_stats_binary(str(out / "stats" / f"{k}.pb")) for k in ("clean", "raw")}
        return list(built), report, stats

    groups_one, report_one, stats_one = run(tmp_path / "one")
    groups_three, report_three, stats_three = run(tmp_path / "three", "--statistics-columns", "64")
    assert groups_one == [range(3), range(3)]  # clean and quarantined sides, every part
    assert sorted(groups_three, key=lambda r: r.start) == [range(0, 1)] * 2 + [range(1, 2)] * 2 + [range(2, 3)] * 2
    assert report_one["counts"]["quarantined_rows"] > 0 and report_one["counts"]["clean_rows"] > 0
    assert report_three["counts"] == report_one["counts"] and report_three["passed"] == report_one["passed"]
    assert ([s["sha256"] for s in report_three["outputs"]["shards"]]
            == [s["sha256"] for s in report_one["outputs"]["shards"]])
    for k in ("clean", "raw"):
        assert _canonical(stats_three[k]) == _canonical(stats_one[k]), k
    assert len(glob.glob(str(tmp_path / "three" / "stats" / "*.pb"))) == 2


def test_parts_hold_their_own_columns_and_every_rows_count():
    from pipeline.stages.statistics import FEATURES_PER_PART, join_parts, split_into_parts
    table = _wide_trips(2000, 12, seed=0)
    columns = tuple(table.column_names)
    whole = StatisticsPartial(tfdv_generators())
    parted = StatisticsPartial(tfdv_generators())
    for b in table.to_batches(700):
        whole.add(b)
        parted.add(b)
    parts = split_into_parts(parted.compacted(), columns)
    assert [k for k, _ in parts] == [0, 1, 2]
    merge = MergeStatisticsFn()
    extracted = [merge.extract_output(accs) for _, accs in parts]
    for k, stats in enumerate(extracted):
        assert stats.datasets[0].num_examples == 2000
        assert ([f.path.step[0] for f in stats.datasets[0].features]
                == list(columns[k * FEATURES_PER_PART:(k + 1) * FEATURES_PER_PART]))
    assert _canonical(join_parts(extracted)) == _canonical(merge.extract_output(whole.compacted()))
    other = StatisticsPartial(tfdv_generators())
    other.add(table.slice(0, 10).to_batches()[0])
    with pytest.raises(ValueError, match="not one of the input's columns"):
        split_into_parts(other.compacted(), columns[1:])


def test_a_bundles_parts_are_freed_one_by_one_as_they_are_emitted():
    """At 5,000 features a bundle's TFDV state is ~1.5 GB: each part must be freed once the runner has taken it,
    not when the last part is out."""
    import gc
    import weakref

    from pipeline.stages.statistics import _AccumulateStatisticsFn
    table = _wide_trips(500, 12, seed=0)
    fn = _AccumulateStatisticsFn(2, tuple(table.column_names))
    fn.setup()
    fn.start_bundle()
    for b in table.to_batches(200):
        fn.process(b)
    emitted = fn.finish_bundle()
    first = next(emitted).value
    assert first[0] == 0 and len(first[1][0]) == 64
    gone = weakref.ref(first[1][0])
    del first
    second = next(emitted).value
    gc.collect()
    assert second[0] == 1 and gone() is None
    assert [w.value[0] for w in emitted] == [2]
    fn.teardown()


def test_writing_from_the_quarantined_parts_alone_leaves_the_side_input_usable(tmp_path):
    """No clean rows: raw.pb comes from the quarantined parts, a side input the runner caches and hands to a
    retried bundle again. TFDV's extraction finalizes the sketches it is given, so it must get a copy."""
    from pipeline.stages.statistics import _write_files, split_into_parts
    partial = StatisticsPartial(tfdv_generators())
    for b in BATCHES:
        partial.add(_with_reasons(b))
    side = dict(split_into_parts(partial.compacted(), COLUMNS))
    paths = (str(tmp_path / "c.pb"), str(tmp_path / "r.pb"))
    _write_files(None, [], side, *paths)
    first = (tmp_path / "r.pb").read_bytes()
    _write_files(None, [], side, *paths)  # the retried bundle
    assert (tmp_path / "r.pb").read_bytes() == first
    raw = tfdv.load_stats_binary(paths[1])
    assert raw.datasets[0].num_examples == 4500 and tfdv.load_stats_binary(paths[0]).datasets[0].num_examples == 0


@pytest.mark.slow
@pytest.mark.parametrize("beam_args", [
    ("--direct_num_workers=2", "--direct_running_mode=multi_processing"),
    ("--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK")], ids=["multiprocess", "portable"])
def test_statistics_by_column_groups_are_the_same_on_the_other_runners(tmp_path, beam_args):
    """The groups' statistics passes on the multi-process DirectRunner and the PortableRunner (workers apart from
    the driver, bundles spread) give the statistics of the in-process run with every column in one pass."""
    import pyarrow.parquet as pq
    from pipeline.runner import run
    path = str(tmp_path / "wide.parquet")
    pq.write_table(_wide_trips(3000, 11, seed=0), path, row_group_size=1000)
    common = dict(inputs=[path], missing=["impute:median"], max_quarantine_fraction=0.5)
    run(output=str(tmp_path / "one"), **common)
    run(output=str(tmp_path / "groups"), statistics_columns=64, beam_args=beam_args, **common)
    for k in ("clean", "raw"):
        one, groups = (tfdv.load_stats_binary(str(tmp_path / out / "stats" / f"{k}.pb")) for out in ("one", "groups"))
        assert groups.datasets[0].num_examples == one.datasets[0].num_examples > 0
        assert _canonical(groups) == _canonical(one), k
