"""`perfscope merge`: several hosts' run directories into one record, reading rank summaries.

The hosts' records are synthetic (hand-built rank summaries in the documented format); the merge
runs through the real command line. Real torchrun runs merged: tests/integration/
test_distributed_merge.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from perfscope.distributed.merge import merge_runs
from perfscope.errors import PerfscopeError
from tests.conftest import run_perfscope
from tests.unit.test_ranks import summary


def write_host(root: Path, host: int, ranks: list[dict[str, Any]], exit: str = "ok") -> Path:
    """One host's run directory, as `perfscope run` leaves it (the record only)."""
    run = {
        "command": ["torchrun", "--nnodes", "128", "train.py"],
        "argv": ["torchrun", "--nnodes", "128", "train.py"],
        "cwd": "/work",
        "mode": "command",
        "pid": 100 + host,
        "started_at": f"2026-11-23T07:00:0{host % 10}.000+00:00",
        "ended_at": f"2026-11-23T07:10:0{host % 10}.000+00:00",
        "duration_s": 600.0,
        "exit": exit,
        "exit_code": 0 if exit == "ok" else 1,
        "signal": None,
        "exception": None,
        "step_method": "optimizer",
        "step_methods_seen": ["optimizer"],
        "time_to_first_step_s": 1.0,
        "config": None,
        "notes": [],
    }
    environment = {
        "python": "3.11.7",
        "python_executable": "/usr/bin/python3",
        "platform": "Linux",
        "host": f"node{host}",
        "cpu_count": 64,
        "cpu_usable": 64,
        "memory_total_mb": 512000,
        "env": {},
        "dataloaders": [],
    }
    record = {
        "schema_version": 1,
        "run": run,
        "environment": environment,
        "collectors": {},
        "steps": [{"index": 0, "start_s": 1.0, "duration_ms": 100.0, "data_wait_ms": 5.0}],
        "samples": {},
        "metrics": {},
        "findings": [],
        "ranks": ranks,
    }
    path = root / f"node{host}"
    path.mkdir(parents=True)
    (path / "record.json").write_text(json.dumps(record), encoding="utf-8")
    return path


def cluster(root: Path, hosts: int, per_host: int, slow: int) -> list[Path]:
    """`hosts` x `per_host` DDP ranks; rank `slow` computes 30 ms longer, the others wait."""
    dirs = []
    for h in range(hosts):
        ranks = []
        for r in range(h * per_host, (h + 1) * per_host):
            comm = 10.0 if r == slow else 40.0
            fields = {"host": f"node{h}", "world_size": hosts * per_host, "comm_ms_mean": comm}
            ranks.append(summary(r, **fields))
        dirs.append(write_host(root, h, ranks))
    return dirs


def test_merging_1024_rank_summaries_names_the_straggler(tmp_path: Path) -> None:
    dirs = cluster(tmp_path / "hosts", hosts=128, per_host=8, slow=777)

    started = time.perf_counter()
    result = run_perfscope(["merge", "-q", *map(str, dirs), "-o", str(tmp_path / "all")], tmp_path)
    took = time.perf_counter() - started

    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "all" / "record.json").read_text())
    assert len(record["ranks"]) == 1024
    assert [r["rank"] for r in record["ranks"]] == list(range(1024))
    assert record["metrics"]["dist.world_size"] == 1024
    assert record["metrics"]["dist.straggler_rank"] == 777
    assert record["metrics"]["dist.straggler_excess_ms"] == pytest.approx(30.0)
    assert any(f["title"].startswith("Rank 777 is a straggler") for f in record["findings"])
    assert record["steps"] == json.loads((dirs[0] / "record.json").read_text())["steps"]
    assert record["run"]["started_at"] == "2026-11-23T07:00:00.000+00:00"
    assert record["run"]["ended_at"] == "2026-11-23T07:10:09.000+00:00"
    assert (tmp_path / "all" / "report.html").is_file()
    assert took < 30, f"merging 1024 ranks took {took:.1f} s"  # about 2 s here: benchmarks/merge.py


def test_the_merged_run_ends_as_the_host_of_the_failed_rank(tmp_path: Path) -> None:
    ok = write_host(tmp_path, 0, [summary(0), summary(1)])
    crashed = [summary(2, exit="error", exit_code=1, ended_s=5.0), summary(3, exit="signal")]
    failed = write_host(tmp_path, 1, crashed, exit="error")
    data = json.loads((failed / "record.json").read_text())
    data["run"].update(exit_code=1, exception={"type": "RuntimeError", "message": "rank 2: boom"})
    (failed / "record.json").write_text(json.dumps(data), encoding="utf-8")

    record, base = merge_runs([failed, ok])

    assert base == ok  # rank 0's run directory
    assert record.run["exit"] == "error" and record.run["exit_code"] == 1
    assert record.run["exception"]["message"] == "rank 2: boom"
    assert [r["rank"] for r in record.ranks] == [0, 1, 2, 3]
    assert record.run["notes"][-1].startswith("merged from 2 run directories")


def test_a_run_without_ranks_is_refused(tmp_path: Path) -> None:
    single = write_host(tmp_path, 0, [])

    result = run_perfscope(["merge", str(single), "-o", str(tmp_path / "out")], tmp_path)

    assert result.returncode == 2
    assert b"perfscope: error: " in result.stderr and b"not a distributed run" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_same_run_directory_twice_is_refused(tmp_path: Path) -> None:
    host = write_host(tmp_path, 0, [summary(0), summary(1)])

    with pytest.raises(PerfscopeError, match="give each run directory once"):
        merge_runs([host, host])


def test_a_missing_run_directory_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_perfscope(["merge", str(tmp_path / "nope"), "-o", str(tmp_path / "o")], tmp_path)

    assert result.returncode == 2
    assert (
        result.stderr.startswith(b"perfscope: error: ")
        and b"no such run directory" in result.stderr
    )
