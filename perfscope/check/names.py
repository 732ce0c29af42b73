"""The metric names a budget may use (docs/metrics.md), and why a run can lack one."""

from __future__ import annotations

import difflib
import functools
import re

from perfscope.paths import metrics_doc
from perfscope.record import Record

_ROW = re.compile(r"^\| `([a-z0-9_.]+)` \|", re.M)


@functools.lru_cache(maxsize=1)
def known_metrics() -> frozenset[str]:
    """Every metric name of docs/metrics.md, which ships in the wheel (tests keep the doc and the
    code in step, so the doc is the one list)."""
    return frozenset(_ROW.findall(metrics_doc().read_text(encoding="utf-8")))


# The collector whose data a metric family comes from (docs/record.md, "collectors").
_COLLECTOR = {
    "steps": "steps",
    "data": "steps",
    "run": "steps",
    "cpu": "host",
    "mem": "host",
    "host": "host",
    "io": "host",
    "gpu": "gpu",
    "cuda": "allocator",
    "py": "pyspy",
    "ops": "ops",
}
# Why a metric is absent although its collector worked (docs/metrics.md says when each is absent).
_ABSENT_WHEN = {
    "steps.": "no steps were detected, or too few for it",
    "run.time_to_first_step_s": "no steps were detected",
    "data.wait": "no steps were detected",
    "data.worker_bus_error": "no DataLoader worker died of a bus error",
    "data.": "the run iterated no DataLoader",
    "cuda.": "the run used no CUDA device",
    "gpu.": "no GPU samples were taken inside the steps, or the devices used cannot be told",
    "mem.cgroup": "the run's cgroup has no memory limit",
    "mem.oom": "the run did not end out of memory",
    "cpu.quota_cores": "the run's cgroup has no CPU quota",
    "mem.host_growth": "too few steps or host samples inside the steps",
    "mem.rss_workers": "the run had no worker processes",
    "env.": "the script never imported torch",
    "host.torch_threads": "the script never imported torch",
    "io.": "the system refuses /proc/<pid>/io here",
    "py.top_user": "py-spy sampled no frame of the user's own code",
    "ops.h2d_pageable": "nothing was copied host to device",
    "dist.": "the record has no ranks (not a distributed run), or too few for it",
    "comm.": "no collective communication was recorded (not distributed, or no op trace)",
    "autograd.": "the script never imported torch, or no module forward was sampled",
}


def is_known(name: str) -> bool:
    return name in known_metrics()


def did_you_mean(name: str, extra: list[str] | None = None) -> str:
    """A ` (did you mean X?)` hint for an unknown metric name, or a pointer to the docs."""
    candidates = sorted(known_metrics() | set(extra or []))
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(close)}?"
    return "see docs/metrics.md for the metric names"


def missing_reason(record: Record, name: str) -> str:
    """Why `record` has no value for the metric `name`, as precisely as the record tells."""
    collector = _COLLECTOR.get(name.split(".", 1)[0])
    entry = record.collectors.get(collector or "", {})
    if collector and entry and entry.get("status") != "ok":
        why = entry.get("reason") or "no reason recorded"
        return f"the {collector} collector was {entry.get('status')}: {why}"
    if collector and not entry and collector != "steps":
        return f"the run has no {collector} collector"
    for prefix, why in _ABSENT_WHEN.items():
        if name.startswith(prefix):
            return why
    return "the record has no value for it (docs/metrics.md says when each metric is absent)"
