"""Metrics of the host collector's detail: main process against workers, cgroup, /dev/shm, swap,
context switches and I/O (docs/metrics.md). Pure: reads the record, returns `name -> number`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from perfscope.record import Record

Column = Sequence[Any]


def host_detail_metrics(record: Record) -> dict[str, float]:
    """The host detail metrics that the record allows; a metric that cannot be computed is absent.

    Shares and rates are averaged over the samples inside the steps' span (the training loop)
    when there are any, else over the whole run; peaks and counts are over the whole run.
    """
    info = record.collectors.get("host") or {}
    host = record.samples.get("host") or {}
    metrics: dict[str, float | None] = {}
    metrics.update(_static_metrics(info))
    if host.get("ts"):
        window = steps_window(host["ts"], record.steps)
        metrics.update(_cpu_metrics(host, window, info.get("cores")))
        metrics.update(_memory_metrics(host, info))
        metrics.update(_activity_metrics(host, window, record.steps))
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}


def steps_window(ts: Sequence[float], steps: list[dict[str, Any]]) -> list[int]:
    """Indices of the samples taken between the first step's start and the last step's end; all
    samples when there are no steps or none falls inside."""
    every = list(range(len(ts)))
    if not steps:
        return every
    start = steps[0]["start_s"]
    end = steps[-1]["start_s"] + steps[-1]["duration_ms"] / 1e3
    inside = [i for i in every if start <= ts[i] <= end]
    return inside or every


def _static_metrics(info: dict[str, Any]) -> dict[str, float | None]:
    return {
        "cpu.cores_usable": info.get("cores"),
        "cpu.quota_cores": info.get("cpu_quota_cores"),
        "mem.cgroup_limit_mb": info.get("cgroup_mem_limit_mb"),
        "mem.shm_total_mb": info.get("shm_total_mb"),
        "mem.shm_free_mb": info.get("shm_free_mb"),
    }


def _cpu_metrics(
    host: dict[str, Column], window: list[int], cores: float | None
) -> dict[str, float | None]:
    workers = host.get("workers")
    return {
        "cpu.main_util_frac": _mean(host.get("cpu_main_frac"), window),
        "cpu.workers_util_frac": _mean(host.get("cpu_workers_frac"), window),
        "cpu.workers_count": _max(workers, range(len(workers))) if workers else None,
        "cpu.worker_busy_frac": _worker_busy(host, window, cores),
    }


def _worker_busy(host: dict[str, Column], window: list[int], cores: float | None) -> float | None:
    """Mean CPU use of one worker as a share of one core, over samples with workers alive."""
    share, count = host.get("cpu_workers_frac"), host.get("workers")
    if not share or not count or not cores:
        return None
    per_worker = [
        share[i] * cores / count[i]
        for i in window
        if share[i] is not None and count[i] is not None and count[i] > 0
    ]
    return sum(per_worker) / len(per_worker) if per_worker else None


def _memory_metrics(host: dict[str, Column], info: dict[str, Any]) -> dict[str, float | None]:
    every = range(len(host["ts"]))
    limit = info.get("cgroup_mem_limit_mb")
    cgroup_peak = _max(host.get("cgroup_mem_mb"), every)
    shm_used = _max(host.get("shm_used_mb"), every)
    workers_seen = any((n or 0) > 0 for n in host.get("workers") or [])
    return {
        "mem.rss_main_peak_mb": _max(host.get("rss_main_mb"), every),
        "mem.rss_workers_peak_mb": _max(host.get("rss_workers_mb"), every)
        if workers_seen
        else None,
        "mem.uss_main_peak_mb": _max(host.get("uss_main_mb"), every),
        "mem.uss_workers_peak_mb": _max(host.get("uss_workers_mb"), every),
        "mem.cgroup_peak_mb": cgroup_peak,
        "mem.cgroup_peak_frac": cgroup_peak / limit if cgroup_peak is not None and limit else None,
        "mem.shm_used_peak_mb": shm_used,
        "mem.swap_in_mb_per_s": _mean(host.get("swap_in_mb_per_s"), every),
        "mem.swap_out_mb_per_s": _mean(host.get("swap_out_mb_per_s"), every),
    }


def _activity_metrics(
    host: dict[str, Column], window: list[int], steps: list[dict[str, Any]]
) -> dict[str, float | None]:
    switches = _mean(host.get("ctx_switches_per_s"), window)
    involuntary = _mean(host.get("ctx_invol_per_s"), window)
    return {
        "host.ctx_switches_per_s": switches,
        "host.ctx_switches_per_step": _per_step(switches, steps),
        "host.ctx_invol_frac": involuntary / switches
        if involuntary is not None and switches
        else None,
        "io.read_mb_per_s": _mean(host.get("io_read_mb_per_s"), window),
        "io.write_mb_per_s": _mean(host.get("io_write_mb_per_s"), window),
    }


def _per_step(rate_per_s: float | None, steps: list[dict[str, Any]]) -> float | None:
    """A rate over the steps' span turned into a count per step (span / steps = time per step)."""
    if rate_per_s is None or not steps:
        return None
    span = steps[-1]["start_s"] + steps[-1]["duration_ms"] / 1e3 - steps[0]["start_s"]
    return rate_per_s * span / len(steps) if span > 0 else None


def _known(column: Column | None, indices: Sequence[int] | range) -> list[float]:
    if not column:
        return []
    return [column[i] for i in indices if i < len(column) and column[i] is not None]


def _mean(column: Column | None, indices: Sequence[int] | range) -> float | None:
    values = _known(column, indices)
    return sum(values) / len(values) if values else None


def _max(column: Column | None, indices: Sequence[int] | range) -> float | None:
    values = _known(column, indices)
    return max(values) if values else None
