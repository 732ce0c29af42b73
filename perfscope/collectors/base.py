"""The collector protocol: name, availability with a reason, start, stop with a result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from perfscope.options import CollectorOptions


@dataclass(frozen=True)
class CollectorContext:
    """What a collector measures: the process tree rooted at `pid`, for the run in `run_dir`."""

    pid: int
    run_dir: Path
    origin: float  # time.perf_counter() at the run's start: sample times are relative to it
    options: CollectorOptions = field(default_factory=CollectorOptions)


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

    def start(self, ctx: CollectorContext) -> None:
        """Starts measuring."""

    def stop(self) -> CollectorResult:
        """Stops and returns what was measured."""


def unavailable(reason: str) -> CollectorResult:
    return CollectorResult(status="unavailable", reason=reason)


def failed(reason: str) -> CollectorResult:
    return CollectorResult(status="failed", reason=reason)


class CollectorSet:
    """Starts and stops several collectors; one that breaks is recorded as failed, never raised."""

    def __init__(self, collectors: list[Collector]) -> None:
        self.collectors = collectors
        self.results: dict[str, CollectorResult] = {}
        self._running: list[Collector] = []

    def start(self, ctx: CollectorContext) -> None:
        for collector in self.collectors:
            reason = collector.available()
            if reason is not None:
                self.results[collector.name] = unavailable(reason)
                continue
            try:
                collector.start(ctx)
            except Exception as exc:  # noqa: BLE001 - the run goes on without it
                self.results[collector.name] = failed(f"could not start: {exc}")
            else:
                self._running.append(collector)

    def stop(self) -> dict[str, CollectorResult]:
        for collector in self._running:
            try:
                self.results[collector.name] = collector.stop()
            except Exception as exc:  # noqa: BLE001
                self.results[collector.name] = failed(f"could not stop: {exc}")
        self._running = []
        return dict(self.results)
