"""The event stream: what an instrumented process appends to the run directory as it goes.

One JSON object per line in `events/<host>-<pid>.jsonl`. Kinds (`k`):
  hello   the process started: pid, ppid, argv, origin, t0 (wall clock), ts
  torch   torch was imported: version, cuda, threads, cuda_available
  mark    the end of a step, by `src`: explicit (with `scope`, `via`) | optimizer (`opt`) | backward
  span    a whole step of a traced function: ts, dur
  wait    one `next()` on a DataLoader iterator: ts, dur; `first` and `loader` on an iterator's
          first fetch, `end` when it raised StopIteration
  loader  a DataLoader's configuration, once per loader: key, num_workers, pin_memory, ...
  begin   a profile() block opened (`scope`); end: it closed
  note    a message for the record's run.notes
  exc     an uncaught exception: type, message, oom, alloc_size
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

    # A wait closes nothing but is the only event of an inference step (the dataloader method).
    _FLUSH_KINDS = frozenset({"hello", "mark", "span", "wait", "exc", "bye", "end"})

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
