"""Normalization: parameters fitted from the clean profile, applied to float64 values, written as float32.

Parameters are rounded to float32-representable numbers: the moments are merged in a runner-dependent order
and can differ in their last float64 bits, and rounding makes every runner write the same shards.
A column whose scale is zero or too small to divide by (constant columns) gets scale 1 and is reported as such.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from transforms.profile import ColumnProfile

METHODS = ("zscore", "minmax", "none")
_MIN_SCALE = float(np.finfo(np.float32).tiny)


def _f32(x: float) -> float:
    """x rounded to float32 (the same parameters whatever order a runner merged the profile in), or x itself
    where float32 cannot hold it: a min-max range of valid float32 data can reach 6.8e38."""
    with np.errstate(over="ignore"):
        rounded = float(np.float32(x))
    return rounded if np.isfinite(rounded) or not np.isfinite(x) else float(x)


@dataclasses.dataclass(frozen=True)
class Scaling:
    method: str
    offset: float
    scale: float
    constant: bool = False

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"normalization {self.method!r} is not one of {', '.join(METHODS)}")
        if not (np.isfinite(self.offset) and np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"normalization needs a finite offset and a positive scale, got "
                             f"offset={self.offset}, scale={self.scale}")

    def apply(self, values: np.ndarray) -> np.ndarray:
        if self.method == "none":
            return values.astype(np.float32)
        return ((values - self.offset) / self.scale).astype(np.float32)

    def to_dict(self) -> dict:
        d = {"method": self.method, "offset": self.offset, "scale": self.scale, "constant": self.constant}
        if self.method == "zscore":
            d.update(mean=self.offset, std=self.scale)
        elif self.method == "minmax":
            d.update(min=self.offset, range=self.scale)
        return d


def fit(profile: ColumnProfile, method: str) -> Scaling:
    """z-score: (x - mean) / std; minmax: (x - min) / (max - min); none: x. Scale 1 where it would be ~0."""
    if method == "none" or profile.finite == 0:
        return Scaling(method, 0.0, 1.0, constant=profile.finite == 0 and method != "none")
    offset, spread = (profile.mean, profile.std) if method == "zscore" else (profile.min, profile.max - profile.min)
    offset = _f32(offset)
    spread = _f32(spread) if np.isfinite(spread) else np.inf
    if not (spread >= _MIN_SCALE) or not np.isfinite(spread) or not np.isfinite(offset):
        # constant column, or (cannot happen after the checks) a non-finite spread
        return Scaling(method, offset if np.isfinite(offset) else 0.0, 1.0, constant=True)
    return Scaling(method, offset, spread)
