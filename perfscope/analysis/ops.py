"""Op-level facts from a torch.profiler (Kineto) Chrome trace: pure functions, no I/O.

`summarize_trace` turns one trace (the JSON object torch.profiler exports, whether perfscope's own
op-trace window wrote it or a user's `export_chrome_trace` did) into the `samples.ops` summary of
the record; `ops_metrics` turns that summary into `ops.*` metrics. Only complete ("X") events
count. Host events (cpu_op, user_annotation, cuda_runtime, cuda_driver, python_function) nest by
time on their thread; device events (kernel, gpu_memcpy, gpu_memset) belong to the host runtime
call with the same `correlation`.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TOP_OPS = 50
TOP_SHAPES = 3
MIB = float(1 << 20)

HOST_CATEGORIES = frozenset(
    {"cpu_op", "user_annotation", "cuda_runtime", "cuda_driver", "python_function"}
)
DEVICE_CATEGORIES = frozenset({"kernel", "gpu_memcpy", "gpu_memset"})
RUNTIME_CATEGORIES = frozenset({"cuda_runtime", "cuda_driver"})
# Host-device syncs. With a device in the trace, a sync is a runtime call that blocks the host
# (`.item()` is aten::item > aten::_local_scalar_dense > cudaMemcpyAsync + cudaStreamSynchronize),
# named by the outermost op it ran in; the `.item()` of a CPU tensor is no sync there. Without a
# device, the ops that would sync on one count instead. One nest counts once.
SYNC_OPS = frozenset({"aten::item", "aten::_local_scalar_dense", "aten::is_nonzero"})
SYNC_CALLS = frozenset(
    {
        "cudaStreamSynchronize",
        "cudaDeviceSynchronize",
        "cudaEventSynchronize",
        "cudaMemcpy",
        "cudaMemcpy2D",
        "cudaMemcpyFromSymbol",
        "cudaMemcpyToSymbol",
        "cuStreamSynchronize",
        "cuCtxSynchronize",
        "cuEventSynchronize",
        "cuMemcpyDtoH_v2",
        "cuMemcpyHtoD_v2",
    }
)
STEP_ANNOTATION = re.compile(r"^ProfilerStep#(\d+)$")
_NOT_A_DTYPE = frozenset({"", "Scalar", "ScalarList", "TensorList", "GenericList"})


@dataclass
class Node:
    """One complete event of the trace, with what the tree walk learns about it."""

    name: str
    cat: str
    ts: float
    dur: float
    args: dict[str, Any]
    tid: tuple[Any, Any]
    self_us: float = 0.0
    parent: Node | None = None
    device_us: float = 0.0  # device time of the kernels and copies this host call launched
    children_us: float = 0.0

    @property
    def end(self) -> float:
        return self.ts + self.dur


@dataclass
class _StepStats:
    number: int
    start: float
    end: float
    ops: int = 0
    self_us: float = 0.0
    syncs: int = 0
    casts: int = 0
    copies: dict[str, list[float]] = field(default_factory=dict)  # direction -> [count, bytes]


def complete_events(trace: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The complete ("X") events of a trace object or of a bare list of events."""
    events = trace.get("traceEvents", []) if isinstance(trace, dict) else trace
    return [
        e
        for e in events
        if isinstance(e, dict) and e.get("ph") == "X" and isinstance(e.get("ts"), (int, float))
    ]


def summarize_trace(
    trace: dict[str, Any] | list[dict[str, Any]],
    *,
    complete_steps: int | None = None,
    step_offset: int = 0,
    top: int = TOP_OPS,
) -> dict[str, Any]:
    """The `samples.ops` summary of one trace.

    Args:
        trace: the Chrome trace object (with `traceEvents`) or its list of events.
        complete_steps: how many of the `ProfilerStep#N` spans, in order, are whole steps (a run
            that ended inside the window leaves a last, partial one); None: all of them.
        step_offset: added to N to name each step (perfscope's step clock index).
        top: rows of the op table.

    The op table covers everything recorded; the per-step series cover whole steps only. A
    trace without step annotations counts as one step.
    """
    events = complete_events(trace)
    host = _build_host_tree(events)
    device = [e for e in events if e.get("cat") in DEVICE_CATEGORIES]
    _attach_device_time(host, device)
    steps, markers = _steps(events, complete_steps)
    ops = [n for n in host if n.cat == "cpu_op"]
    has_device = bool(device) or any(n.cat in RUNTIME_CATEGORIES for n in host)
    syncs = _sync_points(host, has_device)
    copies = _copies(device, host)
    casts = _casts(ops)
    _fill_steps(steps, ops, syncs, copies, casts)
    return {
        "steps": len(steps),
        "step_markers": markers,
        "device": has_device,
        "events": len(events),
        "ops": op_table(host, top=top, with_device=has_device),
        "distinct_ops": len({n.name for n in ops}),
        "per_step": _per_step_series(steps, step_offset),
        "syncs": dict(Counter(label for label, _ in syncs).most_common()),
        "copies": _copy_totals(copies),
        "casts": dict(Counter(label for label, _ in casts).most_common()),
    }


def _build_host_tree(events: Iterable[dict[str, Any]]) -> list[Node]:
    """Host events nested by time on their thread; each gets its parent and self time."""
    by_thread: dict[tuple[Any, Any], list[Node]] = defaultdict(list)
    for e in events:
        if e.get("cat") in HOST_CATEGORIES:
            key = (e.get("pid"), e.get("tid"))
            node = Node(
                str(e.get("name", "")),
                e["cat"],
                float(e["ts"]),
                max(float(e.get("dur", 0.0) or 0.0), 0.0),
                e.get("args") or {},
                key,
            )
            by_thread[key].append(node)
    nodes: list[Node] = []
    for thread in by_thread.values():
        thread.sort(key=lambda n: (n.ts, -n.dur))
        stack: list[Node] = []
        for node in thread:
            while stack and stack[-1].end <= node.ts:
                stack.pop()
            if stack:
                node.parent = stack[-1]
                stack[-1].children_us += node.dur
            stack.append(node)
        nodes.extend(thread)
    for node in nodes:
        node.self_us = max(node.dur - node.children_us, 0.0)
    return nodes


def _attach_device_time(host: list[Node], device: list[dict[str, Any]]) -> None:
    runtime = {
        n.args.get("correlation"): n
        for n in host
        if n.cat in RUNTIME_CATEGORIES and n.args.get("correlation") is not None
    }
    for e in device:
        launcher = runtime.get((e.get("args") or {}).get("correlation"))
        if launcher is not None:
            launcher.device_us += max(float(e.get("dur", 0.0) or 0.0), 0.0)


def ancestors(node: Node) -> Iterable[Node]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def op_table(host: list[Node], top: int = TOP_OPS, with_device: bool = False) -> list[dict]:
    """Per op name: count, self and total CPU (and device) time in us, top input shapes."""
    rows: dict[str, dict[str, Any]] = {}
    shapes: dict[str, Counter[str]] = defaultdict(Counter)
    ops = [n for n in host if n.cat == "cpu_op"]
    device = _device_time_by_op(host, ops) if with_device else {}
    for node in ops:
        row = rows.setdefault(node.name, {"name": node.name, "count": 0, "self_cpu_us": 0.0})
        row["count"] += 1
        row["self_cpu_us"] += node.self_us
        row["cpu_us"] = row.get("cpu_us", 0.0) + node.dur
        key = _shape_key(node.args)
        if key is not None:
            shapes[node.name][key] += 1
    ordered = sorted(rows.values(), key=lambda r: (-r["self_cpu_us"], r["name"]))[:top]
    for row in ordered:
        row["self_cpu_us"] = round(row["self_cpu_us"], 3)
        row["cpu_us"] = round(row["cpu_us"], 3)
        if with_device:
            self_us, total_us = device.get(row["name"], (0.0, 0.0))
            row["self_device_us"] = round(self_us, 3)
            row["device_us"] = round(total_us, 3)
        row["shapes"] = [
            {"shape": key, "count": n} for key, n in shapes[row["name"]].most_common(TOP_SHAPES)
        ]
    return ordered


def _device_time_by_op(host: list[Node], ops: list[Node]) -> dict[str, tuple[float, float]]:
    """Self device time: launched by the op itself; total: by it or anything it calls."""
    own: dict[int, float] = defaultdict(float)
    below: dict[int, float] = defaultdict(float)
    for node in host:
        if not node.device_us:
            continue
        first = True
        for parent in ancestors(node):
            if parent.cat != "cpu_op":
                continue
            if first:
                own[id(parent)] += node.device_us
                first = False
            below[id(parent)] += node.device_us
    result: dict[str, tuple[float, float]] = {}
    for op in ops:
        self_us, total_us = result.get(op.name, (0.0, 0.0))
        result[op.name] = (self_us + own.get(id(op), 0.0), total_us + below.get(id(op), 0.0))
    return result


def _shape_key(args: dict[str, Any]) -> str | None:
    dims = args.get("Input Dims")
    if not isinstance(dims, list):
        return None
    if not any(dims):
        return None
    types = args.get("Input type")
    text = ", ".join(_dims_text(d) for d in dims)
    if isinstance(types, list):
        dtypes = [t for t in types if isinstance(t, str) and t not in _NOT_A_DTYPE]
        if dtypes:
            text += " (" + ", ".join(dict.fromkeys(dtypes)) + ")"
    return text


def _dims_text(dims: Any) -> str:
    if isinstance(dims, list) and all(isinstance(d, int) for d in dims):
        return "[" + ", ".join(str(d) for d in dims) + "]"
    return "[]" if dims in ([], None, "") else str(dims)


def _steps(events: list[dict[str, Any]], complete: int | None) -> tuple[list[_StepStats], bool]:
    marks = []
    for e in events:
        found = STEP_ANNOTATION.match(str(e.get("name", "")))
        if found and e.get("cat") == "user_annotation":
            marks.append(_StepStats(int(found.group(1)), float(e["ts"]), _end(e)))
    marks.sort(key=lambda s: s.start)
    if marks:
        return (marks if complete is None else marks[: max(complete, 0)]), True
    host = [e for e in events if e.get("cat") in HOST_CATEGORIES]
    if not host or complete == 0:
        return [], False
    return [_StepStats(0, min(float(e["ts"]) for e in host), max(_end(e) for e in host))], False


def _end(event: dict[str, Any]) -> float:
    return float(event["ts"]) + max(float(event.get("dur", 0.0) or 0.0), 0.0)


def _sync_points(host: list[Node], device: bool) -> list[tuple[str, Node]]:
    """The outermost sync of each nest, named by the outermost op around it."""
    names = SYNC_CALLS if device else SYNC_OPS
    points = []
    for node in host:
        if node.name not in names or any(p.name in names for p in ancestors(node)):
            continue
        outer = [p for p in ancestors(node) if p.cat == "cpu_op"]
        points.append((outer[-1].name if outer else node.name, node))
    return points


@dataclass(frozen=True)
class Copy:
    direction: str  # h2d, d2h, d2d
    host_memory: str | None  # pinned, pageable, None when the trace does not say
    bytes: float
    ts: float  # when the host asked for it (its runtime call), else when it ran


def _copies(device: list[dict[str, Any]], host: list[Node]) -> list[Copy]:
    launch = {
        n.args.get("correlation"): n.ts
        for n in host
        if n.cat in RUNTIME_CATEGORIES and n.args.get("correlation") is not None
    }
    copies = []
    for e in device:
        if e.get("cat") != "gpu_memcpy":
            continue
        name = str(e.get("name", ""))
        direction = _direction(name)
        if direction is None:
            continue
        args = e.get("args") or {}
        memory = "pinned" if "Pinned" in name else "pageable" if "Pageable" in name else None
        size = args.get("bytes")
        copies.append(
            Copy(
                direction,
                memory,
                float(size) if isinstance(size, (int, float)) else 0.0,
                launch.get(args.get("correlation"), float(e["ts"])),
            )
        )
    return copies


def _direction(name: str) -> str | None:
    for token, direction in (("HtoD", "h2d"), ("DtoH", "d2h"), ("DtoD", "d2d")):
        if token in name:
            return direction
    return None


def _casts(ops: list[Node]) -> list[tuple[str, Node]]:
    """`aten::copy_` of a tensor between two dtypes: the work of `.to(dtype)`, `.float()`..."""
    casts = []
    for node in ops:
        if node.name != "aten::copy_":
            continue
        types = node.args.get("Input type")
        if not isinstance(types, list) or len(types) < 2:
            continue
        dst, src = types[0], types[1]
        if dst in _NOT_A_DTYPE or src in _NOT_A_DTYPE or dst == src or _is_scalar(node.args):
            continue
        casts.append((f"{src}->{dst}", node))
    return casts


def _is_scalar(args: dict[str, Any]) -> bool:
    # A 0-dim tensor (a loss, a wrapped Python number) cast inside torch's own formulas.
    dims = args.get("Input Dims")
    return isinstance(dims, list) and len(dims) > 1 and dims[1] == []


def _fill_steps(
    steps: list[_StepStats],
    ops: list[Node],
    syncs: list[tuple[str, Node]],
    copies: list[Copy],
    casts: list[tuple[str, Node]],
) -> None:
    starts = [s.start for s in steps]

    def step_at(ts: float) -> _StepStats | None:
        i = bisect.bisect_right(starts, ts) - 1
        return steps[i] if i >= 0 and ts < steps[i].end else None

    for node in ops:
        step = step_at(node.ts)
        if step is not None:
            step.ops += 1
            step.self_us += node.self_us
    for _, node in syncs:
        if (step := step_at(node.ts)) is not None:
            step.syncs += 1
    for _, node in casts:
        if (step := step_at(node.ts)) is not None:
            step.casts += 1
    for copy in copies:
        if (step := step_at(copy.ts)) is not None:
            count_bytes = step.copies.setdefault(copy.direction, [0, 0.0])
            count_bytes[0] += 1
            count_bytes[1] += copy.bytes


def _per_step_series(steps: list[_StepStats], offset: int) -> dict[str, list[Any]]:
    def copies(s: _StepStats, direction: str, i: int) -> float:
        return s.copies.get(direction, [0, 0.0])[i]

    return {
        "step": [s.number + offset for s in steps],
        "dur_us": [round(s.end - s.start, 3) for s in steps],
        "ops": [s.ops for s in steps],
        "self_cpu_us": [round(s.self_us, 3) for s in steps],
        "syncs": [s.syncs for s in steps],
        "h2d_count": [int(copies(s, "h2d", 0)) for s in steps],
        "h2d_bytes": [int(copies(s, "h2d", 1)) for s in steps],
        "d2h_count": [int(copies(s, "d2h", 0)) for s in steps],
        "d2h_bytes": [int(copies(s, "d2h", 1)) for s in steps],
        "casts": [s.casts for s in steps],
    }


def _copy_totals(copies: list[Copy]) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, float]] = {}
    for direction in ("h2d", "d2h", "d2d"):
        chosen = [c for c in copies if c.direction == direction]
        totals[direction] = {
            "count": len(chosen),
            "bytes": int(sum(c.bytes for c in chosen)),
            "pinned": sum(1 for c in chosen if c.host_memory == "pinned"),
            "pageable": sum(1 for c in chosen if c.host_memory == "pageable"),
            "pageable_bytes": int(sum(c.bytes for c in chosen if c.host_memory == "pageable")),
        }
    return totals


def ops_metrics(record: Any) -> dict[str, float]:
    """`ops.*` metrics from `record.samples["ops"]`, when the ops collector is ok.

    Per-step values are means over the whole recorded steps of the window.
    """
    entry = (getattr(record, "collectors", None) or {}).get("ops") or {}
    summary = (getattr(record, "samples", None) or {}).get("ops")
    if entry.get("status") != "ok" or not isinstance(summary, dict):
        return {}
    series = summary.get("per_step") or {}
    n = len(series.get("ops") or [])
    metrics: dict[str, float] = {"ops.trace_window_steps": float(n)}
    if n == 0:
        return metrics

    def per_step(key: str, scale: float = 1.0) -> float:
        return sum(series.get(key) or [0]) / scale / n

    total_ops = sum(series["ops"])
    metrics.update(
        {
            "ops.per_step": per_step("ops"),
            "ops.mean_op_us": sum(series.get("self_cpu_us") or [0]) / total_ops
            if total_ops
            else 0.0,
            "ops.syncs_per_step": per_step("syncs"),
            "ops.h2d_count_per_step": per_step("h2d_count"),
            "ops.h2d_mb_per_step": per_step("h2d_bytes", MIB),
            "ops.d2h_count_per_step": per_step("d2h_count"),
            "ops.d2h_mb_per_step": per_step("d2h_bytes", MIB),
            "ops.dtype_casts_per_step": per_step("casts"),
        }
    )
    h2d = (summary.get("copies") or {}).get("h2d") or {}
    if h2d.get("bytes"):
        metrics["ops.h2d_pageable_frac"] = h2d.get("pageable_bytes", 0) / h2d["bytes"]
    return {k: v for k, v in metrics.items() if math.isfinite(v)}
