"""Reads a Kineto trace (`.json` or `.json.gz`) as a stream into compact events.

The file is read in 4 MiB pieces. Each piece is cut after the last whole event of the
`traceEvents` list and parsed on its own (orjson when it is installed, else the standard json),
so memory holds one piece and its events, never the whole document; each event is cut down at
once to a tuple of the few fields the analysis reads, names and shapes interned: a fraction of
the memory of the event's dict. Why not one whole-file parse, nor ijson: on a real 190 MB,
477k-event CPU trace (CPU seconds to parse, with the cyclic GC off, and peak memory): json.load
1.8 s and 1.25 GB, orjson.loads 1.2 s and 1.6 GB (whole documents: far over the memory budget),
ijson's C backend 2.4 s in 12 MB, these pieces 2.0 s with json and 1.5 s with orjson, holding
one piece at a time (benchmarks/trace_import.py measures the whole command).

A cut point is `}` `,` `{` `"` (blanks allowed between): outside a string it can only separate
two objects, and inside a string that quote would be escaped. Between two events of the list it
is a good cut; between two objects nested in an event's args the piece does not parse, and the
cut before it is tried.

Timestamps are microseconds (the Chrome trace format's unit), fractional in the traces Kineto
writes at nanosecond resolution; `displayTimeUnit` only tells a viewer how to show them.
"""

from __future__ import annotations

import gc
import gzip
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from perfscope.analysis.ops import DEVICE_CATEGORIES, HOST_CATEGORIES, RUNTIME_CATEGORIES
from perfscope.errors import PerfscopeError

CHUNK = 4 << 20
MAX_PIECE = 256 << 20  # an event bigger than this: not a trace this reader takes
HEAD_LIMIT = 8 << 20  # metadata (deviceProperties, distributedInfo) precedes traceEvents
_OCCUPANCY = "est. achieved occupancy %"
_BETWEEN = re.compile(rb'\}\s*,\s*\{\s*"')
_CLOSE = re.compile(rb"\}\s*\]")
_OPENING = re.compile(rb'"traceEvents"\s*:\s*\[')
_NO_ARGS: dict[str, Any] = {}
_NUMBER = (int, float)
_new = tuple.__new__


class HostEvent(NamedTuple):
    cat: str
    name: str
    ts: float
    dur: float
    pid: Any
    tid: Any
    correlation: Any  # runtime calls: links to the device event they launched
    shapes: Any  # cpu ops: the interned {"Input Dims", "Input type"} args, else None


class DeviceEvent(NamedTuple):
    cat: str
    name: str
    ts: float
    dur: float
    device: Any
    stream: Any
    correlation: Any
    bytes: float
    blocks_per_sm: float | None  # Kineto's launch figures, when the trace carries them
    occupancy: float | None  # est. achieved occupancy, 0..1
    grid_blocks: int | None


@dataclass
class Trace:
    """One trace file: its metadata and its complete events, cut down."""

    path: Path
    meta: dict[str, Any]
    host: list[HostEvent] = field(default_factory=list)
    runtime: list[HostEvent] = field(default_factory=list)  # the cuda/hip runtime and driver calls
    annotations: list[HostEvent] = field(default_factory=list)  # user_annotation: steps, loaders
    device: list[DeviceEvent] = field(default_factory=list)
    events: int = 0  # every event read, of any phase
    memory_peak_bytes: dict[int, float] = field(default_factory=dict)  # device -> reserved peak


def read_trace(path: Path) -> Trace:
    """The trace at `path`; a corrupt or truncated file is an error naming where it broke."""
    path = Path(path)
    if not path.is_file():
        raise PerfscopeError(f"{path}: no such trace file; pass a .json or .json.gz trace")
    reader = _Reader(path)
    enabled = gc.isenabled()
    gc.disable()  # millions of small objects that live on: the cyclic GC would rescan them
    try:
        with _open(path) as stream:
            reader.run(stream, _loads())
    except PerfscopeError:
        raise
    except (ValueError, EOFError, OSError, zlib.error) as exc:
        at = reader.offset + max(getattr(exc, "pos", 1) - 1, 0)
        raise PerfscopeError(
            f"{path}: corrupt or truncated trace at byte {at:,} of its JSON "
            f"(after {reader.trace.events:,} events): {_short(exc)}; re-export the trace"
        ) from None
    finally:
        if enabled:
            gc.enable()
    return reader.trace


def _loads() -> Any:
    try:
        import orjson
    except ImportError:
        return json.loads
    return orjson.loads


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")  # noqa: SIM115


class _Reader:
    def __init__(self, path: Path) -> None:
        self.trace = Trace(path, {})
        self.offset = 0  # where the unparsed bytes start, in the (decompressed) JSON
        self._names: dict[str, str] = {}
        self._shapes: dict[Any, dict[str, Any]] = {}
        self._host_append = self.trace.host.append

    def run(self, stream: IO[bytes], loads: Any) -> None:
        buffer = self._start(stream)
        while True:
            more = stream.read(CHUNK)
            if not more:
                break
            buffer += more
            buffer = self._parse_whole_events(buffer, loads)
            if len(buffer) > MAX_PIECE:
                raise ValueError("no event boundary in 256 MiB: not a Kineto trace")
        self._parse_tail(buffer, loads)

    def _start(self, stream: IO[bytes]) -> bytearray:
        """Reads up to the `[` of the events list; keeps the metadata written before it."""
        head = bytearray()
        while True:
            more = stream.read(CHUNK)
            head += more
            text = head.lstrip()
            if text[:1] == b"[":  # a bare list of events
                self.offset = len(head) - len(text) + 1
                return bytearray(text[1:])
            at = head.find(b'"traceEvents"')
            if at >= 0:
                opening = _OPENING.match(head, at)
                if opening:
                    self.trace.meta = _metadata(bytes(head[:at]))
                    self.offset = opening.end()
                    return head[opening.end() :]
            if not more or len(head) > HEAD_LIMIT:
                break
        raise PerfscopeError(
            f"{self.trace.path}: not a torch.profiler/Kineto trace (no traceEvents list); pass "
            "the .json or .json.gz that torch.profiler or tensorboard_trace_handler wrote"
        )

    def _parse_whole_events(self, buffer: bytearray, loads: Any) -> bytearray:
        """Parses the whole events at the front of `buffer`; returns what is left."""
        cuts = list(_BETWEEN.finditer(buffer, max(0, len(buffer) - CHUNK)))
        for cut in reversed(cuts[-64:]):
            piece = b"[" + buffer[: cut.start() + 1] + b"]"
            try:
                events = loads(piece)
            except ValueError as exc:
                # A cut between two objects nested in an event fails at the piece's end: try
                # the cut before. A failure before the end is damage in the file.
                if getattr(exc, "pos", len(piece)) < len(piece) - 2:
                    raise
                continue
            self._take(events)
            brace = buffer.rindex(b"{", cut.start(), cut.end())
            self.offset += brace
            return buffer[brace:]
        return buffer

    def _parse_tail(self, buffer: bytearray, loads: Any) -> None:
        """The last events and the `]` that closes the list (what follows it is not read): the
        last `}]` that parses, as one may close a list in the metadata written after it."""
        buffer = self._parse_whole_events(buffer, loads)
        if buffer.lstrip()[:1] == b"]":
            return
        error: ValueError | None = None
        for close in reversed(list(_CLOSE.finditer(buffer))):
            try:
                events = loads(b"[" + buffer[: close.start() + 1] + b"]")
            except ValueError as exc:
                error = error or exc
                continue
            self._take(events)
            return
        raise error or ValueError("the events list does not end: the file is truncated")

    def _take(self, events: list[Any]) -> None:
        add = self._add
        for event in events:
            add(event)
        self.trace.events += len(events)

    def _add(self, e: Any) -> None:
        # The hot loop (once per event): built as tuples, one C call each (NamedTuple's own
        # constructor is Python code).
        if e.__class__ is not dict:
            return
        get = e.get
        ph = get("ph")
        if ph != "X":
            if ph == "i" and get("name") == "[memory]":
                self._memory(get("args") or {})
            return
        cat, ts = get("cat"), get("ts")
        if ts.__class__ is not float and ts.__class__ is not int:
            return
        dur = get("dur")
        if dur.__class__ is not float and dur.__class__ is not int or dur < 0:
            dur = 0.0
        args = get("args") or _NO_ARGS
        name = get("name", "")
        name = self._names.setdefault(name, name) if name.__class__ is str else str(name)
        if cat in HOST_CATEGORIES:
            shapes = self._shape_args(args) if cat == "cpu_op" else None
            row = (cat, name, ts, dur, get("pid"), get("tid"), args.get("correlation"), shapes)
            event = _new(HostEvent, row)
            self._host_append(event)
            if cat in RUNTIME_CATEGORIES:
                self.trace.runtime.append(event)
            elif cat == "user_annotation":
                self.trace.annotations.append(event)
        elif cat in DEVICE_CATEGORIES:
            self.trace.device.append(_device_event(cat, name, ts, dur, args))

    def _shape_args(self, args: dict[str, Any]) -> dict[str, Any] | None:
        dims = args.get("Input Dims")
        if dims is None:
            return None
        types = args.get("Input type")
        try:  # a tuple key costs a third of a text one; nested lists (TensorList) need the text
            key: Any = (tuple(map(tuple, dims)), tuple(types or ()))
            found = self._shapes.get(key)
        except TypeError:
            key = f"{dims}{types}"
            found = self._shapes.get(key)
        if found is None:
            found = self._shapes[key] = {"Input Dims": dims, "Input type": types}
        return found

    def _memory(self, args: dict[str, Any]) -> None:
        device, reserved = args.get("Device Id"), args.get("Total Reserved")
        if isinstance(device, int) and device >= 0 and isinstance(reserved, (int, float)):
            peaks = self.trace.memory_peak_bytes
            peaks[device] = max(peaks.get(device, 0.0), float(reserved))


def _device_event(cat: str, name: str, ts: float, dur: float, args: dict[str, Any]) -> DeviceEvent:
    get = args.get
    size, blocks, occupancy = get("bytes"), get("blocks per SM"), get(_OCCUPANCY)
    grid = get("grid") if blocks is None else None  # only needed when Kineto did not say
    row = (
        cat,
        name,
        ts,
        dur,
        get("device"),
        get("stream"),
        get("correlation"),
        float(size) if size.__class__ in _NUMBER else 0.0,
        float(blocks) if blocks.__class__ in _NUMBER else None,
        occupancy / 100.0 if occupancy.__class__ in _NUMBER else None,
        _product(grid) if grid.__class__ is list else None,
    )
    return _new(DeviceEvent, row)


def _product(values: list[Any]) -> int | None:
    total = 1
    for value in values:
        if not isinstance(value, int):
            return None
        total *= value
    return total


def _metadata(head: bytes) -> dict[str, Any]:
    """The top-level keys written before traceEvents; {} when they cannot be read."""
    text = head.strip()
    if not text.startswith(b"{"):
        return {}
    body = text.rstrip(b",") + b"}"
    try:
        meta = json.loads(body)
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def iter_trace_files(folder: Path) -> Iterator[Path]:
    """The trace files of a folder (tensorboard_trace_handler's `*.pt.trace.json[.gz]` and any
    other `.json`/`.json.gz`), sorted by name."""
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and (path.name.endswith(".json") or path.name.endswith(".json.gz")):
            yield path


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return text or type(exc).__name__
