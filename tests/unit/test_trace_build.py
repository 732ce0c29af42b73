"""The record `perfscope analyze` builds from one trace: the shape of a live run's record, with
what a trace cannot tell marked as such."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from perfscope.record import Record
from perfscope.traceimport.build import OPS_WINDOW_STEPS, analyze_path

FIXTURES = Path(__file__).parents[1] / "fixtures" / "traces"
V100 = FIXTURES / "kineto_v100_1gpu_train_5steps.json.gz"
MI250 = FIXTURES / "kineto_mi250_rocm_toy_train_3steps.json.gz"


@pytest.fixture(scope="module")
def v100() -> Record:
    return analyze_path(V100)


def test_the_record_says_it_came_from_a_trace(v100: Record) -> None:
    assert v100.run["mode"] == "analyze"
    assert v100.run["trace"] == str(V100)
    assert v100.run["exit"] == "ok"
    assert v100.run["step_method"] == "profiler_step"
    for name in ("host", "gpu", "pyspy", "allocator"):
        assert v100.collectors[name]["status"] == "unavailable"
        assert "trace" in v100.collectors[name]["reason"]
    assert v100.collectors["trace"]["platform"] == "cuda"


def test_steps_count_from_the_first_host_event(v100: Record) -> None:
    events = json.loads(gzip.decompress(V100.read_bytes()))["traceEvents"]
    cats = {"cpu_op", "user_annotation", "cuda_runtime", "cuda_driver", "python_function"}
    host = [e for e in events if e.get("ph") == "X" and e.get("cat") in cats]
    marks = sorted(e["ts"] for e in events if str(e.get("name")).startswith("ProfilerStep#"))
    first = min(e["ts"] for e in host)

    assert [s["start_s"] for s in v100.steps] == [round((t - first) / 1e6, 6) for t in marks]
    assert [s["profiler_step"] for s in v100.steps] == [101, 102, 103, 104, 105]


def test_the_op_window_skips_the_first_step(v100: Record) -> None:
    # 5 steps: the window is steps 2-5 (the first pays warm-up), at most OPS_WINDOW_STEPS
    assert v100.collectors["ops"]["window"] == [102, 105]
    assert v100.samples["ops"]["steps"] == min(4, OPS_WINDOW_STEPS)
    assert v100.samples["ops"]["per_step"]["step"] == [102, 103, 104, 105]


def test_the_environment_comes_from_device_properties_and_distributed_info(v100: Record) -> None:
    assert v100.environment["gpu"] == {
        "name": "Tesla V100-SXM2-32GB",
        "compute_capability": "7.0",
        "memory_total_mb": round(34079637504 / 2**20, 1),
        "sms": 80,
        "platform": "cuda",
    }
    assert v100.environment["distributed"]["world_size"] == 1


def test_a_trace_without_distributed_info_has_none() -> None:
    record = analyze_path(MI250)

    assert record.environment["distributed"] is None
    assert record.environment["gpu"]["platform"] == "rocm"
