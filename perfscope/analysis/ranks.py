"""Merged analysis of a distributed run from per-rank summaries (docs/record.md, "ranks").

Pure: each input is one rank's compact summary dict (the record's `ranks[]` entries, or what a
folder of per-rank Kineto traces yields), never raw events, so a thousand ranks merge in
milliseconds. Every function tolerates missing (None or absent) optional fields.

With DDP the gradient all-reduce evens out step times: every rank's step lasts as long as the
slowest one's. The straggler is therefore found in what a rank does *outside* waiting for the
others: its data wait plus its compute (the step minus the time spent in collectives). The rank
with the most of it is the one the others wait for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

RankSummary = dict[str, Any]

# dist.straggler_cause codes (a metric is a number): what makes the straggler slower.
CAUSE_DATA, CAUSE_COMPUTE, CAUSE_HOST = 1.0, 2.0, 3.0
CAUSES = {CAUSE_DATA: "data wait", CAUSE_COMPUTE: "compute", CAUSE_HOST: "host contention"}
# A straggler whose involuntary context switches per second are this many times the other ranks'
# median (and at least _MIN_INVOL_PER_S) is losing its CPU to other processes.
_HOST_FACTOR = 3.0
_MIN_INVOL_PER_S = 50.0
# Exits that are the launcher tearing a rank down after another one failed, not a cause.
_TEARDOWN_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")


@dataclass(frozen=True)
class Straggler:
    rank: int
    excess_ms: float  # its data wait + compute per step, beyond the other ranks' median
    excess_frac: float  # excess_ms over the median step time
    cause: float  # CAUSE_DATA | CAUSE_COMPUTE | CAUSE_HOST
    data_excess_ms: float
    compute_excess_ms: float


def busy_ms(rank: RankSummary) -> float | None:
    """Data wait plus compute per step: the time the rank spends not waiting for the others."""
    step = rank.get("step_ms_mean")
    if step is None or not rank.get("steps"):
        return None
    return max(step - exposed_comm_ms(rank), 0.0)


def exposed_comm_ms(rank: RankSummary) -> float:
    """Time in collectives per step that no compute overlapped: what communication (and the wait
    for the other ranks inside it) adds to the step. 0 when unknown."""
    comm = rank.get("comm_ms_mean") or 0.0
    return comm * (1.0 - (rank.get("comm_overlap_frac") or 0.0))


def compute_ms(rank: RankSummary) -> float | None:
    """Compute per step: the step minus its data wait and its time in collectives."""
    busy = busy_ms(rank)
    if busy is None:
        return None
    return max(busy - (rank.get("data_wait_ms_mean") or 0.0), 0.0)


def straggler(ranks: Sequence[RankSummary], min_steps: int = 1) -> Straggler | None:
    """The rank the others wait for, with its likely cause; None with fewer than 2 ranks that ran
    `min_steps` steps."""
    stepping = [r for r in ranks if (r.get("steps") or 0) >= min_steps and busy_ms(r) is not None]
    if len(stepping) < 2:
        return None
    slow = max(stepping, key=lambda r: (busy_ms(r), -int(r["rank"])))
    others = [r for r in stepping if r is not slow]
    data_excess = _wait(slow) - _median([_wait(r) for r in others])
    compute_excess = (compute_ms(slow) or 0.0) - _median([compute_ms(r) or 0.0 for r in others])
    excess = (busy_ms(slow) or 0.0) - _median([busy_ms(r) or 0.0 for r in others])
    step = _median([r["step_ms_mean"] for r in stepping])
    cause = CAUSE_DATA if data_excess >= compute_excess else CAUSE_COMPUTE
    if _contended(slow, others):
        cause = CAUSE_HOST
    return Straggler(
        rank=int(slow["rank"]),
        excess_ms=excess,
        excess_frac=excess / step if step > 0 else 0.0,
        cause=cause,
        data_excess_ms=data_excess,
        compute_excess_ms=compute_excess,
    )


def failed_rank(ranks: Sequence[RankSummary]) -> RankSummary | None:
    """The rank whose failure most likely ended the run: the first to end among those that did
    not end `ok` and were not torn down by a signal from the launcher; else the first to end
    among the ranks that did not end `ok`."""
    failed = [r for r in ranks if r.get("exit") not in (None, "ok")]
    if not failed:
        return None
    causes = [r for r in failed if not _torn_down(r)] or failed
    return min(causes, key=lambda r: (_abs(r, "ended_s") or math.inf, int(r["rank"])))


def stall_s(ranks: Sequence[RankSummary]) -> float | None:
    """Seconds from the last step end seen on any rank to the end of the last rank: how long the
    ranks sat without finishing a step before the run ended (a hung collective when the run did
    not end `ok`). None when no rank finished a step or no end is known."""
    last_steps = [t for r in ranks if (t := _abs(r, "last_step_end_s")) is not None]
    ends = [t for r in ranks if (t := _abs(r, "ended_s")) is not None]
    if not last_steps or not ends:
        return None
    return max(max(ends) - max(last_steps), 0.0)


def latest_attempts(ranks: Sequence[RankSummary]) -> list[RankSummary]:
    """Each rank's last attempt (torchrun restarts a failed group: the earlier ones are history)."""
    last: dict[int, RankSummary] = {}
    for rank in ranks:
        key = int(rank["rank"])
        if key not in last or (rank.get("restart") or 0) >= (last[key].get("restart") or 0):
            last[key] = rank
    return [last[key] for key in sorted(last)]


def rank_metrics(ranks: Sequence[RankSummary]) -> dict[str, float]:
    """The `dist.*` metrics (docs/metrics.md) over each rank's last attempt; {} without ranks.
    A metric that cannot be computed is absent."""
    ranks = latest_attempts(ranks)
    if not ranks:
        return {}
    metrics: dict[str, float | None] = {
        "dist.world_size": float(max([len(ranks)] + [r.get("world_size") or 0 for r in ranks])),
        "dist.ranks_seen": float(len(ranks)),
        "dist.ranks_failed": float(sum(r.get("exit") not in (None, "ok") for r in ranks)),
    }
    culprit = failed_rank(ranks)
    if culprit is not None:
        metrics["dist.failed_rank"] = float(culprit["rank"])
        metrics["dist.failed_rank_exit_code"] = culprit.get("exit_code")
        metrics["dist.failed_rank_steps"] = float(culprit.get("steps") or 0)
    metrics.update(_step_metrics(ranks))
    metrics.update(_straggler_metrics(ranks))
    metrics.update(_comm_metrics(ranks))
    metrics.update(_memory_metrics(ranks))
    stall = stall_s(ranks)
    if stall is not None:
        metrics["dist.stall_s"] = stall
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}


def _step_metrics(ranks: Sequence[RankSummary]) -> dict[str, float | None]:
    counts = [int(r.get("steps") or 0) for r in ranks]
    stepping = [r for r in ranks if r.get("steps") and r.get("step_ms_mean") is not None]
    metrics: dict[str, float | None] = {
        "dist.steps_min": float(min(counts)),
        "dist.steps_max": float(max(counts)),
    }
    if not stepping:
        return metrics
    means = [r["step_ms_mean"] for r in stepping]
    p50s = [r.get("step_ms_p50") or r["step_ms_mean"] for r in stepping]
    median = _median(means)
    metrics["dist.step_time_ms_p50"] = _median(p50s)
    metrics["dist.step_time_skew_frac"] = (max(means) - min(means)) / median if median else None
    metrics["dist.data_wait_ms_max"] = max(_wait(r) for r in stepping)
    metrics["dist.compute_ms_max"] = max(compute_ms(r) or 0.0 for r in stepping)
    busy = [busy_ms(r) or 0.0 for r in stepping]
    metrics["dist.load_imbalance_frac"] = 1.0 - _mean(busy) / max(busy) if max(busy) > 0 else 0.0
    return metrics


def _straggler_metrics(ranks: Sequence[RankSummary]) -> dict[str, float | None]:
    slow = straggler(ranks)
    if slow is None:
        return {}
    return {
        "dist.straggler_rank": float(slow.rank),
        "dist.straggler_excess_ms": slow.excess_ms,
        "dist.straggler_excess_frac": slow.excess_frac,
        "dist.straggler_cause": slow.cause,
        "dist.straggler_data_excess_ms": slow.data_excess_ms,
        "dist.straggler_compute_excess_ms": slow.compute_excess_ms,
    }


def _comm_metrics(ranks: Sequence[RankSummary]) -> dict[str, float | None]:
    known = [r for r in ranks if r.get("comm_ms_mean") is not None and r.get("step_ms_mean")]
    if not known:
        return {}
    shares = [r["comm_ms_mean"] / r["step_ms_mean"] for r in known]
    metrics: dict[str, float | None] = {
        "dist.comm_frac": _mean(shares),
        "dist.comm_ms_per_step": _mean([r["comm_ms_mean"] for r in known]),
        # On the rank that waits least (the straggler), exposed communication is the transfer
        # itself, not the wait for a slower rank: the floor communication sets on the step.
        "dist.comm_exposed_frac_min": min(exposed_comm_ms(r) / r["step_ms_mean"] for r in known),
    }
    calls = [r["comm_calls_per_step"] for r in known if r.get("comm_calls_per_step") is not None]
    if calls:
        metrics["dist.comm_calls_per_step"] = max(calls)
    overlaps = [r["comm_overlap_frac"] for r in known if r.get("comm_overlap_frac") is not None]
    if overlaps:
        metrics["dist.comm_overlap_frac"] = _mean(overlaps)
    return metrics


def _memory_metrics(ranks: Sequence[RankSummary]) -> dict[str, float | None]:
    peaks = [r["mem_peak_mb"] for r in ranks if r.get("mem_peak_mb") is not None]
    if not peaks:
        return {}
    top = max(peaks)
    return {
        "dist.mem_peak_mb_max": top,
        "dist.mem_peak_skew_frac": (top - min(peaks)) / top if top > 0 else 0.0,
    }


def _contended(slow: RankSummary, others: Sequence[RankSummary]) -> bool:
    rate = _invol_per_s(slow)
    rates = [x for r in others if (x := _invol_per_s(r)) is not None]
    if rate is None or not rates:
        return False
    return rate >= _MIN_INVOL_PER_S and rate >= _HOST_FACTOR * max(_median(rates), 1.0)


def _invol_per_s(rank: RankSummary) -> float | None:
    switches, ended = rank.get("invol_switches"), rank.get("ended_s")
    if switches is None or not ended:
        return None
    return switches / ended


def _torn_down(rank: RankSummary) -> bool:
    return rank.get("exit") in ("signal", "unknown") and rank.get("signal") in (
        *_TEARDOWN_SIGNALS,
        None,
    )


def _abs(rank: RankSummary, key: str) -> float | None:
    value = rank.get(key)
    return None if value is None else (rank.get("t0_unix") or 0.0) + value


def _wait(rank: RankSummary) -> float:
    return rank.get("data_wait_ms_mean") or 0.0


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
