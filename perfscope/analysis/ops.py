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
from collections.abc import Callable, Iterable
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
        # ROCm traces name HIP's calls in the same categories
        "hipDeviceSynchronize",
        "hipStreamSynchronize",
        "hipEventSynchronize",
        "hipMemcpy",
        "hipMemcpyWithStream",
    }
)
STEP_ANNOTATION = re.compile(r"^ProfilerStep#(\d+)$")
# torch.optim names its work `Optimizer.step#Adam.step` and `Optimizer.zero_grad#Adam.zero_grad`.
OPTIMIZER_STEP = re.compile(r"^Optimizer\.step#(\w+)\.step$")
OPTIMIZER_ZERO_GRAD = re.compile(r"^Optimizer\.zero_grad#\w+\.zero_grad$")
# Optimizers with a fused implementation in torch.optim (torch 2.13: on CPU and CUDA).
FUSABLE_OPTIMIZERS = frozenset({"Adam", "AdamW", "SGD", "Adagrad"})
MULTI_TENSOR_PREFIXES = ("aten::_foreach_", "aten::_fused_")
MEMSET_OPS = frozenset({"aten::zero_", "aten::fill_", "aten::_foreach_zero_"})
# Tensor factories that take no tensor input: called from the loop with the same arguments every
# step, they rebuild a constant (random factories make new data, `*_like` and `empty` are buffers).
FACTORY_OPS = frozenset(
    {
        "aten::ones",
        "aten::zeros",
        "aten::full",
        "aten::arange",
        "aten::linspace",
        "aten::logspace",
        "aten::eye",
    }
)  # Not torch.tensor(data) (aten::lift_fresh): the trace has its shape, not its values.
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
    per_step = _per_step_series(steps, step_offset)
    per_step.update(_redundant_work_series(steps, host, copies, casts))
    conv_counts, conv_shapes_fixed = _convolutions(ops, _step_locator(steps), len(steps))
    per_step["convolutions"] = conv_counts
    return {
        "steps": len(steps),
        "step_markers": markers,
        "device": has_device,
        "events": len(events),
        "ops": op_table(host, top=top, with_device=has_device),
        "distinct_ops": len({n.name for n in ops}),
        "per_step": per_step,
        "optimizers": dict(Counter(_optimizer_name(n) for n in host if _optimizer_name(n))),
        "syncs": dict(Counter(label for label, _ in syncs).most_common()),
        "copies": _copy_totals(copies),
        "casts": dict(Counter(label for label, _ in casts).most_common()),
        "conv_shapes_fixed": conv_shapes_fixed,
    }


def _convolutions(
    ops: list[Node], locate: Callable[[float], int | None], n_steps: int
) -> tuple[list[int], bool | None]:
    """Convolutions the model ran per step (`aten::convolution`, which conv1d/2d/3d call; not
    nested in another), and whether every
    step ran the same input shapes (what makes cudnn.benchmark's one-off tuning pay); None with
    fewer than two steps that convolve."""
    counts = [0] * n_steps
    shapes: list[list[str]] = [[] for _ in range(n_steps)]
    for node in ops:
        if node.name != "aten::convolution" or any(p.name == node.name for p in ancestors(node)):
            continue
        step = locate(node.ts)
        if step is not None:
            counts[step] += 1
            shapes[step].append(str(node.args.get("Input Dims")))
    signatures = {tuple(sorted(s)) for s in shapes if s}
    fixed = len(signatures) == 1 if sum(1 for s in shapes if s) >= 2 else None
    return counts, fixed


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
            # An annotation may straddle another's end: perfscope's step clock closes
            # ProfilerStep#N and opens #N+1 in an optimizer step hook, inside torch.optim's
            # `Optimizer.step#` annotation. The next step is not part of that call.
            while stack and (
                stack[-1].end <= node.ts
                or (node.cat == "user_annotation" and node.end > stack[-1].end)
            ):
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
        if not device and _inside_optimizer(node) is not None:
            # torch.optim reads its step counters, CPU tensors unless capturable, with .item()
            # (`_fused_adam_` on the CPU too): no sync on a GPU either.
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
    host_us: float = 0.0  # how long that runtime call held the host


def _copies(device: list[dict[str, Any]], host: list[Node]) -> list[Copy]:
    launch = {
        n.args.get("correlation"): n
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
        launcher = launch.get(args.get("correlation"))
        copies.append(
            Copy(
                direction,
                memory,
                float(size) if isinstance(size, (int, float)) else 0.0,
                launcher.ts if launcher is not None else float(e["ts"]),
                launcher.dur if launcher is not None else 0.0,
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


def _redundant_work_series(
    steps: list[_StepStats],
    host: list[Node],
    copies: list[Copy],
    casts: list[tuple[str, Node]],
) -> dict[str, list[Any]]:
    """Per-step counts and host time of work a loop repeats for nothing (rules/redundant_ops)."""
    index = _step_locator(steps)
    pageable = [c for c in copies if c.direction == "h2d" and c.host_memory == "pageable"]
    repeated = _repeated_casts(casts, index)
    optimizer = _optimizer_work(host, _clipper(steps, index))
    constants = _constant_builds(host, index, len(steps))
    series = {
        "h2d_pageable_count": _tally(index, len(steps), [(c.ts, 1) for c in pageable]),
        "h2d_pageable_host_us": _tally(index, len(steps), [(c.ts, c.host_us) for c in pageable]),
        "repeated_casts": _tally(index, len(steps), [(n.ts, 1) for n in repeated]),
        "repeated_cast_us": _tally(index, len(steps), [(n.ts, n.dur) for n in repeated]),
        "constant_builds": _tally(index, len(steps), [(n.ts, 1) for n in constants]),
        "constant_build_us": _tally(index, len(steps), [(n.ts, n.dur) for n in constants]),
    }
    for key, items in optimizer.items():
        series[key] = _tally(index, len(steps), items)
    return {key: [round(v, 3) for v in values] for key, values in series.items()}


def _step_locator(steps: list[_StepStats]) -> Callable[[float], int | None]:
    starts = [s.start for s in steps]

    def locate(ts: float) -> int | None:
        i = bisect.bisect_right(starts, ts) - 1
        return i if i >= 0 and ts < steps[i].end else None

    return locate


def _tally(
    locate: Callable[[float], int | None], n: int, items: Iterable[tuple[float, float]]
) -> list[float]:
    """The sum of the values whose time falls in each step."""
    totals = [0.0] * n
    for ts, value in items:
        i = locate(ts)
        if i is not None:
            totals[i] += value
    return totals


def outermost_op(node: Node) -> Node:
    """The op the Python code called: the outermost `cpu_op` around this one (or itself)."""
    outer = [p for p in ancestors(node) if p.cat == "cpu_op"]
    return outer[-1] if outer else node


def _repeated_casts(
    casts: list[tuple[str, Node]], locate: Callable[[float], int | None]
) -> list[Node]:
    """Casts the loop asked for (`x.to(dtype)`, `.float()`, `.copy_()`, not autocast's, which run
    inside the op they feed) that repeat one already made in the same step: the same dtypes and
    shape. Each is named by its outermost op, whose time is what skipping it saves."""
    seen: set[tuple[int, str, str]] = set()
    repeats = []
    for label, node in sorted(casts, key=lambda c: c[1].ts):
        top = outermost_op(node)
        step = locate(node.ts)
        if step is None or top.name not in ("aten::to", "aten::_to_copy", "aten::copy_"):
            continue
        key = (step, label, str(node.args.get("Input Dims")))
        if key in seen:
            repeats.append(top)
        seen.add(key)
    return repeats


def _optimizer_name(node: Node) -> str | None:
    found = OPTIMIZER_STEP.match(node.name) if node.cat == "user_annotation" else None
    return found.group(1) if found else None


def _clipper(
    steps: list[_StepStats], locate: Callable[[float], int | None]
) -> Callable[[Node], float]:
    """A node's duration cut at the end of its step: torch.optim runs step hooks (perfscope's
    step clock, and the profiler's step change with it) inside its `Optimizer.step#` annotation."""

    def clipped(node: Node) -> float:
        i = locate(node.ts)
        return node.dur if i is None else max(min(node.end, steps[i].end) - node.ts, 0.0)

    return clipped


def _optimizer_work(
    host: list[Node], clipped: Callable[[Node], float]
) -> dict[str, list[tuple[float, float]]]:
    """What torch.optim does per step, from its `Optimizer.step#`/`zero_grad#` annotations:
    its time, the ops it dispatches one parameter at a time (a for-loop implementation) or for
    many at once (`_foreach_*`, `_fused_*`), and the gradients zero_grad fills with zeros
    (set_to_none=False) instead of dropping."""
    work: dict[str, list[tuple[float, float]]] = {
        "optimizer_us": [],
        "optimizer_loop_ops": [],
        "optimizer_multi_tensor_ops": [],
        "zero_grad_us": [],
        "zero_grad_memsets": [],
    }
    for node in host:
        if node.cat == "user_annotation" and not _inside_optimizer(node):
            if _optimizer_name(node):
                work["optimizer_us"].append((node.ts, clipped(node)))
            elif OPTIMIZER_ZERO_GRAD.match(node.name):
                work["zero_grad_us"].append((node.ts, clipped(node)))
        if node.cat != "cpu_op" or any(p.cat == "cpu_op" for p in ancestors(node)):
            continue
        owner = _inside_optimizer(node)
        if owner is None:
            continue
        if OPTIMIZER_ZERO_GRAD.match(owner.name):
            if node.name in MEMSET_OPS:
                work["zero_grad_memsets"].append((node.ts, _tensor_count(node)))
        elif node.name.startswith(MULTI_TENSOR_PREFIXES):
            work["optimizer_multi_tensor_ops"].append((node.ts, 1))
        elif not _scalars_only(node.args):
            work["optimizer_loop_ops"].append((node.ts, 1))
    return work


def _inside_optimizer(node: Node) -> Node | None:
    for parent in ancestors(node):
        if parent.cat == "user_annotation" and (
            OPTIMIZER_STEP.match(parent.name) or OPTIMIZER_ZERO_GRAD.match(parent.name)
        ):
            return parent
    return None


def _scalars_only(args: dict[str, Any]) -> bool:
    # Step counters and hyper-parameters (0-dim tensors): cheap, and fused optimizers have them
    # too. Without recorded shapes an op cannot be told apart and counts as per-parameter work.
    dims = args.get("Input Dims")
    return isinstance(dims, list) and all(d == [] for d in dims)


def _tensor_count(node: Node) -> float:
    """Tensors an op fills: one, or each tensor of a `_foreach_` op's list."""
    dims = node.args.get("Input Dims")
    if node.name.startswith("aten::_foreach_") and isinstance(dims, list) and dims:
        first = dims[0]
        if isinstance(first, list) and first and all(isinstance(d, list) for d in first):
            return float(len(first))
    return 1.0


def _constant_builds(
    host: list[Node], locate: Callable[[float], int | None], n_steps: int
) -> list[Node]:
    """Tensor factories the loop calls with the same arguments in every recorded step (a mask,
    a position table): constants built again each step. Needs two steps or more to tell."""
    if n_steps < 2:
        return []
    by_key: dict[str, list[tuple[int, Node]]] = defaultdict(list)
    for node in host:
        if node.cat != "cpu_op" or node.name not in FACTORY_OPS:
            continue
        step = locate(node.ts)
        arguments = node.args.get("Concrete Inputs")  # absent from older traces: cannot tell
        if step is None or arguments is None or any(p.cat == "cpu_op" for p in ancestors(node)):
            continue
        key = f"{node.name} {arguments} {node.args.get('Input Dims')}"
        by_key[key].append((step, node))
    builds = []
    for calls in by_key.values():
        if len({step for step, _ in calls}) == n_steps:
            builds.extend(node for _, node in calls)
    return builds


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


# (per-step series, metric, divisor): means over the window's whole steps.
REDUNDANT_WORK_METRICS = (
    ("h2d_pageable_count", "ops.h2d_pageable_count_per_step", 1.0),
    ("h2d_pageable_host_us", "ops.h2d_pageable_host_ms_per_step", 1e3),
    ("repeated_casts", "ops.repeated_casts_per_step", 1.0),
    ("repeated_cast_us", "ops.repeated_cast_ms_per_step", 1e3),
    ("constant_builds", "ops.constant_builds_per_step", 1.0),
    ("constant_build_us", "ops.constant_build_ms_per_step", 1e3),
    ("optimizer_us", "ops.optimizer_ms_per_step", 1e3),
    ("optimizer_loop_ops", "ops.optimizer_loop_ops_per_step", 1.0),
    ("optimizer_multi_tensor_ops", "ops.optimizer_multi_tensor_ops_per_step", 1.0),
    ("zero_grad_us", "ops.zero_grad_ms_per_step", 1e3),
    ("zero_grad_memsets", "ops.zero_grad_memsets_per_step", 1.0),
)


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
    metrics["ops.trace_has_device"] = float(bool(summary.get("device")))
    metrics["ops.traced_step_ms"] = per_step("dur_us", 1e3)
    for key, name, scale in REDUNDANT_WORK_METRICS:
        if key in series:  # records written before these series existed lack them
            metrics[name] = per_step(key, scale)
    if "optimizer_us" in series:
        window_us = sum(series.get("dur_us") or [0])
        metrics["ops.optimizer_frac"] = (
            per_step("optimizer_us") * n / window_us if window_us else 0.0
        )
    if "convolutions" in series:
        metrics["ops.conv_per_step"] = per_step("convolutions")
    if summary.get("conv_shapes_fixed") is not None:
        metrics["ops.conv_shapes_fixed"] = float(summary["conv_shapes_fixed"])
    optimizers = summary.get("optimizers") or {}
    if optimizers:
        metrics["ops.optimizer_fusable"] = float(all(o in FUSABLE_OPTIMIZERS for o in optimizers))
    return {k: v for k, v in metrics.items() if math.isfinite(v)}
