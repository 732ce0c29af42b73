"""The op summary of a torch.profiler trace: a real one made here, and a GPU-shaped one."""

from __future__ import annotations

import gzip
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
        _x("user_annotation", "Optimizer.step#SGD.step", 850, 40),
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


# Redundant work -----------------------------------------------------------------------------------

FIXTURES = Path(__file__).parents[1] / "fixtures" / "traces"


def load_trace(name: str) -> dict[str, Any]:
    """A real Kineto trace of tests/fixtures/traces/, by name without `.json.gz`."""
    return json.loads(gzip.decompress((FIXTURES / f"{name}.json.gz").read_bytes()))


LAYERS = 6  # Linear layers of the loops below: 12 parameter tensors


def _loop_trace(tmp_path: Path, wasteful: bool) -> dict[str, Any]:
    """A real Kineto trace of 3 steps of a training loop, with or without the redundant work:
    the same cast 3 times a step, constants built each step, zero_grad(set_to_none=False), and
    Adam's for-loop (the CPU default) instead of fused."""
    torch = pytest.importorskip("torch")
    from torch.profiler import ProfilerActivity, profile, schedule

    torch.manual_seed(0)
    model = torch.nn.Sequential(*(torch.nn.Linear(16, 16) for _ in range(LAYERS)))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=not wasteful)
    x = torch.randn(8, 16, dtype=torch.float64)
    mask_once = torch.ones(8, 16)

    def step() -> None:
        if wasteful:
            mask = torch.ones(8, 16)  # 2 constants a step
            scale = torch.full((8, 1), 0.5)
            h = model(x.float()) * mask + model(x.float()) * scale + model(x.float())
        else:
            h = model(x.float()) * mask_once
        h.sum().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=not wasteful)

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
    path = tmp_path / f"loop-{wasteful}.json"
    prof.export_chrome_trace(str(path))
    return json.loads(path.read_text())


def test_redundant_work_of_a_real_wasteful_loop(tmp_path: Path) -> None:
    # GIVEN a loop that casts x three times a step, builds 2 constants, zeroes 12 grads, and
    # runs Adam as a for-loop
    metrics = ops_metrics(_record(summarize_trace(_loop_trace(tmp_path, wasteful=True))))
    # THEN the two casts after the first are repeats, in every step
    assert metrics["ops.repeated_casts_per_step"] == 2
    assert metrics["ops.dtype_casts_per_step"] == 3
    assert metrics["ops.repeated_cast_ms_per_step"] > 0
    # AND ones + full, the same every step, are constants; randn-free, so nothing else is
    assert metrics["ops.constant_builds_per_step"] == 2
    # AND zero_grad filled each of the 12 gradients
    assert metrics["ops.zero_grad_memsets_per_step"] == 2 * LAYERS
    # AND Adam worked per parameter: several ops for each of the 12 tensors, none multi-tensor
    assert metrics["ops.optimizer_loop_ops_per_step"] >= 4 * 2 * LAYERS
    assert metrics["ops.optimizer_multi_tensor_ops_per_step"] == 0
    assert metrics["ops.optimizer_fusable"] == 1
    assert 0 < metrics["ops.optimizer_frac"] < 1
    assert metrics["ops.trace_has_device"] == 0 and metrics["ops.h2d_pageable_count_per_step"] == 0
    # AND Adam's .item() of its CPU step counters is no would-be GPU sync
    assert metrics["ops.syncs_per_step"] == 0


def test_no_redundant_work_in_a_clean_loop(tmp_path: Path) -> None:
    metrics = ops_metrics(_record(summarize_trace(_loop_trace(tmp_path, wasteful=False))))
    assert metrics["ops.repeated_casts_per_step"] == 0
    assert metrics["ops.dtype_casts_per_step"] == 1
    assert metrics["ops.constant_builds_per_step"] == 0
    assert metrics["ops.zero_grad_memsets_per_step"] == 0
    assert metrics["ops.optimizer_loop_ops_per_step"] == 0
    assert metrics["ops.optimizer_multi_tensor_ops_per_step"] >= 1  # aten::_fused_adam_


def test_autocast_casts_are_not_repeats() -> None:
    # GIVEN autocast's weight casts: inside aten::linear, the same shapes in two layers
    def linear(ts: float) -> list[dict[str, Any]]:
        copy_args = {"Input type": ["c10::BFloat16", "float"], "Input Dims": [[16, 16], [16, 16]]}
        return [
            _x("cpu_op", "aten::linear", ts, 50),
            _x("cpu_op", "aten::to", ts + 1, 20),
            _x("cpu_op", "aten::_to_copy", ts + 2, 18),
            _x("cpu_op", "aten::copy_", ts + 3, 10, **copy_args),
        ]

    events = [_x("user_annotation", "ProfilerStep#0", 0, 500), *linear(10), *linear(100)]
    summary = summarize_trace({"traceEvents": events})
    # THEN two casts, no repeat: autocast is working as designed
    assert summary["per_step"]["casts"] == [2]
    assert summary["per_step"]["repeated_casts"] == [0]


def test_the_next_step_is_not_part_of_the_optimizer_call() -> None:
    # GIVEN the step clock's hook (inside Optimizer.step#) closing step 0 and opening step 1
    events = [
        _x("user_annotation", "ProfilerStep#0", 0, 100),
        _x("user_annotation", "Optimizer.step#SGD.step", 50, 60),
        _x("cpu_op", "aten::add_", 55, 5, **{"Input Dims": [[4, 4], [4, 4], []]}),
        _x("user_annotation", "ProfilerStep#1", 100, 100),
        _x("cpu_op", "aten::mul", 150, 5, **{"Input Dims": [[4, 4], [4, 4]]}),
    ]
    series = summarize_trace({"traceEvents": events})["per_step"]
    # THEN only the add_ is optimizer work, and its time ends with step 0
    assert series["optimizer_loop_ops"] == [1, 0]
    assert series["optimizer_us"] == [50, 0]


def _gz(name: str) -> dict[str, Any]:
    with gzip.open(FIXTURES / name, "rt") as f:
        return json.load(f)


def _raw_x(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in trace["traceEvents"] if e.get("ph") == "X"]


def _raw_steps(trace: dict[str, Any]) -> int:
    return sum(1 for e in _raw_x(trace) if str(e["name"]).startswith("ProfilerStep#")) or 1


def _raw_within(trace: dict[str, Any], prefix: str, op: str) -> int:
    """Ops named `op` on the same thread and within the span of an annotation named `prefix...`."""
    spans = [e for e in _raw_x(trace) if str(e["name"]).startswith(prefix)]
    return sum(
        1
        for e in _raw_x(trace)
        if e["name"] == op
        and any(s["tid"] == e["tid"] and s["ts"] <= e["ts"] <= s["ts"] + s["dur"] for s in spans)
    )


def _metrics_and_findings(trace: dict[str, Any]) -> tuple[dict[str, float], set[str]]:
    from perfscope.rules.engine import evaluate
    from perfscope.rules.loader import load_rules

    record = _record(summarize_trace(trace))
    metrics = ops_metrics(record)
    findings = evaluate(load_rules(), metrics, record.collectors)
    return metrics, {f["id"] for f in findings}


def test_pageable_h2d_copies_of_a_real_a100_trace() -> None:
    trace = _gz("kineto_a100_alexnet_nosteps.json.gz")
    pageable = [e for e in _raw_x(trace) if e["name"] == "Memcpy HtoD (Pageable -> Device)"]
    metrics, fired = _metrics_and_findings(trace)
    assert len(pageable) == 16
    assert metrics["ops.h2d_pageable_count_per_step"] == len(pageable) / _raw_steps(trace)
    assert metrics["ops.h2d_pageable_frac"] == 1.0
    assert metrics["ops.h2d_pageable_host_ms_per_step"] > 0
    assert "OPS003" in fired


def test_pinned_h2d_copies_of_a_real_a100_trace_are_quiet() -> None:
    trace = _gz("ops_a100_pinned_h2d_1step.json.gz")
    names = [e["name"] for e in _raw_x(trace) if e.get("cat") == "gpu_memcpy"]
    metrics, fired = _metrics_and_findings(trace)
    pinned = names.count("Memcpy HtoD (Pinned -> Device)")
    assert pinned > 0 and not any("Pageable -> Device" in n for n in names)
    assert metrics["ops.h2d_count_per_step"] == pinned
    assert metrics["ops.h2d_pageable_count_per_step"] == 0
    assert "OPS003" not in fired
    # FusedAdam (not torch's) counts steps in 0-dim tensors: no per-parameter loop
    assert metrics["ops.optimizer_loop_ops_per_step"] == 0 and "OPS006" not in fired


def test_for_loop_sgd_and_zeroed_grads_of_a_real_v100_trace() -> None:
    trace = _gz("ops_v100_sgd_loop_zero_grad_2steps.json.gz")
    steps = _raw_steps(trace)
    adds = _raw_within(trace, "Optimizer.step#", "aten::add_")
    zeros = _raw_within(trace, "Optimizer.zero_grad#", "aten::zero_")
    metrics, fired = _metrics_and_findings(trace)
    assert steps == 2 and adds > 100 and zeros > 100
    assert metrics["ops.optimizer_loop_ops_per_step"] == adds / steps
    assert metrics["ops.optimizer_multi_tensor_ops_per_step"] == 0
    assert metrics["ops.zero_grad_memsets_per_step"] == zeros / steps
    assert {"OPS005", "OPS006"} <= fired


def test_foreach_sgd_of_a_real_v100_trace_is_quiet() -> None:
    trace = _gz("ops_v100_sgd_foreach_2steps.json.gz")
    steps = _raw_steps(trace)
    foreach = _raw_within(trace, "Optimizer.step#", "aten::_foreach_add_")
    foreach += _raw_within(trace, "Optimizer.step#", "aten::_foreach_mul_")
    metrics, fired = _metrics_and_findings(trace)
    assert foreach > 0
    assert metrics["ops.optimizer_multi_tensor_ops_per_step"] == foreach / steps
    assert metrics["ops.optimizer_loop_ops_per_step"] == 0
    assert metrics["ops.zero_grad_memsets_per_step"] == 0
    assert not fired & {"OPS005", "OPS006"}


# Optimizer facts (environment.optimizers) -----------------------------------------------------


def test_each_optimizer_is_described_once_when_built(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from perfscope.events import event_files, read_events
    from perfscope.runtime import session as sessions
    from perfscope.runtime import torch_hooks
    from perfscope.runtime.session import ProcessSession

    torch_hooks.install(torch)  # idempotent: the process-wide hooks
    session = ProcessSession(tmp_path, origin="test")
    sessions.activate(session)
    params = list(torch.nn.Linear(4, 4).parameters())
    try:
        torch.optim.Adam(params)  # on the CPU, foreach=None means the for-loop
        torch.optim.AdamW(params, foreach=True)
        torch.optim.SGD(params, lr=0.1, fused=True)
        torch.optim.SGD(params, lr=0.1, foreach=False)
        torch.optim.LBFGS(params)  # no foreach/fused options
    finally:
        sessions.deactivate(session)
        session.close()
    (path,) = event_files(tmp_path)
    facts = [e for e in read_events(path) if e["k"] == "optimizer"]
    assert [(f["class"], f["implementation"]) for f in facts] == [
        ("Adam", "for-loop"),
        ("AdamW", "foreach"),
        ("SGD", "fused"),
        ("SGD", "for-loop"),
        ("LBFGS", None),
    ]
    assert facts[0]["params"] == 2 and facts[0]["devices"] == ["cpu"]
    assert facts[0]["foreach"] is None and facts[1]["foreach"] is True


def optimizer_record() -> Record:
    """A record with two optimizers, one a for-loop, for the metrics doc test."""
    optimizers = [{"class": "Adam", "implementation": "for-loop"}, {"class": "SGD"}]
    return Record({}, {"optimizers": optimizers}, {}, [], {})


def test_optimizer_metrics() -> None:
    from perfscope.analysis.optimizers import optimizer_metrics

    assert optimizer_metrics(optimizer_record()) == {"optim.count": 2, "optim.for_loop_count": 1}
    assert optimizer_metrics(Record({}, {}, {}, [], {})) == {}


def test_convolutions_per_step_and_fixed_shapes_on_a_real_v100_trace() -> None:
    import gzip
    import json

    path = (
        Path(__file__).parents[1] / "fixtures" / "traces" / "kineto_v100_1gpu_train_5steps.json.gz"
    )
    trace = json.loads(gzip.decompress(path.read_bytes()))
    events = trace["traceEvents"]
    # Independently: every aten::convolution event, over the ProfilerStep spans.
    convs = sum(1 for e in events if e.get("ph") == "X" and e.get("name") == "aten::convolution")
    steps = sum(1 for e in events if str(e.get("name", "")).startswith("ProfilerStep#"))

    summary = summarize_trace(trace)

    assert (convs, steps) == (265, 5)
    assert summary["per_step"]["convolutions"] == [convs // steps] * steps
    assert summary["conv_shapes_fixed"] is True
