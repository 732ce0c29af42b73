"""What changed between two runs: metric deltas and findings that appeared or went away."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perfscope.record import Record


@dataclass(frozen=True)
class MetricDelta:
    name: str
    base: float | None
    new: float | None

    @property
    def delta(self) -> float | None:
        return None if self.base is None or self.new is None else self.new - self.base

    @property
    def change(self) -> float | None:
        """The relative change (+0.25: 25% higher); None when the base is 0 or absent."""
        if self.delta is None or not self.base:
            return None
        return self.delta / abs(self.base)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": self.base,
            "new": self.new,
            "delta": self.delta,
            "change": self.change,
        }


def metric_deltas(base: Record, new: Record, changed_only: bool = False) -> list[MetricDelta]:
    """Every metric of either run, in name order; with `changed_only`, those that differ."""
    names = sorted(set(base.metrics) | set(new.metrics))
    rows = [MetricDelta(n, base.metrics.get(n), new.metrics.get(n)) for n in names]
    return [r for r in rows if r.base != r.new] if changed_only else rows


def finding_changes(base: Record, new: Record) -> dict[str, list[dict[str, Any]]]:
    """Findings by rule ID: `appeared` in NEW only, `gone` from BASE, `kept` in both (NEW's)."""
    base_ids = {f.get("id") for f in base.findings}
    new_ids = {f.get("id") for f in new.findings}
    return {
        "appeared": [f for f in new.findings if f.get("id") not in base_ids],
        "gone": [f for f in base.findings if f.get("id") not in new_ids],
        "kept": [f for f in new.findings if f.get("id") in base_ids],
    }
