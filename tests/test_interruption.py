"""Interruption: SIGINT/SIGTERM stop cleanly (130/143, staging removed, no report); SIGKILL at any point leaves
no report that says passed and nothing load_dataset accepts; a rerun with --overwrite succeeds."""
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.training.dataset import GateNotPassedError, load_dataset
from pipeline.report.gate import read_report

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from benchmarks.data import LABELS, MISSING, PASSTHROUGH, write_table  # noqa: E402

pytestmark = pytest.mark.slow
NANGUARD = os.path.join(os.path.dirname(sys.executable), "nanguard")


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("interrupt") / "train.parquet")
    write_table(path, 300_000)  # long enough (~10 s) to be interrupted in the middle
    return path


def _start(src, out, overwrite=False):
    args = [NANGUARD, "run", "--input", src, "--output", out, "--max-quarantine-fraction", "0.01"]
    for label in LABELS:
        args += ["--label", label]
    for policy in MISSING:
        args += ["--missing", policy]
    for column in PASSTHROUGH:
        args += ["--passthrough", column]
    if overwrite:
        args.append("--overwrite")
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _staging(out):
    return [n for n in os.listdir(out) if n.startswith(".nanguard-staging-")] if os.path.isdir(out) else []


def _wait_for_staging(proc, out, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _staging(out) and os.path.isdir(os.path.join(out, _staging(out)[0], "_tmp")):
            return  # the pipeline is writing
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run never started writing")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_stop_cleanly_and_a_rerun_succeeds(big_input, tmp_path, sig, code):
    out = str(tmp_path / "out")
    proc = _start(big_input, out)
    _wait_for_staging(proc, out)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "staging files removed" in err and "Traceback" not in err
    assert _staging(out) == [] and not os.path.exists(os.path.join(out, "report.json"))
    rerun = _start(big_input, out, overwrite=True)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    assert read_report(out)["passed"]


def test_sigkill_at_any_point_never_leaves_a_passing_report_for_an_unfinished_run(big_input, tmp_path):
    out = str(tmp_path / "out")
    for delay in (0.0, 2.0, 5.0):  # while reading, while writing shards, near the end
        proc = _start(big_input, out, overwrite=True)
        _wait_for_staging(proc, out)
        time.sleep(delay)
        proc.kill()
        proc.wait(timeout=60)
        report_path = os.path.join(out, "report.json")
        if os.path.exists(report_path):  # only a run that published everything leaves a report
            report = read_report(out)
            assert report["passed"] and report["counts"]["input_rows"] == 300_000
            load_dataset(out, 4096)  # its shards all match their SHA-256
        else:
            with pytest.raises(GateNotPassedError, match="no report.json"):
                load_dataset(out, 4096, allow_failed=True)
    rerun = _start(big_input, out, overwrite=True)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    assert _staging(out) == []  # the killed runs' staging directories were swept
    assert sum(1 for _ in load_dataset(out, 100_000).unbatch().batch(100_000)) >= 1
