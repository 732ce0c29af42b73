"""Host CPU and memory of the run's process tree, sampled by a thread with psutil."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from perfscope.collectors.base import CollectorContext, CollectorResult

DEFAULT_INTERVAL_S = 0.2


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class HostCollector:
    """Samples CPU share and RSS of a process and all its descendants."""

    name = "host"

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S, clock=time.perf_counter) -> None:
        self.interval_s = interval_s
        self._origin = 0.0  # sample times are seconds since the run's start, like steps
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._procs: dict[int, Any] = {}
        self._cores = usable_cores()
        self._series: dict[str, list[float]] = {
            "ts": [],
            "cpu_frac": [],
            "rss_mb": [],
            "avail_mb": [],
        }
        self._busy_s = 0.0
        self._error: str | None = None

    def available(self) -> str | None:
        try:
            import psutil  # noqa: F401
        except ImportError:
            return "psutil is not installed (pip install psutil)"
        return None

    def start(self, ctx: CollectorContext) -> None:
        import psutil

        self._origin = ctx.origin
        self._root = psutil.Process(ctx.pid)
        self._thread = threading.Thread(target=self._loop, name="perfscope-host", daemon=True)
        self._thread.start()

    def stop(self) -> CollectorResult:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._error is not None and not self._series["ts"]:
            return CollectorResult(status="failed", reason=self._error)
        return CollectorResult(
            status="ok",
            interval_s=self.interval_s,
            overhead_s=self._busy_s,
            samples=self._series,
            extra={"cores": self._cores},
        )

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            started = time.thread_time()
            try:
                self._sample()
            except Exception as exc:  # a sampler must never take the run down
                self._error = f"{type(exc).__name__}: {exc}"
            self._busy_s += time.thread_time() - started

    def _tree(self) -> list[Any]:
        import psutil

        try:
            return [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return []

    def _sample(self) -> None:
        import psutil

        cpu_percent = rss = 0.0
        alive = set()
        for proc in self._tree():
            known = self._procs.setdefault(proc.pid, proc)
            try:
                with known.oneshot():
                    cpu_percent += known.cpu_percent(None)
                    rss += known.memory_info().rss
                alive.add(proc.pid)
            except psutil.Error:
                continue
        self._procs = {pid: p for pid, p in self._procs.items() if pid in alive}
        if not alive:
            return
        series = self._series
        series["ts"].append(round(self._clock() - self._origin, 4))
        series["cpu_frac"].append(round(cpu_percent / 100.0 / self._cores, 4))
        series["rss_mb"].append(round(rss / 2**20, 2))
        series["avail_mb"].append(round(psutil.virtual_memory().available / 2**20, 1))
