"""The baseline comparison: ratio of step-time quantiles with a block-bootstrap interval, and
its verdict."""

from __future__ import annotations

import random

import pytest

from perfscope.check.stats import MIN_STEPS, compare_steps, step_times


def noisy(center_ms: float, n: int, spread: float, seed: int) -> list[float]:
    """Step times around `center_ms`, with a few slow steps as a shared machine gives them."""
    rng = random.Random(seed)
    times = [center_ms * (1 + rng.uniform(-spread, spread)) for _ in range(n)]
    for i in range(0, n, 17):
        times[i] *= 1.5
    return times


def test_the_same_distribution_is_unchanged() -> None:
    comparison = compare_steps(noisy(20, 200, 0.02, 1), noisy(20, 200, 0.02, 2))
    assert comparison.verdict == "unchanged", comparison.reason
    assert comparison.low < 1 < comparison.high


def test_steps_25_percent_slower_have_regressed() -> None:
    comparison = compare_steps(noisy(20, 60, 0.05, 1), noisy(25, 60, 0.05, 2))
    assert comparison.verdict == "regressed", comparison.reason
    assert comparison.change == pytest.approx(0.25, abs=0.03)
    assert comparison.low > 1.05


def test_steps_20_percent_faster_have_improved() -> None:
    comparison = compare_steps(noisy(20, 60, 0.05, 1), noisy(16, 60, 0.05, 2))
    assert comparison.verdict == "improved", comparison.reason
    assert comparison.high < 0.95


def test_an_interval_across_the_tolerance_is_inconclusive() -> None:
    # GIVEN two short, very noisy runs whose step times differ by about the tolerance
    base, new = noisy(20, 12, 0.4, 1), noisy(21, 12, 0.4, 2)
    # WHEN compared with a 5% tolerance
    comparison = compare_steps(base, new, tolerance=0.05)
    # THEN the interval is wider than the tolerance, so no call is made
    assert comparison.verdict == "inconclusive", comparison.reason
    assert "straddles" in comparison.reason
    assert comparison.low < 1.05 < comparison.high or comparison.low < 0.95 < comparison.high


def test_a_wider_tolerance_calls_a_small_change_unchanged() -> None:
    base, new = noisy(20, 200, 0.02, 1), noisy(20.6, 200, 0.02, 2)  # +3%
    assert compare_steps(base, new, tolerance=0.01).verdict == "regressed"
    assert compare_steps(base, new, tolerance=0.05).verdict == "unchanged"


def test_a_burst_of_slowed_steps_moves_the_median_not_the_lower_quartile() -> None:
    # GIVEN a base run of 20 ms steps, 5 in every 9 of which another job slowed to 30 ms
    base = [(30.0 if i % 9 < 5 else 20.0) + 0.01 * (i % 7) for i in range(200)]
    new = [20.0 + 0.01 * (i % 5) for i in range(200)]
    # WHEN the undisturbed new run is compared to it
    lower, median = compare_steps(base, new), compare_steps(base, new, quantile=0.5)
    # THEN the lower quartile sees no change, the median an improvement that is only noise
    assert lower.verdict == "unchanged" and lower.statistic == "p25", lower.reason
    assert median.verdict == "improved" and median.statistic == "p50", median.reason


def test_too_few_steps_is_inconclusive() -> None:
    short = noisy(20, MIN_STEPS - 1, 0.01, 1)
    comparison = compare_steps(short, noisy(40, 100, 0.01, 2))
    assert comparison.verdict == "inconclusive" and "too few steps" in comparison.reason
    assert comparison.ratio is None


def test_the_verdict_is_repeatable() -> None:
    base, new = noisy(20, 80, 0.1, 1), noisy(21, 80, 0.1, 2)
    assert compare_steps(base, new) == compare_steps(base, new)


def test_step_times_leave_out_warmup_and_profiled_steps() -> None:
    steps = [{"duration_ms": float(i), "profiled": i in (7, 8)} for i in range(12)]
    assert step_times(steps, warmup=5) == [5.0, 6.0, 9.0, 10.0, 11.0]
    assert step_times(steps, warmup=0)[:3] == [0.0, 1.0, 2.0]
