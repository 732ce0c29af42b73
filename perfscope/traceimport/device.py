"""Steps and device-side facts of one trace: the `samples.trace` summary (docs/analyze.md).

Per step (a `ProfilerStep#N` span on the host; a trace without them is one step): the time a
kernel ran on the main device (kernels of all its streams merged), and the idle time split by
what the next kernel was waiting for:

- host: its launch came after the device went idle, and no host-device sync ended in between:
  the host did not feed the device (Python, dispatch, data loading on the training thread);
- sync: the same, but a blocking sync call (`cudaStreamSynchronize`, `.item()`...) returned in
  between: the sync drained the queue and the host's latency showed;
- other: the kernel was launched before the device went idle (a dependency on another stream,
  an event wait, a copy on the copy engine), and the idle time at the end of the trace.

Communication kernels (NCCL/RCCL) count as device time; their overlap with compute kernels is
measured separately. Everything is computed in one sorted pass per list: linear in events.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from perfscope.analysis.ops import STEP_ANNOTATION, SYNC_CALLS
from perfscope.traceimport.reader import DeviceEvent, HostEvent, Trace

DATALOADER = "enumerate(DataLoader)#"
TOP_KERNELS = 30
LAUNCH_CALLS = frozenset(
    {
        "cudaLaunchKernel",
        "cudaLaunchKernelExC",
        "cudaLaunchCooperativeKernel",
        "cuLaunchKernel",
        "cuLaunchKernelEx",
        "cudaGraphLaunch",
        "hipLaunchKernel",
        "hipExtLaunchKernel",
        "hipModuleLaunchKernel",
        "hipExtModuleLaunchKernel",
        "hipGraphLaunch",
    }
)
COMM_KERNEL = re.compile(r"nccl|rccl", re.I)
MATMUL_KERNEL = re.compile(
    r"gemm|gemv|conv|cutlass|xmma|cudnn|cublas|wgrad|dgrad|fprop|winograd|Cijk_|matmul", re.I
)
NOT_MATMUL = re.compile(r"bn_|batch_?norm|Offsets|To(Nhwc|Nchw)|elementwise", re.I)
# Tensor-core (NVIDIA) and matrix-core (AMD MFMA) kernels, by the names cuBLAS, cuDNN, CUTLASS
# and hipBLASLt give them; plain `sgemm`/`scudnn` kernels run on the FP32 units.
TENSOR_CORE = re.compile(
    r"tensorop|[shi]\d{3,5}gemm|[shi]\d{3,5}(fprop|dgrad|wgrad)|hmma|wmma|gmma|tf32|bf16|fp16|"
    r"f16f16|_i8|_MI\d+x\d+x\d+|mfma",
    re.I,
)


@dataclass
class Step:
    number: int
    start: float
    end: float


def find_steps(trace: Trace) -> tuple[list[Step], bool]:
    """The ProfilerStep spans, in order; without them one step over the whole trace."""
    steps = []
    for e in trace.annotations:
        if e.name.startswith("ProfilerStep#"):
            found = STEP_ANNOTATION.match(e.name)
            if found:
                steps.append(Step(int(found.group(1)), e.ts, e.ts + e.dur))
    if steps:
        steps.sort(key=lambda s: s.start)
        return steps, True
    events = (*trace.host, *trace.device)
    if not events:
        return [], False
    return [Step(0, min(e.ts for e in events), max(e.ts + e.dur for e in events))], False


def summarize_device(trace: Trace, steps: list[Step]) -> dict[str, Any]:
    """The `samples.trace` summary: per-step series and whole-trace tables."""
    launches = {e.correlation: e for e in trace.runtime if e.correlation is not None}
    device_id, kernels = _main_device_kernels(trace.device)
    per_step = _per_step(trace, steps, kernels, launches)
    summary: dict[str, Any] = {
        "device": bool(kernels),
        "device_id": device_id,
        "steps": len(steps),
        "per_step": per_step,
        "kernels": kernel_table(kernels),
        "copies": copy_table(trace.device),
        "launch": _launch_totals(trace.runtime),
    }
    summary.update(_kernel_efficiency(kernels, trace.meta, device_id))
    summary.update(_tensor_cores(kernels))
    return summary


def _main_device_kernels(device: list[DeviceEvent]) -> tuple[Any, list[DeviceEvent]]:
    """The kernels of the device that ran the most kernel time (a rank drives one device)."""
    busy: dict[Any, float] = defaultdict(float)
    for e in device:
        if e.cat == "kernel":
            busy[e.device] += e.dur
    if not busy:
        return None, []
    main = max(busy, key=lambda d: (busy[d], str(d)))
    kernels = [e for e in device if e.cat == "kernel" and e.device == main]
    kernels.sort(key=lambda e: e.ts)
    return main, kernels


class Intervals:
    """Sorted, disjoint intervals, and how much of them falls inside a span."""

    def __init__(self, spans: Iterable[tuple[float, float]]) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        for start, end in spans:  # sorted by start
            if self.ends and start <= self.ends[-1]:
                if end > self.ends[-1]:
                    self.ends[-1] = end
            else:
                self.starts.append(start)
                self.ends.append(end)

        # prefix[i]: total length of the first i intervals, so a span costs two bisections
        lengths = (e - s for s, e in zip(self.starts, self.ends, strict=True))
        self.prefix = [0.0, *itertools.accumulate(lengths)]

    def inside(self, lo: float, hi: float) -> float:
        i = bisect.bisect_right(self.ends, lo)  # the first interval ending after lo
        j = bisect.bisect_left(self.starts, hi)  # the first one starting at or after hi
        if i >= j:
            return 0.0
        total = self.prefix[j] - self.prefix[i]
        if self.starts[i] < lo:
            total -= lo - self.starts[i]
        if self.ends[j - 1] > hi:
            total -= self.ends[j - 1] - hi
        return total

    def overlap(self, other: Intervals, lo: float, hi: float) -> float:
        """Time inside [lo, hi] covered by both."""
        total = 0.0
        i = bisect.bisect_right(self.ends, lo)
        j = bisect.bisect_right(other.ends, lo)
        while i < len(self.starts) and j < len(other.starts):
            a = max(self.starts[i], other.starts[j], lo)
            b = min(self.ends[i], other.ends[j], hi)
            if b > a:
                total += b - a
            if self.starts[i] >= hi and other.starts[j] >= hi:
                break
            if self.ends[i] < other.ends[j]:
                i += 1
            else:
                j += 1
        return total


def idle_gaps(
    kernels: list[DeviceEvent], launches: dict[Any, HostEvent], sync_ends: list[float]
) -> dict[str, list[tuple[float, float]]]:
    """The device's idle gaps between kernels, each put in `host`, `sync` or `other`."""
    gaps: dict[str, list[tuple[float, float]]] = {"host": [], "sync": [], "other": []}
    busy_until = float("-inf")
    for k in kernels:
        if k.ts > busy_until:
            launch = launches.get(k.correlation)
            kind = "other"
            if busy_until > float("-inf") and launch is not None and launch.ts > busy_until:
                i = bisect.bisect_left(sync_ends, busy_until)
                synced = i < len(sync_ends) and sync_ends[i] <= launch.ts
                kind = "sync" if synced else "host"
            gaps[kind].append((busy_until, k.ts))
        busy_until = max(busy_until, k.ts + k.dur)
    gaps["other"].append((busy_until, float("inf")))
    return gaps


def _per_step(
    trace: Trace, steps: list[Step], kernels: list[DeviceEvent], launches: dict[Any, HostEvent]
) -> dict[str, list[Any]]:
    spans = [(k.ts, k.ts + k.dur) for k in kernels]
    busy = Intervals(spans)
    is_comm = [kernel_kind(k.name) == "communication" for k in kernels]
    comm = Intervals(s for s, c in zip(spans, is_comm, strict=True) if c)
    compute = Intervals(s for s, c in zip(spans, is_comm, strict=True) if not c)
    sync_ends = sorted(e.ts + e.dur for e in trace.runtime if e.name in SYNC_CALLS)
    # The first gap starts at -inf and the last ends at +inf: clip them to the steps.
    first, last = (steps[0].start, steps[-1].end) if steps else (0.0, 0.0)
    gaps = {
        kind: Intervals(
            sorted((max(a, first), min(b, last)) for a, b in spans if a < last and b > first)
        )
        for kind, spans in idle_gaps(kernels, launches, sync_ends).items()
    }
    series: dict[str, list[Any]] = defaultdict(list)
    counts = _step_counts(trace, steps, kernels)
    for i, step in enumerate(steps):
        lo, hi = step.start, step.end
        series["step"].append(step.number)
        series["dur_us"].append(round(hi - lo, 3))
        series["busy_us"].append(round(busy.inside(lo, hi), 3))
        series["compute_us"].append(round(compute.inside(lo, hi), 3))
        series["comm_us"].append(round(comm.inside(lo, hi), 3))
        series["comm_overlap_us"].append(round(comm.overlap(compute, lo, hi), 3))
        for kind in ("host", "sync", "other"):
            series[f"idle_{kind}_us"].append(round(gaps[kind].inside(lo, hi), 3))
        for key, values in counts.items():
            series[key].append(round(values[i], 3) if isinstance(values[i], float) else values[i])
    return dict(series)


def _step_counts(
    trace: Trace, steps: list[Step], kernels: list[DeviceEvent]
) -> dict[str, list[float]]:
    """Per step, by start time: kernels, their time, launch calls, copies, DataLoader waits."""
    starts = [s.start for s in steps]
    keys = ("kernels", "kernel_us", "launches", "launch_us", "memcpy_us", "memset_us")
    counts: dict[str, list[Any]] = {k: [0] * len(steps) for k in keys}
    counts["data_wait_us"] = [0.0] * len(steps)

    def at(ts: float) -> int | None:
        i = bisect.bisect_right(starts, ts) - 1
        return i if i >= 0 and ts < steps[i].end else None

    kernel_count, kernel_us = counts["kernels"], counts["kernel_us"]
    for k in kernels:
        if (i := at(k.ts)) is not None:
            kernel_count[i] += 1
            kernel_us[i] += k.dur
    for e in trace.device:
        if e.cat != "kernel" and (i := at(e.ts)) is not None:
            counts["memcpy_us" if e.cat == "gpu_memcpy" else "memset_us"][i] += e.dur
    for e in trace.runtime:
        if e.name in LAUNCH_CALLS and (i := at(e.ts)) is not None:
            counts["launches"][i] += 1
            counts["launch_us"][i] += e.dur
    for e in trace.annotations:
        if e.name.startswith(DATALOADER) and (i := at(e.ts)) is not None:
            counts["data_wait_us"][i] += min(e.dur, steps[i].end - e.ts)
    counts["kernel_us"] = [float(v) for v in counts["kernel_us"]]
    return counts


def kernel_table(kernels: list[DeviceEvent], top: int = TOP_KERNELS) -> list[dict[str, Any]]:
    """The kernels that took the most device time, by name."""
    rows: dict[str, list[float]] = {}
    for k in kernels:
        row = rows.setdefault(k.name, [0, 0.0])
        row[0] += 1
        row[1] += k.dur
    ordered = sorted(rows.items(), key=lambda item: (-item[1][1], item[0]))[:top]
    return [
        {
            "name": name,
            "count": int(count),
            "total_us": round(total, 3),
            "mean_us": round(total / count, 3),
            "kind": kernel_kind(name),
            "tensor_core": uses_tensor_cores(name),
        }
        for name, (count, total) in ordered
    ]


@functools.lru_cache(maxsize=65536)
def kernel_kind(name: str) -> str:
    """`communication`, `matmul` (GEMMs and convolutions) or `other`."""
    if COMM_KERNEL.search(name):
        return "communication"
    if MATMUL_KERNEL.search(name) and not NOT_MATMUL.search(name):
        return "matmul"
    return "other"


@functools.lru_cache(maxsize=65536)
def uses_tensor_cores(name: str) -> bool:
    """A GEMM or convolution kernel that runs on tensor (NVIDIA) or matrix (AMD) cores."""
    return kernel_kind(name) == "matmul" and TENSOR_CORE.search(name) is not None


def copy_table(device: list[DeviceEvent]) -> dict[str, dict[str, float]]:
    """Copies and memsets by kind (`HtoD`, `DtoH`, `DtoD`, `PtoP`, `Memset`): count, bytes, us."""
    table: dict[str, dict[str, float]] = {}
    for e in device:
        if e.cat == "kernel":
            continue
        kind = "Memset" if e.cat == "gpu_memset" else _copy_kind(e.name)
        row = table.setdefault(kind, {"count": 0, "bytes": 0, "us": 0.0})
        row["count"] += 1
        row["bytes"] += int(e.bytes)
        row["us"] = round(row["us"] + e.dur, 3)
    return table


def _copy_kind(name: str) -> str:
    parts = name.split()
    return parts[1] if len(parts) > 1 and parts[0] == "Memcpy" else name


def _launch_totals(runtime: list[HostEvent]) -> dict[str, Any]:
    calls = Counter(e.name for e in runtime)
    return {"runtime_calls": dict(calls.most_common(15))}


def _kernel_efficiency(
    kernels: list[DeviceEvent], meta: dict[str, Any], device_id: Any
) -> dict[str, Any]:
    """Estimated SM efficiency (share of SMs given a block, time-weighted) and achieved occupancy,
    from Kineto's launch figures, or from the grid and deviceProperties' `numSms`."""
    sms = _device_properties(meta, device_id).get("numSms")
    weighted_sm = weighted_occ = time_sm = time_occ = 0.0
    for k in kernels:
        per_sm = k.blocks_per_sm
        if per_sm is None and k.grid_blocks is not None and isinstance(sms, int) and sms > 0:
            per_sm = k.grid_blocks / sms
        if per_sm is not None:
            weighted_sm += k.dur * min(per_sm, 1.0)
            time_sm += k.dur
        if k.occupancy is not None:
            weighted_occ += k.dur * k.occupancy
            time_occ += k.dur
    return {
        "sm_efficiency": round(weighted_sm / time_sm, 6) if time_sm > 0 else None,
        "achieved_occupancy": round(weighted_occ / time_occ, 6) if time_occ > 0 else None,
    }


def _tensor_cores(kernels: list[DeviceEvent]) -> dict[str, float]:
    kinds: dict[str, float] = defaultdict(float)
    tensor = 0.0
    for k in kernels:
        kind = kernel_kind(k.name)
        kinds[kind] += k.dur
        if uses_tensor_cores(k.name):
            tensor += k.dur
    return {
        "kernel_us": round(sum(kinds.values()), 3),
        "matmul_us": round(kinds["matmul"], 3),
        "tensor_core_us": round(tensor, 3),
        "comm_kernel_us": round(kinds["communication"], 3),
    }


def _device_properties(meta: dict[str, Any], device_id: Any) -> dict[str, Any]:
    props = meta.get("deviceProperties")
    if not isinstance(props, list):
        return {}
    for entry in props:
        if isinstance(entry, dict) and entry.get("id") == device_id:
            return entry
    return {}


def device_properties(meta: dict[str, Any], device_id: Any) -> dict[str, Any]:
    """The deviceProperties entry of the main device ({} when the trace has none)."""
    return _device_properties(meta, device_id)
