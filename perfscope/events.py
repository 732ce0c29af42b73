"""The event stream: what an instrumented process appends to the run directory as it goes.

One file per process, `events/<host>-<pid>.events` (a distributed rank's:
`events/<host>-rank<R>-<pid>.events`, unique across hosts and restarts), a sequence of records.
The events that come every step are fixed 24-byte binary records, packed straight into a
shared memory map; the rare ones are JSON. Formatting a float as text costs ~10 us inside a
training loop, a struct ~1 us.

  b"J" u32 length, JSON object     a rare event, with its kind in `k`:
      hello   the process started: pid, ppid, argv, origin, t0 (wall clock), ts, and for a
              distributed rank `rank` (rank, local_rank, world_size, restart, run_id)
      torch   torch was imported: version, cuda, threads, cuda_available
      loader  a DataLoader's configuration, once per loader: key, num_workers, pin_memory, ...
      begin   a profile() block opened (`scope`); end: it closed
      note    a message for the record's run.notes
      exc     an uncaught exception: type, message, oom, alloc_size
      bye     the process reached interpreter exit normally: cpu_s, invol_switches (its rusage)
      ranks   (a torchrun launcher) its ranks' ends: procs[] of local_rank, pid, exitcode, ts
  b"M" src u16 scope, u32 aux, f64 ts, f64 unused   mark: the end of a step; src 1 optimizer
      (aux: the optimizer), 2 backward, 3 explicit (aux: 1 perfscope.step(), 2 prof.step())
  b"W" flags, u16 0, u32 loader, f64 ts, f64 dur    wait: one DataLoader next(); flag 1 the
      iterator's first fetch (with its loader's key), flag 2 it raised StopIteration
  b"S" 0, u16 0, u32 0, f64 ts, f64 dur             span: a whole step of a traced function
  a zero byte                                        the end of what was written

`read_events` turns every record into the same dict shape (`{"k": "mark", "src": ..., "ts": ...}`).
Timestamps are `time.perf_counter()` seconds; `hello` pairs one with the wall clock. A record's
first byte is written last, so a process killed mid-write leaves no half record.
"""

from __future__ import annotations

import json
import mmap
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EVENTS_DIR = "events"
SUFFIX = ".events"

_HOT = struct.Struct("<BHIdd")  # after the kind byte: 1 + 2 + 4 + 8 + 8 = 23 bytes
_HOT_SIZE = 1 + _HOT.size
_LEN = struct.Struct("<I")
MARK, WAIT, SPAN, JSON_EVENT = b"M"[0], b"W"[0], b"S"[0], b"J"[0]
SOURCES = {1: "optimizer", 2: "backward", 3: "explicit"}
SOURCE_CODES = {name: code for code, name in SOURCES.items()}
VIAS = {1: "step", 2: "profile"}
VIA_CODES = {name: code for code, name in VIAS.items()}
WAIT_FIRST, WAIT_END = 1, 2


def events_path(run_dir: Path, pid: int | None = None, rank: int | None = None) -> Path:
    pid = os.getpid() if pid is None else pid
    host = socket.gethostname()
    name = f"{host}-{pid}" if rank is None else f"{host}-rank{rank}-{pid}"
    return Path(run_dir) / EVENTS_DIR / f"{name}{SUFFIX}"


_writers: list[EventWriter] = []


def _silence_writers_in_child() -> None:
    # A forked child (a DataLoader worker) inherits the writers; only their owner may write.
    for writer in _writers:
        writer.detach()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_silence_writers_in_child)


class EventWriter:
    """Appends records to one file through a shared memory map.

    Bytes copied into a MAP_SHARED mapping are in the kernel's page cache at once: they survive
    the process's SIGKILL with no system call per event. The file grows in chunks; the unwritten
    tail of the last chunk is zeros until `close()` trims it.
    """

    CHUNK = 1 << 20

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(self._fd, self.CHUNK)
        self._map: mmap.mmap | None = mmap.mmap(self._fd, self.CHUNK)
        self._pos = 0
        _writers.append(self)

    def write(self, event: dict[str, Any]) -> None:
        """A rare event, as JSON."""
        body = json.dumps(event, separators=(",", ":")).encode()
        self._append(JSON_EVENT, _LEN.pack(len(body)) + body)

    def hot(self, kind: int, sub: int, half: int, aux: int, ts: float, dur: float) -> None:
        """A per-step event, as a fixed binary record."""
        mm = self._map
        if mm is None:
            return
        pos = self._pos
        end = pos + _HOT_SIZE
        if end > len(mm):
            self._grow(end)
            mm = self._map
        _HOT.pack_into(mm, pos + 1, sub, half, aux, ts, dur)
        mm[pos] = kind  # last: the record exists only once it is whole
        self._pos = end

    def _append(self, kind: int, payload: bytes) -> None:
        if self._map is None:
            return
        pos = self._pos
        end = pos + 1 + len(payload)
        if end > len(self._map):
            self._grow(end)
        self._map[pos + 1 : end] = payload
        self._map[pos] = kind
        self._pos = end

    def _grow(self, needed: int) -> None:
        assert self._map is not None
        self._map.resize(max(len(self._map) + self.CHUNK, needed + self.CHUNK))

    def detach(self) -> None:
        """Stops writing without touching the file (in a forked child)."""
        self._map = None
        self._fd = None

    def close(self) -> None:
        if self._map is not None and self._fd is not None:
            self._map.close()
            os.ftruncate(self._fd, self._pos)
            os.close(self._fd)
        self.detach()


def parse_events(data: bytes | memoryview, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The whole records in `data` from `start`, and the offset just after the last of them."""
    events: list[dict[str, Any]] = []
    pos, size = start, len(data)
    while pos < size:
        kind = data[pos]
        if kind == JSON_EVENT:
            if pos + 5 > size:
                break
            (length,) = _LEN.unpack_from(data, pos + 1)
            if pos + 5 + length > size:
                break
            try:
                event = json.loads(bytes(data[pos + 5 : pos + 5 + length]))
            except ValueError:
                break
            if isinstance(event, dict) and "k" in event:
                events.append(event)
            pos += 5 + length
        elif kind in (MARK, WAIT, SPAN):
            if pos + _HOT_SIZE > size:
                break
            events.append(_hot_event(kind, *_HOT.unpack_from(data, pos + 1)))
            pos += _HOT_SIZE
        else:  # zeros: the end of what was written (or damage: stop there)
            break
    return events, pos


def _hot_event(kind: int, sub: int, half: int, aux: int, ts: float, dur: float) -> dict[str, Any]:
    if kind == MARK:
        src = SOURCES.get(sub, "unknown")
        event: dict[str, Any] = {"k": "mark", "src": src, "ts": ts}
        if src == "optimizer":
            event["opt"] = aux
        elif src == "explicit":
            event["scope"] = half
            event["via"] = VIAS.get(aux, "step")
        return event
    if kind == WAIT:
        event = {"k": "wait", "ts": ts, "dur": dur}
        if sub & WAIT_FIRST:
            event["first"] = True
            event["loader"] = aux
        if sub & WAIT_END:
            event["end"] = True
        return event
    return {"k": "span", "src": "trace", "ts": ts, "dur": dur}


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """The events of one file, up to the last whole record."""
    events, _ = parse_events(Path(path).read_bytes())
    yield from events


def event_files(run_dir: Path) -> list[Path]:
    return sorted((Path(run_dir) / EVENTS_DIR).glob(f"*{SUFFIX}"))
