"""A live status line on the terminal's last row while the script runs.

The line lives outside a scroll region that holds the script's own output (the way apt draws its
progress bar), so the two never overwrite each other. Each redraw is one write of a few dozen
bytes, which the terminal driver does not interleave with the script's writes.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

from perfscope.analysis.steps import build_steps, method_of
from perfscope.events import event_files, parse_events


def live_wanted(quiet: bool) -> bool:
    return (
        not quiet
        and sys.stderr.isatty()
        and not os.environ.get("CI")
        and os.environ.get("TERM", "dumb") != "dumb"
    )


class EventTail:
    """Reads the events appended since the last call to the file of the process that runs the
    steps: rank 0's (its latest restart) in a distributed run, else the run's first file."""

    # The writer pre-sizes its file in 1 MiB chunks of zeros: read in pieces and stop at the
    # zeros, instead of reading the whole padded tail twice a second.
    PIECE = 1 << 16

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._offset = 0
        self._path: Path | None = None

    def read(self) -> list[dict[str, Any]]:
        path = stepping_file(event_files(self.run_dir))
        if path is None:
            return []
        if path != self._path:  # torchrun's own file first, then rank 0's once it starts
            self._path, self._offset = path, 0
        events: list[dict[str, Any]] = []
        with open(path, "rb") as f:
            f.seek(self._offset)
            pending = b""
            while piece := f.read(self.PIECE):
                data = pending + piece
                found, used = parse_events(data)
                events += found
                self._offset += used
                pending = data[used:]
                if pending[:1] == b"\0":
                    break  # the zeros after the last record
        return events


def stepping_file(files: list[Path]) -> Path | None:
    rank0 = [f for f in files if "-rank0-" in f.name]
    if rank0:
        return max(rank0, key=lambda f: f.stat().st_mtime_ns)
    return files[0] if files else None


class LiveStatus:
    def __init__(self, run_dir: Path, origin: float, interval_s: float = 0.5) -> None:
        self._tail = EventTail(run_dir)
        self._origin = origin
        self._interval = interval_s
        self._recent: deque[dict[str, Any]] = deque(maxlen=400)
        self._counts: Counter[str | None] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="perfscope-live", daemon=True)
        self._rows = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        if self._rows:
            # Give the whole screen back and clear the status row.
            self._write(f"\0337\033[r\033[{self._rows};1H\033[2K\0338")

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                new = self._tail.read()
                self._counts.update(method_of(e) for e in new if "k" in e)
                self._recent.extend(new)
                self._draw(self.status_text())
            except OSError:
                continue

    def status_text(self) -> str:
        events = list(self._recent)
        table = build_steps(events, self._origin)
        elapsed = time.perf_counter() - self._origin
        if not table.steps:
            return f"perfscope | {elapsed:6.1f}s | waiting for the first step"
        last = table.steps[-5:]
        step_ms = sum(s["duration_ms"] for s in last) / len(last)
        wait = sum(s["data_wait_ms"] for s in last) / max(sum(s["duration_ms"] for s in last), 1e-9)
        marks = self._counts[table.method]
        return (
            f"perfscope | {elapsed:6.1f}s | step {marks} ({table.method}) | "
            f"{step_ms:8.1f} ms/step | data wait {wait * 100:4.1f}%"
        )

    def _draw(self, text: str) -> None:
        size = shutil.get_terminal_size()
        rows, cols = size.lines, size.columns
        if rows < 3:
            return
        prefix = ""
        if rows != self._rows:
            # Reserve the last row: a newline scrolls if the cursor sits there, then set the region.
            prefix = f"\n\033[1A\0337\033[1;{rows - 1}r\0338"
            self._rows = rows
        self._write(f"{prefix}\0337\033[{rows};1H\033[2K\033[7m{text[: cols - 1]}\033[0m\0338")

    @staticmethod
    def _write(data: str) -> None:
        os.write(sys.stderr.fileno(), data.encode())
