"""Steps from a process's events: pick one detection method, never count a step twice.

Methods by preference: explicit (`perfscope.step()`, `prof.step()`), trace (`@perfscope.trace`),
optimizer (torch's global optimizer step hook), backward, dataloader. A mark closes a step; a step
opens at the previous mark, or for the first step at the first DataLoader `next()` before it, or at
the enclosing `profile()` block's start. A first step whose start is unknown is not counted
(docs/record.md, "steps").
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from typing import Any

METHODS = ("explicit", "trace", "optimizer", "backward", "dataloader")


@dataclass(frozen=True)
class StepTable:
    method: str | None
    steps: list[dict[str, Any]]
    methods_seen: tuple[str, ...] = ()


def build_steps(events: list[dict[str, Any]], origin: float) -> StepTable:
    """Steps with `start_s` relative to `origin` (a perf_counter time), durations in ms."""
    waits = sorted((e["ts"], e["dur"]) for e in events if e["k"] == "wait")
    seen = tuple(m for m in METHODS if m in {method_of(e) for e in events})
    method = seen[0] if seen else None
    if method is None:
        return StepTable(None, [])
    if method == "trace":
        spans = [(e["ts"], e["ts"] + e["dur"]) for e in events if e["k"] == "span"]
    elif method == "dataloader":
        spans = _dataloader_spans(events)
    else:
        spans = _spans_from_marks(_marks_for(events, method), waits, _anchor(events))
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
        # Nested profile() scopes: only the outermost scope that marks steps counts.
        outer = min(e.get("scope", 0) for e in marks)
        marks = [e for e in marks if e.get("scope", 0) == outer]
        # perfscope.step() and prof.step() in the same scope mark the same steps: keep one.
        if len({e.get("via") for e in marks}) > 1:
            marks = [e for e in marks if e.get("via") == "profile"]
    elif method == "optimizer":
        # Several optimizers (a GAN, say) step once each per iteration: follow one of them, the
        # one stepping most often, and of those the one that steps last in an iteration.
        counts = Counter(e.get("opt") for e in marks)
        top = max(counts.values())
        last_first = {}
        for e in marks:
            last_first.setdefault(e.get("opt"), e["ts"])
        chosen = max((o for o in counts if counts[o] == top), key=lambda o: last_first[o])
        marks = [e for e in marks if e.get("opt") == chosen]
    return sorted(e["ts"] for e in marks)


def _anchor(events: list[dict[str, Any]]) -> float | None:
    begins = [e["ts"] for e in events if e["k"] == "begin"]
    return min(begins) if begins else None


def _spans_from_marks(
    marks: list[float], waits: list[tuple[float, float]], anchor: float | None
) -> list[tuple[float, float]]:
    if not marks:
        return []
    spans = list(zip(marks, marks[1:], strict=False))
    first_start = _first_step_start(marks[0], waits, anchor)
    if first_start is not None:
        spans.insert(0, (first_start, marks[0]))
    return spans


def _first_step_start(
    first_mark: float, waits: list[tuple[float, float]], anchor: float | None
) -> float | None:
    before = [ts for ts, _ in waits if ts < first_mark and (anchor is None or ts >= anchor)]
    if before:
        # The first fetch before the first mark opens it (with gradient accumulation, several do).
        return before[0]
    return anchor


def _dataloader_spans(events: list[dict[str, Any]]) -> list[tuple[float, float]]:
    starts = sorted(e["ts"] for e in events if e["k"] == "wait")
    ends = {e["ts"] for e in events if e["k"] == "wait" and e.get("end")}
    return [(a, b) for a, b in zip(starts, starts[1:], strict=False) if a not in ends]


def _step(
    index: int, start: float, end: float, waits: list[tuple[float, float]], origin: float
) -> dict[str, Any]:
    lo = bisect.bisect_left(waits, (start, -1.0))
    hi = bisect.bisect_left(waits, (end, -1.0))
    wait = sum(dur for _, dur in waits[lo:hi])
    return {
        "index": index,
        "start_s": round(start - origin, 6),
        "duration_ms": round((end - start) * 1e3, 4),
        "data_wait_ms": round(min(wait, end - start) * 1e3, 4),
    }
