"""Progress on stderr: counter files summed exactly across workers, text or JSON lines, --quiet."""
import io
import json
import time

import numpy as np
import pandas as pd
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline.cli import main
from pipeline.progress import Log, Monitor, ProgressSink, read_progress
from pipeline.stages.read import ReadBatches
from pipeline.inputs.plan import plan_inputs

ROWS = 30_000


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    base = tmp_path_factory.mktemp("progress")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=ROWS), "y": rng.integers(0, 2, size=ROWS)})
    df.loc[[5, 77], "a"] = np.nan
    paths = []
    for i in range(3):  # three files: three read units, each its own progress writer on a parallel runner
        path = str(base / f"part{i}.parquet")
        df.iloc[i * ROWS // 3:(i + 1) * ROWS // 3].to_parquet(path, row_group_size=4000)
        paths.append(path)
    return base, paths


def test_progress_files_sum_to_the_rows_read(table, tmp_path):
    _, paths = table
    plan = plan_inputs(tuple(paths), None, ())
    sink = ProgressSink(str(tmp_path / "progress"))
    with TestPipeline() as p:
        _ = p | ReadBatches(plan=plan, progress=sink, pass_name="profile")
    totals = read_progress(str(tmp_path / "progress"))
    assert totals["profile"] == {"rows": ROWS, "quarantined": 0}
    assert totals["write"]["rows"] == 0
    assert read_progress(str(tmp_path / "nothing-here"))["profile"]["rows"] == 0


def test_monitor_prints_json_progress_lines_while_running(tmp_path):
    directory = str(tmp_path / "p")
    writer = ProgressSink(directory).writer("fit")
    writer.add(rows=1234, quarantined=5)
    writer.flush()
    out = io.StringIO()
    with Monitor(directory, Log("json", stream=out), interval=0.05):
        time.sleep(0.4)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert lines and all(x["event"] == "progress" for x in lines)
    assert lines[-1]["stage"] == "fit" and lines[-1]["passes"]["fit"] == {"rows": 1234, "quarantined": 5}


def test_quiet_prints_nothing_and_json_ends_with_a_summary(table, capsys):
    base, paths = table
    args = ["run", "--input", str(base / "*.parquet"), "--label", "y:binary", "--max-quarantine-fraction", "0.01"]
    assert main(args + ["--output", str(base / "quiet"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert main(args + ["--output", str(base / "json"), "--log-format", "json"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    events = [json.loads(line) for line in captured.err.splitlines()]
    assert events[0]["event"] == "start" and events[0]["files"] == 3
    summary = events[-1]
    assert summary["event"] == "summary" and summary["passed"] is True
    assert summary["counts"]["input_rows"] == ROWS and summary["counts"]["quarantined_rows"] == 2


def test_a_wide_tables_statistics_passes_show_between_fit_and_write():
    """The statistics passes' reads (one per group of columns) add up under their own name; the line shows them
    after fit, without quarantine counts (the fit pass has those)."""
    out = io.StringIO()
    totals = {"profile": {"rows": 10_000, "quarantined": 0}, "fit": {"rows": 10_000, "quarantined": 12},
              "statistics": {"rows": 30_000, "quarantined": 0}, "write": {"rows": 0, "quarantined": 0}}
    Log("text", stream=out).progress(12.0, totals)
    assert out.getvalue().strip().endswith(
        "statistics: profile 10,000 rows | fit 10,000 rows, 12 quarantined | statistics 30,000 rows")
    out = io.StringIO()
    Log("text", stream=out).progress(12.0, {k: v for k, v in totals.items() if k != "statistics"})
    assert out.getvalue().strip().endswith("fit: profile 10,000 rows | fit 10,000 rows, 12 quarantined")
