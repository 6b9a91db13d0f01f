"""Label kinds and their row rule: what a loss function will accept as a target.

binary {0,1}; probability [0,1]; class=N integer ids in [0,N); regression any finite number that fits
float32 (regression=[LO,HI]: also inside that range); onehot and probvec are list columns whose entries are
non-negative and sum to 1 (onehot: entries in {0,1}). A missing or non-finite label violates its kind.
Labels are checked, never normalized.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from transforms.columns import BatchView
from transforms.reasons import label as label_reason
from transforms.row_checks import QUARANTINE, Reasons, rows_any

FLOAT32_MAX = float(np.finfo(np.float32).max)  # a regression target is written as float32
SCALAR_KINDS = ("binary", "probability", "class", "regression")
VECTOR_KINDS = ("onehot", "probvec")
KINDS = SCALAR_KINDS + VECTOR_KINDS


@dataclasses.dataclass(frozen=True)
class LabelSpec:
    column: str
    kind: str
    num_classes: int | None = None
    low: float | None = None  # regression=[low,high]
    high: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"label {self.column!r}: kind {self.kind!r} is not one of "
                             f"binary, probability, class=N, regression, regression=[LO,HI], onehot, probvec")
        if (self.low is not None or self.high is not None) and self.kind != "regression":
            raise ValueError(f"label {self.column!r}: only regression labels take a range")
        if self.low is not None and not (np.isfinite(self.low) and np.isfinite(self.high) and self.low <= self.high):
            raise ValueError(f"label {self.column!r}: regression=[{self.low},{self.high}] needs finite LO <= HI")
        if (self.kind == "class") != (self.num_classes is not None):
            raise ValueError(f"label {self.column!r}: class labels need N (class=N), other kinds take none")
        if self.num_classes is not None and self.num_classes < 1:
            raise ValueError(f"label {self.column!r}: class=N needs N >= 1, got {self.num_classes}")

    @classmethod
    def parse(cls, text: str) -> "LabelSpec":
        """COL[:KIND], KIND one of binary|probability|class=N|regression|regression=[LO,HI]|onehot|probvec;
        default probability."""
        column, _, kind = text.rpartition(":") if ":" in text else (text, "", "probability")
        if kind.startswith("regression="):
            bounds = kind[len("regression="):].strip().removeprefix("[").removesuffix("]").split(",")
            try:
                low, high = (float(b) for b in bounds)
            except ValueError:
                raise ValueError(f"--label {text!r}: write the range as regression=[LO,HI], e.g. "
                                 f"{column}:regression=[0,500]") from None
            return cls(column, "regression", low=low, high=high)
        if kind.startswith("class="):
            try:
                n = int(kind[len("class="):])
            except ValueError:
                raise ValueError(f"--label {text!r}: N in class=N must be an integer") from None
            return cls(column, "class", n)
        return cls(column, kind)

    @property
    def is_vector(self) -> bool:
        return self.kind in VECTOR_KINDS

    def describe(self) -> str:
        if self.kind == "class":
            return f"class={self.num_classes}"
        if self.kind == "regression" and self.low is not None:
            return f"regression=[{self.low:g},{self.high:g}]"
        return self.kind


@dataclasses.dataclass(frozen=True)
class LabelRule:
    label: LabelSpec
    tolerance: float = 1e-4  # |sum - 1| allowed for probability vectors (float32 sums of ~1e3 entries)
    action: str = QUARANTINE

    @property
    def column(self) -> str:
        return self.label.column

    def evaluate(self, view: BatchView) -> Reasons:
        spec = self.label
        code = label_reason(spec.kind, spec.column)
        if spec.is_vector:
            offsets, flat, missing = view.lists(spec.column)
            with np.errstate(invalid="ignore"):
                bad_elem = ~np.isfinite(flat) | (flat < 0)
                if spec.kind == "onehot":
                    bad_elem |= (flat != 0) & (flat != 1)
            c = np.concatenate([[0.0], np.cumsum(np.where(np.isfinite(flat), flat, 0.0))])
            row_sums = c[offsets[1:]] - c[offsets[:-1]]
            lengths = np.diff(offsets)
            bad = missing | (lengths == 0) | rows_any(bad_elem, offsets) | (np.abs(row_sums - 1.0) > self.tolerance)
            yield code, bad
            return
        values, missing = view.numeric(spec.column)
        with np.errstate(invalid="ignore"):
            if spec.kind == "binary":
                ok = (values == 0) | (values == 1)
            elif spec.kind == "probability":
                ok = (values >= 0) & (values <= 1)
            elif spec.kind == "regression":
                ok = np.isfinite(values) & (np.abs(values) <= FLOAT32_MAX)
                if spec.low is not None:
                    ok &= (values >= spec.low) & (values <= spec.high)
            else:
                ok = (values >= 0) & (values < spec.num_classes) & (np.floor(values) == values)
        yield code, ~ok | missing
