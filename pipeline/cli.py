"""nanguard's command line: run, gate, demo. Exit 0 gate passed, 1 gate failed, 2 usage/config/input error."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import traceback

EXIT_PASSED, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
DEMO_MIN_ROWS = 1000  # 128 + SIGINT, 128 + SIGTERM, as shells report them


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so the run unwinds and removes its staging files."""


_signalled: list[int] = []  # the signal that stopped this run, whatever exception a runner wrapped it in


def _on_signal(signum, frame):
    _signalled.append(signum)
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit code is also 2; keep its one-line message
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"nanguard: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from pipeline.config import COMPRESSIONS, RunConfig
    from transforms.extreme import DEFAULT_THRESHOLD
    from pipeline.training.model_check import DEVICES, OUTPUT_KINDS, ModelCheckConfig
    from transforms.normalize import METHODS
    default = RunConfig.default

    def check_default(name: str):
        return ModelCheckConfig.__dataclass_fields__[name].default
    p = _Parser(prog="nanguard", description="Validate, quarantine, normalize and shard training data before "
                                             "it can make the loss NaN.")
    p.add_argument("--verbose", action="store_true", help="show tracebacks and Beam's logs")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    logging_flags = _Parser(add_help=False)
    logging_flags.add_argument("--quiet", action="store_true", help="print nothing but errors; the exit code says "
                                                                    "it all")
    logging_flags.add_argument("--log-format", choices=("text", "json"), default="text",
                               help="json: progress and the summary as one JSON object per line on stderr")

    model_loading = _Parser(add_help=False)  # how a model file is loaded, for run --model and check-model
    model_loading.add_argument("--unsafe-model", action="store_true",
                               help="load a model that holds code (Keras safe_mode off); only for models you trust")
    model_loading.add_argument("--custom-objects", metavar="MODULE",
                               help="module or .py file that registers the model's custom layers and losses with "
                                    "Keras")

    drift_flags = _Parser(add_help=False)
    drift_flags.add_argument("--drift-threshold", action="append", default=[], metavar="[COL=]X",
                             help="drift beyond X fails: L-infinity for categorical, Jensen-Shannon divergence for "
                                  "numeric features (defaults 0.1 / 0.15); COL= for one feature; repeatable")
    drift_flags.add_argument("--drift-action", choices=("fail", "warn"), default="fail")
    drift_flags.add_argument("--drift-missing-rate", type=float, default=None, metavar="X",
                             help="a feature's share of missing values may move by X from the baseline's "
                                  "(default 0.05)")
    r = sub.add_parser("run", parents=[logging_flags, model_loading, drift_flags],
                       help="profile, check, quarantine, normalize and shard the input; exit code = gate")
    r.add_argument("--input", action="append", required=True, metavar="PATTERN",
                   help="file or glob (local, gs://, any Beam filesystem); repeatable")
    r.add_argument("--output", required=True, metavar="DIR")
    r.add_argument("--format", choices=("csv", "parquet", "tfrecord"), help="default: from the extension")
    r.add_argument("--delimiter", metavar="CHAR", help="CSV field separator: ',' ';' '|' or 'tab' (default: sniffed "
                                                       "from each file's header)")
    r.add_argument("--suite", metavar="SUITE.json", help="Great Expectations suite (default: packaged suite)")
    r.add_argument("--label", action="append", default=[], metavar="COL[:KIND]",
                   help="label column; KIND binary|probability|class=N|regression|regression=[LO,HI]|onehot|probvec "
                        "(default probability)")
    r.add_argument("--passthrough", action="append", default=[], metavar="COL", help="write COL unnormalized")
    r.add_argument("--baseline", metavar="OUT_DIR",
                   help="a previous output (the training run): apply its normalization as is, and use its suite "
                        "and labels unless --suite / --label are given")
    r.add_argument("--allow-failed-baseline", action="store_true", help="use a --baseline whose gate failed")
    r.add_argument("--environment", choices=("TRAINING", "SERVING"),
                   help="with --baseline: SERVING data lacks the labels (TFDV schema environments)")
    r.add_argument("--missing", action="append", default=[], metavar="[COL=]POLICY",
                   help="null cells of a numeric feature (every one without COL=): quarantine (default), "
                        "impute:mean|median|VALUE, or indicator[:mean|median|VALUE] (impute and add COL__missing)")
    r.add_argument("--normalize", default=default("normalize"), choices=METHODS)
    r.add_argument("--num-shards", type=int, default=default("num_shards"))
    r.add_argument("--statistics-columns", type=int, default=default("statistics_columns"), metavar="N",
                   help="TFDV statistics of at most N columns per pass (rounded down to a multiple of 64); a wider "
                        "table is read once more per further group, holding ~360 KB a numeric column per pass "
                        f"(default {default('statistics_columns')})")
    r.add_argument("--compression", default=default("compression"), choices=COMPRESSIONS)
    r.add_argument("--max-quarantine-fraction", type=float, default=default("max_quarantine_fraction"))
    r.add_argument("--extreme-threshold", type=float, metavar="K",
                   help=f"flag values more than K bulk spreads from the median (default {DEFAULT_THRESHOLD:g})")
    r.add_argument("--extreme-action", choices=("quarantine", "warn", "none"))
    r.add_argument("--mixed-precision", action="store_true",
                   help="the model trains in mixed_float16: values written unnormalized must fit float16")
    r.add_argument("--overwrite", action="store_true", help="replace nanguard's outputs in a non-empty DIR")
    r.add_argument("--model", metavar="PATH", help="after writing the shards, run `check-model` with this model; "
                                                   "its result goes to report.json and a failure fails the gate")
    r.add_argument("--model-label", metavar="COL", help="label for the model check (default: the only --label)")
    r.add_argument("--model-loss", metavar="NAME", help="Keras loss for the model check (default: compiled loss)")
    r.add_argument("--model-features", metavar="A,B,...",
                   help="features stacked into a single-input model, in order (default: every numeric feature)")

    m = sub.add_parser("check-model", parents=[logging_flags, model_loading],
                       help="run a model over a run's shards; exit 0 if outputs, loss and gradients are finite, 1 if not")
    m.add_argument("--model", required=True, metavar="PATH", help=".keras, .h5 or a SavedModel directory")
    m.add_argument("--data", required=True, metavar="DIR", help="a nanguard output directory")
    m.add_argument("--label", metavar="COL", help="label feature; needed for the loss and gradient checks")
    m.add_argument("--loss", metavar="NAME", help="Keras loss name (default: the model's compiled loss)")
    m.add_argument("--batch-size", type=int, default=check_default("batch_size"))
    m.add_argument("--max-batches", type=int, metavar="N", help="check only the first N batches")
    m.add_argument("--mixed-precision", action="store_true", help="check under the mixed_float16 policy")
    m.add_argument("--device", choices=DEVICES, default=check_default("device"))
    m.add_argument("--features", metavar="A,B,...", help="features stacked into a single-input model, in order")
    m.add_argument("--outputs", choices=OUTPUT_KINDS, default=check_default("outputs"),
                   help="probability: check outputs lie in [0, 1] (auto: when the last layer is softmax/sigmoid)")
    m.add_argument("--allow-failed", action="store_true",
                   help="check the model on shards whose nanguard gate failed (refused otherwise, exit 2)")

    su = sub.add_parser("suite", help="work with expectation suites")
    su_sub = su.add_subparsers(dest="suite_command", required=True, parser_class=_Parser)
    si = su_sub.add_parser("init", help="profile the input and draft a suite (GE JSON) to edit by hand")
    si.add_argument("--input", action="append", required=True, metavar="PATTERN",
                    help="file or glob (local, gs://, any Beam filesystem); repeatable")
    si.add_argument("--output", required=True, metavar="SUITE.json")
    si.add_argument("--format", choices=("csv", "parquet", "tfrecord"), help="default: from the extension")
    si.add_argument("--label", action="append", default=[], metavar="COL[:KIND]",
                    help="label column and kind, as for run; its rule replaces the feature rules")
    si.add_argument("--margin", type=float, default=0.1,
                    help="widen each observed range by this share of its width on each side (default 0.1)")
    si.add_argument("--overwrite", action="store_true", help="replace SUITE.json if it exists")

    c = sub.add_parser("compare", parents=[drift_flags],
                       help="drift between two outputs' statistics (no data reread): exit 0 none, 1 drift, 2 error")
    c.add_argument("baseline", metavar="BASELINE_DIR")
    c.add_argument("other", metavar="OUTPUT_DIR")

    g = sub.add_parser("gate", help="exit 0 if a finished run passed, 1 if not, 2 if the report is missing/invalid")
    g.add_argument("path", metavar="DIR_OR_REPORT")

    d = sub.add_parser("demo", parents=[logging_flags], help="sample data with planted faults -> full run -> summary")
    d.add_argument("--output", default=None, metavar="DIR")
    d.add_argument("--rows", type=int, default=200_000, help="rows of the sample table (at least 1000)")
    d.add_argument("--overwrite", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, beam_args = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    if not args.verbose:
        import logging
        logging.getLogger("apache_beam").setLevel(logging.CRITICAL)  # its errors reach us as exceptions
        import warnings
        warnings.filterwarnings("ignore")
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} \
        if in_main_thread else {}
    _signalled.clear()
    try:
        return _dispatch(args, beam_args)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _dispatch(args, beam_args) -> int:
    try:
        return {"run": _run, "gate": _gate, "compare": _compare, "demo": _demo, "suite": _suite,
                "check-model": _check_model}[args.command](args, tuple(beam_args))
    except BaseException as e:
        # A signal may reach us wrapped in a runner's own exception (Beam re-raises what a DoFn raised).
        if _signalled or isinstance(e, (KeyboardInterrupt, Terminated)):
            sigterm = isinstance(e, Terminated) or (bool(_signalled) and _signalled[0] == signal.SIGTERM)
            if args.verbose:
                traceback.print_exc()
            print(f"nanguard: {'terminated (SIGTERM)' if sigterm else 'interrupted'}; staging files removed, "
                  f"no report written", file=sys.stderr)
            return EXIT_TERMINATED if sigterm else EXIT_INTERRUPTED
        if not isinstance(e, Exception):
            raise
        return _error(e, args.verbose)


def _error(e: Exception, verbose: bool) -> int:
    """One line for what the user can fix; a traceback only with --verbose."""
    from pipeline.errors import user_message
    message = user_message(e)
    if verbose or message is None:
        traceback.print_exc()
    print(f"nanguard: error: {message or f'{type(e).__name__}: {e}'}", file=sys.stderr)
    return EXIT_ERROR


def _config(args, beam_args):
    from pipeline.config import RunConfig, parse_delimiter, parse_labels, parse_missing_flags
    labels = parse_labels(args.label)
    return RunConfig(inputs=tuple(args.input), output=args.output, format=args.format,
                     delimiter=parse_delimiter(args.delimiter), suite=args.suite,
                     labels=labels, passthrough=tuple(args.passthrough), normalize=args.normalize,
                     missing=parse_missing_flags(args.missing),
                     num_shards=args.num_shards, statistics_columns=args.statistics_columns,
                     compression=args.compression,
                     max_quarantine_fraction=args.max_quarantine_fraction, extreme_threshold=args.extreme_threshold,
                     extreme_action=args.extreme_action, mixed_precision=args.mixed_precision,
                     overwrite=args.overwrite, model=args.model, model_label=args.model_label,
                     baseline=args.baseline, allow_failed_baseline=args.allow_failed_baseline,
                     drift=_drift_config(args), environment=args.environment,
                     model_loss=args.model_loss, beam_args=beam_args,
                     model_features=_names(args.model_features), unsafe_model=args.unsafe_model,
                     custom_objects=args.custom_objects)


def _names(text: str | None) -> tuple[str, ...] | None:
    return tuple(f for f in text.split(",") if f) if text else None


def _log(args):
    from pipeline.progress import Log
    return Log(args.log_format, args.quiet)


def _run(args, beam_args) -> int:
    from pipeline.runner import run
    log = _log(args)
    report = run(_config(args, beam_args), log=log)
    _finish(log, report, args.output)
    return EXIT_PASSED if report["passed"] else EXIT_FAILED


def _finish(log, report: dict, out: str) -> None:
    """The end-of-run summary: human lines on stdout, or one JSON 'summary' event on stderr."""
    if log.quiet:
        return
    if log.fmt == "json":
        mc = report.get("model_check")
        log.event("summary", "", passed=report["passed"], output=out, counts=report["counts"],
                  failures=report["gate"]["failures"], seconds=report["run"]["seconds"],
                  model_check=None if mc is None else {"passed": mc["passed"], "failures": mc["failures"]})
    else:
        from pipeline.report.summary import summary
        print(summary(report, out))


def _check_model(args, beam_args) -> int:
    from pipeline.training.model_check import ModelCheckConfig, check_model, summary as model_summary
    features = _names(args.features)
    result = check_model(ModelCheckConfig(
        model=args.model, data=args.data, label=args.label, loss=args.loss, batch_size=args.batch_size,
        max_batches=args.max_batches, mixed_precision=args.mixed_precision, device=args.device, features=features,
        outputs=args.outputs, safe_mode=not args.unsafe_model, allow_failed=args.allow_failed,
        custom_objects=args.custom_objects))
    log = _log(args)
    if log.fmt == "json":
        log.event("model_check", "", **{k: result[k] for k in ("passed", "failures", "device", "examples",
                                                                 "examples_per_second", "failure")})
    elif not log.quiet:
        print(model_summary(result))
    return EXIT_PASSED if result["passed"] else EXIT_FAILED


def _suite(args, beam_args) -> int:
    from pipeline.config import parse_labels
    from pipeline.suite_init import init_suite
    labels = parse_labels(args.label)
    suite = init_suite(tuple(args.input), args.output, args.format, labels, args.margin, args.overwrite, beam_args)
    kinds: dict[str, int] = {}
    for e in suite["expectations"]:
        kinds[e["type"]] = kinds.get(e["type"], 0) + 1
    print(f"nanguard: drafted {len(suite['expectations'])} expectations into {args.output} "
          f"({', '.join(f'{n} {t}' for t, n in kinds.items())}); edit it, then pass it to run --suite")
    return EXIT_PASSED


def _drift_config(args):
    from pipeline.errors import ConfigError
    from pipeline.report.drift import (DEFAULT_CATEGORICAL, DEFAULT_MISSING_RATE, DEFAULT_NUMERIC, DriftConfig,
                                       parse_thresholds)
    try:
        default, per = parse_thresholds(args.drift_threshold)
        rate = DEFAULT_MISSING_RATE if args.drift_missing_rate is None else args.drift_missing_rate
        return DriftConfig(default or DEFAULT_CATEGORICAL, default or DEFAULT_NUMERIC, per, args.drift_action, rate)
    except ValueError as e:
        raise ConfigError(str(e).replace("drift threshold for", "--drift-threshold")) from None


def _compare(args, beam_args) -> int:
    from pipeline.errors import InputError
    from pipeline.files import exists, join
    from pipeline.report.drift import compare, drift_failures
    config = _drift_config(args)
    paths = [join(d, "stats", "raw.pb") for d in (args.baseline, args.other)]
    for d, p in zip((args.baseline, args.other), paths):
        if not exists(p):
            raise InputError(f"{d}: no stats/raw.pb; give two nanguard output directories")
    result = dict(compare(*paths, config), action="fail")
    for f in result["features"]:
        print(f"{'DRIFT' if f['drifted'] else 'ok   '}  {f['feature']}: {f['measure']} {f['value']:.4g} "
              f"(threshold {f['threshold']:g})")
    failures = drift_failures(result)
    for a in result["anomalies"]:
        print(f"ANOMALY  {a['feature']}: {a['description']}")
    return EXIT_FAILED if failures else EXIT_PASSED


def _gate(args, beam_args) -> int:
    from pipeline.report.gate import gate
    passed, failures = gate(args.path)
    print("PASSED" if passed else "FAILED")
    for f in failures:
        print(f"  - {f}")
    return EXIT_PASSED if passed else EXIT_FAILED


def _demo(args, beam_args) -> int:
    from pipeline.config import RunConfig, parse_labels
    from pipeline.demo_data import LABELS, make_table, write_table
    from pipeline.runner import run
    if args.rows < DEMO_MIN_ROWS:
        from pipeline.errors import ConfigError
        raise ConfigError(f"--rows {args.rows}: the demo needs at least {DEMO_MIN_ROWS} rows to plant its faults in")
    out = args.output or tempfile.mkdtemp(prefix="nanguard-demo-")
    data_dir = tempfile.mkdtemp(prefix="nanguard-demo-input-")
    planted = make_table(args.rows, faults_per_kind=max(1, args.rows // 40_000))
    path = os.path.join(data_dir, "train.parquet")
    write_table(planted.table, path, "parquet")
    log = _log(args)
    log.event("demo_input", f"demo input: {path} ({args.rows} rows, {len(planted.bad_rows)} with planted faults: "
                            f"NaN, +/-Inf, 1e30, 1e39, missing, probability 2.0/-0.5, class 7/-1; plus an unscaled "
                            f"and a constant column)", path=path, rows=args.rows, planted=len(planted.bad_rows))
    config = RunConfig(inputs=(path,), output=out, labels=parse_labels(LABELS), overwrite=args.overwrite,
                       beam_args=beam_args)
    report = run(config, log=log)
    _finish(log, report, out)
    return EXIT_PASSED if report["passed"] else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
