"""The in-process side of a run: one `ProcessSession` per instrumented process.

It owns the event writer and turns what the hooks see into events. Only one is active in a process;
`perfscope.profile()` and `@perfscope.trace` join it when it exists (docs/api.md).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from perfscope.events import EventWriter, events_path

_MAX_TEXT = 2000
_OOM_PATTERNS = ("out of memory", "can't allocate memory", "cannot allocate memory")
_SIZE_PATTERNS = (
    re.compile(r"you tried to allocate (\d+) bytes"),
    re.compile(r"Tried to allocate ([\d.]+ (?:[KMGTP]i)?B|\d+ bytes)"),
)

_active: ProcessSession | None = None


class ProcessSession:
    """Streams this process's steps, data waits and its end to the run directory."""

    def __init__(self, run_dir: Path, origin: str) -> None:
        self.run_dir = Path(run_dir)
        self.writer = EventWriter(events_path(self.run_dir))
        self.origin = origin
        self.steps_marked = 0
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
            }
        )

    def mark(self, src: str, **extra: Any) -> None:
        self.steps_marked += 1
        self.writer.write({"k": "mark", "src": src, "ts": time.perf_counter(), **extra})

    def span(self, start: float, duration: float) -> None:
        self.steps_marked += 1
        self.writer.write({"k": "span", "src": "trace", "ts": start, "dur": duration})

    def wait(self, start: float, duration: float, loader: int | None, end: bool) -> None:
        """One DataLoader fetch; `loader` is given for the first fetch of an iterator."""
        event: dict[str, Any] = {"k": "wait", "ts": start, "dur": duration}
        if loader is not None:
            event["first"] = True
            event["loader"] = loader
        if end:
            event["end"] = True
        self.writer.write(event)

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

    def close(self) -> None:
        self.writer.write({"k": "bye", "ts": time.perf_counter()})
        self.writer.close()


def describe_exception(exc_type: type[BaseException], exc: BaseException) -> dict[str, Any]:
    """Type, message and whether it is an out-of-memory error (with the size that failed)."""
    message = str(exc)[:_MAX_TEXT]
    name = f"{exc_type.__module__}.{exc_type.__qualname__}".removeprefix("builtins.")
    lowered = message.lower()
    oom = issubclass(exc_type, MemoryError) or "OutOfMemoryError" in exc_type.__name__
    oom = oom or any(pattern in lowered for pattern in _OOM_PATTERNS)
    info: dict[str, Any] = {"type": name, "message": message, "oom": oom}
    for pattern in _SIZE_PATTERNS:
        found = pattern.search(message)
        if found:
            info["alloc_size"] = found.group(1)
            break
    return info


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
