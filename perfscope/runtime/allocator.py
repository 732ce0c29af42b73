"""The torch allocator's view of memory, sampled on steps inside the script's process.

With CUDA: allocated, reserved and peak bytes, allocation retries and OOMs of the caching allocator
(`torch.cuda.memory_stats`), the allocator's history ring, and a snapshot of it when a CUDA OOM
ends the run. Always: the process's resident memory. Points go to `samples.allocator`, at most one
per `interval_s` of steps, so a step that does not sample costs well under a microsecond.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from typing import Any

from perfscope.collectors.base import CollectorResult
from perfscope.runtime.session import ProcessSession

NAME = "allocator"
DEFAULT_INTERVAL_S = 0.5
# Alloc/free events kept by torch's history ring; torch warns each may take several KB of host
# memory, so the ring is bounded (its default is unbounded).
HISTORY_MAX_ENTRIES = 10_000
SNAPSHOT_NAME = "memory_snapshot.pickle"
MAX_OOM_SNAPSHOTS = 20  # a loop that catches OOMs and goes on must not snapshot forever
MIB = 2**20

_STATS = {  # samples.allocator column -> torch.cuda.memory_stats key (bytes, or a count)
    "allocated_mb": "allocated_bytes.all.current",
    "reserved_mb": "reserved_bytes.all.current",
    "allocated_peak_mb": "allocated_bytes.all.peak",
    "reserved_peak_mb": "reserved_bytes.all.peak",
    "alloc_retries": "num_alloc_retries",
    "ooms": "num_ooms",
}


def install(torch: Any, session: ProcessSession) -> None:
    """Samples on the session's steps from now on (IN_PROCESS_COLLECTORS entry)."""
    interval_s = getattr(session.options, "allocator_interval_s", DEFAULT_INTERVAL_S)
    AllocatorSampler(torch, session, interval_s).start()


class ResidentMemory:
    """The process's resident set size, from /proc/self/statm kept open (no psutil per call)."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._pid = 0
        self._page_mb = os.sysconf("SC_PAGE_SIZE") / MIB if hasattr(os, "sysconf") else 0.0

    def mb(self) -> float:
        if os.getpid() != self._pid:  # a fork must read its own file
            self._open()
        if self._fd is None:
            import psutil  # no /proc here (macOS)

            return psutil.Process().memory_info().rss / MIB
        return int(os.pread(self._fd, 128, 0).split()[1]) * self._page_mb

    def _open(self) -> None:
        self.close()
        self._pid = os.getpid()
        try:
            self._fd = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            self._fd = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class AllocatorSampler:
    """Step listener, OOM observer and closer of the `allocator` collector."""

    def __init__(self, torch: Any, session: ProcessSession, interval_s: float) -> None:
        self.torch = torch
        self.session = session
        self.interval_s = interval_s
        self.cuda = bool(torch.cuda.is_available())
        self.rss = ResidentMemory()
        self.points = 0
        self.busy_s = 0.0
        self.error: str | None = None
        self.devices: dict[int, float | None] = {}  # CUDA device index -> total MiB
        self.history: str | None = None  # "recording", or why not
        self.ooms_observed = 0
        self.last_oom: dict[str, float] | None = None
        self.oom_snapshot: Any = None
        self.snapshot: str | None = None
        self.snapshot_error: str | None = None
        self._last = float("-inf")

    def start(self) -> None:
        self.session.step_listeners.append(self.on_step)
        self.session.closers.append(self.close)
        if self.cuda:
            self._arm_cuda()
        # Reported now as well as at the end, so a run killed before its end still says why.
        self.session.collector_result(NAME, self.result())

    # --- per step -----------------------------------------------------------------------------

    def on_step(self, index: int) -> None:
        now = time.perf_counter()
        if now - self._last < self.interval_s or self.error is not None:
            return
        self._last = now
        try:
            self.sample()
        except Exception as exc:  # never raise into the training loop; stop sampling instead
            self.error = f"{type(exc).__name__}: {exc}"
        self.busy_s += time.perf_counter() - now

    def sample(self) -> None:
        values: dict[str, float | None] = {"host_rss_mb": round(self.rss.mb(), 2)}
        torch = self.torch
        if self.cuda and torch.cuda.is_initialized():  # never initialize CUDA ourselves
            values.update(self._cuda_values(torch.cuda.current_device()))
        self.session.sample(NAME, values)
        self.points += 1

    def _cuda_values(self, device: int) -> dict[str, float | None]:
        if device not in self.devices:
            total = self.torch.cuda.get_device_properties(device).total_memory
            self.devices[device] = round(total / MIB, 1)
        return cuda_values(self.torch.cuda.memory_stats(device))

    # --- CUDA: history ring and OOM observer ---------------------------------------------------

    def _arm_cuda(self) -> None:
        lazy_call = getattr(self.torch.cuda, "_lazy_call", None)
        if lazy_call is None:
            self.history = "this torch has no torch.cuda._lazy_call: memory history not recorded"
            return
        # Runs at once if CUDA is initialized, else right after the script initializes it: the
        # script's own CUDA start-up is not moved, and fork-based DataLoaders keep working.
        lazy_call(self._on_cuda_init)

    def _on_cuda_init(self) -> None:
        # Called inside torch.cuda._lazy_init: an exception here would fail the script's CUDA.
        try:
            self.torch.cuda.memory._record_memory_history(
                max_entries=HISTORY_MAX_ENTRIES, context="alloc", stacks="python"
            )
            self.history = "recording"
        except Exception as exc:  # noqa: BLE001 - e.g. the cudaMallocAsync backend
            self.history = f"memory history not recorded: {type(exc).__name__}: {exc}"
        attach = getattr(self.torch._C, "_cuda_attach_out_of_memory_observer", None)
        try:
            if attach is not None:
                attach(self._on_oom)
        except Exception as exc:  # noqa: BLE001
            self.snapshot_error = f"no OOM observer: {type(exc).__name__}: {exc}"

    def _on_oom(self, device: int, alloc: int, device_allocated: int, device_free: int) -> None:
        # Called by the allocator before the OutOfMemoryError unwinds the stack, while the memory
        # that filled the device is still held: the moment to snapshot (kept in memory; written
        # only if this OOM ends the run).
        try:
            self.ooms_observed += 1
            self.last_oom = {
                "device": device,
                "requested_mb": round(alloc / MIB, 2),
                "device_allocated_mb": round(device_allocated / MIB, 2),
                "device_free_mb": round(device_free / MIB, 2),
            }
            if self.history == "recording" and self.ooms_observed <= MAX_OOM_SNAPSHOTS:
                self.oom_snapshot = self.torch.cuda.memory._snapshot()
        except Exception as exc:  # noqa: BLE001 - must not replace the script's OOM error
            self.snapshot_error = f"snapshot at OOM failed: {type(exc).__name__}: {exc}"

    # --- the end ------------------------------------------------------------------------------

    def close(self) -> None:
        started = time.perf_counter()
        if self.error is None:
            try:
                self.sample()  # the last state: OOM and retry counts after the final step
            except Exception as exc:  # noqa: BLE001
                self.error = f"{type(exc).__name__}: {exc}"
        exc = ending_exception()
        if self.cuda and exc is not None and is_cuda_oom(exc, self.last_oom is not None):
            self._write_snapshot()
        self.rss.close()
        self.busy_s += time.perf_counter() - started
        self.session.collector_result(NAME, self.result())

    def _write_snapshot(self) -> None:
        path = self.session.run_dir / SNAPSHOT_NAME
        try:
            if self.oom_snapshot is not None:
                with open(path, "wb") as f:
                    pickle.dump(self.oom_snapshot, f)  # what torch.cuda.memory._dump_snapshot does
            elif self.history == "recording":  # no observer: the state after the unwind
                self.torch.cuda.memory._dump_snapshot(str(path))
            else:
                return
            self.snapshot = SNAPSHOT_NAME
        except Exception as exc:  # noqa: BLE001
            self.snapshot_error = f"could not write {path}: {type(exc).__name__}: {exc}"

    def result(self) -> CollectorResult:
        if self.error is not None and not self.points:
            return CollectorResult(status="failed", reason=self.error, overhead_s=self.busy_s)
        return CollectorResult(
            status="ok",
            reason=self._reason(),
            interval_s=self.interval_s,
            overhead_s=self.busy_s,
            extra=self._extra(),
        )

    def _reason(self) -> str | None:
        if not self.cuda:
            return (
                "CUDA is not available (torch.cuda.is_available() is false): only the process's "
                "resident memory (host_rss_mb) is recorded on steps"
            )
        if self.error is not None:
            return f"sampling stopped: {self.error}"
        if not self.devices:
            return "CUDA is available but the script did not initialize it: only host_rss_mb"
        return None

    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"cuda": self.cuda, "points": self.points}
        if self.cuda:
            extra.update(
                {
                    "devices": [{"index": i, "total_mb": t} for i, t in self.devices.items()],
                    "history": self.history,
                    "history_max_entries": HISTORY_MAX_ENTRIES,
                    "ooms_observed": self.ooms_observed,
                    "last_oom": self.last_oom,
                    "snapshot": self.snapshot,
                    "snapshot_error": self.snapshot_error,
                }
            )
        return extra


def cuda_values(stats: dict[str, Any]) -> dict[str, float | None]:
    """One `samples.allocator` point from `torch.cuda.memory_stats()` (None: not reported)."""
    values: dict[str, float | None] = {}
    for column, key in _STATS.items():
        raw = stats.get(key)
        if raw is not None and column.endswith("_mb"):
            raw = round(raw / MIB, 2)
        values[column] = raw
    allocated, reserved = values["allocated_mb"], values["reserved_mb"]
    gap = None if allocated is None or reserved is None else round(reserved - allocated, 2)
    values["reserved_unallocated_mb"] = gap
    return values


def ending_exception() -> BaseException | None:
    """The exception ending the run: one leaving a `perfscope.profile()` block (being handled
    while the session closes), or an uncaught one (the interpreter keeps it in sys.last_*)."""
    handled = sys.exc_info()[1]
    if handled is not None:
        return handled
    return getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)


def is_cuda_oom(exc: BaseException, observed: bool) -> bool:
    """Whether `exc` is torch's CUDA out-of-memory error (`observed`: the allocator saw an OOM)."""
    name = type(exc).__name__
    if name != "OutOfMemoryError" and "out of memory" not in str(exc).lower():
        return False
    return observed or "CUDA out of memory" in str(exc)
