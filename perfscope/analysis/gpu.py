"""`gpu.*` and `comm.*` metrics of an imported trace, from `samples.trace` (traceimport/device.py).

Pure: reads the record only. Ratios are over the steps of the trace (sums, then divided, so a
long step weighs as much as its time), the first one left out when there are at least 3: the
first profiled step pays one-off costs (lazy module loading, cuDNN autotuning, allocations).
Absent unless `collectors.trace.status` is `ok`, and without kernels (a CPU-only trace).
"""

from __future__ import annotations

import math
from typing import Any

MIB = float(1 << 20)


def trace_gpu_metrics(record: Any) -> dict[str, float]:
    entry = (getattr(record, "collectors", None) or {}).get("trace") or {}
    summary = (getattr(record, "samples", None) or {}).get("trace")
    if entry.get("status") != "ok" or not isinstance(summary, dict) or not summary.get("device"):
        return {}
    series = steady_series(summary.get("per_step") or {})
    n = len(series.get("dur_us") or [])
    total = _sum(series, "dur_us")
    if n == 0 or total <= 0:
        return {}
    metrics = _time_shares(series, total)
    metrics.update(_kernel_metrics(series, summary, n))
    metrics.update(_comm_metrics(series, total, n))
    metrics.update(_device_metrics(record, entry))
    return {k: v for k, v in metrics.items() if v is not None and math.isfinite(v)}


def steady_series(series: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The per-step series without the first step when there are at least 3 steps."""
    if len(series.get("dur_us") or []) < 3:
        return series
    return {key: values[1:] for key, values in series.items()}


def _time_shares(series: dict[str, list[Any]], total: float) -> dict[str, float]:
    return {
        "gpu.busy_frac": _sum(series, "busy_us") / total,
        "gpu.compute_frac": _sum(series, "compute_us") / total,
        "gpu.idle_host_frac": _sum(series, "idle_host_us") / total,
        "gpu.idle_sync_frac": _sum(series, "idle_sync_us") / total,
        "gpu.idle_other_frac": _sum(series, "idle_other_us") / total,
    }


def _kernel_metrics(
    series: dict[str, list[Any]], summary: dict[str, Any], n: int
) -> dict[str, float | None]:
    kernels, kernel_us = _sum(series, "kernels"), _sum(series, "kernel_us")
    launches, launch_us = _sum(series, "launches"), _sum(series, "launch_us")
    matmul = summary.get("matmul_us") or 0.0
    all_kernels = summary.get("kernel_us") or 0.0
    metrics: dict[str, float | None] = {
        "gpu.kernels_per_step": kernels / n,
        "gpu.kernel_us_mean": kernel_us / kernels if kernels else None,
        "gpu.launch_us_mean": launch_us / launches if launches else None,
        "gpu.launch_overhead_frac": launch_us / (launch_us + kernel_us)
        if launch_us + kernel_us > 0
        else None,
        "gpu.memcpy_ms_per_step": _sum(series, "memcpy_us") / 1e3 / n,
        "gpu.memset_ms_per_step": _sum(series, "memset_us") / 1e3 / n,
        "gpu.matmul_frac": matmul / all_kernels if all_kernels > 0 else None,
        "gpu.tensor_core_frac": (summary.get("tensor_core_us") or 0.0) / matmul
        if matmul > 0
        else None,
        "gpu.sm_efficiency_frac": summary.get("sm_efficiency"),
        "gpu.achieved_occupancy_frac": summary.get("achieved_occupancy"),
    }
    return metrics


def _comm_metrics(series: dict[str, list[Any]], total: float, n: int) -> dict[str, float | None]:
    comm = _sum(series, "comm_us")
    if comm <= 0:
        return {}
    return {
        "comm.frac": comm / total,
        "comm.ms_per_step": comm / 1e3 / n,
        "comm.overlap_frac": _sum(series, "comm_overlap_us") / comm,
    }


def _device_metrics(record: Any, entry: dict[str, Any]) -> dict[str, float | None]:
    gpu = (getattr(record, "environment", None) or {}).get("gpu") or {}
    metrics: dict[str, float | None] = {"gpu.rocm": float(entry.get("platform") == "rocm")}
    capability = gpu.get("compute_capability")
    try:
        major, minor = (int(part) for part in str(capability).split(".")[:2])
        metrics["gpu.compute_capability"] = major + minor / 10
    except ValueError:
        pass
    peak, total = gpu.get("memory_reserved_peak_mb"), gpu.get("memory_total_mb")
    if peak is not None and total:
        metrics["gpu.trace_mem_reserved_peak_frac"] = peak / total
    return metrics


def _sum(series: dict[str, list[Any]], key: str) -> float:
    return float(sum(v for v in series.get(key) or [] if v is not None))
