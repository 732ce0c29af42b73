"""Noise-aware comparison of two runs' step times: the ratio of a quantile of their per-step
distributions, with a bootstrap confidence interval, and a verdict against a tolerance.

A CI machine is shared and noisy, so one number per run (the mean, one p50) flaps. Comparing the
per-step distributions after warm-up, with an interval on the change, lets a verdict say
"regressed" only when the whole interval lies beyond the tolerance.

The default quantile is the lower quartile, not the median: interference from other jobs only
ever adds time to a step, so the faster part of the distribution is the code's own cost. On 2
shared cores, five pairs of runs of the same script gave "unchanged" four times out of five with
p25 and once with the median (the others inconclusive); runs 28% slower were "regressed" five
times out of five with p25, four with the median (docs/check.md).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from perfscope.analysis.metrics import percentile, steady_steps

DEFAULT_TOLERANCE = 0.05
DEFAULT_WARMUP = 5
DEFAULT_QUANTILE = 0.25
DEFAULT_CONFIDENCE = 0.95
MIN_STEPS = 8
_RESAMPLES = 1000
_MAX_STEPS = 2000  # longer runs are thinned evenly: the interval barely narrows past this
VERDICTS = ("regressed", "improved", "unchanged", "inconclusive")


@dataclass(frozen=True)
class Comparison:
    """NEW's step-time quantile over BASE's, with its interval and verdict (docs/check.md)."""

    verdict: str
    reason: str
    base_steps: int
    new_steps: int
    base_ms: float | None = None
    new_ms: float | None = None
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    tolerance: float = DEFAULT_TOLERANCE
    quantile: float = DEFAULT_QUANTILE
    confidence: float = DEFAULT_CONFIDENCE

    @property
    def change(self) -> float | None:
        """The change of the step-time quantile as a fraction (+0.25: 25% slower)."""
        return None if self.ratio is None else self.ratio - 1.0

    @property
    def statistic(self) -> str:
        """The quantile's name: p25, p50..."""
        return f"p{self.quantile * 100:g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "statistic": self.statistic,
            "base_steps": self.base_steps,
            "new_steps": self.new_steps,
            "base_ms": self.base_ms,
            "new_ms": self.new_ms,
            "change": self.change,
            "change_low": None if self.low is None else self.low - 1.0,
            "change_high": None if self.high is None else self.high - 1.0,
            "tolerance": self.tolerance,
            "quantile": self.quantile,
            "confidence": self.confidence,
        }


def step_times(steps: list[dict[str, Any]], warmup: int = DEFAULT_WARMUP) -> list[float]:
    """Durations of the steps the op-trace window did not slow, the first `warmup` left out."""
    return [float(s["duration_ms"]) for s in steady_steps(steps)[warmup:]]


def compare_steps(
    base: list[float],
    new: list[float],
    tolerance: float = DEFAULT_TOLERANCE,
    quantile: float = DEFAULT_QUANTILE,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Comparison:
    """The verdict on NEW against BASE from their step times (already past warm-up)."""
    sizes = {"base_steps": len(base), "new_steps": len(new)}
    settings = {"tolerance": tolerance, "quantile": quantile, "confidence": confidence}
    if min(len(base), len(new)) < MIN_STEPS:
        reason = f"too few steps after warm-up to compare (need {MIN_STEPS} in each run)"
        return Comparison("inconclusive", reason, **sizes, **settings)
    q = quantile * 100
    base_ms, new_ms = percentile(base, q), percentile(new, q)
    if base_ms <= 0:
        return Comparison("inconclusive", "the base run's steps take 0 ms", **sizes, **settings)
    rng = random.Random(seed)
    low, high = _bootstrap_interval(_thin(base), _thin(new), q, confidence, rng)
    verdict, reason = _verdict(low, high, tolerance, confidence)
    return Comparison(
        verdict, reason, **sizes, base_ms=base_ms, new_ms=new_ms, ratio=new_ms / base_ms,
        low=low, high=high, **settings,
    )  # fmt: skip


def _verdict(low: float, high: float, tolerance: float, confidence: float) -> tuple[str, str]:
    span = f"the {confidence:.0%} interval of the change, {_pct(low)} to {_pct(high)},"
    limit = f"±{tolerance:.0%}"
    if low > 1 + tolerance:
        return "regressed", f"{span} lies above +{tolerance:.0%}"
    if high < 1 - tolerance:
        return "improved", f"{span} lies below -{tolerance:.0%}"
    if 1 - tolerance <= low and high <= 1 + tolerance:
        return "unchanged", f"{span} lies within {limit}"
    return "inconclusive", f"{span} straddles the tolerance {limit}: too noisy to tell"


def _bootstrap_interval(
    base: list[float], new: list[float], q: float, confidence: float, rng: random.Random
) -> tuple[float, float]:
    """Percentile bootstrap interval of quantile(new) / quantile(base).

    Steps are resampled in contiguous blocks (a moving-block bootstrap): on a shared machine slow
    steps come in bursts (another job's), so single steps are not independent draws, and a plain
    bootstrap would give too narrow an interval and verdicts that flap from run to run.
    """
    ratios = []
    for _ in range(_RESAMPLES):
        b = percentile(_block_resample(base, rng), q)
        n = percentile(_block_resample(new, rng), q)
        ratios.append(n / b if b > 0 else math.inf)
    ratios.sort()
    tail = (1 - confidence) / 2
    low = ratios[int(tail * (_RESAMPLES - 1))]
    high = ratios[int(round((1 - tail) * (_RESAMPLES - 1)))]
    return low, high


def _block_resample(values: list[float], rng: random.Random) -> list[float]:
    size = len(values)
    block = max(1, math.isqrt(size))
    starts = rng.choices(range(size - block + 1), k=-(-size // block))
    return [v for start in starts for v in values[start : start + block]][:size]


def _thin(values: list[float]) -> list[float]:
    if len(values) <= _MAX_STEPS:
        return values
    stride = len(values) / _MAX_STEPS
    return [values[int(i * stride)] for i in range(_MAX_STEPS)]


def _pct(ratio: float) -> str:
    return f"{ratio - 1:+.1%}"
