"""Missing-value policies (--missing): what happens to a null cell of a numeric feature, per column.

quarantine (the default) moves the row to quarantine; impute:mean, impute:median and impute:VALUE keep the row
and fill the cell with the clean rows' mean or median, or VALUE; indicator does what impute does (mean, or
indicator:median / indicator:VALUE) and adds a COL__missing 0/1 feature. Only null cells (an empty CSV cell,
a Parquet null, a tf.Example without the feature) are governed: NaN and +/-Inf stay quarantined, since they
mark a computation fault upstream, not an absent value.
"""
from __future__ import annotations

import dataclasses
import math

QUARANTINE, IMPUTE, INDICATOR = "quarantine", "impute", "indicator"
STATISTICS = ("mean", "median")
ALL_FEATURES = "*"


@dataclasses.dataclass(frozen=True)
class MissingPolicy:
    action: str = QUARANTINE
    fill: str | float = "mean"  # mean | median | a number

    def __post_init__(self):
        if self.action not in (QUARANTINE, IMPUTE, INDICATOR):
            raise ValueError(f"missing-value policy {self.action!r} is not one of quarantine, impute, indicator")
        if isinstance(self.fill, str) and self.fill not in STATISTICS:
            raise ValueError(f"fill {self.fill!r} is not mean, median or a number")
        if not isinstance(self.fill, str) and not math.isfinite(self.fill):
            raise ValueError(f"fill {self.fill!r} must be a finite number")

    @property
    def indicator(self) -> bool:
        return self.action == INDICATOR

    @classmethod
    def parse(cls, text: str) -> "MissingPolicy":
        """quarantine | impute[:mean|median|VALUE] | indicator[:mean|median|VALUE]."""
        action, _, fill = text.partition(":")
        if action == QUARANTINE and fill:
            raise ValueError(f"{text!r}: quarantine takes no value")
        if not fill:
            return cls(action)
        if fill in STATISTICS:
            return cls(action, fill)
        try:
            number = float(fill)
        except ValueError:
            raise ValueError(f"{text!r}: after '{action}:' give mean, median or a number") from None
        return cls(action, number)

    def describe(self) -> str:
        if self.action == QUARANTINE:
            return QUARANTINE
        return f"{self.action}:{self.fill if isinstance(self.fill, str) else format(self.fill, 'g')}"


def parse_missing(texts) -> dict[str, MissingPolicy]:
    """'[COL=]POLICY' strings -> {column or '*': policy}; a later entry for the same column wins."""
    out: dict[str, MissingPolicy] = {}
    for text in texts:
        column, sep, policy = text.rpartition("=")
        if not sep or "=" in policy:
            column, policy = ALL_FEATURES, text
        try:
            out[column or ALL_FEATURES] = MissingPolicy.parse(policy)
        except ValueError as e:
            raise ValueError(f"--missing {text}: {e} (e.g. --missing fare=impute:median, --missing indicator)") from None
    return out


def policy_for(policies: dict[str, MissingPolicy], column: str) -> MissingPolicy:
    return policies.get(column) or policies.get(ALL_FEATURES) or MissingPolicy()
