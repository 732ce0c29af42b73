"""Flat metrics (`name -> number`) from a record. Every name is listed in docs/metrics.md."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from perfscope.analysis.autograd import autograd_metrics
from perfscope.analysis.failure import failure_metrics
from perfscope.analysis.gpu import trace_gpu_metrics
from perfscope.analysis.host import host_detail_metrics
from perfscope.analysis.memory import memory_metrics
from perfscope.analysis.ops import ops_metrics
from perfscope.analysis.optimizers import optimizer_metrics
from perfscope.analysis.pyspy import pyspy_metrics
from perfscope.analysis.ranks import rank_metrics
from perfscope.analysis.trend import growth_per_step
from perfscope.record import Record


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def compute_metrics(record: Record) -> dict[str, float]:
    metrics: dict[str, float] = {}
    metrics.update(run_metrics(record.run))
    metrics.update(failure_metrics(record.run))
    steady = steady_steps(record.steps)
    metrics.update(step_metrics(steady))
    metrics["steps.count"] = float(len(record.steps))
    metrics.update(data_metrics(steady, record.environment))
    metrics.update(host_metrics(record.samples.get("host"), record.steps))
    metrics.update(overhead_metrics(record.collectors, record.run))
    metrics.update(env_metrics(record.environment))
    metrics.update(host_detail_metrics(record))
    metrics.update(memory_metrics(record))
    metrics.update(pyspy_metrics(record))
    metrics.update(ops_metrics(record))
    metrics.update(trace_gpu_metrics(record))
    metrics.update(autograd_metrics(record))
    metrics.update(optimizer_metrics(record))
    metrics.update(spike_metrics(steady))
    metrics.update(thread_metrics(record.environment))
    metrics.update(rank_metrics(record.ranks))
    return {name: _clean(value) for name, value in metrics.items() if value is not None}


def steady_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps the op-trace window did not slow down (all of them if it touched every one)."""
    unprofiled = [s for s in steps if not s.get("profiled")]
    return unprofiled or steps


def run_metrics(run: dict[str, Any]) -> dict[str, float]:
    return {
        "run.duration_s": run.get("duration_s"),
        "run.failed": float(run.get("exit") != "ok"),
        "run.oom": float(run.get("exit") == "oom"),
        "run.time_to_first_step_s": run.get("time_to_first_step_s"),
    }


def step_metrics(steps: list[dict[str, Any]]) -> dict[str, float]:
    metrics: dict[str, float] = {"steps.count": float(len(steps))}
    if not steps:
        return metrics
    times = [s["duration_ms"] for s in steps]
    total_s = sum(times) / 1e3
    metrics.update(
        {
            "steps.time_ms_p50": percentile(times, 50),
            "steps.time_ms_p90": percentile(times, 90),
            "steps.time_ms_max": max(times),
            "steps.time_ms_mean": sum(times) / len(times),
            "steps.throughput_per_s": len(times) / total_s if total_s > 0 else None,
        }
    )
    return metrics


def data_metrics(steps: list[dict[str, Any]], environment: dict[str, Any]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    # A step holding an iterator's first fetch (worker start-up) is DATA002's concern, not the
    # steady pipeline's: it is left out unless nothing else remains.
    steps = [s for s in steps if not s.get("first_batch")] or steps
    if steps:
        waits = [s["data_wait_ms"] for s in steps]
        total = sum(s["duration_ms"] for s in steps)
        # The share of the whole iteration (wait plus compute), never of compute alone.
        metrics["data.wait_frac"] = sum(waits) / total if total > 0 else 0.0
        metrics["data.wait_ms_p50"] = percentile(waits, 50)
        metrics["data.wait_ms_per_step"] = sum(waits) / len(waits)
    loaders = environment.get("dataloaders") or []
    if loaders:
        metrics["data.num_workers"] = loaders[0].get("num_workers")
        metrics["data.pin_memory"] = float(bool(loaders[0].get("pin_memory")))
        metrics["data.first_batch_ms"] = loaders[0].get("first_batch_ms")
    return metrics


def host_metrics(
    host: dict[str, list[float]] | None, steps: list[dict[str, Any]]
) -> dict[str, float]:
    if not host or not host.get("ts"):
        return {}
    cpu, rss = host["cpu_frac"], host["rss_mb"]
    metrics = {
        "cpu.util_frac": sum(cpu) / len(cpu),
        "cpu.util_frac_p90": percentile(cpu, 90),
        "mem.host_rss_peak_mb": max(rss),
        "mem.host_available_min_mb": min(host["avail_mb"]),
    }
    # The main process's RSS when it was sampled apart: a forked worker's RSS counts the pages it
    # shares with the main process again, so the tree's RSS jumps when workers start.
    growth = rss_growth_mb_per_step(host["ts"], host.get("rss_main_mb") or rss, steps)
    if growth is not None:
        metrics["mem.host_growth_mb_per_step"] = growth
    return metrics


def rss_growth_mb_per_step(
    ts: list[float], rss: list[float], steps: list[dict[str, Any]]
) -> float | None:
    """The least-squares slope of RSS over the steps' time span (start-up excluded), per step."""
    return growth_per_step(ts, rss, steps)


def overhead_metrics(
    collectors: dict[str, dict[str, Any]], run: dict[str, Any]
) -> dict[str, float]:
    duration = run.get("duration_s") or 0.0
    spent = sum(c.get("overhead_s") or 0.0 for c in collectors.values())
    return {"overhead.frac": spent / duration if duration > 0 else None}


def env_metrics(environment: dict[str, Any]) -> dict[str, float]:
    torch_info = environment.get("torch") or {}
    if "cuda_available" not in torch_info:
        return {}
    metrics = {"env.cuda_available": float(bool(torch_info["cuda_available"]))}
    if "cudnn_benchmark" in torch_info:
        metrics["env.cudnn_benchmark"] = float(bool(torch_info["cudnn_benchmark"]))
    if "float32_matmul_precision" in torch_info:
        tf32 = torch_info["float32_matmul_precision"] != "highest"
        metrics["env.tf32_matmul"] = float(tf32)
        metrics["env.tf32_conv"] = float(bool(torch_info.get("cudnn_allow_tf32")))
    return metrics


def spike_metrics(steps: list[dict[str, Any]]) -> dict[str, float]:
    """Steps far slower than the rest: over p50 + 3 standard deviations, or over 3x p50.

    The first step (warm-up, lazy initialisation) is left out; at least 5 other steps are needed.
    """
    times = [s["duration_ms"] for s in steps[1:]]
    if len(times) < 5:
        return {}
    p50 = percentile(times, 50)
    mean = sum(times) / len(times)
    std = math.sqrt(sum((t - mean) ** 2 for t in times) / len(times))
    limit = min(p50 + 3 * std, 3 * p50)
    spikes = [t for t in times if t > limit]
    total = sum(times)
    return {
        "steps.spikes_count": float(len(spikes)),
        "steps.spike_time_frac": sum(spikes) / total if total > 0 else 0.0,
        "steps.spike_excess_ms_per_step": sum(t - p50 for t in spikes) / len(times),
        "steps.spike_excess_ms_mean": sum(t - p50 for t in spikes) / len(spikes) if spikes else 0.0,
    }


def thread_metrics(environment: dict[str, Any]) -> dict[str, float]:
    threads = (environment.get("torch") or {}).get("threads")
    return {"host.torch_threads": float(threads)} if threads else {}


def _clean(value: Any) -> float:
    number = float(value)
    return round(number, 6) if math.isfinite(number) else 0.0
