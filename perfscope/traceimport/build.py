"""A `Record` from one Kineto trace (docs/analyze.md): the same shape a live run has, with
`run.mode = "analyze"` and the collectors a trace cannot stand in for marked `unavailable`."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from perfscope.analysis.ops import summarize_trace
from perfscope.errors import PerfscopeError
from perfscope.exits import classify_exit
from perfscope.record import Record
from perfscope.traceimport.device import (
    Step,
    device_properties,
    find_steps,
    summarize_device,
)
from perfscope.traceimport.reader import HostEvent, Trace

# The op table and op-level series (`samples.ops`, `ops.*`) cover a window of whole steps, as in
# a live run: the steps after the first (warm-up) when there are at least 3, at most this many.
# The device analysis and `record.steps` cover every step.
OPS_WINDOW_STEPS = 5
_NOT_IN_A_TRACE = {
    "host": "an imported trace has no host samples (CPU, memory); `perfscope run` measures them",
    "gpu": "an imported trace has no NVML samples (utilization, memory, clocks); the device "
    "analysis comes from the trace's kernels instead (collectors.trace)",
    "pyspy": "an imported trace has no Python stack samples; `perfscope run` takes them",
    "allocator": "an imported trace has no CUDA allocator statistics; `perfscope run` reads them",
}


def record_from_trace(trace: Trace) -> Record:
    """The record of one trace, before metrics and findings (pipeline.diagnose adds them)."""
    steps, marked = find_steps(trace)
    device = summarize_device(trace, steps)
    origin = _origin(trace, steps)
    platform = _platform(trace, device)
    record_steps = _record_steps(steps, device["per_step"], origin)
    window, ops_summary = _ops_window(trace, steps)
    duration_s = (_end(trace, steps) - origin) / 1e6 if steps or trace.host else 0.0
    run = _run(trace, duration_s, record_steps, marked)
    collectors = _collectors(
        trace, device, marked, platform, run["step_method"], window, ops_summary
    )
    samples = {"ops": ops_summary, "trace": device}
    environment = _environment(trace, device, platform)
    return Record(run, environment, collectors, record_steps, samples)


def _collectors(
    trace: Trace,
    device: dict[str, Any],
    marked: bool,
    platform: str,
    method: str | None,
    window: list[int] | None,
    ops_summary: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    collectors: dict[str, dict[str, Any]] = {
        name: {"status": "unavailable", "reason": reason}
        for name, reason in _NOT_IN_A_TRACE.items()
    }
    has_steps = method is not None
    collectors["steps"] = {
        "status": "ok" if has_steps else "unavailable",
        "reason": None if has_steps else "the trace has no timed events",
        "method": method,
    }
    has_ops = bool(ops_summary["ops"])
    collectors["ops"] = {
        "status": "ok" if has_ops else "unavailable",
        "reason": None if has_ops else "the trace has no torch ops (cpu_op events) in its steps",
        "window": window,
        "trace": None,
    }
    collectors["trace"] = _trace_collector(trace, device, marked, platform)
    return collectors


def _origin(trace: Trace, steps: list[Step]) -> float:
    """The trace's first host event: `steps[].start_s` count from it."""
    first = min((e.ts for e in trace.host), default=None)
    if first is not None:
        return first
    return steps[0].start if steps else 0.0


def _end(trace: Trace, steps: list[Step]) -> float:
    last = max((e.ts + e.dur for e in trace.host), default=0.0)
    return max(last, steps[-1].end) if steps else last


def _record_steps(
    steps: list[Step], per_step: dict[str, list[Any]], origin: float
) -> list[dict[str, Any]]:
    waits = per_step.get("data_wait_us") or [0.0] * len(steps)
    return [
        {
            "index": i,
            "start_s": round((s.start - origin) / 1e6, 6),
            "duration_ms": round((s.end - s.start) / 1e3, 4),
            "data_wait_ms": round(waits[i] / 1e3, 4),
            "profiler_step": s.number,
        }
        for i, s in enumerate(steps)
    ]


def _run(
    trace: Trace, duration_s: float, steps: list[dict[str, Any]], marked: bool
) -> dict[str, Any]:
    ended = os.stat(trace.path).st_mtime
    return {
        "command": ["perfscope", "analyze", str(trace.path)],
        "argv": [str(trace.path)],
        "cwd": os.getcwd(),
        "mode": "analyze",
        "pid": next((e.pid for e in trace.host if isinstance(e.pid, int)), None),
        # A trace's clock is not wall time: the file's modification time stands for the end.
        "started_at": _iso(ended - duration_s),
        "ended_at": _iso(ended),
        "duration_s": round(duration_s, 4),
        **classify_exit(0, None),
        "step_method": "profiler_step" if marked else ("whole_trace" if steps else None),
        "step_methods_seen": ["profiler_step"] if marked else [],
        "time_to_first_step_s": steps[0]["start_s"] if steps else None,
        "notes": [f"imported from the trace {trace.path.name}"],
        "trace": str(trace.path),
    }


def _ops_window(trace: Trace, steps: list[Step]) -> tuple[list[int] | None, dict[str, Any]]:
    """The `samples.ops` summary of the op window (OPS_WINDOW_STEPS), through analysis/ops.py."""
    chosen = steps[1 : 1 + OPS_WINDOW_STEPS] if len(steps) > 2 else steps
    if not chosen:
        return None, summarize_trace([])
    lo, hi = chosen[0].start, chosen[-1].end
    host = [e for e in trace.host if lo <= e.ts < hi]
    launched = {e.correlation for e in host if e.correlation is not None}
    events = [_host_dict(e) for e in host]
    events += [
        {
            "ph": "X",
            "cat": d.cat,
            "name": d.name,
            "ts": d.ts,
            "dur": d.dur,
            "pid": d.device,
            "tid": d.stream,
            "args": {"correlation": d.correlation, "bytes": d.bytes},
        }
        for d in trace.device
        if d.correlation in launched
    ]
    summary = summarize_trace(events)
    return [chosen[0].number, chosen[-1].number], summary


def _host_dict(e: HostEvent) -> dict[str, Any]:
    args: dict[str, Any] = dict(e.shapes) if e.shapes else {}
    if e.correlation is not None:
        args["correlation"] = e.correlation
    return {
        "ph": "X",
        "cat": e.cat,
        "name": e.name,
        "ts": e.ts,
        "dur": e.dur,
        "pid": e.pid,
        "tid": e.tid,
        "args": args,
    }


def _platform(trace: Trace, device: dict[str, Any]) -> str:
    if not device["device"]:
        return "cpu"
    props = device_properties(trace.meta, device["device_id"])
    hip = any(e.name.startswith("hip") for e in trace.runtime[:1000])
    return "rocm" if hip or "AMD" in str(props.get("name", "")) else "cuda"


def _trace_collector(
    trace: Trace, device: dict[str, Any], marked: bool, platform: str
) -> dict[str, Any]:
    return {
        "status": "ok",
        "reason": None,
        "path": str(trace.path),
        "events": trace.events,
        "step_markers": marked,
        "platform": platform,
        "device_id": device["device_id"],
        "schema_version": trace.meta.get("schemaVersion"),
        "overhead_s": None,
    }


def _environment(trace: Trace, device: dict[str, Any], platform: str) -> dict[str, Any]:
    props = device_properties(trace.meta, device["device_id"]) if device["device"] else {}
    gpu = None
    if props:
        gpu = {
            "name": props.get("name"),
            "compute_capability": f"{props.get('computeMajor')}.{props.get('computeMinor')}",
            "memory_total_mb": round(props.get("totalGlobalMem", 0) / 2**20, 1),
            "sms": props.get("numSms"),
            "platform": platform,
        }
        peak = trace.memory_peak_bytes.get(device["device_id"])
        if peak is not None:
            gpu["memory_reserved_peak_mb"] = round(peak / 2**20, 1)
    info = trace.meta.get("distributedInfo")
    distributed = None
    if isinstance(info, dict):
        distributed = {k: info.get(k) for k in ("backend", "rank", "world_size", "nccl_version")}
    return {"gpu": gpu, "distributed": distributed, "dataloaders": []}


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall).astimezone().isoformat(timespec="milliseconds")


def device_analysis(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """The device analysis of a live run's op-trace window (`trace.json.gz` of a GPU run), the
    same as `perfscope analyze` does: the `trace` collector's entry, `samples.trace` and the
    GPU's facts for `environment.gpu` (None when the trace has no device properties)."""
    from perfscope.traceimport.reader import read_trace

    trace = read_trace(Path(path))
    steps, marked = find_steps(trace)
    device = summarize_device(trace, steps)
    platform = _platform(trace, device)
    entry = _trace_collector(trace, device, marked, platform)
    return entry, device, _environment(trace, device, platform)["gpu"]


def analyze_path(path: Path) -> Record:
    """Reads and turns one trace file into a record (no metrics yet)."""
    from perfscope.traceimport.reader import read_trace

    trace = read_trace(Path(path))
    if not trace.host and not trace.device:
        raise PerfscopeError(
            f"{path}: the trace holds no timed events (no ops, runtime calls or kernels); was the "
            "profiler's schedule active when it was exported?"
        )
    return record_from_trace(trace)
