"""The event stream: what an instrumented process appends to the run directory as it goes.

One JSON object per line in `events/<host>-<pid>.jsonl`. Kinds (`k`):
  hello   the process started: pid, argv, t0 (wall clock), ts (monotonic seconds)
  mark    the end of a step, by `src`: explicit | optimizer | backward (and `scope` for explicit)
  span    a whole step of a traced function: ts, dur
  wait    one `next()` on a DataLoader iterator: ts, dur, `first` for an iterator's first batch
  exc     an uncaught exception: type, message, oom
  bye     the process reached interpreter exit normally

Timestamps are `time.perf_counter()` seconds; `hello` pairs one with the wall clock. A reader
tolerates a torn last line: a process killed mid-write loses at most that line.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

EVENTS_DIR = "events"


def events_path(run_dir: Path, pid: int | None = None) -> Path:
    pid = os.getpid() if pid is None else pid
    return Path(run_dir) / EVENTS_DIR / f"{socket.gethostname()}-{pid}.jsonl"


class EventWriter:
    """Appends events to one file; flushes on the events that close a step."""

    _FLUSH_KINDS = frozenset({"hello", "mark", "span", "exc", "bye"})

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._owner_pid = os.getpid()
        self._file: TextIO | None = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, event: dict[str, Any]) -> None:
        # A forked child (a DataLoader worker) inherits this object; only the owner writes.
        if self._file is None or os.getpid() != self._owner_pid:
            return
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        if event["k"] in self._FLUSH_KINDS:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None and os.getpid() == self._owner_pid:
            self._file.close()
        self._file = None


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """Yields the events of one file, skipping a torn or corrupt line."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and "k" in event:
                yield event


def event_files(run_dir: Path) -> list[Path]:
    return sorted((Path(run_dir) / EVENTS_DIR).glob("*.jsonl"))
