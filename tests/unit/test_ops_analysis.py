"""The op summary of a torch.profiler trace: a real one made here, and a GPU-shaped one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from perfscope.analysis.ops import ops_metrics, summarize_trace
from perfscope.record import Record

STEPS = 3


@pytest.fixture(scope="module")
def cpu_trace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real Kineto trace: 1 warm-up and 3 recorded steps of a tiny MLP training loop."""
    torch = pytest.importorskip("torch")
    from torch.profiler import ProfilerActivity, profile, schedule

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1)
    ).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step() -> None:
        x = torch.randn(8, 16).double()  # one float -> double cast per step
        loss = torch.nn.functional.mse_loss(model(x), torch.zeros(8, 1, dtype=torch.float64))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        loss.item()  # one host sync per step

    prof = profile(
        activities=[ProfilerActivity.CPU],
        record_shapes=True,
        schedule=schedule(wait=0, warmup=1, active=STEPS, repeat=1),
    )
    prof.start()
    for _ in range(1 + STEPS):
        step()
        prof.step()
    prof.stop()
    path = tmp_path_factory.mktemp("ops") / "trace.json"
    prof.export_chrome_trace(str(path))
    return json.loads(path.read_text())


def test_op_table_of_a_real_trace(cpu_trace: dict[str, Any]) -> None:
    # WHEN the trace is summarised
    summary = summarize_trace(cpu_trace)
    # THEN every recorded step is there, and the table has the model's ops with their shapes
    assert summary["steps"] == STEPS and summary["step_markers"] is True
    assert summary["device"] is False
    rows = {row["name"]: row for row in summary["ops"]}
    assert rows["aten::linear"]["count"] == 2 * STEPS
    assert rows["aten::addmm"]["count"] == 2 * STEPS
    assert any("[8, 16]" in s["shape"] for s in rows["aten::linear"]["shapes"])
    assert "double" in rows["aten::addmm"]["shapes"][0]["shape"]
    for row in summary["ops"]:
        assert 0 <= row["self_cpu_us"] <= row["cpu_us"] + 1e-6
        assert "device_us" not in row  # no device in this trace: no invented columns
    self_times = [row["self_cpu_us"] for row in summary["ops"]]
    assert self_times == sorted(self_times, reverse=True)
    assert summary["distinct_ops"] >= len(summary["ops"])


def test_per_step_syncs_casts_and_copies_of_a_real_trace(cpu_trace: dict[str, Any]) -> None:
    series = summarize_trace(cpu_trace)["per_step"]
    # THEN each step has the same ops, one .item() sync, one float->double cast, no copies
    assert len(set(series["ops"])) == 1 and series["ops"][0] > 20
    assert series["syncs"] == [1] * STEPS
    assert series["casts"] == [1] * STEPS
    assert series["h2d_count"] == [0] * STEPS and series["d2h_bytes"] == [0] * STEPS
    assert all(d > 0 for d in series["dur_us"])
    summary = summarize_trace(cpu_trace)
    assert summary["syncs"] == {"aten::item": STEPS}
    assert summary["casts"] == {"float->double": STEPS}


def test_partial_last_step_and_step_names(cpu_trace: dict[str, Any]) -> None:
    # GIVEN a run that ended inside its last recorded step, its clock at 5 when the window opened
    summary = summarize_trace(cpu_trace, complete_steps=STEPS - 1, step_offset=5)
    # THEN the per-step series skip the partial step, the op table keeps all that was recorded
    assert summary["per_step"]["step"] == [6, 7]  # ProfilerStep#1 and #2 (#0 was warm-up)
    rows = {row["name"]: row for row in summary["ops"]}
    assert rows["aten::linear"]["count"] == 2 * STEPS


def test_a_trace_without_step_annotations_is_one_step(cpu_trace: dict[str, Any]) -> None:
    events = [e for e in cpu_trace["traceEvents"] if not str(e.get("name")).startswith("Profiler")]
    summary = summarize_trace({"traceEvents": events})
    assert summary["steps"] == 1 and summary["step_markers"] is False
    assert summary["per_step"]["syncs"] == [STEPS]


def test_an_empty_trace() -> None:
    summary = summarize_trace({"traceEvents": []})
    assert summary["steps"] == 0 and summary["ops"] == []
    assert summary["per_step"]["ops"] == []


def _x(cat: str, name: str, ts: float, dur: float, tid: int = 1, **args: Any) -> dict[str, Any]:
    pid = 0 if cat in ("kernel", "gpu_memcpy") else 100
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur,
            "args": args}  # fmt: skip


def gpu_step_trace() -> dict[str, Any]:
    """One step of a GPU loop as Kineto writes it: an H2D copy, a linear, `.item()`, `.cpu()`."""
    events = [
        _x("user_annotation", "ProfilerStep#3", 0, 1000),
        _x("cpu_op", "aten::to", 10, 100, **{"Input type": ["float"], "Input Dims": [[8, 16]]}),
        _x("cpu_op", "aten::copy_", 20, 80, **{"Input type": ["float", "float"],
                                              "Input Dims": [[8, 16], [8, 16]]}),
        _x("cuda_runtime", "cudaMemcpyAsync", 30, 20, correlation=1),
        _x("gpu_memcpy", "Memcpy HtoD (Pageable -> Device)", 60, 5, tid=7, correlation=1,
           bytes=512),
        _x("cuda_runtime", "cudaStreamSynchronize", 55, 40, correlation=2),
        _x("cpu_op", "aten::linear", 200, 100),
        _x("cpu_op", "aten::addmm", 210, 80),
        _x("cuda_runtime", "cudaLaunchKernel", 220, 10, correlation=3),
        _x("kernel", "ampere_sgemm_32x32_sliced1x4_tn", 400, 50, tid=7, correlation=3),
        _x("cpu_op", "aten::item", 500, 100),
        _x("cpu_op", "aten::_local_scalar_dense", 505, 90),
        _x("cuda_runtime", "cudaMemcpyAsync", 510, 10, correlation=4),
        _x("gpu_memcpy", "Memcpy DtoH (Device -> Pageable)", 520, 2, tid=7, correlation=4,
           bytes=4),
        _x("cuda_runtime", "cudaStreamSynchronize", 521, 60, correlation=5),
        _x("cpu_op", "aten::copy_", 700, 20, **{"Input type": ["c10::Half", "float"],
                                               "Input Dims": [[8, 16], [8, 16]]}),
        _x("cpu_op", "aten::item", 800, 10),  # of a CPU tensor: no sync
        _x("cpu_op", "aten::_local_scalar_dense", 801, 5),
    ]  # fmt: skip
    return {"deviceProperties": [{"id": 0}], "traceEvents": events}


def test_gpu_trace_copies_syncs_and_device_time() -> None:
    summary = summarize_trace(gpu_step_trace())
    assert summary["device"] is True
    # THEN one H2D (pageable, 512 B) and one D2H copy, each counted in the step
    assert summary["copies"]["h2d"] == {
        "count": 1, "bytes": 512, "pinned": 0, "pageable": 1, "pageable_bytes": 512
    }  # fmt: skip
    assert summary["copies"]["d2h"]["count"] == 1 and summary["copies"]["d2h"]["bytes"] == 4
    series = summary["per_step"]
    assert series["step"] == [3] and series["h2d_bytes"] == [512] and series["d2h_count"] == [1]
    # AND two syncs, under .to() and .item() of device tensors; the CPU tensor's .item() is none
    assert summary["syncs"] == {"aten::to": 1, "aten::item": 1}
    assert series["syncs"] == [2]
    # AND the half cast, not the same-dtype copy
    assert summary["casts"] == {"float->c10::Half": 1}
    # AND the kernel's time is addmm's own and linear's in total
    rows = {row["name"]: row for row in summary["ops"]}
    assert rows["aten::addmm"]["self_device_us"] == 50 and rows["aten::addmm"]["device_us"] == 50
    assert rows["aten::linear"]["self_device_us"] == 0 and rows["aten::linear"]["device_us"] == 50
    assert rows["aten::linear"]["self_cpu_us"] == 20  # 100 minus addmm's 80


def _record(summary: dict[str, Any] | None, status: str = "ok") -> Record:
    samples = {"ops": summary} if summary is not None else {}
    return Record({}, {}, {"ops": {"status": status, "reason": None}}, [], samples)


def test_ops_metrics_of_a_gpu_step() -> None:
    metrics = ops_metrics(_record(summarize_trace(gpu_step_trace())))
    assert metrics["ops.trace_window_steps"] == 1
    assert metrics["ops.per_step"] == 9
    assert metrics["ops.syncs_per_step"] == 2
    assert metrics["ops.h2d_count_per_step"] == 1
    assert metrics["ops.h2d_mb_per_step"] == pytest.approx(512 / 2**20)
    assert metrics["ops.d2h_count_per_step"] == 1
    assert metrics["ops.h2d_pageable_frac"] == 1.0
    assert metrics["ops.dtype_casts_per_step"] == 1
    # self times: to 20, copy_ 20 (80 - its runtime calls), linear 20, addmm 70, item 10,
    # _local_scalar_dense 20, the cast 20, the CPU item 5 and its _local_scalar_dense 5
    assert metrics["ops.mean_op_us"] == pytest.approx(190 / 9)


def test_ops_metrics_on_cpu_say_zero_copies(cpu_trace: dict[str, Any]) -> None:
    metrics = ops_metrics(_record(summarize_trace(cpu_trace)))
    assert metrics["ops.trace_window_steps"] == STEPS
    assert metrics["ops.syncs_per_step"] == 1
    assert metrics["ops.h2d_mb_per_step"] == 0 and metrics["ops.h2d_count_per_step"] == 0
    assert "ops.h2d_pageable_frac" not in metrics  # no copies: no fraction
    assert 0 < metrics["ops.mean_op_us"] < 1e5
    assert json.dumps(metrics, allow_nan=False)


def test_ops_metrics_absent_without_a_window() -> None:
    assert ops_metrics(_record(None, status="unavailable")) == {}
    assert ops_metrics(_record(None)) == {}
    empty = summarize_trace({"traceEvents": []})
    assert ops_metrics(_record(empty)) == {"ops.trace_window_steps": 0.0}


def test_summary_is_json_for_the_record(cpu_trace: dict[str, Any], tmp_path: Path) -> None:
    summary = summarize_trace(cpu_trace)
    text = json.dumps(summary, allow_nan=False)
    assert len(text) < 50_000  # the op table is capped (top 50 rows, 3 shapes each)
    assert len(summarize_trace(cpu_trace, top=5)["ops"]) == 5
