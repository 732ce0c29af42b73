"""Growth per step of a sampled quantity (memory), from its samples during the steps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def growth_per_step(
    ts: Sequence[float], values: Sequence[float | None], steps: list[dict[str, Any]]
) -> float | None:
    """The least-squares slope of `values` over the steps' time span (start-up excluded), per
    step; None with fewer than 2 steps or 3 samples in that span."""
    if len(steps) < 2:
        return None
    start = steps[0]["start_s"]
    end = steps[-1]["start_s"] + steps[-1]["duration_ms"] / 1e3
    points = [
        (t, v) for t, v in zip(ts, values, strict=False) if v is not None and start <= t <= end
    ]
    if len(points) < 3:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    slope_per_s = sum((t - mean_t) * (v - mean_v) for t, v in points) / var
    return slope_per_s * (end - start) / len(steps)
