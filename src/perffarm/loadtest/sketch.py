"""A mergeable latency sketch (DDSketch): quantiles with a bounded relative error.

Each peer and worker keeps its own sketch; the server adds them bucket by bucket. Because a
bucket is a fixed range of values (``gamma**(i-1) < v <= gamma**i``) for every sketch with
the same accuracy, merging is exact: the merged sketch is the one a single process would
have built from all the values, which averaging per-worker percentiles never is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

DEFAULT_ACCURACY = 0.01
#: Values at or below this go to the zero bucket (latencies are in ms: 1 ns).
MIN_VALUE = 1e-6


class DDSketch:
    __slots__ = ("_gamma_log", "accuracy", "buckets", "count", "max", "min", "sum", "zeros")

    def __init__(self, accuracy: float = DEFAULT_ACCURACY) -> None:
        if not 0 < accuracy < 1:
            raise ValueError("accuracy must be between 0 and 1")
        self.accuracy = accuracy
        gamma = (1 + accuracy) / (1 - accuracy)
        self._gamma_log = math.log(gamma)
        self.buckets: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float, weight: int = 1) -> None:
        if value < 0 or value != value:
            # Negative latencies come from clocks that disagree; they carry no information.
            return
        self.count += weight
        self.sum += value * weight
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        if value <= MIN_VALUE:
            self.zeros += weight
            return
        index = math.ceil(math.log(value) / self._gamma_log)
        self.buckets[index] = self.buckets.get(index, 0) + weight

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.add(value)

    def add_many(self, values: Sequence[float]) -> None:
        """Add many values at once (numpy): the buckets, count and extremes ``add`` would
        give for each (the sum up to rounding), in a fraction of the time. A worker's peers
        collect their latencies in a list, and the period's sketch is built from it once."""
        data = np.asarray(values, dtype=np.float64)
        data = data[data >= 0]  # negative (disagreeing clocks) and NaN carry nothing
        if not data.size:
            return
        self.count += int(data.size)
        self.sum += float(data.sum())
        self.min = min(self.min, float(data.min()))
        self.max = max(self.max, float(data.max()))
        positive = data[data > MIN_VALUE]
        self.zeros += int(data.size - positive.size)
        if positive.size:
            indices, counts = np.unique(
                np.ceil(np.log(positive) / self._gamma_log).astype(np.int64), return_counts=True
            )
            buckets = self.buckets
            for index, count in zip(indices.tolist(), counts.tolist(), strict=True):
                buckets[index] = buckets.get(index, 0) + count

    def merge(self, other: DDSketch) -> None:
        if other.accuracy != self.accuracy:
            raise ValueError("cannot merge sketches of different accuracy")
        for index, weight in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + weight
        self.zeros += other.zeros
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0..1), within ``accuracy`` relative error."""
        if self.count == 0:
            return None
        if q <= 0:
            return self.min
        if q >= 1:
            return self.max
        rank = q * (self.count - 1)
        seen = self.zeros
        if rank < seen:
            return 0.0
        gamma = math.exp(self._gamma_log)
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen > rank:
                # The bucket's midpoint in relative terms: error at most ``accuracy``.
                value = 2 * gamma**index / (gamma + 1)
                return min(max(value, self.min), self.max)
        return self.max

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "count": self.count,
            "sum": self.sum,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "zeros": self.zeros,
            # JSON object keys are strings; the index is small, so this stays compact.
            "buckets": {str(k): v for k, v in self.buckets.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DDSketch:
        sketch = cls(float(data.get("accuracy", DEFAULT_ACCURACY)))
        sketch.count = int(data.get("count", 0))
        sketch.sum = float(data.get("sum", 0.0))
        sketch.zeros = int(data.get("zeros", 0))
        if sketch.count:
            sketch.min = float(data["min"])
            sketch.max = float(data["max"])
        sketch.buckets = {int(k): int(v) for k, v in (data.get("buckets") or {}).items()}
        return sketch
