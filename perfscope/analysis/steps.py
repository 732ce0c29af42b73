"""Steps from a process's events: pick one detection method, never count a step twice.

Methods by preference: explicit (`perfscope.step()`, `prof.step()`), trace (`@perfscope.trace`),
optimizer (torch's global optimizer step hook), backward, dataloader. A mark closes a step; a step
opens at the previous mark, or for the first step at the first DataLoader `next()` before it, or at
the enclosing `profile()` block's start. A first step whose start is unknown is not counted
(docs/record.md, "steps").
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

METHODS = ("explicit", "trace", "optimizer", "backward", "dataloader")


Wait = tuple[float, float, bool]  # start (perf_counter), duration (s), first fetch of an iterator


@dataclass(frozen=True)
class StepTable:
    method: str | None
    steps: list[dict[str, Any]]
    methods_seen: tuple[str, ...] = ()


def build_steps(events: list[dict[str, Any]], origin: float) -> StepTable:
    """Steps with `start_s` relative to `origin` (a perf_counter time), durations in ms."""
    waits = sorted((e["ts"], e["dur"], bool(e.get("first"))) for e in events if e["k"] == "wait")
    seen = tuple(m for m in METHODS if m in {method_of(e) for e in events})
    method = seen[0] if seen else None
    if method is None:
        return StepTable(None, [])
    if method == "trace":
        spans = [(e["ts"], e["ts"] + e["dur"]) for e in events if e["k"] == "span"]
    elif method == "dataloader":
        spans = _dataloader_spans(events)
    else:
        marks = _marks_for(events, method)
        spans = _spans_from_marks(marks, waits, _anchor(events, method, marks[0]))
    steps = [_step(i, s, e, waits, origin) for i, (s, e) in enumerate(spans)]
    return StepTable(method, steps, seen)


def method_of(event: dict[str, Any]) -> str | None:
    """The step-detection method an event is evidence of, if any."""
    kind = event["k"]
    if kind == "mark":
        return event["src"]
    if kind == "span":
        return "trace"
    if kind == "wait" and not event.get("end"):
        return "dataloader"
    return None


def _marks_for(events: list[dict[str, Any]], method: str) -> list[float]:
    marks = [e for e in events if e["k"] == "mark" and e["src"] == method]
    if method == "explicit":
        marks = _explicit_marks(events, marks)
    elif method == "optimizer":
        marks = _one_optimizer(marks)
    return sorted(e["ts"] for e in marks)


def _explicit_marks(
    events: list[dict[str, Any]], marks: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    # Nested profile() scopes: only the outermost scope that marks steps counts.
    outer = _explicit_scope(marks)
    marks = [e for e in marks if e.get("scope", 0) == outer]
    # Inside a block whose prof.step() marks steps, perfscope.step() marks the same steps.
    blocks = [
        (lo, hi)
        for lo, hi in _blocks(events, outer)
        if any(e.get("via") == "profile" and lo <= e["ts"] <= hi for e in marks)
    ]
    return [
        e
        for e in marks
        if e.get("via") != "step" or not any(lo <= e["ts"] <= hi for lo, hi in blocks)
    ]


def _explicit_scope(marks: list[dict[str, Any]]) -> int:
    return min(e.get("scope", 0) for e in marks)


def _blocks(events: list[dict[str, Any]], scope: int) -> list[tuple[float, float]]:
    """The (begin, end) times of the profile() blocks of one scope; an unclosed one never ends."""
    begins = sorted(e["ts"] for e in events if e["k"] == "begin" and e.get("scope", 0) == scope)
    ends = sorted(e["ts"] for e in events if e["k"] == "end" and e.get("scope", 0) == scope)
    blocks = []
    for lo in begins:
        hi = next((t for t in ends if t >= lo), math.inf)
        blocks.append((lo, hi))
    return blocks


def _one_optimizer(marks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Several optimizers (a GAN, say) step once each per iteration: follow one of them, the
    # one stepping most often, and of those the one that steps last in an iteration.
    counts = Counter(e.get("opt") for e in marks)
    top = max(counts.values())
    first_seen: dict[Any, float] = {}
    for e in marks:
        first_seen.setdefault(e.get("opt"), e["ts"])
    chosen = max((o for o in counts if counts[o] == top), key=lambda o: first_seen[o])
    return [e for e in marks if e.get("opt") == chosen]


def _anchor(events: list[dict[str, Any]], method: str, first_mark: float) -> float | None:
    """The start of the latest profile() block opened before the first mark, in the marks' scope."""
    begins = [e for e in events if e["k"] == "begin" and e["ts"] <= first_mark]
    if method == "explicit":
        explicit = [e for e in events if e["k"] == "mark" and e["src"] == "explicit"]
        scope = _explicit_scope(explicit)
        begins = [e for e in begins if e.get("scope", 0) == scope]
    return max((e["ts"] for e in begins), default=None)


def _spans_from_marks(
    marks: list[float], waits: list[Wait], anchor: float | None
) -> list[tuple[float, float]]:
    if not marks:
        return []
    spans = list(zip(marks, marks[1:], strict=False))
    first_start = _first_step_start(marks[0], waits, anchor)
    if first_start is not None:
        spans.insert(0, (first_start, marks[0]))
    return spans


def _first_step_start(first_mark: float, waits: list[Wait], anchor: float | None) -> float | None:
    before = [ts for ts, _, _ in waits if ts < first_mark and (anchor is None or ts >= anchor)]
    if before:
        # The first fetch before the first mark opens it (with gradient accumulation, several do).
        return before[0]
    return anchor


def _dataloader_spans(events: list[dict[str, Any]]) -> list[tuple[float, float]]:
    starts = sorted(e["ts"] for e in events if e["k"] == "wait")
    ends = {e["ts"] for e in events if e["k"] == "wait" and e.get("end")}
    return [(a, b) for a, b in zip(starts, starts[1:], strict=False) if a not in ends]


def _step(index: int, start: float, end: float, waits: list[Wait], origin: float) -> dict[str, Any]:
    lo = bisect.bisect_left(waits, (start, -1.0, False))
    hi = bisect.bisect_left(waits, (end, -1.0, False))
    wait = sum(dur for _, dur, _ in waits[lo:hi])
    step = {
        "index": index,
        "start_s": round(start - origin, 6),
        "duration_ms": round((end - start) * 1e3, 4),
        "data_wait_ms": round(min(wait, end - start) * 1e3, 4),
    }
    if any(first for _, _, first in waits[lo:hi]):
        step["first_batch"] = True  # its wait includes a loader's start-up (workers, first fetch)
    return step


def flag_profiled(steps: list[dict[str, Any]], window_perf: Any, origin: float) -> None:
    """Marks `profiled` the steps that overlap the op-trace window (`window_perf`: its start and
    end on the perf_counter clock of `origin`): the profiler slowed them down."""
    if not window_perf:
        return
    start, end = window_perf[0] - origin, window_perf[1] - origin
    for step in steps:
        if step["start_s"] < end and step["start_s"] + step["duration_ms"] / 1e3 > start:
            step["profiled"] = True
