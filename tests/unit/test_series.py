"""BoundedSeries: at most N points, the whole span covered, peaks kept, memory flat."""

from __future__ import annotations

import math
import random

import pytest

from perfscope.collectors.series import BoundedSeries, Column, reduce_values

COLUMNS = (
    Column("ts", "last", None),
    Column("rate", "mean", None),
    Column("peak", "max", None),
    Column("low", "min", None),
    Column("count", "max", 0),
)


def fill(series: BoundedSeries, n: int, seed: int = 0) -> list[dict[str, float]]:
    rng = random.Random(seed)
    points = []
    for i in range(n):
        point = {
            "ts": 0.2 * (i + 1),
            "rate": rng.uniform(0, 1),
            "peak": rng.expovariate(1.0),
            "low": rng.uniform(100, 200),
            "count": rng.randint(0, 4),
        }
        series.append(point)
        points.append(point)
    return points


@pytest.mark.parametrize("max_points", [2, 8, 64, 100])
@pytest.mark.parametrize("n", [1, 7, 64, 65, 1000, 3333])
def test_length_never_exceeds_the_maximum(max_points: int, n: int) -> None:
    # GIVEN a series of at most max_points points
    series = BoundedSeries(COLUMNS, max_points)
    rng = random.Random(n)
    # WHEN n samples are appended
    for i in range(n):
        series.append({"ts": float(i), "rate": rng.random()})
        # THEN it never holds more than max_points, and every column is as long as ts
        assert len(series) <= max_points
    columns = series.to_dict()
    assert {len(v) for v in columns.values()} == {len(series)}


@pytest.mark.parametrize("n", [5, 100, 4096, 4097, 10_000, 50_001])
def test_the_whole_span_is_kept(n: int) -> None:
    # GIVEN a series of 4096 points fed n samples 0.2 s apart
    series = BoundedSeries(COLUMNS, 4096)
    points = fill(series, n)
    ts = series.to_dict()["ts"]
    # THEN the last point ends where the run ended and the first covers the run's first samples
    assert ts[-1] == points[-1]["ts"]
    assert ts[0] == points[min(series.stride, n) - 1]["ts"]
    # AND the points are evenly spaced, each summarising `stride` samples (the last maybe fewer)
    gaps = {round(b - a, 6) for a, b in zip(ts[:-2], ts[1:-1], strict=True)}
    assert gaps <= {round(0.2 * series.stride, 6)}
    assert (len(ts) - 1) * series.stride < n <= len(ts) * series.stride


@pytest.mark.parametrize("seed", range(5))
def test_peaks_and_lows_are_never_lost(seed: int) -> None:
    series = BoundedSeries(COLUMNS, 16)
    points = fill(series, 1000 + seed * 37, seed)
    columns = series.to_dict()
    assert max(columns["peak"]) == max(p["peak"] for p in points)
    assert min(columns["low"]) == min(p["low"] for p in points)
    assert max(columns["count"]) == max(p["count"] for p in points)


def test_means_of_whole_buckets_keep_the_overall_mean() -> None:
    # GIVEN 1024 samples in a series of at most 16 points: 8 points of 128 samples each
    series = BoundedSeries(COLUMNS, 16)
    points = fill(series, 1024)
    assert series.stride * len(series) == 1024
    # THEN the mean of the points is the mean of the samples
    rates = series.to_dict()["rate"]
    assert math.isclose(sum(rates) / len(rates), sum(p["rate"] for p in points) / 1024)


def test_halving_merges_neighbouring_pairs_each_column_its_way() -> None:
    series = BoundedSeries(COLUMNS, 4)
    for i, (rate, peak) in enumerate([(1.0, 5.0), (3.0, 1.0), (10.0, 2.0), (20.0, 7.0)]):
        series.append({"ts": float(i), "rate": rate, "peak": peak, "low": peak})
    columns = series.to_dict()
    assert columns["ts"] == [1.0, 3.0]
    assert columns["rate"] == [2.0, 15.0]
    assert columns["peak"] == [5.0, 7.0]
    assert columns["low"] == [1.0, 2.0]


def test_unknown_values_are_skipped_and_exported_as_none() -> None:
    series = BoundedSeries(COLUMNS, 4)
    series.append({"ts": 1.0, "rate": None, "peak": 3.0})
    series.append({"ts": 2.0, "rate": 4.0})
    series.append({"ts": 3.0})
    columns = series.to_dict()
    assert columns["rate"] == [None, 4.0, None]
    assert columns["peak"] == [3.0, None, None]
    series.append({"ts": 4.0, "rate": 6.0})  # full: halves to two points
    assert series.to_dict()["rate"] == [4.0, 6.0]
    assert series.to_dict()["peak"] == [3.0, None]


def test_export_rounds_and_writes_counts_as_integers() -> None:
    series = BoundedSeries([Column("x", "mean", 2), Column("n", "max", 0)], 8)
    series.append({"x": 1.23456, "n": 2.0})
    assert series.to_dict() == {"x": [1.23], "n": [2]}
    assert isinstance(series.to_dict()["n"][0], int)


def test_to_dict_does_not_change_the_series() -> None:
    series = BoundedSeries(COLUMNS, 8)
    fill(series, 21)
    first = series.to_dict()
    assert series.to_dict() == first
    fill(series, 3)
    assert series.appended == 24


def test_reductions_and_their_checks() -> None:
    assert reduce_values("mean", [1.0, math.nan, 3.0]) == 2.0
    assert reduce_values("last", [1.0, 2.0, math.nan]) == 2.0
    assert math.isnan(reduce_values("max", [math.nan]))
    with pytest.raises(ValueError, match="unknown reduction"):
        Column("x", "median")
    with pytest.raises(ValueError, match="at least 2"):
        BoundedSeries(COLUMNS, 1)


def test_memory_stays_flat() -> None:
    import tracemalloc

    # GIVEN a series of 256 points
    series = BoundedSeries(COLUMNS, 256)
    point = {"ts": 1.0, "rate": 0.5, "peak": 2.0, "low": 1.0, "count": 1}
    tracemalloc.start()
    try:
        for _ in range(1_000):
            series.append(point)
        after_1k = tracemalloc.get_traced_memory()[0]
        # WHEN 20 times more samples arrive
        for _ in range(20_000):
            series.append(point)
        after_20k = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # THEN it holds no more memory than before (a few bytes of jitter in the arrays' slack)
    assert after_20k - after_1k < 16 * 1024
    assert len(series) <= 256
