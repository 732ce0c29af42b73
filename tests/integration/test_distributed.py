"""Distributed runs with real torchrun on this CPU machine: gloo, two ranks, a tiny DDP model.

Each run launches torchrun's agent and two rank processes (a few seconds each on 2 cores).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from perfscope.events import EVENTS_DIR
from tests.conftest import Result, run_perfscope

pytestmark = pytest.mark.slow

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "distributed" / "train_ddp.py")
# Enough compute per step that the all-reduce of the small gradients stays a minor share.
WORKLOAD = ["--steps", "40", "--batch", "128", "--depth", "16"]
FLAGS = ["run", "-q", "--no-pyspy"]
TORCHRUN = str(Path(sys.executable).parent / "torchrun")


def run_ranks(
    tmp_path: Path, *args: str, torchrun: bool = False, extra: tuple[str, ...] = ()
) -> Result:
    """The example's ranks under `perfscope run` (`extra`: more perfscope flags)."""
    run_dir = tmp_path / "r"
    flags = [*FLAGS, *extra]
    if torchrun:  # the user's own torchrun command after --
        launcher = [TORCHRUN, "--standalone", "--nproc-per-node", "2"]
        argv = [*flags, "--", *launcher, EXAMPLE, *args]
    else:
        argv = [*flags, "--nproc-per-node", "2", EXAMPLE, *args]
    return run_perfscope(argv, cwd=tmp_path, run_dir=run_dir, timeout=240)


def dist_findings(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in record["findings"] if f["class"] == "distributed"]


def test_a_balanced_ddp_run_records_every_rank_and_raises_no_distributed_finding(
    tmp_path: Path,
) -> None:
    result = run_ranks(tmp_path, *WORKLOAD, "--workers", "1")  # forked DataLoader workers

    record = result.record
    assert result.returncode == 0
    assert [r["rank"] for r in record["ranks"]] == [0, 1]  # the workers are not ranks
    assert {r["exit"] for r in record["ranks"]} == {"ok"}
    assert all(r["steps"] == 40 for r in record["ranks"])
    assert len(record["steps"]) == 40  # rank 0's, for every single-process consumer
    assert record["run"]["pid"] == record["ranks"][0]["pid"]
    names = sorted(p.name for p in (result.run_dir / EVENTS_DIR).iterdir())  # type: ignore[operator]
    host = record["ranks"][0]["host"]
    assert [n for n in names if "-rank" in n] == [
        f"{host}-rank0-{record['ranks'][0]['pid']}.events",
        f"{host}-rank1-{record['ranks'][1]['pid']}.events",
    ]
    assert len(names) == 3  # and torchrun's own process, which ran no step
    assert (tmp_path / "r" / "report.html").is_file()
    assert record["ranks"][1]["trace"].startswith("ranks/")  # never the same file as rank 0's
    assert (tmp_path / "r" / record["ranks"][1]["trace"]).is_file()
    assert all(r["comm_ms_mean"] is not None for r in record["ranks"])
    assert record["metrics"]["dist.world_size"] == 2
    assert record["metrics"]["cpu.workers_count"] >= 1  # measured as workers, not as ranks
    assert dist_findings(record) == []


def test_spawned_dataloader_workers_are_not_taken_for_ranks(tmp_path: Path) -> None:
    # a spawned worker boots a Python of its own, with RANK and WORLD_SIZE in its environment
    args = ["--steps", "6", "--workers", "1", "--worker-start", "spawn"]
    result = run_ranks(tmp_path, *args, extra=("--no-trace",))

    record = result.record
    assert result.returncode == 0
    assert [(r["rank"], r["steps"]) for r in record["ranks"]] == [(0, 6), (1, 6)]
    assert len(list((tmp_path / "r" / EVENTS_DIR).iterdir())) == 3


def test_a_slowed_rank_is_named_as_the_straggler(tmp_path: Path) -> None:
    result = run_ranks(tmp_path, *WORKLOAD, "--slow-rank", "1", "--slow-ms", "40", torchrun=True)

    record = result.record
    assert result.returncode == 0
    assert record["run"]["mode"] == "command"
    (finding,) = [f for f in dist_findings(record) if f["id"] == "DIST001"]
    assert finding["title"].startswith("Rank 1 is a straggler")
    assert record["metrics"]["dist.straggler_rank"] == 1
    assert record["metrics"]["dist.straggler_excess_ms"] >= 30
    assert record["metrics"]["dist.straggler_cause"] == 2  # compute, not data wait
    report = (tmp_path / "r" / "report.html").read_text()
    assert 'id="rank-table"' in report and report.count("straggler</span>") == 1


def test_a_rank_that_raises_is_named_with_how_it_ended(tmp_path: Path) -> None:
    result = run_ranks(tmp_path, *WORKLOAD, "--die-rank", "1", "--die-at", "8")

    record = result.record
    assert result.returncode == 1  # as torchrun exited
    rank0, rank1 = record["ranks"]
    assert rank1["exit"] == "error" and rank1["exit_code"] == 1
    assert rank1["exception"]["message"] == "rank 1 fails at step 8"
    assert rank1["steps"] == 8
    assert rank0["exit"] != "ok"  # stopped by torchrun, or failed on the broken connection
    assert record["run"]["exception"]["message"] == "rank 1: rank 1 fails at step 8"
    (finding,) = [f for f in dist_findings(record) if f["id"] == "DIST002"]
    assert finding["title"] == "Rank 1 failed (exit code 1) and the run ended"
    assert 'It raised RuntimeError: "rank 1 fails at step 8"' in finding["evidence"]


def test_a_rank_killed_with_sigkill_is_reported_killed(tmp_path: Path) -> None:
    result = run_ranks(tmp_path, *WORKLOAD, "--die-rank", "1", "--die-at", "6", "--die-how", "kill")

    record = result.record
    assert result.returncode == 1
    rank1 = record["ranks"][1]
    assert rank1["exit"] == "killed" and rank1["signal"] == "SIGKILL"
    assert rank1["exit_code"] == -signal.SIGKILL
    assert rank1["steps"] == 6
    assert record["metrics"]["dist.failed_rank"] == 1


def test_a_hung_collective_is_reported_by_the_ranks_step_timestamps(tmp_path: Path) -> None:
    args = [*WORKLOAD, "--hang-rank", "1", "--hang-at", "10", "--timeout-s", "5"]
    result = run_ranks(tmp_path, *args)

    record = result.record
    assert result.returncode == 1
    assert all(r["steps"] == 10 and r["last_step_end_s"] is not None for r in record["ranks"])
    assert record["metrics"]["dist.stall_s"] >= 4.5  # the gloo timeout, 5 s
    ids = {f["id"] for f in dist_findings(record)}
    assert "DIST003" in ids
    assert "Timed out" in record["run"]["exception"]["message"]
