"""RunConfig: everything one run needs, checked when it is built (not on a worker hours later)."""
from __future__ import annotations

import dataclasses
import os

from expectations.missing_policy import MissingPolicy, parse_missing
from pipeline.errors import ConfigError
from pipeline.report.drift import SERVING, TRAINING, DriftConfig
from transforms.labels import LabelSpec
from transforms.normalize import METHODS


def parse_delimiter(text: str | None) -> str | None:
    """'tab' and '\\t' spelled out on a command line mean a tab."""
    return "\t" if text in ("tab", "\\t", "TAB") else text


def parse_labels(texts) -> tuple[LabelSpec, ...]:
    """'COL[:KIND]' strings (or LabelSpecs) -> LabelSpecs; a bad one is a ConfigError naming it."""
    try:
        return tuple(LabelSpec.parse(t) if isinstance(t, str) else t for t in texts)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def parse_missing_flags(texts) -> tuple[tuple[str, MissingPolicy], ...]:
    """'[COL=]POLICY' strings (or a {column: policy} mapping) -> (column, MissingPolicy) pairs."""
    if isinstance(texts, str):
        texts = (texts,)
    try:
        parsed = dict(texts) if isinstance(texts, dict) else parse_missing(texts)
        return tuple((c, p if isinstance(p, MissingPolicy) else MissingPolicy.parse(p)) for c, p in parsed.items())
    except ValueError as e:
        raise ConfigError(str(e)) from None


COMPRESSIONS = ("gzip", "none")
MAX_SHARDS = 10_000


@dataclasses.dataclass(frozen=True)
class RunConfig:
    inputs: tuple[str, ...]
    output: str
    format: str | None = None
    delimiter: str | None = None  # CSV field separator; None: sniffed from each file's header
    suite: str | None = None  # path of a GE suite; None: the packaged default suite
    labels: tuple[LabelSpec, ...] = ()
    passthrough: tuple[str, ...] = ()
    missing: tuple[tuple[str, MissingPolicy], ...] = ()  # (column or '*', policy) from --missing [COL=]POLICY
    normalize: str = "zscore"
    num_shards: int = 4
    # TFDV statistics of at most this many columns per pass (whole parts of 64): a wider table gets a statistics
    # pass (one more read) per further group, so that memory follows this, not the table's width
    statistics_columns: int = 1024
    compression: str = "gzip"
    max_quarantine_fraction: float = 0.001
    extreme_threshold: float | None = None
    extreme_action: str | None = None
    mixed_precision: bool = False
    overwrite: bool = False
    baseline: str | None = None  # a previous output whose normalization, suite and labels are reused
    allow_failed_baseline: bool = False
    drift: DriftConfig = DriftConfig()  # thresholds and action of the comparison with --baseline
    environment: str | None = None  # SERVING: labels are absent (TFDV's schema environments)
    model: str | None = None  # a model to check on the written shards (pipeline.model_check)
    model_label: str | None = None
    model_loss: str | None = None
    model_features: tuple[str, ...] | None = None  # stacked into a single-input model, in order
    unsafe_model: bool = False  # load a model that holds code (Keras safe_mode off)
    custom_objects: str | None = None  # module registering the model's custom Keras objects
    beam_args: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.inputs:
            raise ConfigError("give at least one --input")
        if self.delimiter is not None and (len(self.delimiter) != 1 or self.delimiter in "\"\r\n"):
            raise ConfigError(f"--delimiter {self.delimiter!r}: needs one character such as ',' ';' '|' or 'tab'")
        if self.normalize not in METHODS:
            raise ConfigError(f"--normalize {self.normalize}: not one of {', '.join(METHODS)}")
        if not isinstance(self.num_shards, int) or not 1 <= self.num_shards <= MAX_SHARDS:
            raise ConfigError(f"--num-shards {self.num_shards}: needs a whole number from 1 to {MAX_SHARDS} (each "
                              f"shard is a file; a few per training worker is plenty)")
        if not isinstance(self.statistics_columns, int) or self.statistics_columns < 1:
            raise ConfigError(f"--statistics-columns {self.statistics_columns}: needs a whole number >= 1 (columns "
                              f"whose TFDV statistics one pass holds, rounded down to a multiple of 64, at least 64)")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(f"--compression {self.compression}: not one of {', '.join(COMPRESSIONS)}")
        if not 0 <= self.max_quarantine_fraction <= 1:
            raise ConfigError(f"--max-quarantine-fraction {self.max_quarantine_fraction}: needs a number in [0, 1]")
        if self.extreme_threshold is not None and not self.extreme_threshold > 0:
            raise ConfigError(f"--extreme-threshold {self.extreme_threshold}: needs a number > 0")
        if self.extreme_action not in (None, "quarantine", "warn", "none"):
            raise ConfigError(f"--extreme-action {self.extreme_action}: not one of quarantine, warn, none")
        governed = {c for c, _ in self.missing} & ({lab.column for lab in self.labels} | set(self.passthrough))
        if governed:
            raise ConfigError(f"--missing {', '.join(sorted(governed))}: labels and pass-through columns are never "
                              f"imputed; a missing label quarantines its row")
        columns = [lab.column for lab in self.labels] + list(self.passthrough)
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise ConfigError(f"column(s) {', '.join(dupes)} named more than once in --label/--passthrough")
        if self.model is not None and "://" not in self.model and not os.path.exists(self.model):
            raise ConfigError(f"--model {self.model}: no such file or directory")
        if self.model is None and (self.model_label or self.model_loss or self.model_features or self.unsafe_model
                                   or self.custom_objects):
            raise ConfigError("--model-label/--model-loss/--model-features/--unsafe-model/--custom-objects need "
                              "--model")
        if self.environment not in (None, TRAINING, SERVING):
            raise ConfigError(f"--environment {self.environment}: not one of {TRAINING}, {SERVING}")
        if self.environment is not None and self.baseline is None:
            raise ConfigError("--environment needs --baseline (the environments are the baseline schema's)")
        if self.allow_failed_baseline and self.baseline is None:
            raise ConfigError("--allow-failed-baseline needs --baseline")
        if self.model_label is not None and (self.labels or self.baseline is None) and \
                self.model_label not in [lab.column for lab in self.labels]:
            raise ConfigError(f"--model-label {self.model_label}: declare it with --label too")

    @property
    def check_label(self) -> str | None:
        """The label the model check uses: --model-label, else the only scalar --label."""
        if self.model_label is not None:
            return self.model_label
        scalar = [lab.column for lab in self.labels if not lab.is_vector]
        return scalar[0] if len(self.labels) == 1 and scalar else None

    @classmethod
    def default(cls, name: str):
        """A field's default, so the CLI's flags and the Python API cannot drift apart."""
        return cls.__dataclass_fields__[name].default

    @classmethod
    def from_settings(cls, **settings) -> "RunConfig":
        """A RunConfig from plain keyword values: sequences become tuples, 'COL:KIND' labels are parsed."""
        for key in ("inputs", "passthrough", "beam_args"):
            if key in settings:
                value = settings[key]
                settings[key] = (value,) if isinstance(value, str) else tuple(value)
        if "labels" in settings:
            settings["labels"] = parse_labels(settings["labels"])
        if "missing" in settings:
            settings["missing"] = parse_missing_flags(settings["missing"])
        try:
            return cls(**settings)
        except TypeError as e:
            raise ConfigError(f"run(): {e}") from None
