"""Device memory and GPU metrics from the `allocator` (torch, in-process) and `gpu` (NVML) samples.

Pure functions of the record. A metric is emitted only when what it needs was measured: no
allocator samples with CUDA columns, no CUDA metrics; no known set of devices used, no per-run GPU
metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perfscope.analysis.trend import growth_per_step
from perfscope.collectors.gpu import SLOWDOWN_REASONS, decode_throttle
from perfscope.record import Record


def memory_metrics(record: Record) -> dict[str, float]:
    """`cuda.*` (torch's caching allocator) and `gpu.*` (NVML, the run's devices) metrics."""
    gpu_collector = record.collectors.get("gpu") or {}
    allocator_collector = record.collectors.get("allocator") or {}
    metrics: dict[str, float] = {}
    metrics.update(allocator_metrics(record.samples.get("allocator")))
    growth = device_growth_mb_per_step(record.samples.get("allocator"), record.steps)
    if growth is not None:
        metrics["cuda.mem_growth_mb_per_step"] = growth
    total_mb = device_total_mb(allocator_collector, gpu_collector)
    peak = metrics.get("cuda.mem_reserved_peak_mb")
    if peak is not None and total_mb:
        metrics["cuda.mem_reserved_peak_frac"] = peak / total_mb
    metrics.update(gpu_metrics(record.samples.get("gpu"), gpu_collector, record.steps))
    return metrics


def allocator_metrics(series: dict[str, list[Any]] | None) -> dict[str, float]:
    if not series:
        return {}
    metrics: dict[str, float] = {}
    for name, column in (
        ("cuda.mem_allocated_peak_mb", "allocated_peak_mb"),
        ("cuda.mem_reserved_peak_mb", "reserved_peak_mb"),
        ("cuda.alloc_retries", "alloc_retries"),  # cumulative counters: the last is the largest
        ("cuda.ooms", "ooms"),
    ):
        values = _present(series.get(column))
        if values:
            metrics[name] = float(max(values))
    gap = _gap_at_peak_reserved(series.get("reserved_mb"), series.get("reserved_unallocated_mb"))
    if gap is not None:
        metrics["cuda.reserved_unallocated_mb"] = gap
    return metrics


def device_growth_mb_per_step(
    series: dict[str, list[Any]] | None, steps: list[dict[str, Any]]
) -> float | None:
    """Growth per step of the tensors torch keeps on the device (allocated, not reserved: the
    cache grows to a plateau by design), over the steps' span."""
    if not series or not _present(series.get("allocated_mb")):
        return None
    return growth_per_step(series["ts"], series["allocated_mb"], steps)


def _gap_at_peak_reserved(
    reserved: Sequence[float | None] | None, gap: Sequence[float | None] | None
) -> float | None:
    """Reserved minus allocated at the sample where reserved memory was highest (the last such)."""
    if not reserved or not gap:
        return None
    points = [
        (r, g) for r, g in zip(reserved, gap, strict=False) if r is not None and g is not None
    ]
    if not points:
        return None
    top = max(r for r, _ in points)
    return float([g for r, g in points if r == top][-1])


def device_total_mb(allocator: dict[str, Any], gpu: dict[str, Any]) -> float | None:
    """Memory of the device the allocator sampled: torch's own figure, else NVML's when the run
    used exactly one device (torch and NVML number devices differently, so only then)."""
    devices = allocator.get("devices") or []
    if len(devices) == 1 and devices[0].get("total_mb"):
        return float(devices[0]["total_mb"])
    used = gpu.get("devices_used") or []
    if len(devices) <= 1 and len(used) == 1:
        facts = _device_facts(gpu, used[0])
        if facts.get("memory_total_mb"):
            return float(facts["memory_total_mb"])
    return None


def gpu_metrics(
    series: dict[str, list[Any]] | None, collector: dict[str, Any], steps: list[dict[str, Any]]
) -> dict[str, float]:
    used = collector.get("devices_used")
    if not series or not series.get("ts") or used is None:
        return {}
    metrics: dict[str, float] = {"gpu.count_used": float(len(used))}
    if not used:
        return metrics
    rows = _rows_in_steps(series["ts"], steps)
    util = [v for i in used for v in _present(_pick(series.get(f"gpu{i}_util_frac"), rows))]
    if util:
        metrics["gpu.util_frac"] = sum(util) / len(util)
    peak = _mem_used_peak_frac(series, collector, used)
    if peak is not None:
        metrics["gpu.mem_used_peak_frac"] = peak
    slowdown = _slowdown_frac(series, used, rows)
    if slowdown is not None:
        metrics["gpu.slowdown_frac"] = slowdown
    return metrics


def _mem_used_peak_frac(
    series: dict[str, list[Any]], collector: dict[str, Any], used: list[int]
) -> float | None:
    fracs = []
    for index in used:
        total = _device_facts(collector, index).get("memory_total_mb")
        values = _present(series.get(f"gpu{index}_mem_used_mb"))
        if total and values:
            fracs.append(max(values) / total)
    return max(fracs) if fracs else None


def _slowdown_frac(series: dict[str, list[Any]], used: list[int], rows: list[int]) -> float | None:
    """Share of (device, sample) pairs whose clocks were held down by power or heat."""
    masks = [m for i in used for m in _present(_pick(series.get(f"gpu{i}_throttle_mask"), rows))]
    if not masks:
        return None
    slowed = sum(1 for m in masks if SLOWDOWN_REASONS.intersection(decode_throttle(int(m))))
    return slowed / len(masks)


def _rows_in_steps(ts: list[float], steps: list[dict[str, Any]]) -> list[int]:
    """The samples taken between the first step's start and the last step's end (start-up and
    tear-down left out); every sample when no step was found or none fell in that span."""
    if steps:
        start = steps[0]["start_s"]
        end = steps[-1]["start_s"] + steps[-1]["duration_ms"] / 1e3
        rows = [i for i, t in enumerate(ts) if start <= t <= end]
        if rows:
            return rows
    return list(range(len(ts)))


def _pick(column: list[Any] | None, rows: list[int]) -> list[Any]:
    return [column[i] for i in rows] if column else []


def _present(values: Sequence[Any] | None) -> list[float]:
    return [v for v in values or [] if v is not None]


def _device_facts(collector: dict[str, Any], index: int) -> dict[str, Any]:
    return next((d for d in collector.get("devices") or [] if d.get("index") == index), {})
