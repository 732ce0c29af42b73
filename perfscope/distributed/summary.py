"""One rank's compact summary (the record's `ranks[]` entry, docs/record.md) from its events.

The summary is all a merge reads: a few numbers per rank, whatever the number of steps, so that
merging a thousand ranks stays cheap (docs/scaling.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfscope.analysis.metrics import percentile, steady_steps
from perfscope.analysis.steps import build_steps, flag_profiled
from perfscope.distributed.comm import comm_from_trace
from perfscope.exits import classify_exit
from perfscope.runtime.session import RANKS_DIR


def rank_summary(
    events: list[dict[str, Any]],
    launcher_exit: dict[str, Any] | None = None,
    events_name: str | None = None,
    run_dir: Path | None = None,
) -> dict[str, Any]:
    """The summary of the rank whose events these are; `launcher_exit` is what torchrun saw of its
    end (`exitcode`, `wall`), when perfscope watched the launcher; `events_name` is the stem of
    its events file (a rank other than 0 keeps its files in ranks/<stem>/), and `run_dir` where
    its op trace, if kept, is read for its communication."""
    hello = next(e for e in events if e["k"] == "hello")
    identity = hello.get("rank") or {}
    origin = hello["ts"]
    table = build_steps(events, origin)
    steps = table.steps
    collectors, samples = _in_process(events, origin)
    flag_profiled(steps, (collectors.get("ops") or {}).get("window_perf"), origin)
    # The steps the profiler did not slow down, and not those holding a loader's start-up: one
    # worker start in 40 steps would dominate every mean below.
    steady = [s for s in steady_steps(steps) if not s.get("first_batch")] or steady_steps(steps)
    trace = _trace_file(collectors.get("ops"), identity, events_name)
    summary: dict[str, Any] = {
        "rank": identity.get("rank", 0),
        "local_rank": identity.get("local_rank"),
        "world_size": identity.get("world_size"),
        "host": identity.get("host"),
        "pid": hello.get("pid"),
        "restart": identity.get("restart", 0),
        **_end(events, launcher_exit, hello),
        "t0_unix": round(hello["t0"], 6),
        "steps": len(steps),
        "step_method": table.method,
        **_step_times(steady),
        **_comm(run_dir / trace if run_dir and trace else None, steady),
        "mem_peak_mb": _memory_peak(samples.get("allocator")),
        "trace": trace,
        "first_step_s": round(steps[0]["start_s"], 6) if steps else None,
        "last_step_end_s": _last_end(steps),
        "ended_s": round(max(e.get("ts", origin) for e in events) - origin, 6),
    }
    bye = next((e for e in events if e["k"] == "bye"), None)
    summary["cpu_s"] = bye.get("cpu_s") if bye else None
    summary["invol_switches"] = bye.get("invol_switches") if bye else None
    return summary


def _end(
    events: list[dict[str, Any]], launcher: dict[str, Any] | None, hello: dict[str, Any]
) -> dict[str, Any]:
    """exit (as run.exit, or `unknown`), exit_code, signal and exception of the rank."""
    exc = next((e for e in reversed(events) if e["k"] == "exc"), None)
    exception = {k: v for k, v in exc.items() if k not in ("k", "ts")} if exc else None
    said_bye = any(e["k"] == "bye" for e in events)
    if launcher is not None:
        code = launcher["exitcode"]
    elif exception is not None:
        code = 1
    elif said_bye:
        code = 0
    else:  # killed, or stopped by a launcher perfscope did not watch: no end was written
        return {"exit": "unknown", "exit_code": None, "signal": None, "exception": None}
    info = classify_exit(code, exception)
    exception = info["exception"]
    return {
        "exit": info["exit"],
        "exit_code": code,
        "signal": info["signal"],
        "exception": {
            "type": exception["type"],
            "message": exception["message"][:300],
            "oom": bool(exception.get("oom")),
        }
        if exception
        else None,
    }


def _step_times(steps: list[dict[str, Any]]) -> dict[str, float | None]:
    if not steps:
        return {
            "step_ms_p50": None,
            "step_ms_p90": None,
            "step_ms_mean": None,
            "data_wait_ms_mean": None,
        }
    times = [s["duration_ms"] for s in steps]
    return {
        "step_ms_p50": round(percentile(times, 50), 4),
        "step_ms_p90": round(percentile(times, 90), 4),
        "step_ms_mean": round(sum(times) / len(times), 4),
        "data_wait_ms_mean": round(sum(s["data_wait_ms"] for s in steps) / len(steps), 4),
    }


def _comm(trace: Path | None, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Time in collectives per step, from the op-trace window (distributed/comm.py): its share of
    the window's step time, applied to the steady steps' mean (the window's steps run slower)."""
    found = comm_from_trace(trace) if trace is not None and steps else None
    if found is None:
        return {"comm_ms_mean": None, "comm_calls_per_step": None, "comm_overlap_frac": None}
    mean_ms = sum(s["duration_ms"] for s in steps) / len(steps)
    return {
        "comm_ms_mean": round(found["comm_frac"] * mean_ms, 4),
        "comm_calls_per_step": round(found["comm_calls_per_step"], 3),
        "comm_overlap_frac": round(found["comm_overlap_frac"], 4),
    }


def _memory_peak(allocator: dict[str, Any] | None) -> float | None:
    """Device memory reserved at its peak with CUDA, else the process's resident memory."""
    if not allocator:
        return None
    for column in ("reserved_peak_mb", "host_rss_mb"):
        values = [v for v in allocator.get(column) or [] if v is not None]
        if values:
            return round(max(values), 2)
    return None


def _trace_file(
    ops: dict[str, Any] | None, identity: dict[str, Any], stem: str | None
) -> str | None:
    """The rank's op trace, relative to the run directory, when it kept one."""
    name = (ops or {}).get("trace")
    if not name:
        return None
    if identity.get("rank", 0) == 0 or stem is None:
        return name
    return f"{RANKS_DIR}/{stem}/{name}"


def _last_end(steps: list[dict[str, Any]]) -> float | None:
    if not steps:
        return None
    last = steps[-1]
    return round(last["start_s"] + last["duration_ms"] / 1e3, 6)


def _in_process(
    events: list[dict[str, Any]], origin: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rank's in-process collectors: summaries and samples, as the pipeline merges them."""
    from perfscope.pipeline import merge_in_process_collectors

    collectors: dict[str, Any] = {}
    samples: dict[str, Any] = {}
    merge_in_process_collectors(events, origin, collectors, samples)
    return collectors, samples
