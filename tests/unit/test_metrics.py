"""Metrics from a record, and docs/metrics.md kept in step with them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from perfscope.analysis.metrics import compute_metrics, data_metrics, host_metrics, percentile
from perfscope.record import Record

METRICS_DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"

DURATIONS_MS = [100.0, 200.0, 300.0, 400.0, 1000.0]
WAITS_MS = [50.0, 0.0, 30.0, 20.0, 0.0]
# Steady steps of 10 ms with one 100 ms spike, after a slow first step: for the spike metrics.
SPIKY_MS = [500.0, 10.0, 10.0, 11.0, 9.0, 10.0, 100.0, 10.0, 10.0, 10.0, 10.0]


def doc_table() -> dict[str, tuple[str, str]]:
    """name -> (unit, meaning) from the markdown table of docs/metrics.md."""
    rows: dict[str, tuple[str, str]] = {}
    for line in METRICS_DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and (found := re.fullmatch(r"`([a-z0-9_.]+)`", cells[0])):
            assert found.group(1) not in rows, f"{found.group(1)} listed twice"
            rows[found.group(1)] = (cells[1], " | ".join(cells[2:]))
    return rows


def full_record(**run: Any) -> Record:
    """A record with every field the metrics read populated."""
    steps = [
        {"index": i, "start_s": 1.0 + i, "duration_ms": d, "data_wait_ms": w}
        for i, (d, w) in enumerate(zip(DURATIONS_MS, WAITS_MS, strict=True))
    ]
    host = {
        "ts": [1.5, 2.5, 3.5, 4.5],  # seconds since the run's start, inside the steps' span
        "cpu_frac": [0.2, 0.4, 0.6, 0.8],
        "rss_mb": [100.0, 102.0, 104.0, 106.0],
        "avail_mb": [9000.0, 8900.0, 8800.0, 8950.0],
    }
    return Record(
        run={"exit": "ok", "exit_code": 0, "duration_s": 10.0, "time_to_first_step_s": 1.0, **run},
        environment={
            "torch": {
                "version": "2.13.0+cpu",
                "cuda": None,
                "cuda_available": False,
                "threads": 4,
                "cudnn_benchmark": False,
                "cudnn_allow_tf32": True,
                "float32_matmul_precision": "highest",
            },
            "dataloaders": [
                {"num_workers": 2, "pin_memory": True, "first_batch_ms": 12.5},
                {"num_workers": 0, "pin_memory": False, "first_batch_ms": 1.0},
            ],
        },
        collectors={
            "host": {"status": "ok", "reason": None, "interval_s": 0.2, "overhead_s": 0.4},
            "steps": {"status": "ok", "reason": None, "method": "optimizer", "overhead_s": 0.1},
        },
        steps=steps,
        samples={"host": host},
    )


def spiky_record() -> Record:
    """Steady 10 ms steps with one 100 ms spike, after a slow first step."""
    steps = [
        {"index": i, "start_s": 1.0 + i / 10, "duration_ms": d, "data_wait_ms": 0.0}
        for i, d in enumerate(SPIKY_MS)
    ]
    return Record(
        run={"exit": "ok", "duration_s": 5.0},
        environment={},
        collectors={},
        steps=steps,
        samples={},
    )


def test_spike_metrics_leave_the_first_step_out() -> None:
    metrics = compute_metrics(spiky_record())

    later = SPIKY_MS[1:]
    assert metrics["steps.spikes_count"] == 1
    assert metrics["steps.spike_time_frac"] == pytest.approx(100.0 / sum(later))
    assert metrics["steps.spike_excess_ms_per_step"] == pytest.approx((100.0 - 10.0) / len(later))
    assert metrics["steps.spike_excess_ms_mean"] == pytest.approx(100.0 - 10.0)


def test_steady_steps_have_no_spikes() -> None:
    metrics = compute_metrics(full_record())  # too few steps to judge
    assert "steps.spikes_count" not in metrics
    assert metrics["host.torch_threads"] == 4


def area_records() -> list[Record]:
    """Records that populate the other collectors' data, built by their own unit tests."""
    import json

    from perfscope.analysis.pyspy import speedscope_table
    from tests.unit import (
        test_allocator,
        test_gpu_collector,
        test_host_collector,
        test_ops_analysis,
        test_pyspy_analysis,
    )

    host = test_host_collector.host_record(
        test_host_collector.FULL,
        cgroup_mem_limit_mb=1000.0,
        cpu_quota_cores=2.0,
        shm_total_mb=64.0,
        shm_free_mb=60.0,
    )
    gpu = test_gpu_collector._handbuilt_record(
        {
            "gpu": test_gpu_collector._handbuilt_gpu_collector([0]),
            "allocator": {"status": "ok", "cuda": True, "devices": [{"index": 0, "total_mb": 1e3}]},
        },
        {
            "gpu": test_gpu_collector.HANDBUILT_GPU_SAMPLES,
            "allocator": test_allocator.HANDBUILT_ALLOCATOR_SAMPLES,
        },
        test_gpu_collector.HANDBUILT_STEPS,
    )
    profile = json.loads(test_pyspy_analysis.RECORDED.read_text())
    table = speedscope_table(profile, perfscope_root=test_pyspy_analysis.RECORDED_ROOT)
    ops = test_ops_analysis._record(
        test_ops_analysis.summarize_trace(test_ops_analysis.gpu_step_trace())
    )
    from tests.unit.test_failure_and_facts import BUS_ERROR, CUDA_OOM

    oom = full_record(exit="oom", exception={"type": "torch.OutOfMemoryError", "message": CUDA_OOM})
    bus = full_record(exit="error", exception={"type": "RuntimeError", "message": BUS_ERROR})
    from tests.unit.test_gpu_analysis import handbuilt_trace_record
    from tests.unit.test_inference_probe import autograd_record
    from tests.unit.test_ranks import ranks_record

    return [
        host, gpu, test_pyspy_analysis.record_with(table), ops, spiky_record(), oom, bus,
        autograd_record(), ranks_record(), test_allocator.growing_device_record(4.0),
        test_ops_analysis._record(
            test_ops_analysis.summarize_trace(
                test_ops_analysis.load_trace("kineto_v100_1gpu_train_5steps")
            )
        ),
        handbuilt_trace_record(), test_ops_analysis.optimizer_record(),
    ]  # fmt: skip


def test_the_doc_lists_exactly_the_metrics_the_code_emits() -> None:
    # GIVEN records in which every field the metrics read is populated
    emitted = set(compute_metrics(full_record()))
    for record in area_records():
        emitted |= set(compute_metrics(record))

    # WHEN
    documented = set(doc_table())

    # THEN
    assert emitted - documented == set(), "emitted but not in docs/metrics.md"
    assert documented - emitted == set(), "in docs/metrics.md but never emitted"


def test_every_documented_metric_has_a_unit_and_a_meaning() -> None:
    rows = doc_table()

    assert rows
    for name, (unit, meaning) in rows.items():
        assert unit and meaning, name


def test_an_empty_run_emits_only_documented_metrics_and_no_nulls() -> None:
    record = Record(
        run={"exit": "killed", "duration_s": 0.0},
        environment={},
        collectors={},
        steps=[],
        samples={},
    )

    metrics = compute_metrics(record)

    assert set(metrics) <= set(doc_table())
    assert metrics == {"run.duration_s": 0.0, "run.failed": 1.0, "run.oom": 0.0, "steps.count": 0.0}


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([3.0, 1.0, 2.0, 4.0], 50, 2.5),
        ([10.0, 20.0, 30.0, 40.0, 50.0], 90, 46.0),
        ([10.0, 20.0, 30.0, 40.0, 50.0], 50, 30.0),
        ([10.0, 20.0, 30.0, 40.0, 50.0], 0, 10.0),
        ([10.0, 20.0, 30.0, 40.0, 50.0], 100, 50.0),
        ([7.0], 90, 7.0),
    ],
)
def test_percentile_interpolates_linearly(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def test_step_metrics() -> None:
    metrics = compute_metrics(full_record())

    assert metrics["steps.count"] == 5
    assert metrics["steps.time_ms_p50"] == pytest.approx(300.0)
    assert metrics["steps.time_ms_p90"] == pytest.approx(760.0)  # 400 + 0.6 * (1000 - 400)
    assert metrics["steps.time_ms_max"] == 1000.0
    assert metrics["steps.time_ms_mean"] == pytest.approx(400.0)
    assert metrics["steps.throughput_per_s"] == pytest.approx(5 / 2.0)  # 5 steps in 2 s


def test_data_wait_frac_is_total_wait_over_total_step_time() -> None:
    metrics = compute_metrics(full_record())

    # 100 ms over 2000 ms; the mean of per-step shares would be 0.135 instead.
    assert metrics["data.wait_frac"] == pytest.approx(sum(WAITS_MS) / sum(DURATIONS_MS))
    assert metrics["data.wait_frac"] == pytest.approx(0.05)
    assert metrics["data.wait_ms_p50"] == pytest.approx(20.0)
    assert metrics["data.wait_ms_per_step"] == pytest.approx(20.0)


def test_dataloader_metrics_come_from_the_first_loader() -> None:
    metrics = compute_metrics(full_record())

    assert (metrics["data.num_workers"], metrics["data.pin_memory"]) == (2.0, 1.0)
    assert metrics["data.first_batch_ms"] == 12.5


def test_host_metrics() -> None:
    metrics = compute_metrics(full_record())

    assert metrics["cpu.util_frac"] == pytest.approx(0.5)
    assert metrics["cpu.util_frac_p90"] == pytest.approx(0.74)
    assert metrics["mem.host_rss_peak_mb"] == 106.0
    assert metrics["mem.host_available_min_mb"] == 8800.0
    # RSS climbs 2 MiB/s; the steps span 1.0 s to the end of the last one, over len(steps) steps
    end = 1.0 + (len(DURATIONS_MS) - 1) + DURATIONS_MS[-1] / 1e3
    assert metrics["mem.host_growth_mb_per_step"] == pytest.approx(
        2.0 * (end - 1.0) / len(DURATIONS_MS)
    )


def test_run_and_overhead_metrics() -> None:
    ok = compute_metrics(full_record())
    oom = compute_metrics(full_record(exit="oom", exit_code=1))

    assert (ok["run.failed"], ok["run.oom"]) == (0.0, 0.0)
    assert (oom["run.failed"], oom["run.oom"]) == (1.0, 1.0)
    assert ok["run.duration_s"] == 10.0
    assert ok["run.time_to_first_step_s"] == 1.0
    assert ok["overhead.frac"] == pytest.approx(0.5 / 10.0)


def test_data_wait_leaves_out_the_steps_with_a_loaders_first_fetch() -> None:
    # GIVEN a 1 s first batch (worker start-up) and then 1 ms waits in 10 ms steps
    steps = [{"index": 0, "start_s": 0.0, "duration_ms": 1010.0, "data_wait_ms": 1000.0}]
    steps[0]["first_batch"] = True
    steps += [
        {"index": i, "start_s": 1.0 + i / 100, "duration_ms": 10.0, "data_wait_ms": 1.0}
        for i in range(1, 11)
    ]

    metrics = data_metrics(steps, {})

    # THEN the steady share is 10%, not the 91% the start-up would make it
    assert metrics["data.wait_frac"] == pytest.approx(0.1)
    assert metrics["data.wait_ms_per_step"] == pytest.approx(1.0)


def test_data_wait_keeps_a_lone_first_batch_step() -> None:
    steps = [{"index": 0, "start_s": 0.0, "duration_ms": 20.0, "data_wait_ms": 5.0}]
    steps[0]["first_batch"] = True

    assert data_metrics(steps, {})["data.wait_frac"] == pytest.approx(0.25)


def test_host_growth_ignores_the_jump_of_forked_workers_rss() -> None:
    # GIVEN (as seen in a real run) workers forked in the first step: the tree's RSS jumps by the
    # pages they share with the main process, whose own RSS stays flat
    steps = [
        {"index": i, "start_s": 1.9 + i * 0.08, "duration_ms": 80.0, "data_wait_ms": 0.0}
        for i in range(30)
    ]
    ts = [2.04, 2.44, 2.86, 3.26, 3.46, 3.86, 4.26]
    main = [361.5, 361.5, 361.5, 361.5, 375.1, 375.1, 375.4]
    workers = [502.0, 502.0, 502.0, 502.0, 558.6, 559.0, 558.8]
    host = {
        "ts": ts,
        "cpu_frac": [0.5] * 7,
        "rss_mb": [m + w for m, w in zip(main, workers, strict=True)],
        "rss_main_mb": main,
        "avail_mb": [9000.0] * 7,
    }

    tree_only = {k: v for k, v in host.items() if k != "rss_main_mb"}

    # THEN the main process's growth is small; the tree's would have read ~3.5 MiB/step
    assert host_metrics(host, steps)["mem.host_growth_mb_per_step"] < 1.0  # MEM002 fires at 2
    assert host_metrics(tree_only, steps)["mem.host_growth_mb_per_step"] > 2.0
