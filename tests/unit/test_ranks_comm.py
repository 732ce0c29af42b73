"""Communication in a rank's op-trace window (perfscope/distributed/comm.py), from Chrome trace
events shaped as torch.profiler writes them (hand-built: the real ones come from the torchrun
runs of tests/integration/test_distributed.py)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from perfscope.distributed.comm import comm_from_events, comm_from_trace


def x(name: str, ts: float, dur: float, tid: int = 1, cat: str = "cpu_op") -> dict[str, Any]:
    return {"ph": "X", "name": name, "cat": cat, "ts": ts, "dur": dur, "tid": tid, "pid": 1}


def gloo_window() -> list[dict[str, Any]]:
    """Two 100 us steps on thread 1; gloo's all-reduce on thread 9 overlaps 10 us of compute."""
    return [
        x("ProfilerStep#1", 0, 100, cat="user_annotation"),
        x("aten::mm", 0, 50),
        x("c10d::allreduce_", 50, 5),  # only enqueues: never counted as compute
        x("gloo:all_reduce", 40, 40, tid=9, cat="user_annotation"),
        x("ProfilerStep#2", 100, 100, cat="user_annotation"),
        x("aten::mm", 100, 80),
        x("gloo:all_reduce", 170, 20, tid=9, cat="user_annotation"),
        x("aten::add_", 300, 10, tid=5),  # another thread's op: not the steps' compute
    ]


def test_collective_time_share_overlap_and_calls_per_step() -> None:
    found = comm_from_events(gloo_window())

    assert found is not None
    assert found["comm_frac"] == pytest.approx(60 / 200)
    # overlap: [40, 50) with the first mm and [170, 180) with the second: 20 of 60 us
    assert found["comm_overlap_frac"] == pytest.approx(20 / 60)
    assert found["comm_calls_per_step"] == 1.0


def test_nccl_kernels_against_other_kernels_on_a_gpu() -> None:
    events = [
        x("ProfilerStep#1", 0, 1000, cat="user_annotation"),
        x("sm80_gemm", 0, 600, tid=7, cat="kernel"),
        x("ncclDevKernel_AllReduce_Sum_f32_RING_LL", 400, 400, tid=8, cat="kernel"),
        x("nccl:all_reduce", 390, 10, cat="user_annotation"),
    ]

    found = comm_from_events(events)

    assert found is not None
    assert found["comm_frac"] == pytest.approx(0.4)
    assert found["comm_overlap_frac"] == pytest.approx(0.5)


def test_a_window_without_steps_or_an_unreadable_trace_gives_nothing(tmp_path: Path) -> None:
    assert comm_from_events([x("aten::mm", 0, 10)]) is None
    broken = tmp_path / "trace.json.gz"
    broken.write_bytes(b"not gzip")
    assert comm_from_trace(broken) is None
    assert comm_from_trace(tmp_path / "missing.json.gz") is None


def test_a_gzipped_chrome_trace_is_read(tmp_path: Path) -> None:
    path = tmp_path / "trace.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"traceEvents": gloo_window()}).encode()))

    assert comm_from_trace(path) == comm_from_events(gloo_window())
