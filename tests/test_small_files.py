"""Many small input files: parsed once for the three passes (stages.kept_reads), their kinds inferred together
(inputs.plan), with the same results as reading and inferring each file on its own."""
import collections
import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipeline.stages.read as read
from pipeline.cli import main
from pipeline.inputs import plan as planning
from pipeline.stages.kept_reads import KeepReads, KeptBatches
from realistic import trips
from transforms.text_values import infer_kind, sample_kinds


def _batch(n: int, start: float = 0.0) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(np.arange(n, dtype=np.float64) + start)], ["x"])


def _task(name: str) -> tuple:
    return (planning.ReadUnit(name, ("x",), nbytes=100),)


def test_kept_batches_are_taken_as_often_as_offered_then_dropped():
    kept = KeptBatches(1 << 20)
    batches = [_batch(10, 41.9), _batch(5, 1.4e9)]
    assert kept.offer("run", _task("a.csv"), batches, uses=2)
    assert kept.held_bytes == sum(b.nbytes for b in batches)
    assert kept.take("run", _task("a.csv")) == tuple(batches)
    assert kept.take("run", _task("a.csv")) == tuple(batches)
    assert kept.take("run", _task("a.csv")) is None and kept.held_bytes == 0
    assert kept.take("run", _task("b.csv")) is None


def test_kept_batches_stay_within_the_budget_and_a_new_run_drops_what_an_old_one_left():
    one = _batch(1000)
    kept = KeptBatches(one.nbytes * 2)
    assert kept.offer("run1", _task("a.csv"), [one], uses=2)
    assert kept.offer("run1", _task("b.csv"), [one], uses=2)
    assert not kept.offer("run1", _task("c.csv"), [one], uses=2)  # over the budget: read again later
    assert kept.room("run1") == 0 and kept.room("run2") == one.nbytes * 2
    assert kept.offer("run2", _task("a.csv"), [_batch(3)], uses=1)  # run1 failed between passes: dropped
    assert kept.take("run1", _task("b.csv")) is None
    assert kept.take("run2", _task("a.csv"))[0].num_rows == 3
    assert not kept.offer("run2", _task("d.csv"), [one], uses=0) and kept.held_bytes == 0


def test_keep_reads_is_checked_and_keeps_only_small_units_for_later_passes():
    with pytest.raises(ValueError, match="later_passes"):
        KeepReads(run="r", later_passes=-1)
    with pytest.raises(ValueError, match="run token"):
        KeepReads(run="", later_passes=1)
    small = (planning.ReadUnit("a.csv", ("x",), nbytes=20_000),)
    large = small + (planning.ReadUnit("b.csv", ("x",), nbytes=50 << 20),)
    assert KeepReads(run="r", later_passes=2).worth_keeping(small)
    assert not KeepReads(run="r", later_passes=2).worth_keeping(large)
    assert not KeepReads(run="r", later_passes=0).worth_keeping(small)


def _write_parts(tmp_path, files: int, rows: int, seed: int):
    table = trips(files * rows, seed=seed)
    fare = table.column("fare").to_numpy().copy()
    fare[rows + 3] = np.nan  # row 3 of the second file
    table = table.set_column(table.schema.get_field_index("fare"), "fare", pa.array(fare))
    src = tmp_path / "parts"
    src.mkdir()
    for i in range(files):
        pacsv.write_csv(table.slice(rows * i, rows), src / f"part-{i:03d}.csv")
    return src


_RAW_BATCHES = read.raw_batches  # the reader itself, whatever a test has patched over it


def _run_counting_opens(monkeypatch, src, out) -> tuple[int, dict, collections.Counter]:
    opened = collections.Counter()

    def counting(fmt, path, *args, **kwargs):
        opened[path] += 1
        return _RAW_BATCHES(fmt, path, *args, **kwargs)
    monkeypatch.setattr(read, "raw_batches", counting)
    code = main(["run", "--input", str(src / "*.csv"), "--output", str(out), "--quiet", "--label", "tips:regression",
                 "--missing", "impute:median", "--num-shards", "2"])
    return code, json.loads((out / "report.json").read_text()), opened


def _written(out) -> list[bytes]:
    import tensorflow as tf
    return sorted(r.numpy() for r in tf.data.TFRecordDataset(sorted(str(p) for p in (out / "data").glob("*")),
                                                             compression_type="GZIP"))


def test_small_files_are_parsed_once_for_three_passes_with_the_same_output(tmp_path, monkeypatch):
    src = _write_parts(tmp_path, files=40, rows=25, seed=21)
    code, report, opened = _run_counting_opens(monkeypatch, src, tmp_path / "kept")
    assert code == 0 and report["counts"]["input_rows"] == 1_000 and report["counts"]["by_rule"] == {"nan:fare": 1}
    assert len(opened) == 40 and set(opened.values()) == {1}  # one parse per file, not three

    monkeypatch.setattr(read, "KEPT", KeptBatches(0))  # nothing fits: every pass reads the files
    code, unkept, opened = _run_counting_opens(monkeypatch, src, tmp_path / "unkept")
    assert code == 0 and set(opened.values()) == {3}
    assert unkept["counts"] == report["counts"]
    assert _written(tmp_path / "kept") == _written(tmp_path / "unkept")
    quarantined = [pq.read_table(tmp_path / out / "quarantine").to_pandas() for out in ("kept", "unkept")]
    assert len(quarantined[0]) == 1 and quarantined[0].equals(quarantined[1])  # NaN-aware
    for name in ("raw.pb", "clean.pb"):
        assert (tmp_path / "kept" / "stats" / name).read_bytes() == (tmp_path / "unkept" / "stats" / name).read_bytes()


_CELLS = st.one_of(
    st.just(""), st.just(" "), st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e400", "abc", "1,5", "N/A"]),
    st.integers(-(2 ** 63), 2 ** 63 - 1).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(41.0, 42.0).map(lambda v: f"{v:.6f}"),  # offset, like a latitude
    st.integers(1_400_000_000, 1_500_000_000).map(str),  # epoch seconds
    st.text(alphabet="abcxyz ", min_size=1, max_size=6))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.lists(_CELLS, min_size=1, max_size=12), min_size=3, max_size=3), min_size=1,
                max_size=6))
def test_kinds_inferred_together_equal_each_file_inferred_alone(files):
    samples = []
    for columns in files:
        n = min(len(c) for c in columns)
        arrays = [pa.array([None if c.strip() == "" else c for c in col[:n]], pa.string()) for col in columns]
        samples.append(pa.RecordBatch.from_arrays(arrays, ["a", "b", "v"]))
    together = sample_kinds(samples, frozenset({"v"}))
    assert together == [sample_kinds([s], frozenset({"v"}))[0] for s in samples]
    assert together == [{"a": _alone(s.column(0)), "b": _alone(s.column(1)), "v": "float_list"} for s in samples]


def _alone(column: pa.Array):
    """The kind one column's sample takes by itself (None: no value yet)."""
    return None if column.null_count == len(column) else infer_kind(column)


def test_kinds_of_many_small_files_agree_with_the_sequential_rules(tmp_path):
    # file 0: ints; file 1: a decimal in the same column (-> float); file 2: the column empty (stays open);
    # 70 more files so that the files span two inference chunks
    src = tmp_path / "k"
    src.mkdir()
    (src / "f000.csv").write_text("n,city,ts\n1,Chicago,1400000000\n2,Evanston,1400000060\n")
    (src / "f001.csv").write_text("n,city,ts\n3.5,Chicago,1400000120\n4,Skokie,1400000180\n")
    (src / "f002.csv").write_text("n,city,ts\n,Chicago,1400000240\n,,1400000300\n")
    for i in range(3, 73):
        (src / f"f{i:03d}.csv").write_text(f"n,city,ts\n{i},Oak Park,{1_400_000_000 + i}\n")
    plan = planning.plan_inputs((str(src / "*.csv"),))
    assert planning.INFER_TOGETHER < 73
    assert dict(plan.kinds) == {"n": "float", "city": "string", "ts": "int"}


def test_a_text_column_in_one_small_file_is_still_named_with_both_files(tmp_path):
    src = tmp_path / "t"
    src.mkdir()
    (src / "a.csv").write_text("x,y\n1.5,0\n2.5,1\n")
    (src / "b.csv").write_text("x,y\nred,0\nblue,1\n")
    with pytest.raises(Exception, match=r"column 'x' is float in .*a\.csv but string in .*b\.csv"):
        planning.plan_inputs((str(src / "*.csv"),))


def test_an_unreadable_file_comes_after_the_drift_of_an_earlier_file(tmp_path):
    src = tmp_path / "d"
    src.mkdir()
    (src / "a.csv").write_text("x,y\n1,0\n")
    (src / "b.csv").write_text("x,z\n1,0\n")  # drift: raised first, as a sequential loop would
    (src / "c.csv").write_bytes(b"\xff\xfe" + "x,y\n".encode("utf-16-le"))
    with pytest.raises(Exception, match="b.csv: columns differ from"):
        planning.plan_inputs((str(src / "*.csv"),))


def test_row_groups_of_every_size_read_back_as_their_rows_in_full_batches(tmp_path):
    """A row group of one batch's rows or fewer is read whole, a larger one streamed: either way the unit's
    batches are its rows, in order, in batches of PARQUET_BATCH_ROWS but the last."""
    from pipeline.inputs.formats import PARQUET_BATCH_ROWS, raw_batches
    table = trips(PARQUET_BATCH_ROWS + 4_500, seed=9)
    path = str(tmp_path / "trips.parquet")
    sizes = [PARQUET_BATCH_ROWS + 3_000, 1_000, 500]  # streamed; read whole; read whole
    with pq.ParquetWriter(path, table.schema) as writer:
        start = 0
        for size in sizes:
            writer.write_table(table.slice(start, size), row_group_size=size)
            start += size
    pf = pq.ParquetFile(path)
    assert [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)] == sizes
    for i, size in enumerate(sizes):
        batches = list(raw_batches("parquet", path, tuple(table.schema.names), (i,)))
        assert [b.num_rows for b in batches] == ([PARQUET_BATCH_ROWS, 3_000] if i == 0 else [size])
        assert pa.Table.from_batches(batches).equals(pf.read_row_group(i))
