"""The scheduling examples in examples/scheduling work: the cron script trains only after a passing gate; the
Airflow and Kubeflow definitions call the CLI with flags it accepts."""
import ast
import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pandas as pd
import yaml

from pipeline.cli import build_parser

HERE = os.path.join(os.path.dirname(__file__), "..", "examples", "scheduling")


def _day(tmp_path, name, nan_rows):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=2000), "clicked": rng.integers(0, 2, size=2000)})
    df.loc[:nan_rows - 1, "x"] = np.nan
    folder = tmp_path / "raw" / name
    folder.mkdir(parents=True)
    df.to_parquet(folder / "part-0.parquet")


def test_cron_script_trains_only_when_the_gate_passes(tmp_path):
    _day(tmp_path, "good", 0)
    _day(tmp_path, "bad", 100)  # 5% NaN rows > the 0.1% the gate allows
    trained = tmp_path / "trained.txt"
    fake_train = tmp_path / "train.sh"
    fake_train.write_text(f"#!/bin/sh\necho \"$@\" >> {trained}\n")
    fake_train.chmod(0o755)
    env = dict(os.environ, RAW=str(tmp_path / "raw"), VALIDATED=str(tmp_path / "validated"), TRAIN=str(fake_train),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], LABELS="--label clicked:binary")
    good = subprocess.run(["bash", os.path.join(HERE, "nightly.sh")], env=dict(env, DAY="good"),
                          capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stderr
    assert trained.read_text().split() == ["--data", str(tmp_path / "validated" / "good")]
    bad = subprocess.run(["bash", os.path.join(HERE, "nightly.sh")], env=dict(env, DAY="bad"),
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "not training" in bad.stderr
    assert trained.read_text().count("--data") == 1  # no second training run
    assert os.path.exists(tmp_path / "validated" / "bad" / "report.html")
    # the next day against the good day as baseline: its labels and normalization, no LABELS needed
    _day(tmp_path, "next", 0)
    nxt = subprocess.run(["bash", os.path.join(HERE, "nightly.sh")], timeout=300, capture_output=True, text=True,
                         env=dict(env, DAY="next", LABELS="", BASELINE=str(tmp_path / "validated" / "good")))
    assert nxt.returncode == 0, nxt.stderr
    report = json.loads((tmp_path / "validated" / "next" / "report.json").read_text())
    assert report["baseline"]["path"] == str(tmp_path / "validated" / "good")


def test_airflow_dag_runs_a_valid_nanguard_command():
    source = open(os.path.join(HERE, "airflow_dag.py")).read()
    tree = ast.parse(source)  # airflow is not installed here; the DAG must at least be valid Python
    commands = [ast.literal_eval(k.value) for node in ast.walk(tree) if isinstance(node, ast.Call)
                for k in node.keywords if k.arg == "bash_command"]
    nanguard = [c for c in commands if c.startswith("nanguard ")]
    assert len(nanguard) == 1
    argv = shlex.split(nanguard[0].replace("{{ ds }}", "2026-01-01"))[1:]  # Airflow renders the template first
    cut = argv.index("--")
    args = build_parser().parse_args(argv[:cut])
    assert args.command == "run" and args.log_format == "json" and args.label == ["clicked:binary"]
    assert any(a.startswith("--runner=DataflowRunner") for a in argv[cut + 1:])


def test_kubeflow_component_runs_a_valid_nanguard_command():
    spec = yaml.safe_load(open(os.path.join(HERE, "kfp_component.yaml")))
    container = spec["implementation"]["container"]
    assert container["command"] == ["nanguard"]
    placeholder = {"inputValue": lambda v: {"input_pattern": "gs://b/*.csv", "labels": "y:binary",
                                            "max_quarantine_fraction": "0.001", "baseline": "gs://b/train"}[v],
                   "outputPath": lambda v: "/tmp/out"}
    argv = [a if isinstance(a, str) else placeholder[next(iter(a))](next(iter(a.values())))
            for a in container["args"]]
    args = build_parser().parse_args(argv)
    assert args.command == "run" and args.output == "/tmp/out" and args.max_quarantine_fraction == 0.001
    assert args.baseline == "gs://b/train"
    assert {i["name"] for i in spec["inputs"]} >= {"input_pattern", "labels"}
