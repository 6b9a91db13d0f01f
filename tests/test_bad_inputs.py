"""The bad-input catalogue: each case is a real file run through the CLI, with its expected outcome.

Either the rows are quarantined with the named reason (and the run's exit code is the gate's), or the run
exits 2 with one line naming the file, line or column, what is wrong and how to fix it, and no traceback.
"""
import glob
import gzip
import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from pipeline.cli import main

pytestmark = pytest.mark.slow


def csv(text, name="in.csv", encoding="utf-8"):
    def make(d):
        path = d / name
        path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
        return [str(path)]
    return make


def parquet(table_or_df, name="in.parquet"):
    def make(d):
        path = str(d / name)
        t = table_or_df if isinstance(table_or_df, pa.Table) else pa.Table.from_pandas(table_or_df,
                                                                                     preserve_index=False)
        pq.write_table(t, path)
        return [path]
    return make


def examples(rows, name="in.tfrecord"):
    def make(d):
        path = str(d / name)
        with tf.io.TFRecordWriter(path) as w:
            for row in rows:
                feats = {}
                for k, v in row.items():
                    if isinstance(v, float):
                        feats[k] = tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
                    elif isinstance(v, int):
                        feats[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
                    else:
                        feats[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
                w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
        return [path]
    return make


GOOD = "x,y\n" + "".join(f"{i * 0.1},{i % 2}\n" for i in range(50))


def _bad_crc(d):
    path = examples([{"x": float(i)} for i in range(20)])(d)[0]
    data = bytearray(open(path, "rb").read())
    data[30] ^= 0xFF  # inside the first record's payload: its data CRC no longer matches
    open(path, "wb").write(bytes(data))
    return [path]


def _truncated_parquet(d):
    path = parquet(pd.DataFrame({"x": np.arange(1000.0)}))(d)[0]
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    return [path]


def _gzip_csv(d):
    path = d / "in.csv.gz"
    path.write_bytes(gzip.compress(GOOD.encode()))
    return [str(path)]


def _drift(d):
    (d / "a.csv").write_text("x,y\n1,0\n2,1\n")
    (d / "b.csv").write_text("x,z\n1,0\n2,1\n")
    return [str(d / "*.csv")]


def _type_drift(d):
    (d / "a.csv").write_text("x,y\n1.5,0\n2.5,1\n")
    (d / "b.csv").write_text("x,y\nred,0\nblue,1\n")
    return [str(d / "*.csv")]


def _tfexample_type_conflict(d):
    return examples([{"x": 1.0, "y": 0}] * 5 + [{"x": "one", "y": 1}])(d)


def _wide(d):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(200, 1000)), columns=[f"c{i}" for i in range(1000)])
    df.iloc[3, 17] = np.nan
    return parquet(df)(d)


def _unreadable(d):
    os.symlink(d / "nowhere.csv", d / "broken.csv")
    return [str(d / "broken.csv")]


def _dir_named_csv(d):
    (d / "data.csv").mkdir()
    (d / "data.csv" / "x").write_text("1")
    return [str(d / "data.csv")]


def _big_ints(d):
    return csv("x,y\n" + "".join(f"{2 ** 53 + i},{i % 2}\n" for i in range(20)))(d)


E2 = 2
# name: (make inputs, extra args, expected exit, substrings of stderr (exit 2) or quarantine reasons (else))
CASES = {
    "empty file": (csv(""), [], E2, ["in.csv", "empty"]),
    "header only": (csv("x,y\n"), [], E2, ["in.csv", "no data rows"]),
    "glob matching nothing": (lambda d: [str(d / "*.csv")], [], E2, ["matches no file", "quote globs"]),
    "broken symlink (unreadable)": (_unreadable, [], E2, ["broken.csv"]),
    "directory named like a file": (_dir_named_csv, [], E2, ["is a directory"]),
    "truncated parquet": (_truncated_parquet, [], E2, ["in.parquet", "Parquet"]),
    "corrupt parquet": (csv(b"PAR1 this is not parquet at all PAR1", "in.parquet"), [], E2, ["in.parquet"]),
    "tfrecord with a bad crc": (_bad_crc, [], E2, ["in.tfrecord", "corrupt"]),
    "gzip csv": (_gzip_csv, [], 0, []),
    "utf-8 bom": (csv("\ufeffx,y\n1.0,0\n2.0,1\n"), [], 0, []),
    "non-utf-8 bytes": (csv("x,name\n1.0,caf\xe9\n2.0,ok\n", encoding="latin-1"), [], E2, ["in.csv", "UTF-8"]),
    "quoted field with newline": (csv('x,note\n1.0,"two\nlines"\n2.0,plain\n'), [], 0, []),
    "too few fields": (csv("x,y\n1.0,0\n2.0\n3.0,1\n"), [], E2, ["in.csv", "fields"]),
    "too many fields": (csv("x,y\n1.0,0\n2.0,1,9\n"), [], E2, ["in.csv", "fields"]),
    "abc in a numeric column": (csv("x,y\n" + "1.5,0\n" * 30 + "abc,1\n"), [], 1, ["unparseable:x"]),
    "comma decimal": (csv('x,y\n' + "1.5,0\n" * 30 + '"1,5",1\n'), [], 1, ["unparseable:x"]),
    "NaN inf -Infinity 1e400": (csv("x,y\n" + "1.5,0\n" * 30 + "NaN,1\ninf,0\n-Infinity,1\n1e400,0\n"), [], 1,
                                ["nan:x", "pos_inf:x", "neg_inf:x"]),
    "empty and whitespace fields": (csv("x,y\n" + "1.5,0\n" * 30 + ",1\n   ,0\n"), [], 1, ["missing:x"]),
    "ints beyond 2^53": (_big_ints, [], 0, []),
    "float64 beyond float32": (csv("x,y\n" + "1.5,0\n" * 30 + "1e39,1\n"), [], 1, ["float32_overflow:x"]),
    "subnormals": (csv("x,y\n" + "".join(f"{v},0\n" for v in [1e-310, 5e-324, 1.0, 2.0] * 5)), [], 0, []),
    "all-NaN column": (csv("x,y\n" + "NaN,0\n" * 10), [], 1, ["nan:x"]),
    "all-null column": (parquet(pa.table({"x": pa.array([None] * 10, pa.float64()),
                                          "y": pa.array(range(10))})), [], 0, []),  # left out, reported
    "constant column": (csv("x,y\n" + "3.0,0\n" * 20), [], 0, []),
    "single row": (csv("x,y\n1.0,0\n"), [], 0, []),
    "every row bad (0 clean rows)": (csv("x,y\n" + "inf,0\n" * 10), [], 1, ["pos_inf:x"]),
    "duplicate column names": (csv("x,x\n1,2\n"), [], E2, ["duplicate column", "'x'"]),
    "column named __reasons": (csv("x,__reasons\n1,2\n"), [], E2, ["__reasons", "rename"]),
    "label column missing": (csv(GOOD), ["--label", "nope:binary"], E2, ["--label nope", "no such column"]),
    "label of the wrong kind": (csv("x,y\n1.0,a\n2.0,b\n"), ["--label", "y:binary"], E2,
                                ["--label y", "string"]),
    "label values invalid for the kind": (csv("x,y\n" + "1.0,0\n" * 20 + "2.0,3\n"), ["--label", "y:binary"], 1,
                                          ["label_binary:y"]),
    "schema drift across files": (_drift, [], E2, ["b.csv: columns differ from", "a.csv", "has z", "lacks y"]),
    "type drift across files": (_type_drift, [], E2, ["column 'x'", "a.csv", "b.csv"]),
    "tf.Example feature with two types": (_tfexample_type_conflict, [], E2, ["in.tfrecord", 'feature "x"',
                                                                            "same type"]),
    "unicode column names": (csv("größe,ціна,y\n1.0,2.0,0\n3.0,4.0,1\n"), [], 0, []),
    "1000-column table": (_wide, [], 1, ["missing:c17"]),  # pandas writes NaN to Parquet as null
    "--num-shards 0": (csv(GOOD), ["--num-shards", "0"], E2, ["--num-shards 0"]),
    "--statistics-columns 0": (csv(GOOD), ["--statistics-columns", "0"], E2,
                               ["--statistics-columns 0", "whole number >= 1"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, tmp_path, capsys):
    make, extra, code, expected = CASES[name]
    data = tmp_path / "data"
    data.mkdir()
    inputs = make(data)
    out = tmp_path / "out"
    args = ["run", "--output", str(out), "--quiet"] + [a for p in inputs for a in ("--input", p)] + extra
    got = main(args)
    err = capsys.readouterr().err
    assert got == code, err
    assert "Traceback" not in err
    if code == E2:
        assert err.startswith("nanguard: error: ") and err.count("\n") == 1, err
        for s in expected:
            assert s in err, (s, err)
        assert not os.path.exists(out / "report.json")
        return
    report = json.load(open(out / "report.json"))
    counts = report["counts"]
    assert counts["input_rows"] == counts["clean_rows"] + counts["quarantined_rows"]
    for reason in expected:
        assert counts["by_rule"].get(reason, 0) > 0, (reason, counts["by_rule"])
    if expected:  # the original values are kept in the quarantine file
        q = pq.read_table(os.path.join(out, report["outputs"]["quarantine"][0]["path"]))
        assert q.num_rows == counts["quarantined_rows"]


def test_output_that_is_a_file_or_not_writable(tmp_path, capsys):
    src = csv(GOOD)(tmp_path)[0]
    assert main(["run", "--input", src, "--output", src, "--quiet"]) == E2
    assert "is a file" in capsys.readouterr().err
    assert main(["run", "--input", src, "--output", "/proc/nanguard-out", "--quiet"]) == E2
    assert "--output /proc/nanguard-out" in capsys.readouterr().err


def test_unparseable_text_is_kept_verbatim(tmp_path):
    src = csv("x,y\n" + "1.5,0\n" * 30 + "abc,1\n")(tmp_path)[0]
    out = tmp_path / "out"
    assert main(["run", "--input", src, "--output", str(out), "--quiet",
                 "--max-quarantine-fraction", "0.5"]) == 0
    report = json.load(open(out / "report.json"))
    q = pq.read_table(os.path.join(out, report["outputs"]["quarantine"][0]["path"]))
    assert json.loads(q.column("__unparseable")[0].as_py()) == {"x": "abc"}
    assert report["features"]["x"]["kind"] == "float"  # one bad cell does not make the column text



def test_a_blank_line_in_a_one_column_csv_is_a_missing_value_not_a_lost_row(tmp_path):
    lines = ["" if i % 10 == 9 else f"{41.88 + i / 1000:.4f}" for i in range(50)]  # rows 9, 19, ... are blank
    src = csv("lat\n" + "\n".join(lines) + "\n")(tmp_path)[0]
    out = tmp_path / "out"
    assert main(["run", "--input", src, "--output", str(out), "--quiet", "--max-quarantine-fraction", "1"]) == 0
    counts = json.load(open(out / "report.json"))["counts"]
    assert (counts["input_rows"], counts["quarantined_rows"], counts["by_rule"]) == (50, 5, {"missing:lat": 5})
    q = pq.read_table(next(iter(glob.glob(str(out / "quarantine" / "*.parquet")))))
    assert q.column("__row_index").to_pylist() == [9, 19, 29, 39, 49]  # data row numbers, as in the file


def test_a_separator_other_than_comma_is_sniffed_or_given(tmp_path):
    rows = "".join(f"{41.88 + i / 1e4:.4f};{1.4e9 + i:.0f};Flash Cab;{i % 2}\n" for i in range(40))
    for name, text, extra in (("semi.csv", "lat;ts;company;y\n" + rows + "inf;1400000000;Sun Taxi;1\n", []),
                              ("tab.csv", ("lat;ts;company;y\n" + rows).replace(";", "\t"), ["--delimiter", "tab"])):
        src = csv(text, name)(tmp_path)[0]
        out = tmp_path / f"out-{name}"
        main(["run", "--input", src, "--output", str(out), "--quiet", "--label", "y:binary"] + extra)
        report = json.load(open(out / "report.json"))
        assert list(report["features"]) == ["lat", "ts", "company", "y"]  # not one text column per row
        assert report["features"]["company"]["kind"] == "string" and report["features"]["ts"]["kind"] == "int"
        assert report["counts"]["by_rule"] == ({"pos_inf:lat": 1} if name == "semi.csv" else {})


def test_column_kinds_do_not_depend_on_where_in_the_file_a_value_sits(tmp_path):
    """Past the first MB (the sample): an integer column meets 0.5, a column empty so far meets numbers and inf,
    and a numeric column meets a stray word. Numbers stay numbers; only the real faults are quarantined."""
    n = 60_000  # ~1.6 MB of CSV
    lines = [f"{41.88 + (i % 997) / 1e4:.4f},{i},,{i % 2}" for i in range(n)]
    lines += ["41.8800,0.5,2.5,1", "41.8800,7,inf,0", "41.8800,+8,+3.5,1", "abc,9,1.5,0"]
    src = csv("lat,count,later,y\n" + "\n".join(lines) + "\n")(tmp_path)[0]
    out = tmp_path / "out"
    assert main(["run", "--input", src, "--output", str(out), "--quiet", "--label", "y:binary"]) == 1
    report = json.load(open(out / "report.json"))
    kinds = {k: f["kind"] for k, f in report["features"].items()}
    assert kinds == {"lat": "float", "count": "float", "later": "float", "y": "int"}
    # every row of 'later' but four is empty: missing, and the gate fails on them; 0.5 and +8 are numbers
    assert report["counts"]["by_rule"]["pos_inf:later"] == 1 and report["counts"]["by_rule"]["unparseable:lat"] == 1
    assert "unparseable:count" not in report["counts"]["by_rule"]
    assert report["features"]["count"]["raw"]["max"] == n - 1 and report["features"]["count"]["raw"]["min"] == 0


def _parquet_of(column: pa.Array):
    return parquet(pa.table({"x": column, "y": pa.array(np.arange(len(column)) % 2)}))


PARQUET_TYPES = {
    "uint64 above 2^63": (_parquet_of(pa.array([2**63 + 5] * 20, pa.uint64())), E2,
                          ["column 'x' holds unsigned values above 2^63-1", "cast it"]),
    "uint64 within int64": (_parquet_of(pa.array([2**62] * 20, pa.uint64())), 0, []),
    "duration": (_parquet_of(pa.array([1000, 2000] * 10, pa.duration("s"))), 0, []),
    "non-UTF-8 binary": (_parquet_of(pa.array([b"\xff\xfe"] * 20, pa.binary())), E2, ["not UTF-8 text"]),
    "fixed_size_binary": (_parquet_of(pa.array([b"ab"] * 20, pa.binary(2))), 0, []),
    "fixed_size_list": (_parquet_of(pa.array([[1.0, 2.0]] * 20, pa.list_(pa.float64(), 2))), 0, []),
    "csv.gz that is not gzip": (csv("x,y\n1,0\n2,1\n", "in.csv.gz"), E2, ["not a readable gzip file"]),
    "UTF-16 csv": (csv("x,y\n" + "1.5,0\n" * 20, encoding="utf-16"), E2, ["UTF-16 text", "iconv -f UTF-16"]),
    "file name with glob brackets": (csv("x,y\n" + "1.5,0\n" * 20, "data[1].csv"), 0, []),
}


@pytest.mark.parametrize("name", list(PARQUET_TYPES))
def test_unusual_column_types_read_or_refuse_in_one_line(name, tmp_path, capsys):
    make, code, expected = PARQUET_TYPES[name]
    inputs = make(tmp_path)
    out = tmp_path / "out"
    got = main(["run", "--output", str(out), "--quiet", "--input", inputs[0]])
    err = capsys.readouterr().err
    assert got == code, err
    assert "Traceback" not in err and "[nanguard]" not in err and "while running" not in err
    for s in expected:
        assert s in err, (s, err)
    if code == 0:
        report = json.load(open(out / "report.json"))
        assert report["counts"]["input_rows"] == report["counts"]["clean_rows"] == 20


@pytest.mark.parametrize("args, message", [
    (["run", "--input", "{csv}", "--output", "{out}", "--num-shards", "1000000000"], "--num-shards 1000000000"),
    (["demo", "--rows", "0", "--output", "{out}"], "--rows 0"),
    (["demo", "--rows", "-5", "--output", "{out}"], "--rows -5"),
    (["run", "--input", "{csv}", "--output", "{out}", "--", "--runner=Bogus"], "--runner=Bogus: not a Beam runner"),
    (["run", "--input", "{csv}", "--output", "{out}", "--", "--direct_num_workers=abc"],
     "--direct_num_workers: invalid int value: 'abc'"),
    (["run", "--input", "{csv}", "--output", "{out}", "--suite", "/dev/zero"], "--suite /dev/zero: cannot read it"),
    (["run", "--input", "{csv}", "--output", "{out}", "--suite", "{nested}"], "nested too deeply"),
    (["run", "--input", "{csv}", "--output", "{out}", "--suite", "{ranges}"], "value_ranges[] must be a number"),
    (["gate", "{nested}"], "not a readable report (JSON nested too deeply)"),
])
def test_odd_flags_and_files_are_one_line_exit_2(tmp_path, capsys, args, message):
    src = csv(GOOD)(tmp_path)[0]
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    ranges = tmp_path / "ranges.json"
    ranges.write_text(json.dumps({"name": "s", "expectations": [{
        "type": "expect_column_quantile_values_to_be_between",
        "kwargs": {"column": "x", "quantile_ranges": {"quantiles": [0.5], "value_ranges": [["a", "b"]]}}}]}))
    args = [a.format(csv=src, out=tmp_path / "out", nested=nested, ranges=ranges) for a in args]
    assert main(args) == E2
    err = capsys.readouterr().err
    assert err.startswith("nanguard: error: ") and err.count("\n") == 1 and message in err, err


def _late_feature(d):
    rows = [{"lat": 41.88 + i / 1e4, "y": i % 2} for i in range(2500)]
    rows[2400]["fare"] = float("nan")  # first seen after the 2000 records the schema is inferred from
    return examples(rows)(d)


def _sequence_examples(d):
    path = str(d / "in.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for i in range(10):
            s = tf.train.SequenceExample()
            s.context.feature["y"].int64_list.value.append(i % 2)
            s.feature_lists.feature_list["speed"].feature.add().float_list.value.append(float("inf"))
            w.write(s.SerializeToString())
    return [path]


TFRECORD_CASES = {
    "a feature first seen after the schema sample": (_late_feature, ["feature the records the schema was inferred",
                                                                     "'fare'"]),
    "tf.SequenceExample records": (_sequence_examples, ["tf.SequenceExample", "speed"]),
}


@pytest.mark.parametrize("name", list(TFRECORD_CASES))
def test_tfrecord_features_nanguard_would_not_check_are_refused(name, tmp_path, capsys):
    make, expected = TFRECORD_CASES[name]
    src = make(tmp_path)[0]
    assert main(["run", "--input", src, "--output", str(tmp_path / "out"), "--quiet"]) == E2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for s in expected:
        assert s in err, (s, err)


def test_a_tf_example_feature_with_no_kind_reads_as_missing(tmp_path):
    path = str(tmp_path / "in.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for i in range(20):
            f = {"y": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2])), "note": tf.train.Feature()}
            w.write(tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString())
    out = tmp_path / "out"
    assert main(["run", "--input", path, "--output", str(out), "--quiet", "--label", "y:binary"]) == 0
    report = json.load(open(out / "report.json"))
    assert report["counts"]["input_rows"] == 20 and report["features"]["note"]["raw"]["missing"] == 20


def test_quarantined_rows_keep_each_columns_original_type_and_value(tmp_path):
    import datetime
    import decimal
    n = 50
    lat = np.full(n, 41.88)
    lat[[7, 30]] = [np.nan, np.inf]
    table = pa.table({
        "fare": pa.array([decimal.Decimal("7.1"), decimal.Decimal("12.35")] * (n // 2), pa.decimal128(10, 2)),
        "pickup": pa.array([datetime.datetime(2024, 1, 1, 12, 0, i, tzinfo=datetime.timezone.utc) for i in range(n)],
                           pa.timestamp("us", tz="UTC")),
        "lat": lat, "trip_id": pa.array(np.arange(2**40, 2**40 + n), pa.int64()),
        "seats": pa.array(np.arange(n) % 4, pa.int32()), "y": np.arange(n) % 2})
    src = parquet(table)(tmp_path)[0]
    out = tmp_path / "out"
    assert main(["run", "--input", src, "--output", str(out), "--quiet", "--max-quarantine-fraction", "1"]) == 0
    q = pq.read_table(next(iter(glob.glob(str(out / "quarantine" / "*.parquet")))))
    for name in ("fare", "pickup"):  # types the unified one cannot hold as they are
        assert q.schema.field(name).type == table.schema.field(name).type, name
    rows = q.column("__row_index").to_pylist()
    assert rows == [7, 30]
    assert q.column("fare").to_pylist() == [table.column("fare")[r].as_py() for r in rows]  # Decimal, not float
    for name in ("pickup", "trip_id", "seats"):
        assert q.column(name).to_pylist() == [table.column(name)[r].as_py() for r in rows], name
    assert json.load(open(out / "report.json"))["counts"]["clean_rows"] == n - 2
