"""Metrics of how a run failed, read from the exception that ended it (`run.exception`).

torch puts the facts of an out-of-memory error in its message: the size that failed and, for CUDA,
the device's capacity, what was free and how much the caching allocator held without using it
("Tried to allocate 1.22 GiB. GPU 0 has a total capacity of 15.77 GiB of which 959.44 MiB is free.
... and 472.05 MiB is reserved by PyTorch but unallocated.").
"""

from __future__ import annotations

import re
from typing import Any

_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "bytes": 1}
_SIZE = r"([\d.]+) ?(B|KiB|MiB|GiB|TiB|bytes)"
_REQUEST = (
    re.compile(r"[Tt]ried to allocate " + _SIZE),  # CUDA, and the CPU allocator's "you tried to"
)
_CAPACITY = re.compile(r"total capacity of " + _SIZE + r" of which " + _SIZE + " is free")
_UNALLOCATED = re.compile(_SIZE + r" is reserved by PyTorch but unallocated")
# torch.utils.data: "DataLoader worker (pid(s) 1234) is killed by signal: Bus error."
_BUS_ERROR = re.compile(r"DataLoader worker \(pid.*?killed by signal: Bus error", re.S)


def failure_metrics(run: dict[str, Any]) -> dict[str, float]:
    exception = run.get("exception") or {}
    message = str(exception.get("message") or "")
    if not message:
        return {}
    chain = "\n".join([message, *map(str, exception.get("causes") or [])])
    metrics: dict[str, float] = {}
    if run.get("exit") == "oom":
        metrics.update(oom_metrics(message))
    if _BUS_ERROR.search(chain):
        metrics["data.worker_bus_error"] = 1.0
    return metrics


def oom_metrics(message: str) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for pattern in _REQUEST:
        found = pattern.search(message)
        if found:
            metrics["mem.oom_request_mb"] = _mb(*found.groups())
            break
    capacity = _CAPACITY.search(message)
    if capacity:
        metrics["mem.oom_device_total_mb"] = _mb(capacity.group(1), capacity.group(2))
        metrics["mem.oom_device_free_mb"] = _mb(capacity.group(3), capacity.group(4))
    unallocated = _UNALLOCATED.search(message)
    if unallocated:
        metrics["mem.oom_reserved_unallocated_mb"] = _mb(*unallocated.groups())
    return metrics


def _mb(number: str, unit: str) -> float:
    return float(number) * _UNITS[unit] / 2**20
