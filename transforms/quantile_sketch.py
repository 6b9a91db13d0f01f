"""A mergeable relative-error quantile sketch (DDSketch, Masson, Rim & Lee, VLDB 2019).

Used by the raw profile to find the bulk of each numeric column for the extreme-value rule, and for the
median and quantile expectations. Buckets are integer keys and merging adds counts, so the result does not
depend on how a runner splits or orders bundles: every runner computes the same quantiles and flags the same
rows. Up to EXACT_LIMIT values the sketch also keeps the values themselves (sorted on merge, so equally
order-free) and answers exactly; beyond that it answers within 1% relative error.
"""
from __future__ import annotations

import math

import numpy as np

_ALPHA = 0.01  # relative accuracy of a returned quantile
_GAMMA = (1 + _ALPHA) / (1 - _ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
_MIN_INDEXED = 1e-300  # smaller magnitudes (subnormals included) count as zero
EXACT_LIMIT = 4096  # up to this many values the sketch also keeps them all, and its quantiles are exact


def _bucket_counts(magnitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if magnitudes.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    keys = np.ceil(np.log(magnitudes) / _LOG_GAMMA).astype(np.int64)
    lo = keys.min()
    counts = np.bincount(keys - lo)
    present = np.nonzero(counts)[0]
    return present + lo, counts[present].astype(np.int64)


def _merge(ka, ca, kb, cb) -> tuple[np.ndarray, np.ndarray]:
    if ka.size == 0:
        return kb, cb
    if kb.size == 0:
        return ka, ca
    keys, inverse = np.unique(np.concatenate([ka, kb]), return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([ca, cb]).astype(np.float64)).astype(np.int64)
    return keys, counts


class QuantileSketch:
    """Quantiles of finite float64 values within 1% relative error; merge is exact and order-independent."""

    __slots__ = ("pos_keys", "pos_counts", "neg_keys", "neg_counts", "zeros", "exact")

    def __init__(self):
        self.pos_keys = np.empty(0, np.int64)
        self.pos_counts = np.empty(0, np.int64)
        self.neg_keys = np.empty(0, np.int64)
        self.neg_counts = np.empty(0, np.int64)
        self.zeros = 0
        self.exact: np.ndarray | None = np.empty(0, np.float64)  # every value, while there are few

    @property
    def count(self) -> int:
        return int(self.pos_counts.sum() + self.neg_counts.sum() + self.zeros)

    def add(self, finite_values: np.ndarray) -> None:
        """Adds values; the caller passes finite values only (NaN/Inf are counted elsewhere)."""
        v = np.asarray(finite_values, dtype=np.float64)
        self.exact = _keep_exact(self.exact, v, self.count + v.size)
        pos = v[v > _MIN_INDEXED]
        neg = -v[v < -_MIN_INDEXED]
        self.zeros += int(v.size - pos.size - neg.size)
        self.pos_keys, self.pos_counts = _merge(self.pos_keys, self.pos_counts, *_bucket_counts(pos))
        self.neg_keys, self.neg_counts = _merge(self.neg_keys, self.neg_counts, *_bucket_counts(neg))

    def merge(self, other: "QuantileSketch") -> "QuantileSketch":
        out = QuantileSketch()
        out.pos_keys, out.pos_counts = _merge(self.pos_keys, self.pos_counts, other.pos_keys, other.pos_counts)
        out.neg_keys, out.neg_counts = _merge(self.neg_keys, self.neg_counts, other.neg_keys, other.neg_counts)
        out.zeros = self.zeros + other.zeros
        out.exact = None if self.exact is None else _keep_exact(self.exact, other.exact, out.count)
        return out

    def quantiles(self, qs) -> list[float]:
        """Lower quantiles (the value of rank floor(q * (n - 1)) in sorted order); NaN when empty."""
        n = self.count
        if n == 0:
            return [math.nan for _ in qs]
        values, counts = self.sorted_values()
        cum = np.cumsum(counts)
        out = []
        for q in qs:
            rank = math.floor(min(max(q, 0.0), 1.0) * (n - 1))
            out.append(float(values[np.searchsorted(cum, rank, side="right")]))
        return out

    def sorted_values(self) -> tuple[np.ndarray, np.ndarray]:
        """(distinct values ascending, their counts): exact while the sketch holds every value, else the
        buckets' representative values (each within 1% of the values it holds)."""
        if self.exact is not None:
            values, counts = np.unique(self.exact, return_counts=True)
            return values, counts.astype(np.int64)
        return self._values_and_counts()

    def histogram(self, edges: np.ndarray) -> tuple[int, np.ndarray, int]:
        """(below edges[0], counts per bin, above edges[-1]), each bucket placed at its representative value
        (within 1% of every value it holds), so a bin edge is exact to that accuracy."""
        values, counts = self._values_and_counts()
        edges = np.asarray(edges, dtype=np.float64)
        below = int(counts[values < edges[0]].sum())
        above = int(counts[values > edges[-1]].sum())
        inside = (values >= edges[0]) & (values <= edges[-1])
        binned = np.histogram(values[inside], bins=edges, weights=counts[inside])[0]
        return below, binned.astype(np.int64), above

    def _values_and_counts(self) -> tuple[np.ndarray, np.ndarray]:
        keys = np.concatenate([self.neg_keys[::-1], self.pos_keys]).astype(np.float64)
        with np.errstate(over="ignore"):  # buckets next to float64 max: clamp their midpoint
            rep = np.minimum(np.exp(keys * _LOG_GAMMA + math.log(2.0 / (1 + _GAMMA))), np.finfo(np.float64).max)
        values = np.concatenate([-rep[: self.neg_keys.size], [0.0], rep[self.neg_keys.size:]])
        counts = np.concatenate([self.neg_counts[::-1], [self.zeros], self.pos_counts])
        return values, counts

    def to_dict(self) -> dict:
        return {"pos": [self.pos_keys.tolist(), self.pos_counts.tolist()],
                "neg": [self.neg_keys.tolist(), self.neg_counts.tolist()], "zeros": self.zeros,
                "exact": None if self.exact is None else self.exact.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "QuantileSketch":
        s = cls()
        s.pos_keys, s.pos_counts = (np.asarray(x, np.int64) for x in d["pos"])
        s.neg_keys, s.neg_counts = (np.asarray(x, np.int64) for x in d["neg"])
        s.zeros = int(d["zeros"])
        s.exact = None if d.get("exact") is None else np.asarray(d["exact"], np.float64)
        return s


def _keep_exact(kept: np.ndarray | None, new: np.ndarray | None, total: int) -> np.ndarray | None:
    """Every value, sorted, while the total stays within EXACT_LIMIT; None (buckets only) beyond it."""
    if kept is None or new is None or total > EXACT_LIMIT:
        return None
    return np.sort(np.concatenate([kept, np.asarray(new, np.float64)]))
