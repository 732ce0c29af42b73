"""The in-process side of a run: one `ProcessSession` per instrumented process.

It owns the event writer and turns what the hooks see into events. Only one is active in a process;
`perfscope.profile()` and `@perfscope.trace` join it when it exists (docs/api.md).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perfscope.collectors.base import CollectorResult
from perfscope.events import (
    MARK,
    SOURCE_CODES,
    SPAN,
    WAIT,
    WAIT_END,
    WAIT_FIRST,
    EventWriter,
    events_path,
)
from perfscope.options import CollectorOptions

_MAX_TEXT = 2000
_OOM_PATTERNS = ("out of memory", "can't allocate memory", "cannot allocate memory")
_SIZE_PATTERNS = (
    re.compile(r"you tried to allocate (\d+) bytes"),
    re.compile(r"Tried to allocate ([\d.]+ (?:[KMGTP]i)?B|\d+ bytes)"),
)

_active: ProcessSession | None = None

# The step clock follows the best step source seen so far (analysis/steps.py, METHODS).
_RANK = {"explicit": 0, "trace": 1, "optimizer": 2, "backward": 3, "dataloader": 4}
StepListener = Callable[[int], None]
RANKS_DIR = "ranks"


class ProcessSession:
    """Streams this process's steps, data waits and its end to the run directory."""

    def __init__(
        self,
        run_dir: Path,
        origin: str,
        options: CollectorOptions | None = None,
        rank: dict[str, Any] | None = None,
    ) -> None:
        """`rank`: a distributed rank's identity (distributed/identity.py), None otherwise."""
        self.rank = rank
        path = events_path(Path(run_dir), rank=None if rank is None else rank["rank"])
        self.writer = EventWriter(path)
        # Where this process's own files go (op trace, allocator snapshot): the run directory, and
        # for a rank other than 0 a folder of its own, so that ranks never write the same file.
        self.run_dir = Path(run_dir)
        if rank is not None and rank["rank"] != 0:
            self.run_dir = self.run_dir / RANKS_DIR / path.stem
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.origin = origin
        self.options = options or CollectorOptions()
        # The live step count, for in-process collectors that act on steps (profiler windows).
        self.step_index = 0
        self.step_listeners: list[StepListener] = []
        # Called once at close(), before the final event: in-process collectors report there.
        self.closers: list[Callable[[], None]] = []
        self._clock_rank = len(_RANK)
        # Once the optimizer marks steps, backward() marks would never be used: skip writing them.
        self.optimizer_seen = False
        self.backward_seen = False  # autograd's backward ran at least once (torch_hooks)
        self.torch_ready = False  # the torch event is written and in-process collectors run
        self._seen_loaders: set[int] = set()
        self.writer.write(
            {
                "k": "hello",
                "pid": os.getpid(),
                "ppid": os.getppid(),
                "argv": list(sys.argv),
                "origin": origin,
                "t0": time.time(),
                "ts": time.perf_counter(),
                **({"rank": rank} if rank is not None else {}),
            }
        )

    def mark(self, src: str, scope: int = 0, aux: int = 0) -> None:
        """The end of a step; `aux` is the optimizer (optimizer) or the caller (explicit)."""
        if src == "optimizer":
            self.optimizer_seen = True
        self.writer.hot(MARK, SOURCE_CODES[src], scope, aux, time.perf_counter(), 0.0)
        self._tick(_RANK[src])

    def span(self, start: float, duration: float) -> None:
        self.writer.hot(SPAN, 0, 0, 0, start, duration)
        self._tick(1)

    def wait(self, start: float, duration: float, loader: int | None, end: bool) -> None:
        """One DataLoader fetch; `loader` is given for the first fetch of an iterator."""
        flags = (WAIT_FIRST if loader is not None else 0) | (WAIT_END if end else 0)
        self.writer.hot(WAIT, flags, 0, loader or 0, start, duration)
        if not end:
            self._tick(4)

    def _tick(self, rank: int) -> None:
        if rank > self._clock_rank:
            return
        if rank < self._clock_rank:  # a better source appeared: count its steps from now on
            self._clock_rank = rank
            self.step_index = 0
        self.step_index += 1
        for listener in self.step_listeners:  # removal rebinds the list: safe mid-loop
            listener(self.step_index)

    def remove_step_listener(self, listener: StepListener) -> None:
        """Takes a listener off the step clock, from inside a listener too (a new list, so the
        loop in `_tick` goes on over the old one without a copy every step)."""
        self.step_listeners = [x for x in self.step_listeners if x != listener]

    def loader(self, key: int, config: dict[str, Any]) -> None:
        if key not in self._seen_loaders:
            self._seen_loaders.add(key)
            self.writer.write({"k": "loader", "ts": time.perf_counter(), "key": key, **config})

    def note(self, text: str) -> None:
        self.writer.write({"k": "note", "ts": time.perf_counter(), "text": text[:_MAX_TEXT]})

    def exception(self, exc_type: type[BaseException], exc: BaseException) -> None:
        self.writer.write(
            {"k": "exc", "ts": time.perf_counter(), **describe_exception(exc_type, exc)}
        )

    def sample(self, collector: str, values: dict[str, float]) -> None:
        """One time-series point of an in-process collector (record: samples.<collector>)."""
        self.writer.write({"k": "sample", "c": collector, "ts": time.perf_counter(), "v": values})

    def collector_result(self, name: str, result: CollectorResult) -> None:
        """An in-process collector's status and data (record: collectors.<name>, samples.<name>)."""
        self.writer.write(
            {"k": "collector", "name": name, "summary": result.summary(), "samples": result.samples}
        )

    def close(self) -> None:
        for closer in self.closers:
            try:
                closer()
            except Exception as exc:  # noqa: BLE001 - the script's exit must not be disturbed
                self.note(f"an in-process collector failed at exit: {type(exc).__name__}: {exc}")
        self.closers = []
        # The process's CPU time and involuntary context switches: a rank losing its CPU to other
        # processes (host contention) shows many of them (analysis/ranks.py).
        import resource  # here, not at start-up

        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.writer.write(
            {
                "k": "bye",
                "ts": time.perf_counter(),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 4),
                "invol_switches": usage.ru_nivcsw,
            }
        )
        self.writer.close()


def describe_exception(exc_type: type[BaseException], exc: BaseException) -> dict[str, Any]:
    """Type, message and whether it is an out-of-memory error (with the size that failed)."""
    message = str(exc)[:_MAX_TEXT]
    name = f"{exc_type.__module__}.{exc_type.__qualname__}".removeprefix("builtins.")
    lowered = message.lower()
    oom = issubclass(exc_type, MemoryError) or "OutOfMemoryError" in exc_type.__name__
    oom = oom or any(pattern in lowered for pattern in _OOM_PATTERNS)
    info: dict[str, Any] = {"type": name, "message": message, "oom": oom}
    causes = _causes(exc)
    if causes:
        info["causes"] = causes
    for pattern in _SIZE_PATTERNS:
        found = pattern.search(message)
        if found:
            info["alloc_size"] = found.group(1)
            break
    return info


def _causes(exc: BaseException, depth: int = 3) -> list[str]:
    """`Type: message` of the exceptions this one was raised from or while handling (torch's
    DataLoader re-raises a worker's bus error as "exited unexpectedly", the cause holding why)."""
    causes: list[str] = []
    seen = {id(exc)}
    current = exc.__cause__ or exc.__context__
    while current is not None and len(causes) < depth and id(current) not in seen:
        seen.add(id(current))
        causes.append(f"{type(current).__name__}: {str(current)[:_MAX_TEXT]}")
        current = current.__cause__ or current.__context__
    return causes


def active() -> ProcessSession | None:
    """The session of this process, if one is recording."""
    return _active


def activate(session: ProcessSession) -> None:
    global _active
    _active = session


def deactivate(session: ProcessSession) -> None:
    global _active
    if _active is session:
        _active = None
