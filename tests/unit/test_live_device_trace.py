"""A live GPU run's op-trace window gets `perfscope analyze`'s device analysis.

No GPU here: a real V100 Kineto trace stands in for the window's `trace.json.gz` (what the
profiler writes on a GPU is the same format); the ops collector's entry is what a GPU run records.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from perfscope.analysis.gpu import trace_gpu_metrics
from perfscope.pipeline import _analyze_device_trace
from perfscope.record import Record

V100 = Path(__file__).parents[1] / "fixtures" / "traces" / "kineto_v100_1gpu_train_5steps.json.gz"


def window(tmp_path: Path, device: bool = True) -> tuple[dict, dict, dict]:
    collectors = {"ops": {"status": "ok", "trace": "trace.json.gz"}}
    return collectors, {"ops": {"device": device}}, {}


def test_a_gpu_window_trace_feeds_the_gpu_trace_metrics_v100_trace_as_window(
    tmp_path: Path,
) -> None:
    shutil.copy(V100, tmp_path / "trace.json.gz")
    collectors, samples, environment = window(tmp_path)

    _analyze_device_trace(tmp_path, collectors, samples, environment)
    record = Record({}, environment, collectors, [], samples)
    metrics = trace_gpu_metrics(record)

    assert collectors["trace"]["status"] == "ok" and samples["trace"]["device"]
    assert "V100" in environment["gpu"]["name"]
    assert 0 < metrics["gpu.busy_frac"] <= 1 and metrics["gpu.compute_capability"] == 7.0


def test_a_cpu_window_is_left_alone(tmp_path: Path) -> None:
    collectors, samples, environment = window(tmp_path, device=False)

    _analyze_device_trace(tmp_path, collectors, samples, environment)

    assert "trace" not in collectors and "trace" not in samples


def test_a_broken_window_trace_marks_the_collector_failed(tmp_path: Path) -> None:
    (tmp_path / "trace.json.gz").write_bytes(b"\x1f\x8b not really gzip")
    collectors, samples, environment = window(tmp_path)

    _analyze_device_trace(tmp_path, collectors, samples, environment)

    assert collectors["trace"]["status"] == "failed"
    assert (
        "trace.json.gz" in collectors["trace"]["reason"] or "gzip" in collectors["trace"]["reason"]
    )
