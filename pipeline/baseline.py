"""--baseline OUT_DIR: a previous nanguard output whose normalization, rules and labels a run reuses.

A scheduled pipeline validates eval, serving and every later day against the training run. Refitting the
normalization on each of them would write the same raw value differently in each (nanguard itself would create
train/serving skew), so with a baseline the normalization is the baseline's normalization.json, applied as it
is; its suite.json is the suite (unless --suite is given), its labels the labels (unless --label is given),
its --missing policies the policies (unless --missing is given), and the extreme-value rule's bounds come from
its raw profile's quantiles, so a day of uniformly shifted data is caught rather than absorbed.
The baseline must be a finished output whose gate passed (unless --allow-failed-baseline) and whose files
still match the hashes its report recorded.
"""
from __future__ import annotations

import dataclasses
import hashlib

from pipeline.errors import ConfigError, NanguardError
from pipeline.files import join, read_bytes, read_json
from pipeline.report.drift import missing_rates
from expectations.missing_policy import MissingPolicy
from transforms.columns import indicator_name
from transforms.labels import LabelSpec
from transforms.normalize import Scaling

NORMALIZATION, REPORT, SUITE = "normalization.json", "report.json", "suite.json"


@dataclasses.dataclass(frozen=True)
class Baseline:
    path: str
    normalization: dict  # feature -> Scaling
    labels: tuple[LabelSpec, ...]
    record: dict  # what report.json records about it
    missing: tuple  # its --missing policies, as (column, MissingPolicy)
    bulk: dict  # column -> (q0.1%, median, q99.9%) of its raw profile, for the extreme-value rule
    histograms: dict  # column -> its report's raw histogram (edges, below, counts, above), for drift charts
    missing_rates: dict  # column -> share of its raw rows with a missing value

    @property
    def suite(self) -> str:
        return join(self.path, SUITE)

    @property
    def stats(self) -> str:
        """Its statistics of every input row in original units: what drift is measured against."""
        return join(self.path, "stats", "raw.pb")


def load_baseline(path: str, allow_failed: bool = False) -> Baseline:
    """The baseline output at `path`, verified; a ConfigError naming the flag when it cannot be used."""
    from pipeline.training.dataset import verify
    try:
        report = verify(path, allow_failed=allow_failed)
    except NanguardError as e:
        hint = " (or pass --allow-failed-baseline to use it anyway)" if "FAILED" in e.message else ""
        raise ConfigError(f"--baseline {path}: {e.message}{hint}") from None
    scalings = {name: Scaling(d["method"], d["offset"], d["scale"], d.get("constant", False))
                for name, d in read_json(join(path, NORMALIZATION)).items()}
    labels = tuple(LabelSpec.parse(f"{e['column']}:{e['kwargs']['kind']}") for e in report.get("expectations", [])
                   if e.get("type") == "expect_column_values_to_be_valid_label")
    record = {"path": path, "report_sha256": _sha256(join(path, REPORT)),
              "normalization_sha256": _sha256(join(path, NORMALIZATION))}
    written = read_json(join(path, "feature_spec.json"))
    missing = tuple((e["column"], _same_columns(MissingPolicy.parse(e["meta"]["nanguard"]["missing"]),
                                                indicator_name(e["column"]) in written))
                    for e in report.get("expectations", []) if e.get("origin") == "--missing")
    bulk = {name: (f["raw"]["q001"], f["raw"]["median"], f["raw"]["q999"]) for name, f in report["features"].items()
            if f["raw"].get("median") is not None and f["raw"].get("q001") is not None}
    histograms = {name: {"edges": f["histogram"]["edges"], **f["histogram"]["raw"]}
                  for name, f in report["features"].items() if f.get("histogram")}
    rates = missing_rates({name: f["raw"] for name, f in report["features"].items()})
    return Baseline(path, scalings, labels, record, missing, bulk, histograms, rates)


def _same_columns(policy: MissingPolicy, had_indicator: bool) -> MissingPolicy:
    """The policy as the baseline applied it to one column: an indicator exactly where it wrote one, so every
    run that shares the baseline writes the same columns."""
    if policy.indicator and not had_indicator:
        return dataclasses.replace(policy, action="impute")
    return policy


def check_features(baseline: Baseline, features: list[str]) -> None:
    """The run's normalized features are the baseline's: a frozen normalization has no parameters for a new
    column, and a column the baseline normalized must not go missing."""
    new = [f for f in features if f not in baseline.normalization]
    gone = [f for f in baseline.normalization if f not in features]
    if new or gone:
        what = "; ".join(x for x in (f"new feature(s) {', '.join(new)}" if new else "",
                                      f"missing feature(s) {', '.join(gone)}" if gone else "") if x)
        raise ConfigError(f"--baseline {baseline.path}: the input's numeric features differ from the baseline's "
                          f"({what}); its normalization applies to the same features only (declare extra columns "
                          f"with --passthrough, or validate without --baseline)")


def _sha256(path: str) -> str:
    return hashlib.sha256(read_bytes(path)).hexdigest()
