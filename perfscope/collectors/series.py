"""A columnar time series of bounded size that keeps covering the whole run.

A sampler appends one point per interval. When the series holds `max_points` points it halves its
resolution: each pair of neighbouring points becomes one, each column reduced its own way (mean for
rates and shares, max for peaks, min for lows, last for the time stamp). From then on every point
summarises `stride` raw samples, so the points stay evenly spaced, the first and the last samples
of the run stay covered, and memory stays flat however long the run lasts.

Values are kept in `array('d')` (8 bytes each); an unknown value is stored as NaN and exported as
None.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MAX_POINTS = 4096
REDUCTIONS = ("mean", "max", "min", "last")


@dataclass(frozen=True)
class Column:
    """One column: its name, how neighbouring points merge, and the decimals it is exported with.

    `digits=0` exports integers (counts); None exports the float as it is.
    """

    name: str
    reduce: str = "mean"
    digits: int | None = 4

    def __post_init__(self) -> None:
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"column {self.name}: unknown reduction {self.reduce!r}")


def reduce_values(how: str, values: Iterable[float]) -> float:
    """Reduces values the column's way, ignoring NaN (unknown); NaN when all are unknown."""
    known = [v for v in values if not math.isnan(v)]
    if not known:
        return math.nan
    if how == "mean":
        return math.fsum(known) / len(known)
    if how == "max":
        return max(known)
    if how == "min":
        return min(known)
    return known[-1]


class _Bucket:
    """Running reduction of the raw samples of the point being filled: O(1) memory per column."""

    __slots__ = ("how", "total", "count", "value")

    def __init__(self, how: str) -> None:
        self.how = how
        self.reset()

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0
        self.value = math.nan

    def add(self, value: float) -> None:
        if math.isnan(value):
            return
        self.count += 1
        if self.how == "mean":
            self.total += value
        elif self.how == "max":
            self.value = value if self.count == 1 else max(self.value, value)
        elif self.how == "min":
            self.value = value if self.count == 1 else min(self.value, value)
        else:
            self.value = value

    def result(self) -> float:
        if self.how == "mean":
            return self.total / self.count if self.count else math.nan
        return self.value


class BoundedSeries:
    """At most `max_points` evenly spaced points over everything appended so far."""

    def __init__(self, columns: Sequence[Column], max_points: int = MAX_POINTS) -> None:
        if max_points < 2:
            raise ValueError("max_points must be at least 2")
        self.columns = tuple(columns)
        self.max_points = max_points - max_points % 2
        self.stride = 1  # raw samples per stored point
        self.appended = 0  # raw samples seen in all
        self._data = {c.name: array("d") for c in self.columns}
        self._bucket = {c.name: _Bucket(c.reduce) for c in self.columns}
        self._in_bucket = 0

    def __len__(self) -> int:
        """Points `to_dict` returns: the stored ones and the one being filled."""
        return len(self._data[self.columns[0].name]) + (1 if self._in_bucket else 0)

    def append(self, point: Mapping[str, float | None]) -> None:
        """Adds one raw sample; a column it lacks (or None) is unknown for this sample."""
        for name, bucket in self._bucket.items():
            value = point.get(name)
            bucket.add(math.nan if value is None else float(value))
        self._in_bucket += 1
        self.appended += 1
        if self._in_bucket == self.stride:
            self._close_bucket()

    def to_dict(self) -> dict[str, list[float | int | None]]:
        """The columns as lists, the point being filled included; unknown values are None."""
        out: dict[str, list[float | int | None]] = {}
        for column in self.columns:
            values = list(self._data[column.name])
            if self._in_bucket:
                values.append(self._bucket[column.name].result())
            out[column.name] = [_export(v, column.digits) for v in values]
        return out

    def _close_bucket(self) -> None:
        for name, bucket in self._bucket.items():
            self._data[name].append(bucket.result())
            bucket.reset()
        self._in_bucket = 0
        if len(self._data[self.columns[0].name]) >= self.max_points:
            self._halve()

    def _halve(self) -> None:
        for column in self.columns:
            old = self._data[column.name]
            self._data[column.name] = array(
                "d",
                (reduce_values(column.reduce, old[i : i + 2]) for i in range(0, len(old), 2)),
            )
        self.stride *= 2


def _export(value: float, digits: int | None) -> float | int | None:
    if math.isnan(value):
        return None
    if digits == 0:
        return round(value)
    return value if digits is None else round(value, digits)
