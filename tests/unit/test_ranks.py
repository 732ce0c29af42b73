"""Merged analysis of per-rank summaries (perfscope/analysis/ranks.py): straggler, cause, failures,
hangs, communication. The summaries are hand-built in the documented format (docs/record.md,
"ranks"); real torchrun runs produce them in tests/integration/test_distributed.py."""

from __future__ import annotations

from typing import Any

import pytest

from perfscope.analysis.ranks import (
    CAUSE_COMPUTE,
    CAUSE_DATA,
    CAUSE_HOST,
    failed_rank,
    rank_metrics,
    stall_s,
    straggler,
)
from perfscope.record import Record


def summary(rank: int, **fields: Any) -> dict[str, Any]:
    """One rank's summary: 50 steps of 100 ms, 5 ms data wait, collectives unknown."""
    base: dict[str, Any] = {
        "rank": rank,
        "local_rank": rank,
        "world_size": 2,
        "host": "node0",
        "pid": 1000 + rank,
        "restart": 0,
        "exit": "ok",
        "exit_code": 0,
        "signal": None,
        "exception": None,
        "t0_unix": 1_700_000_000.0,
        "steps": 50,
        "step_ms_p50": 100.0,
        "step_ms_p90": 110.0,
        "step_ms_mean": 100.0,
        "data_wait_ms_mean": 5.0,
        "comm_ms_mean": None,
        "comm_calls_per_step": None,
        "comm_overlap_frac": None,
        "mem_peak_mb": 1000.0,
        "first_step_s": 2.0,
        "last_step_end_s": 7.0,
        "ended_s": 7.1,
        "cpu_s": 6.0,
        "invol_switches": 100,
    }
    return {**base, **fields}


def slowed(slow: int = 1, world: int = 4, cause: str = "compute") -> list[dict[str, Any]]:
    """DDP with one slow rank: every step lasts 100 ms; the fast ranks wait in the all-reduce."""
    ranks = []
    for r in range(world):
        if r == slow:
            wait = 45.0 if cause == "data" else 5.0
            ranks.append(summary(r, world_size=world, data_wait_ms_mean=wait, comm_ms_mean=10.0))
        else:
            fields = {"comm_ms_mean": 50.0, "comm_overlap_frac": 0.1, "comm_calls_per_step": 2.0}
            ranks.append(summary(r, world_size=world, **fields))
    return ranks


def test_the_slow_rank_is_the_straggler_although_every_step_time_is_equal() -> None:
    found = straggler(slowed(slow=2))

    assert found is not None
    assert found.rank == 2
    # busy: 100 - 10 = 90 ms against 100 - 45 = 55 ms on the others
    assert found.excess_ms == pytest.approx(35.0)
    assert found.excess_frac == pytest.approx(0.35)
    assert found.cause == CAUSE_COMPUTE
    assert found.compute_excess_ms == pytest.approx(35.0)
    assert found.data_excess_ms == pytest.approx(0.0)


def test_a_straggler_that_waits_for_data_is_blamed_on_data() -> None:
    found = straggler(slowed(slow=0, cause="data"))

    assert found is not None and found.rank == 0
    assert found.cause == CAUSE_DATA
    assert found.data_excess_ms == pytest.approx(40.0)


def test_a_straggler_preempted_far_more_than_the_others_is_blamed_on_host_contention() -> None:
    ranks = slowed(slow=3)
    ranks[3]["invol_switches"] = 5000  # 700/s over its 7.1 s, against 14/s on the others

    found = straggler(ranks)

    assert found is not None and found.rank == 3
    assert found.cause == CAUSE_HOST


def test_balanced_ranks_have_a_negligible_straggler_and_no_failure() -> None:
    ranks = [summary(r, comm_ms_mean=20.0 + r, comm_overlap_frac=0.0) for r in range(8)]

    metrics = rank_metrics(ranks)

    assert metrics["dist.world_size"] == 8
    assert metrics["dist.ranks_failed"] == 0
    assert "dist.failed_rank" not in metrics
    assert metrics["dist.straggler_excess_ms"] < 5.0
    assert metrics["dist.load_imbalance_frac"] < 0.1


def test_one_rank_or_ranks_without_steps_have_no_straggler() -> None:
    assert straggler([summary(0)]) is None
    assert straggler([summary(0), summary(1, steps=0, step_ms_mean=None)]) is None
    assert rank_metrics([]) == {}


def test_the_failed_rank_is_the_first_to_fail_not_the_ones_the_launcher_stopped() -> None:
    ranks = [
        summary(0, exit="signal", exit_code=-15, signal="SIGTERM", ended_s=6.0),
        summary(1, exit="error", exit_code=1, ended_s=6.5, steps=12),
        summary(2, exit="signal", exit_code=-15, signal="SIGTERM", ended_s=6.6),
    ]

    culprit = failed_rank(ranks)
    metrics = rank_metrics(ranks)

    assert culprit is not None and culprit["rank"] == 1
    assert metrics["dist.failed_rank"] == 1
    assert metrics["dist.failed_rank_exit_code"] == 1
    assert metrics["dist.failed_rank_steps"] == 12
    assert metrics["dist.ranks_failed"] == 3


def test_a_killed_rank_counts_as_the_cause_and_ends_earlier_than_a_later_error() -> None:
    ranks = [
        summary(0, exit="error", exit_code=1, ended_s=9.0),
        summary(1, exit="killed", exit_code=-9, signal="SIGKILL", ended_s=5.0),
    ]

    assert failed_rank(ranks)["rank"] == 1  # type: ignore[index]


def test_the_stall_is_measured_on_the_wall_clock_across_ranks_started_at_different_times() -> None:
    ranks = [
        summary(0, t0_unix=1000.0, last_step_end_s=10.0, ended_s=15.5),
        summary(1, t0_unix=1001.0, last_step_end_s=9.2, ended_s=9.3),
    ]

    # last step end: max(1010.0, 1010.2) = 1010.2; last end: 1015.5
    assert stall_s(ranks) == pytest.approx(5.3)
    assert stall_s([summary(0, last_step_end_s=None)]) is None


def test_communication_share_overlap_and_memory_are_merged() -> None:
    ranks = slowed(slow=1, world=2)
    ranks[0]["mem_peak_mb"] = 2000.0

    metrics = rank_metrics(ranks)

    assert metrics["dist.comm_frac"] == pytest.approx((0.5 + 0.1) / 2)
    assert metrics["dist.comm_ms_per_step"] == pytest.approx(30.0)
    assert metrics["dist.comm_overlap_frac"] == pytest.approx(0.1)
    assert metrics["dist.comm_calls_per_step"] == 2.0
    # exposed: rank 0 50 * 0.9 = 45 ms, rank 1 10 ms of 100 ms steps
    assert metrics["dist.comm_exposed_frac_min"] == pytest.approx(0.1)
    assert metrics["dist.mem_peak_mb_max"] == 2000.0
    assert metrics["dist.mem_peak_skew_frac"] == pytest.approx(0.5)


def test_summaries_missing_optional_fields_still_merge() -> None:
    minimal = [
        {"rank": 0, "steps": 10, "step_ms_mean": 50.0},
        {"rank": 1, "steps": 10, "step_ms_mean": 80.0},
    ]

    metrics = rank_metrics(minimal)

    assert metrics["dist.straggler_rank"] == 1
    assert metrics["dist.step_time_skew_frac"] == pytest.approx(30 / 65)
    assert "dist.comm_frac" not in metrics and "dist.stall_s" not in metrics


def test_only_each_ranks_last_restart_counts() -> None:
    first = [summary(0, exit="signal", signal="SIGTERM"), summary(1, exit="error", exit_code=1)]
    second = [summary(0, restart=1), summary(1, restart=1)]

    metrics = rank_metrics([*first, *second])

    assert metrics["dist.ranks_seen"] == 2
    assert metrics["dist.ranks_failed"] == 0
    assert "dist.failed_rank" not in metrics


def ranks_record() -> Record:
    """A record of a 3-rank run where rank 2 crashed: every `dist.*` metric is computed from it
    (tests/unit/test_metrics.py checks docs/metrics.md against it)."""
    ranks = slowed(slow=1, world=3)
    ranks[2].update(exit="error", exit_code=1, ended_s=6.0, exception={"type": "RuntimeError"})
    run = {"exit": "error", "duration_s": 8.0}
    return Record(run, {}, {}, [], {}, ranks=ranks)
