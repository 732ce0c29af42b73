"""The collector protocol: name, availability with a reason, start, stop with a result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class CollectorResult:
    """What a collector adds to the record: its status and, when it worked, its samples."""

    status: str  # ok | unavailable | failed
    reason: str | None = None
    interval_s: float | None = None
    overhead_s: float = 0.0
    samples: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The record's `collectors.<name>` entry (samples go to `samples.<name>`)."""
        return {
            "status": self.status,
            "reason": self.reason,
            "interval_s": self.interval_s,
            "overhead_s": round(self.overhead_s, 6),
            **self.extra,
        }


class Collector(Protocol):
    name: str

    def available(self) -> str | None:
        """None when the collector can work here, else why not (and how to enable it)."""

    def start(self, pid: int) -> None:
        """Starts measuring the process tree rooted at `pid`."""

    def stop(self) -> CollectorResult:
        """Stops and returns what was measured."""


def unavailable(reason: str) -> CollectorResult:
    return CollectorResult(status="unavailable", reason=reason)
