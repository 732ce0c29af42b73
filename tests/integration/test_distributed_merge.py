"""Multi-node, for real on one machine: two torchrun agents (--nnodes 2, one rank each) under two
`perfscope run`s, as two hosts would run them, then `perfscope merge` of their run directories."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PERFSCOPE, child_env, run_perfscope

pytestmark = pytest.mark.slow

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "distributed" / "train_ddp.py")
TORCHRUN = str(Path(sys.executable).parent / "torchrun")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_run_apart_and_merge_into_one_record_naming_the_slow_rank(
    tmp_path: Path,
) -> None:
    port = str(free_port())
    nodes = []
    for node in ("0", "1"):
        launcher = [TORCHRUN, "--nnodes", "2", "--node-rank", node, "--nproc-per-node", "1"]
        launcher += ["--master-addr", "127.0.0.1", "--master-port", port]
        workload = ["--steps", "30", "--batch", "128", "--depth", "16"]
        workload += ["--slow-rank", "1", "--slow-ms", "40", "--timeout-s", "60"]
        cmd = [PERFSCOPE, "run", "-q", "--no-pyspy", "-o", str(tmp_path / f"node{node}"), "--"]
        nodes.append(subprocess.Popen([*cmd, *launcher, EXAMPLE, *workload], env=child_env()))
    assert [p.wait(timeout=240) for p in nodes] == [0, 0]

    out = tmp_path / "merged"
    result = run_perfscope(
        ["merge", "-q", str(tmp_path / "node0"), str(tmp_path / "node1"), "-o", str(out)], tmp_path
    )

    assert result.returncode == 0, result.stderr
    record = result_record(out)
    assert [(r["rank"], r["exit"]) for r in record["ranks"]] == [(0, "ok"), (1, "ok")]
    assert record["metrics"]["dist.world_size"] == 2
    assert record["metrics"]["dist.straggler_rank"] == 1
    assert any(f["title"].startswith("Rank 1 is a straggler") for f in record["findings"])
    assert (out / "report.html").is_file()


def result_record(run_dir: Path) -> dict:
    return json.loads((run_dir / "record.json").read_text())
