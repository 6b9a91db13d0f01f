"""The CLI end to end on real files: a 20k-row table with planted faults in Parquet, CSV and TFRecord."""
import glob
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from pipeline.cli import main
from pipeline.demo_data import LABELS, make_table, write_table

ROWS = 20_000
FAULTS = 2  # per planted kind
FORMATS = {"parquet": "train.parquet", "csv": "train.csv", "tfrecord": "train.tfrecord"}


@pytest.fixture(scope="module")
def planted():
    return make_table(ROWS, faults_per_kind=FAULTS, seed=11)  # 20 bad rows: 0.1%


@pytest.fixture(scope="module", params=list(FORMATS))
def run_output(request, planted, tmp_path_factory):
    fmt = request.param
    base = tmp_path_factory.mktemp(fmt)
    path = str(base / FORMATS[fmt])
    write_table(planted.table, path, fmt)
    out = str(base / "out")
    args = ["run", "--input", path, "--output", out, "--num-shards", "3", "--max-quarantine-fraction", "0.002"]
    for label in LABELS:
        args += ["--label", label]
    code = main(args)
    return fmt, out, code


def read_shards(out):
    spec = json.load(open(os.path.join(out, "feature_spec.json")))
    features = {k: tf.io.FixedLenFeature(v["shape"], v["dtype"]) for k, v in spec.items()}
    files = sorted(glob.glob(os.path.join(out, "data", "*.tfrecord.gz")))
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(50_000).map(
        lambda x: tf.io.parse_example(x, features))
    parts = list(ds.as_numpy_iterator())
    return {k: np.concatenate([p[k] for p in parts]) for k in features}


@pytest.mark.slow
def test_quarantine_is_exactly_the_planted_rows_with_their_reasons(run_output, planted):
    fmt, out, code = run_output
    assert code == 0
    report = json.load(open(os.path.join(out, "report.json")))
    q = pq.read_table(glob.glob(os.path.join(out, "quarantine", "*.parquet"))[0])
    got = dict(zip(q.column("__row_index").to_pylist(), map(set, q.column("__reasons").to_pylist())))
    assert got == planted.expected_reasons(fmt)
    assert report["counts"] == {"input_rows": ROWS, "clean_rows": ROWS - len(planted.bad_rows),
                                "quarantined_rows": len(planted.bad_rows), "by_rule": report["counts"]["by_rule"],
                                "repaired": {}, "warned": {}}
    assert all(report["reconciliation"].values()) and report["anomalies"] == [] and report["passed"]
    # originals kept verbatim: the NaN, Inf and 1e39 are in the quarantine file
    f0 = q.column("f0").to_numpy()
    assert np.isnan(f0).sum() == FAULTS and (f0 == (np.inf if fmt == "tfrecord" else 1e39)).sum() == FAULTS
    assert set(q.column("__source_file").to_pylist()) == {os.path.join(os.path.dirname(out), FORMATS[fmt])}


@pytest.mark.slow
def test_shards_hold_exactly_the_clean_rows_normalized(run_output, planted):
    fmt, out, _ = run_output
    report = json.load(open(os.path.join(out, "report.json")))
    data = read_shards(out)
    clean = np.ones(ROWS, bool)
    clean[list(planted.bad_row_set)] = False
    assert len(data["f0"]) == clean.sum() == sum(s["rows"] for s in report["outputs"]["shards"])
    for name in ("f0", "f1", "f2", "f3", "f4", "unscaled"):
        assert np.isfinite(data[name]).all()
        assert abs(data[name].mean()) < 1e-3 and abs(data[name].std() - 1) < 1e-3, name
    assert (data["constant"] == 0).all() and report["features"]["constant"]["normalization"]["constant"]
    t = planted.table
    want_prob = np.sort(t.column("label_prob").to_numpy()[clean].astype(np.float32))  # tf.Example is float32
    assert np.array_equal(np.sort(data["label_prob"]), want_prob)
    assert np.array_equal(np.sort(data["label_class"]), np.sort(t.column("label_class").to_numpy()[clean]))
    assert sorted(data["city"].tolist()) == sorted(s.encode() for s in np.array(t.column("city"))[clean])
    # f1 un-normalized equals the original clean values (float32)
    norm = report["features"]["f1"]["normalization"]
    restored = np.sort(data["f1"].astype(np.float64) * norm["scale"] + norm["offset"])
    np.testing.assert_allclose(restored, np.sort(t.column("f1").to_numpy()[clean]), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_every_format_counts_exactly_the_planted_reasons(run_output, planted):
    """Each format matches the same planted truth, so the three formats give identical counts."""
    fmt, out, _ = run_output
    report = json.load(open(os.path.join(out, "report.json")))
    expected = {}
    for reasons in planted.expected_reasons(fmt).values():
        for r in reasons:
            expected[r] = expected.get(r, 0) + 1
    assert dict(report["counts"]["by_rule"]) == expected


@pytest.mark.slow
def test_statistics_count_every_input_row_and_describe_the_clean_rows_in_original_units(run_output):
    import tensorflow_data_validation as tfdv
    _, out, _ = run_output
    report = json.load(open(os.path.join(out, "report.json")))
    counts = report["counts"]
    raw = tfdv.load_stats_binary(os.path.join(out, "stats", "raw.pb")).datasets[0]
    clean = tfdv.load_stats_binary(os.path.join(out, "stats", "clean.pb")).datasets[0]
    assert raw.num_examples == ROWS and clean.num_examples == counts["clean_rows"]
    f0 = next(f.num_stats for f in clean.features if f.path.step == ["f0"])
    exact = report["features"]["f0"]["clean"]
    assert f0.mean == pytest.approx(exact["mean"], rel=1e-9) and f0.max == exact["max"]  # not normalized
    raw_f0 = next(f.num_stats for f in raw.features if f.path.step == ["f0"])
    assert raw_f0.max > 1e30  # the planted overflow is in the raw statistics
    # raw = clean + quarantined: every row's value is counted once
    exact_raw = report["features"]["f0"]["raw"]
    assert raw_f0.common_stats.num_non_missing == exact_raw["count"] - exact_raw["missing"]
    written = report["written"]["f0"]
    assert written["values"] == counts["clean_rows"] and written["nan"] == written["posinf"] == 0
    assert abs(written["min"]) < 10 and abs(written["max"]) < 10  # z-scored, as written


@pytest.mark.slow
def test_gate_threshold_exit_codes_and_gate_command(tmp_path, planted):
    path = str(tmp_path / "small.parquet")
    small = make_table(20_000, faults_per_kind=2, seed=5)  # 20 bad rows = 0.1%
    write_table(small.table, path, "parquet")
    over = str(tmp_path / "over")
    assert main(["run", "--input", path, "--output", over, "--max-quarantine-fraction", "0.0005"]
                + sum([["--label", lab] for lab in LABELS], [])) == 1
    report = json.load(open(os.path.join(over, "report.json")))
    assert report["passed"] is False and "quarantined 0.10% of rows" in report["gate"]["failures"][0]
    assert main(["gate", over]) == 1
    under = str(tmp_path / "under")
    assert main(["run", "--input", path, "--output", under, "--max-quarantine-fraction", "0.002"]
                + sum([["--label", lab] for lab in LABELS], [])) == 0
    assert main(["gate", under]) == 0 and main(["gate", os.path.join(under, "report.json")]) == 0
    assert main(["gate", str(tmp_path / "nowhere")]) == 2
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"schema_version": 1, "passed": True}))
    assert main(["gate", str(broken)]) == 2
    # a non-empty output needs --overwrite; with it the run replaces the outputs
    assert main(["run", "--input", path, "--output", under]) == 2
    assert main(["run", "--input", path, "--output", under, "--overwrite", "--max-quarantine-fraction", "0.002"]
                + sum([["--label", lab] for lab in LABELS], [])) == 0
    assert not [n for n in os.listdir(under) if n.startswith(".nanguard-staging")]


def test_csv_reader_semantics(tmp_path):
    csv = tmp_path / "odd.csv"
    csv.write_text("x,y,t\n1.5,0,a\nNaN,1,b\ninf,0,c\n-Infinity,1,d\n1e400,0,e\n,1,f\nabc,0,g\n 2 ,1,h\n3,1,i\n")
    out = str(tmp_path / "out")
    assert main(["run", "--input", str(csv), "--output", out, "--label", "y:binary",
                 "--max-quarantine-fraction", "1"]) == 0
    q = pq.read_table(os.path.join(out, "quarantine", "quarantine-00000-of-00001.parquet"))
    reasons = dict(zip(q.column("__row_index").to_pylist(), q.column("__reasons").to_pylist()))
    assert reasons == {1: ["nan:x"], 2: ["pos_inf:x"], 3: ["neg_inf:x"], 4: ["pos_inf:x"], 5: ["missing:x"],
                       6: ["missing:x", "unparseable:x"]}
    assert json.loads(q.column("__unparseable").to_pylist()[-1]) == {"x": "abc"}
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["features"]["x"]["raw"]["nan"] == 1 and report["features"]["x"]["raw"]["pos_inf"] == 2
    assert report["features"]["x"]["raw"]["missing"] == 2 and report["features"]["t"]["kind"] == "string"


@pytest.mark.parametrize("args,message", [
    (["--input", "/nonexistent/*.csv"], "matches no file"),
    (["--input", "{csv}", "--label", "nope:binary"], "--label nope: no such column"),
    (["--input", "{csv}", "--label", "t:binary"], "column holds string"),
    (["--input", "{csv}", "--num-shards", "0"], "--num-shards 0"),
    (["--input", "{csv}", "--suite", "{csv}"], "not valid JSON"),
])
def test_bad_usage_exits_2_with_one_line_and_no_traceback(tmp_path, capsys, args, message):
    csv = tmp_path / "a.csv"
    csv.write_text("x,t\n1,a\n2,b\n")
    args = [a.format(csv=csv) for a in args]
    code = main(["run", "--output", str(tmp_path / "o")] + args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("nanguard: error:")
