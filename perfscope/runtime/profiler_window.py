"""The op-trace window: torch's profiler for a few steps, driven by perfscope's own step clock.

After `trace_skip` steps the profiler is prepared (Kineto and CUPTI set up), `trace_warmup` steps
later it starts recording, and after `trace_active` recorded steps it stops, writes
`trace.json.gz` beside the record, reports its summary as the `ops` collector (record:
`collectors.ops`, `samples.ops`) and leaves the step clock, so later steps cost nothing. A run
that ends inside the window reports what was recorded. Nothing here raises into the script: a
failure becomes a `failed` result.

The window drives torch.autograd.profiler.profile by hand (prepare, start, `ProfilerStep#N`
annotations, stop), as torch.profiler.profile's schedule does and at the same cost, because
torch.profiler's prepare_trace asks `hasattr(torch, "_inductor")`, which imports inductor when
nothing has yet: 1.0-1.5 s and ~800 modules in an inference loop's process (torch 2.13; creating
an optimizer imports it anyway).
"""

from __future__ import annotations

import contextlib
import ctypes
import gzip
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from perfscope.analysis.ops import summarize_trace
from perfscope.collectors.base import CollectorResult
from perfscope.runtime.session import ProcessSession

NAME = "ops"
TRACE_FILE = "trace.json.gz"
STEP_ANNOTATION = "ProfilerStep#{}"  # torch.profiler's own step marks, known to trace viewers
# Kineto (torch 2.13) logs `profiler_start` / `profiler_stop` at its USDT level, 5, on stderr. It
# reads KINETO_LOG_LEVEL once, when the first profiler of the process is prepared; 6 silences it.
KINETO_LOG_LEVEL = "KINETO_LOG_LEVEL"
_QUIET_LEVEL = "6"
# A trace over this size is not parsed for the summary (json.load holds ~5 bytes per byte).
PARSE_LIMIT_BYTES = 256 << 20


def install(torch: Any, session: ProcessSession) -> None:
    """Registers the window on the session's step clock (called once torch is imported)."""
    if not session.options.trace:
        session.collector_result(
            NAME, CollectorResult(status="unavailable", reason="disabled (--no-trace)")
        )
        return
    # Until the window reports, the record says why there is nothing (the last report wins).
    session.collector_result(
        NAME,
        CollectorResult(
            status="unavailable",
            reason="the op-trace window never reported: the process was killed or ended by a "
            "signal before the window closed",
            extra={"window": None, "trace": None},
        ),
    )
    window = ProfilerWindow(torch, session)
    session.step_listeners.append(window.on_step)
    session.closers.append(window.close)
    if window.skip == 0:  # no step to wait for: the window opens now
        window.on_step(0)


class ProfilerWindow:
    """One profiler window: steps [skip, skip + warmup) warm up, the next `active` are recorded."""

    def __init__(self, torch: Any, session: ProcessSession) -> None:
        options = session.options
        self.torch = torch
        self.session = session
        self.skip = max(int(options.trace_skip), 0)
        self.warmup = max(int(options.trace_warmup), 0)
        self.active = max(int(options.trace_active), 1)
        self.max_bytes = int(float(options.trace_max_mb) * (1 << 20))
        self.prof: Any = None
        self.recording = False
        self.step_mark: Any = None  # the open ProfilerStep#N annotation
        self.opened_at = 0  # the clock index of the window's first step
        self.ticks = 0  # steps ended since the window opened
        self.last_index = 0
        self.cost_s = 0.0  # seconds spent in the script's thread: start, steps, stop, summary
        self._call_start: float | None = None
        self.done = False
        self.warnings: list[str] = []

    # The step clock -------------------------------------------------------------------------

    def on_step(self, index: int) -> None:
        """Called after each step of the clock with the number of steps ended so far."""
        if self.done:
            return
        self._call_start = time.perf_counter()
        try:
            self.last_index = index
            if self.prof is None:
                if index >= self.skip:
                    self._open(index)
            else:
                self.ticks += 1
                self._advance()
        except Exception as exc:  # noqa: BLE001 - never raise into the training loop
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            self._charge()

    def close(self) -> None:
        """At the end of the run: report what the window recorded, or why there was none."""
        if self.done:
            return
        self._call_start = time.perf_counter()
        try:
            if self.prof is None:
                self._report_no_window()
            elif not self.recording:
                self._discard()
                self._report(
                    "unavailable",
                    f"the run ended during the op-trace warm-up (after step {self.last_index}; "
                    f"recording starts after step {self.skip + self.warmup})",
                )
            else:
                self._finish(recorded=self.ticks - self.warmup, partial=True)
                _give_back_memory()
        except Exception as exc:  # noqa: BLE001
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            self._charge()

    def _charge(self) -> None:
        """Adds the time of the current call to the window's cost."""
        if self._call_start is not None:
            self.cost_s += time.perf_counter() - self._call_start
            self._call_start = None

    # The profiler -------------------------------------------------------------------------------

    def _open(self, index: int) -> None:
        if self.torch._C._autograd._profiler_enabled():
            self._report(
                "unavailable",
                "the script runs its own torch.profiler, so perfscope's op-trace window was "
                "skipped",
            )
            return
        device = "cuda" if self.torch.cuda.is_available() else None
        self.opened_at = index
        self.opened_ts = time.perf_counter()
        with self._quiet(), _quiet_kineto():
            self.prof = self.torch.autograd.profiler.profile(
                use_cpu=True, use_device=device, record_shapes=True, use_kineto=True
            )
            self.prof._prepare_trace()
        self._advance()

    def _advance(self) -> None:
        """After each step: start recording after the warm-up, stop after the active steps."""
        with self._quiet():
            if self.step_mark is not None:
                self.step_mark.__exit__(None, None, None)
                self.step_mark = None
            if not self.recording and self.ticks >= self.warmup:
                self.prof._start_trace()
                self.recording = True
        if self.recording and self.ticks >= self.warmup + self.active:
            self._finish(recorded=self.active, partial=False)
            _give_back_memory()
        elif self.recording:
            self.step_mark = self.torch.autograd.profiler.record_function(
                STEP_ANNOTATION.format(self.ticks)
            )
            self.step_mark.__enter__()

    def _stop(self) -> None:
        with self._quiet():
            if self.step_mark is not None:
                self.step_mark.__exit__(None, None, None)
                self.step_mark = None
            self.prof.__exit__(None, None, None)

    def _discard(self) -> None:
        """Ends a prepared profiler that never recorded."""
        try:
            with self._quiet():
                if not self.recording:
                    self.prof._start_trace()
                    self.recording = True
            self._stop()
        finally:
            self.prof = None

    def _finish(self, recorded: int, partial: bool) -> None:
        """Stops the profiler, writes the trace and reports the summary."""
        prof = self.prof
        self._stop()
        self.prof = None
        first = self.opened_at + self.warmup
        trace, kept, note = self._export(prof)
        summary = None
        if trace is not None:
            summary = summarize_trace(trace, complete_steps=recorded, step_offset=self.opened_at)
        extra: dict[str, Any] = {
            "window": [first, first + recorded - 1] if recorded else None,
            # perf_counter times from the window's opening to now: the steps it slowed down
            "window_perf": [self.opened_ts, time.perf_counter()],
            "partial_step": partial,
            "trace": TRACE_FILE if kept else None,
        }
        if note:
            extra["trace_note"] = note
        if summary is None:
            self._report("failed", note or "the trace could not be read", extra)
        elif recorded == 0 and not summary["ops"]:
            self._report("unavailable", "the run ended before the op-trace recorded an op", extra)
        else:
            self._report("ok", None, extra, summary)

    def _export(self, prof: Any) -> tuple[dict[str, Any] | None, bool, str | None]:
        """The trace parsed, whether it was kept (as trace.json.gz: within trace_max_mb), a note."""
        run_dir = self.session.run_dir
        raw = run_dir / f".trace-{os.getpid()}.json"
        try:
            with self._quiet():
                prof.export_chrome_trace(str(raw))
            size = raw.stat().st_size
            kept = size <= self.max_bytes
            note = None
            if kept:
                _gzip(raw, run_dir / TRACE_FILE)
            else:
                note = (
                    f"the trace ({size / (1 << 20):.1f} MB) is over trace_max_mb "
                    f"({self.max_bytes / (1 << 20):g} MB) and was not kept"
                )
            if size > PARSE_LIMIT_BYTES:
                big = f"the trace ({size >> 20} MB) is too big to summarise"
                return None, kept, f"{note}; {big}" if note else big
            with raw.open("rb") as f:
                return json.load(f), kept, note
        finally:
            raw.unlink(missing_ok=True)

    # Reporting ----------------------------------------------------------------------------------

    def _report_no_window(self) -> None:
        self._report(
            "unavailable",
            f"no op-trace window: the run ended after {self.last_index} steps, before the "
            f"window opens (after {self.skip} steps; --trace-skip)",
        )

    def _fail(self, reason: str) -> None:
        if self.prof is not None:
            with contextlib.suppress(Exception):  # already failing: report the first error
                self._discard()
        self._report("failed", reason)

    def _report(
        self,
        status: str,
        reason: str | None,
        extra: dict[str, Any] | None = None,
        samples: dict[str, Any] | None = None,
    ) -> None:
        self.done = True
        self._leave_clock()
        self._charge()
        if self.warnings:
            extra = {**(extra or {}), "warnings": self.warnings[:10]}
        self.session.collector_result(
            NAME,
            CollectorResult(
                status=status,
                reason=reason,
                overhead_s=self.cost_s,
                samples=samples,
                extra={"window": None, "trace": None, **(extra or {})},
            ),
        )

    def _leave_clock(self) -> None:
        self.session.remove_step_listener(self.on_step)

    def _quiet(self) -> _CaughtWarnings:
        return _CaughtWarnings(self.warnings)


class _CaughtWarnings:
    """Keeps torch's warnings about the profiler out of the script's stderr (and records them)."""

    def __init__(self, sink: list[str]) -> None:
        self.sink = sink
        self._catcher = warnings.catch_warnings(record=True)
        self._caught: list[warnings.WarningMessage] = []

    def __enter__(self) -> None:
        self._caught = self._catcher.__enter__() or []
        warnings.simplefilter("always")

    def __exit__(self, *exc: object) -> None:
        self._catcher.__exit__(*exc)
        for message in self._caught:
            lines = str(message.message).strip().splitlines() or [""]
            text = lines[0][:300]
            if text not in self.sink:
                self.sink.append(text)


class _quiet_kineto:  # noqa: N801 - a context manager
    """Sets KINETO_LOG_LEVEL while Kineto initialises (when the first profiler is prepared).

    A value the user set is left alone; ours is removed again once Kineto has read it.
    """

    def __enter__(self) -> None:
        self.ours = KINETO_LOG_LEVEL not in os.environ
        if self.ours:
            os.environ[KINETO_LOG_LEVEL] = _QUIET_LEVEL

    def __exit__(self, *exc: object) -> None:
        if self.ours:
            os.environ.pop(KINETO_LOG_LEVEL, None)


def _give_back_memory() -> None:
    """Hands the heap that the trace's export and parse freed back to the OS. glibc keeps freed
    memory otherwise: the process would stay tens of MiB bigger after the window, which the
    memory-growth metrics would read as a trend of the run."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        ctypes.CDLL(None).malloc_trim(0)


def _gzip(source: Path, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    with source.open("rb") as fin, gzip.open(tmp, "wb", compresslevel=3) as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    tmp.replace(target)
