"""Tables and bounded series for the report (and the diagnosis), computed from the record alone.

Pure functions of record parts: the renderer only lays out what these return. Long series are
cut to a bounded number of points by keeping, in each bucket of neighbouring points, the lowest
and the highest one: every kept point is a real one, and no spike is averaged away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from perfscope.analysis.metrics import percentile, steady_steps
from perfscope.collectors.host import WORKER_COLUMNS

MAX_POINTS = 1500  # per series; a 10,000-step run keeps its report small and fast to draw
MAX_OUTLIERS = 200
STEP_LINES_MAX = 60  # draw every step's start on the timelines only up to this many steps


def minmax_indices(values: Sequence[float | None], max_points: int = MAX_POINTS) -> list[int]:
    """Indices to keep so at most `max_points` remain: each bucket's lowest and highest value.

    Points whose value is None are dropped. The result is sorted; short input is kept whole.
    """
    known = [i for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if len(known) <= max_points:
        return known
    buckets = max(1, max_points // 2)
    size = len(known) / buckets
    kept: list[int] = []
    for b in range(buckets):
        group = known[int(b * size) : int((b + 1) * size)]
        if not group:
            continue
        low = min(group, key=lambda i: values[i])  # type: ignore[arg-type, return-value]
        high = max(group, key=lambda i: values[i])  # type: ignore[arg-type, return-value]
        kept.extend(sorted({low, high}))
    return kept


def downsample(
    xs: Sequence[float], ys: Sequence[float | None], max_points: int = MAX_POINTS
) -> dict[str, list[float]]:
    """One series cut to at most `max_points` (x, y) points, spikes and dips kept."""
    keep = minmax_indices(ys, max_points)
    return {"x": [xs[i] for i in keep], "y": [ys[i] for i in keep]}  # type: ignore[misc]


def spike_limit(durations: Sequence[float]) -> float | None:
    """The step time above which a step is an outlier, as `steps.spikes_count` counts them.

    The lower of p50 + 3 standard deviations and 3 x p50, over the steps after the first; None
    with fewer than 5 such steps.
    """
    times = list(durations[1:])
    if len(times) < 5:
        return None
    p50 = percentile(times, 50)
    mean = sum(times) / len(times)
    std = math.sqrt(sum((t - mean) ** 2 for t in times) / len(times))
    return min(p50 + 3 * std, 3 * p50)


def step_table(steps: list[dict[str, Any]], max_points: int = MAX_POINTS) -> dict[str, Any]:
    """Step time over the run: the kept steps' columns, the outlier steps, and the bounds.

    Returns `index`, `start_s`, `duration_ms`, `data_wait_ms`, `compute_ms` (duration minus data
    wait), `profiled` (lists over the kept steps), `outliers` (the slowest steps above
    `spike_limit` of the steady steps, at most MAX_OUTLIERS, by index), `limit_ms`, `count` and
    `kept` (how many steps the lists hold).
    """
    keep = minmax_indices([s["duration_ms"] for s in steps], max_points)
    rows = [steps[i] for i in keep]
    steady = steady_steps(steps)
    limit = spike_limit([s["duration_ms"] for s in steady])
    outliers: list[dict[str, Any]] = []
    if limit is not None:
        slow = [s for s in steady[1:] if s["duration_ms"] > limit]
        slow = sorted(slow, key=lambda s: -s["duration_ms"])[:MAX_OUTLIERS]
        outliers = [_step_point(s) for s in sorted(slow, key=lambda s: s["index"])]
    return {
        "index": [s["index"] for s in rows],
        "start_s": [s["start_s"] for s in rows],
        "duration_ms": [s["duration_ms"] for s in rows],
        "data_wait_ms": [s["data_wait_ms"] for s in rows],
        "compute_ms": [round(s["duration_ms"] - s["data_wait_ms"], 4) for s in rows],
        "profiled": [bool(s.get("profiled")) for s in rows],
        "outliers": outliers,
        "limit_ms": limit,
        "count": len(steps),
        "kept": len(rows),
    }


def step_breakdown(
    steps: list[dict[str, Any]], ops: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Where the mean step's time goes, over the steady steps (op-trace window left out).

    Only the data wait is measured apart on every step; the rest is `compute` (forward,
    backward, optimizer and anything else the loop does). Returns `rows` (`phase`,
    `ms_per_step`, `frac`), `step_ms`, `unmeasured` (phases not split out), and `window`: the
    same over the op-trace window's steps with the optimizer's step and zero_grad apart, from
    the trace (None without those figures).
    """
    steady = steady_steps(steps)
    window = window_breakdown(steps, ops or {})
    if not steady:
        return {"rows": [], "step_ms": 0.0, "unmeasured": [], "window": window}
    total = sum(s["duration_ms"] for s in steady)
    wait = sum(min(s["data_wait_ms"], s["duration_ms"]) for s in steady)
    return {
        **_phase_rows([("data wait", wait), ("compute and the rest", total - wait)], len(steady)),
        "unmeasured": ["optimizer", "forward and backward apart"],
        "window": window,
    }


def window_breakdown(steps: list[dict[str, Any]], ops: dict[str, Any]) -> dict[str, Any] | None:
    """The op-trace window's steps split into data wait, optimizer step, zero_grad and the rest.

    Step time is the profiler's (`per_step.dur_us`); the data wait that of the same steps.
    These steps ran under the profiler, so they are slower than the others.
    """
    per_step = ops.get("per_step") if isinstance(ops.get("per_step"), dict) else {}
    indexes, durations = per_step.get("step") or [], per_step.get("dur_us") or []
    optimizer = per_step.get("optimizer_us")
    if not indexes or not durations or optimizer is None:
        return None
    zero_grad = per_step.get("zero_grad_us") or [0.0] * len(indexes)
    waits = {s["index"]: s["data_wait_ms"] for s in steps}
    total = sum(durations) / 1e3
    wait = sum(waits.get(i, 0.0) for i in indexes)
    opt, zg = sum(optimizer) / 1e3, sum(zero_grad) / 1e3
    rest = max(0.0, total - wait - opt - zg)
    phases = [("data wait", wait), ("optimizer step", opt), ("zero_grad", zg)]
    return {
        **_phase_rows([*phases, ("forward, backward and the rest", rest)], len(indexes)),
        "steps": len(indexes),
    }


def _phase_rows(phases: list[tuple[str, float]], n: int) -> dict[str, Any]:
    total = sum(ms for _, ms in phases)
    return {
        "rows": [
            {"phase": phase, "ms_per_step": ms / n, "frac": ms / total if total > 0 else 0.0}
            for phase, ms in phases
        ],
        "step_ms": total / n,
    }


def throughput_series(steps: list[dict[str, Any]], points: int = 120) -> dict[str, list[float]]:
    """Steps per second of step time over the run, in up to `points` groups of steps.

    `x` is the run time (s) at the middle of each group; `y` its count over its summed duration.
    """
    if not steps:
        return {"x": [], "y": []}
    size = max(1, math.ceil(len(steps) / points))
    xs, ys = [], []
    for i in range(0, len(steps), size):
        group = steps[i : i + size]
        busy_s = sum(s["duration_ms"] for s in group) / 1e3
        if busy_s <= 0:
            continue
        end = group[-1]["start_s"] + group[-1]["duration_ms"] / 1e3
        xs.append(round((group[0]["start_s"] + end) / 2, 4))
        ys.append(round(len(group) / busy_s, 4))
    return {"x": xs, "y": ys}


def timeline_panels(
    samples: dict[str, Any], collectors: dict[str, Any], max_points: int = MAX_POINTS
) -> list[dict[str, Any]]:
    """The sampled series on one time axis: CPU, host memory, then each GPU's readings.

    Each panel: `id`, `title`, `unit`, `series` (`name`, `x`, `y`). Only what was measured
    appears; a panel without any series is left out.
    """
    host = samples.get("host") or {}
    allocator = samples.get("allocator") or {}
    gpu = samples.get("gpu") or {}
    cores = (collectors.get("host") or {}).get("cores")
    cpu_title = f"CPU (% of {cores} cores)" if cores else "CPU (% of the usable cores)"
    panels = [
        _panel(
            "cpu",
            cpu_title,
            "%",
            host,
            [
                ("cpu_frac", "process tree"),
                ("cpu_main_frac", "main"),
                ("cpu_workers_frac", "workers"),
                *((column, f"worker {i}") for i, column in enumerate(WORKER_COLUMNS)),
            ],
            max_points,
            scale=100.0,
        ),
        _panel(
            "memory",
            "Host memory",
            "MiB",
            host,
            [
                ("rss_mb", "RSS tree"),
                ("rss_main_mb", "RSS main"),
                ("rss_workers_mb", "RSS workers"),
            ],
            max_points,
        ),
    ]
    panels[-1]["series"] += _panel(
        "",
        "",
        "",
        allocator,
        [("allocated_mb", "CUDA allocated"), ("reserved_mb", "CUDA reserved")],
        max_points,
    )["series"]
    for device in _gpu_devices(gpu):
        g = f"gpu{device}_"
        panels.append(
            _panel(
                f"gpu{device}-util",
                f"GPU {device} utilization",
                "%",
                gpu,
                [(g + "util_frac", "kernels"), (g + "mem_busy_frac", "memory bus")],
                max_points,
                scale=100.0,
            )
        )
        panels.append(
            _panel(
                f"gpu{device}-mem",
                f"GPU {device} memory",
                "MiB",
                gpu,
                [(g + "mem_used_mb", "used")],
                max_points,
            )
        )
        panels.append(
            _panel(
                f"gpu{device}-power",
                f"GPU {device} power",
                "W",
                gpu,
                [(g + "power_w", "power"), (g + "power_limit_w", "limit")],
                max_points,
            )
        )
    return [p for p in panels if p["series"]]


def timeline_marks(steps: list[dict[str, Any]], collectors: dict[str, Any]) -> dict[str, Any]:
    """What the timelines mark: the steps' span, each step's start when few, the op-trace window."""
    marks: dict[str, Any] = {"steps_span": None, "step_starts": [], "trace_window": None}
    if steps:
        last = steps[-1]
        marks["steps_span"] = [steps[0]["start_s"], last["start_s"] + last["duration_ms"] / 1e3]
        if len(steps) <= STEP_LINES_MAX:
            marks["step_starts"] = [s["start_s"] for s in steps]
    window = (collectors.get("ops") or {}).get("window_s")
    if isinstance(window, list) and len(window) == 2:
        marks["trace_window"] = window
    return marks


def op_rows(ops: dict[str, Any]) -> list[dict[str, Any]]:
    """The op-trace window's top ops, times in ms, with each op's share of the self CPU time.

    Rows keep the record's order (by self CPU time); `self_device_ms` and `device_ms` are None
    without a device; `shapes` is a list of "shape ×count" strings.
    """
    rows = ops.get("ops") or []
    total_self = sum(r.get("self_cpu_us", 0.0) for r in rows) or 1.0
    out = []
    for r in rows:
        count = r.get("count", 0)
        out.append(
            {
                "name": r["name"],
                "count": count,
                "self_cpu_ms": r.get("self_cpu_us", 0.0) / 1e3,
                "cpu_ms": r.get("cpu_us", 0.0) / 1e3,
                "self_frac": r.get("self_cpu_us", 0.0) / total_self,
                "per_call_us": r.get("self_cpu_us", 0.0) / count if count else 0.0,
                "self_device_ms": _ms(r.get("self_device_us")),
                "device_ms": _ms(r.get("device_us")),
                "shapes": [f"{s['shape']} ×{s['count']}" for s in r.get("shapes") or []],
            }
        )
    return out


def sync_rows(ops: dict[str, Any]) -> list[dict[str, Any]]:
    """Host-device sync points of the window, most frequent first, with their count per step."""
    steps = ops.get("steps") or 0
    syncs = ops.get("syncs") or {}
    return [
        {"name": name, "count": n, "per_step": n / steps if steps else None}
        for name, n in sorted(syncs.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def copy_rows(ops: dict[str, Any]) -> list[dict[str, Any]]:
    """Memory copies of the window by direction: count, MiB, and the pageable share."""
    steps = ops.get("steps") or 0
    names = {"h2d": "host → device", "d2h": "device → host", "d2d": "device → device"}
    rows = []
    for key, label in names.items():
        c = (ops.get("copies") or {}).get(key) or {}
        count = c.get("count", 0)
        rows.append(
            {
                "direction": label,
                "count": count,
                "per_step": count / steps if steps else None,
                "mb": c.get("bytes", 0) / 2**20,
                "pageable": c.get("pageable", 0),
            }
        )
    return rows


def _panel(
    pid: str,
    title: str,
    unit: str,
    series: dict[str, Any],
    columns: list[tuple[str, str]],
    max_points: int,
    scale: float = 1.0,
) -> dict[str, Any]:
    ts = series.get("ts") or []
    lines = []
    for key, name in columns:
        values = series.get(key)
        if not isinstance(values, list) or all(v is None for v in values):
            continue
        cut = downsample(ts, values, max_points)
        lines.append({"name": name, "x": cut["x"], "y": [round(v * scale, 4) for v in cut["y"]]})
    return {"id": pid, "title": title, "unit": unit, "series": lines}


def _gpu_devices(gpu: dict[str, Any]) -> list[int]:
    found = set()
    for key in gpu:
        if key.startswith("gpu") and "_" in key and key[3 : key.index("_")].isdigit():
            found.add(int(key[3 : key.index("_")]))
    return sorted(found)


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1e3


def _step_point(step: dict[str, Any]) -> dict[str, Any]:
    return {
        "index": step["index"],
        "start_s": step["start_s"],
        "duration_ms": step["duration_ms"],
        "data_wait_ms": step["data_wait_ms"],
    }


def rank_rows(
    ranks: list[dict[str, Any]], metrics: dict[str, float], straggler_found: bool = True
) -> list[dict[str, Any]]:
    """One row per rank of a distributed run (its latest restart), with the rank whose failure
    ended the run flagged, and the straggler the `dist.*` metrics name when `straggler_found`
    (a finding says it is one: the slowest of balanced ranks is no straggler)."""
    latest: dict[Any, dict[str, Any]] = {}
    for summary in ranks:
        rank = summary.get("rank")
        if rank not in latest or (summary.get("restart") or 0) >= (
            latest[rank].get("restart") or 0
        ):
            latest[rank] = summary
    straggler = metrics.get("dist.straggler_rank") if straggler_found else None
    failed = metrics.get("dist.failed_rank")
    rows = []
    for rank in sorted(latest, key=lambda r: (r is None, r)):
        s = latest[rank]
        step = s.get("step_ms_mean")
        compute = None
        if step is not None:
            compute = max(
                0.0, step - (s.get("data_wait_ms_mean") or 0.0) - (s.get("comm_ms_mean") or 0.0)
            )
        rows.append(
            {
                "rank": rank,
                "host": s.get("host"),
                "exit": s.get("exit"),
                "steps": s.get("steps"),
                "step_ms_p50": s.get("step_ms_p50"),
                "data_wait_ms": s.get("data_wait_ms_mean"),
                "comm_ms": s.get("comm_ms_mean"),
                "compute_ms": compute,
                "mem_peak_mb": s.get("mem_peak_mb"),
                "last_step_end_s": s.get("last_step_end_s"),
                "straggler": straggler is not None and rank == int(straggler),
                "failed": failed is not None and rank == int(failed),
            }
        )
    return rows
