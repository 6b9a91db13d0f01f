"""The output directory belongs to the user: --overwrite replaces only what nanguard wrote there, a run never
writes where its input lives nor reads its own outputs back, a run that cannot publish leaves the earlier output
whole, and two runs never write into one directory at once. Each case is a real run through the CLI."""
import json
import os
import socket

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.ownership import LOCK, MANIFEST

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trips(tmp_path_factory):
    """200 trips: offset coordinates, epoch seconds, ids, a nullable count, a category, a continuous fare."""
    d = tmp_path_factory.mktemp("trips")
    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame({
        "trip_id": rng.integers(2**40, 2**53, n),
        "start_ts": 1.4e9 + rng.integers(0, 3e7, n),
        "lat": 41.88 + 0.03 * rng.standard_normal(n),
        "lon": -87.63 + 0.03 * rng.standard_normal(n),
        "passengers": pd.array(np.where(rng.random(n) < 0.0, None, rng.integers(1, 5, n)), dtype="Int64"),
        "company": rng.choice(["Flash Cab", "Taxi Affiliation", "Sun Taxi"], n),
        "tipped": rng.integers(0, 2, n),
    })
    path = d / "in" / "trips.csv"
    path.parent.mkdir()
    frame.to_csv(path, index=False)
    return str(path)


def _run(src, out, *extra):
    return main(["run", "--input", src, "--output", str(out), "--label", "tipped:binary", "--quiet", *extra])


def test_overwrite_leaves_files_nanguard_did_not_write(trips, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(trips, out) == 0
    user = {"stats/q3_summary.csv": "q,v\n", "quarantine/escalations.txt": "call Ana\n", "data/holdout.csv": "x\n"}
    for rel, text in user.items():
        (out / rel).write_text(text)
    suite = json.loads((out / "suite.json").read_text())
    suite["source"] = "hand-edited"
    (out / "suite.json").write_text(json.dumps(suite))
    report_before = (out / "report.json").read_bytes()
    capsys.readouterr()
    assert _run(trips, out, "--overwrite") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--overwrite replaces only what nanguard wrote" in err
    for rel in list(user) + ["suite.json"]:
        assert rel in err
    for rel, text in user.items():
        assert (out / rel).read_text() == text  # nothing of the user's deleted
    assert json.loads((out / "suite.json").read_text())["source"] == "hand-edited"
    assert (out / "report.json").read_bytes() == report_before  # the earlier output is whole


def test_overwrite_replaces_its_own_outputs_and_keeps_a_users_file_beside_them(trips, tmp_path):
    out = tmp_path / "out"
    assert _run(trips, out, "--num-shards", "4") == 0
    (out / "NOTES.md").write_text("my notes\n")
    assert _run(trips, out, "--overwrite", "--num-shards", "2") == 0
    assert sorted(os.listdir(out / "data")) == ["part-00000-of-00002.tfrecord.gz", "part-00001-of-00002.tfrecord.gz"]
    assert (out / "NOTES.md").read_text() == "my notes\n"
    manifest = json.loads((out / MANIFEST).read_text())["files"]
    assert "NOTES.md" not in manifest and "report.json" in manifest and "data/part-00001-of-00002.tfrecord.gz" in manifest
    assert not (out / LOCK).exists()
    assert _run(trips, out, "--overwrite", "--num-shards", "2") == 0  # and again: its own files stay replaceable


def test_an_output_directory_holding_the_input_is_refused(trips, tmp_path, capsys):
    proj = tmp_path / "proj"
    (proj / "data").mkdir(parents=True)
    src = proj / "data" / "train.csv"
    src.write_bytes(open(trips, "rb").read())
    (proj / "README").write_text("read me\n")
    assert _run(str(src), proj, "--overwrite") == 2
    assert "holds the input file" in capsys.readouterr().err
    assert src.read_bytes() == open(trips, "rb").read() and (proj / "README").read_text() == "read me\n"


def test_a_rerun_does_not_read_its_own_outputs_back(tmp_path, capsys):
    proj = tmp_path / "proj"
    (proj / "in").mkdir(parents=True)
    rng = np.random.default_rng(2)
    pd.DataFrame({"lat": 41.88 + 0.03 * rng.standard_normal(200), "y": rng.integers(0, 2, 200)}).to_parquet(
        proj / "in" / "a.parquet", index=False)
    pattern = str(proj) + "/**.parquet"  # also reaches out/quarantine/*.parquet after the first run
    out = proj / "out"
    for _ in range(2):
        assert main(["run", "--input", pattern, "--output", str(out), "--label", "y:binary", "--overwrite"]) == 0
        report = json.loads((out / "report.json").read_text())
        assert report["counts"]["input_rows"] == 200 and report["run"]["files"] == 1
    assert "left out 5 file(s) nanguard wrote" in capsys.readouterr().err  # the quarantine file, 4 shard indexes


def test_a_file_matched_by_two_patterns_is_read_once(trips, tmp_path):
    out = tmp_path / "out"
    again = os.path.join(os.path.dirname(trips), ".", os.path.basename(trips))
    assert main(["run", "--input", trips, "--input", again, "--input", os.path.dirname(trips) + "/*.csv",
                 "--output", str(out), "--label", "tipped:binary", "--quiet"]) == 0
    assert json.loads((out / "report.json").read_text())["counts"]["input_rows"] == 200


def test_a_symlinked_output_folder_is_refused_before_anything_is_removed(trips, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(trips, out) == 0
    elsewhere = tmp_path / "elsewhere"
    os.rename(out / "data", elsewhere)
    os.symlink(elsewhere, out / "data")
    report_before = (out / "report.json").read_bytes()
    capsys.readouterr()
    assert _run(trips, out, "--overwrite") == 2
    err = capsys.readouterr().err
    assert "data (a symbolic link)" in err and "Traceback" not in err
    assert (out / "report.json").read_bytes() == report_before and len(os.listdir(elsewhere)) == 4


def test_a_second_run_into_a_directory_being_written_exits_2_naming_the_first(trips, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    holder = os.getppid()  # a live process on this host, as a running first run would be
    (out / LOCK).write_text(json.dumps({"pid": holder, "host": socket.gethostname(), "since": "2026-11-28T10:00:00Z"}))
    assert _run(trips, out, "--overwrite") == 2
    err = capsys.readouterr().err
    assert f"another nanguard run is writing there (pid {holder} on {socket.gethostname()}" in err
    assert not (out / "report.json").exists() and (out / LOCK).exists()  # the first run's lock is left alone


def test_the_lock_of_a_killed_run_is_taken_over(trips, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = 2**22 + 12345  # above the default pid_max: no process has it
    (out / LOCK).write_text(json.dumps({"pid": dead, "host": socket.gethostname(), "since": "2026-11-28T10:00:00Z"}))
    assert _run(trips, out, "--overwrite") == 0
    assert json.loads((out / "report.json").read_text())["passed"] and not (out / LOCK).exists()


def test_an_output_written_before_manifests_existed_is_still_replaceable_and_a_later_edit_is_not(trips, tmp_path,
                                                                                                capsys):
    out = tmp_path / "out"
    assert _run(trips, out) == 0
    os.remove(out / MANIFEST)  # as an earlier nanguard left it
    assert _run(trips, out, "--overwrite") == 0  # its own files, vouched for by its report
    os.remove(out / MANIFEST)
    edited = out / "normalization.json"
    later = os.stat(out / "report.json").st_mtime + 3600
    os.utime(edited, (later, later))  # edited by hand an hour after the run
    capsys.readouterr()
    assert _run(trips, out, "--overwrite") == 2
    assert "normalization.json" in capsys.readouterr().err
