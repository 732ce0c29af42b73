"""Communication in a rank's op-trace window: time in collectives and its overlap with compute.

Read from the window's Chrome trace (trace.json.gz). A collective's own op (`c10d::allreduce_`)
only enqueues the work; the work itself is an annotation on the backend's thread (`gloo:...`,
`nccl:...`) or NCCL kernels on the device, spanning transfer and the wait for the other ranks.
Compute is the other ops of the thread that runs the steps (CPU) or the other kernels (CUDA).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_BACKEND_WORK = re.compile(r"^(gloo|nccl|mpi|ucc|xccl):")
_STEP = re.compile(r"^ProfilerStep#\d+$")
Interval = tuple[float, float]


def comm_from_trace(path: Path) -> dict[str, float] | None:
    """`comm_frac` (collective time over the window's step time), `comm_overlap_frac` (the share
    of it that overlapped compute) and `comm_calls_per_step`; None when the trace has no steps
    or cannot be read."""
    try:
        with gzip.open(path, "rb") as f:
            trace = json.load(f)
    except (OSError, EOFError, ValueError):
        return None
    events = trace.get("traceEvents", []) if isinstance(trace, dict) else trace
    return comm_from_events([e for e in events if e.get("ph") == "X" and "dur" in e])


def comm_from_events(events: list[dict[str, Any]]) -> dict[str, float] | None:
    steps = [e for e in events if _STEP.match(str(e.get("name", "")))]
    if not steps:
        return None
    window = sum(float(e["dur"]) for e in steps)
    if window <= 0:
        return None
    step_tids = {e.get("tid") for e in steps}
    kernels = [e for e in events if e.get("cat") == "kernel"]
    if any("nccl" in str(e.get("name", "")).lower() for e in kernels):
        comm = [e for e in kernels if "nccl" in str(e["name"]).lower()]
        compute = [e for e in kernels if "nccl" not in str(e["name"]).lower()]
    else:
        comm = [e for e in events if _BACKEND_WORK.match(str(e.get("name", "")))]
        compute = [
            e
            for e in events
            if e.get("cat") == "cpu_op"
            and e.get("tid") in step_tids
            and not str(e.get("name", "")).startswith("c10d::")
        ]
    comm_union = _union(_spans(comm))
    comm_us = _length(comm_union)
    overlap_us = _length(_intersect(comm_union, _union(_spans(compute))))
    return {
        "comm_frac": min(comm_us / window, 1.0),
        "comm_overlap_frac": overlap_us / comm_us if comm_us > 0 else 0.0,
        "comm_calls_per_step": len(comm) / len(steps),
    }


def _spans(events: Iterable[dict[str, Any]]) -> list[Interval]:
    return [(float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in events]


def _union(spans: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """Both inputs sorted and disjoint (unions)."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _length(spans: list[Interval]) -> float:
    return sum(end - start for start, end in spans)
