"""UTIL001-004 fire and stay quiet on real Kineto traces from V100, A100 and MI250 jobs and on a
CPU-only one (tests/fixtures/traces/kineto_README.md), through the same pipeline as a live run.

The values seen on each trace (gpu.* metrics, over the steps after the first) sit far from the
thresholds; the comment of each case gives them.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest

from perfscope.pipeline import diagnose
from perfscope.record import Record
from perfscope.rules.engine import evaluate
from perfscope.rules.loader import load_rules
from perfscope.traceimport.build import analyze_path

FIXTURES = Path(__file__).parents[1] / "fixtures" / "traces"
TRACES = {
    "v100": "kineto_v100_1gpu_train_5steps.json.gz",
    "a100_nccl": "kineto_a100_rank0_of2_nccl_3steps.json.gz",
    "a100_16": "kineto_a100_rank0_of16_5steps.json.gz",
    "mi250": "kineto_mi250_rocm_toy_train_3steps.json.gz",
    "cpu": "kineto_cpu_only_gloo_rank34_of300.json.gz",
    "alexnet": "kineto_a100_alexnet_nosteps.json.gz",
    "sampled": "kineto_sampled_rank0_of128.json.gz",
}


@functools.cache
def diagnosed(name: str) -> Record:
    return diagnose(analyze_path(FIXTURES / TRACES[name]))


def finding(name: str, rule_id: str) -> dict[str, Any] | None:
    return next((f for f in diagnosed(name).findings if f["id"] == rule_id), None)


def assert_fires(name: str, rule_id: str) -> dict[str, Any]:
    found = finding(name, rule_id)
    record = diagnosed(name)
    assert found is not None, (rule_id, record.metrics, [f["id"] for f in record.findings])
    assert found["class"] == "utilization"
    assert re.search(r"\d", found["evidence"]), found["evidence"]  # quotes the trace's numbers
    assert found["title"] and found["fix"] and found["snippet"]
    return found


def assert_quiet(name: str, rule_id: str) -> None:
    assert finding(name, rule_id) is None, (rule_id, diagnosed(name).metrics)


# UTIL001: A100 rank 0 of 16: compute kernels 0.21 of the step, host-caused idle 0.04: fires.
# V100 (compute 0.97), A100 NCCL (host-bound: idle_host 0.74, UTIL004's case), CPU: quiet.
@pytest.mark.slow
def test_gpu_underused_fires_on_a_lightly_loaded_a100() -> None:
    found = assert_fires("a100_16", "UTIL001")
    assert "batch" in found["fix"]
    assert "not known" in found["evidence"]  # the trace holds no memory events


@pytest.mark.parametrize("name", ["v100", "a100_nccl", "cpu"])
def test_gpu_underused_stays_quiet(name: str) -> None:
    assert_quiet(name, "UTIL001")


# UTIL002: MI250 toy: 7 kernels of 7.9 us per step, launch calls 98% of launch + kernel time,
# busy 0.01: fires, with HIP graphs. V100 (108 us kernels), A100 NCCL (60 us), CPU: quiet.
def test_launch_bound_fires_on_tiny_rocm_kernels() -> None:
    found = assert_fires("mi250", "UTIL002")
    assert "HIP graph" in found["fix"]
    assert "torch.compile" in found["fix"]


@pytest.mark.parametrize("name", ["v100", "a100_nccl", "cpu"])
def test_launch_bound_stays_quiet(name: str) -> None:
    assert_quiet(name, "UTIL002")


# UTIL003: V100 FP32 ResNet: matmuls 0.64 of kernel time, 0 on tensor cores: fires with fp16
# AMP (Volta has no bf16/TF32). A100 AlexNet: 0.23 on tensor cores: fires with TF32/bf16.
# A100 NCCL (0.94 tensor-core TF32), MI250 (MFMA), CPU: quiet.
def test_no_tensor_cores_on_volta_advises_fp16_amp() -> None:
    found = assert_fires("v100", "UTIL003")
    assert "float16" in found["fix"] and "GradScaler" in found["snippet"]
    assert "set_float32_matmul_precision" not in found["snippet"]
    assert "bfloat16" not in found["snippet"]
    assert found["est_saving_ms_per_step"] > 0


def test_no_tensor_cores_on_ampere_advises_tf32_or_bf16() -> None:
    found = assert_fires("alexnet", "UTIL003")
    assert "TF32" in found["fix"] and "set_float32_matmul_precision" in found["snippet"]
    assert "GradScaler" not in found["snippet"]


@pytest.mark.parametrize("name", ["a100_nccl", "mi250", "cpu"])
def test_no_tensor_cores_stays_quiet(name: str) -> None:
    assert_quiet(name, "UTIL003")


# UTIL004: A100 NCCL (idle_host 0.74), sampled rank 0 of 128 (0.30), MI250 (0.87 + 0.04 after
# syncs): fire. V100 (0.01), A100 of 16 (0.04), CPU: quiet.
@pytest.mark.parametrize("name", ["a100_nccl", "sampled", "mi250"])
def test_host_bound_gpu_idle_fires(name: str) -> None:
    found = assert_fires(name, "UTIL004")
    assert found["est_saving_ms_per_step"] > 0


def test_host_bound_gpu_idle_names_the_syncs_it_saw() -> None:
    found = assert_fires("a100_nccl", "UTIL004")
    assert "synchronizes with the device" in found["evidence"]
    assert ".item()" in found["fix"]


@pytest.mark.parametrize("name", ["v100", "cpu"])
def test_host_bound_gpu_idle_stays_quiet(name: str) -> None:
    assert_quiet(name, "UTIL004")


@pytest.mark.slow
def test_host_bound_gpu_idle_stays_quiet_on_a_lightly_loaded_a100() -> None:
    assert_quiet("a100_16", "UTIL004")


def test_cpu_only_trace_gets_no_gpu_advice() -> None:
    record = diagnosed("cpu")

    assert not [f for f in record.findings if f["class"] == "utilization"]
    text = " ".join(f["fix"] + f["snippet"] for f in record.findings)
    assert "CUDA" not in text and "cuda" not in text


def test_gpu_underused_fires_on_low_nvml_utilization_fake_nvml() -> None:
    # A live run's NVML metrics (no GPU here: the values stand for what NVML would report)
    rule = next(r for r in load_rules() if r.id == "UTIL001")
    base = {"steps.count": 50.0, "steps.time_ms_mean": 40.0, "gpu.mem_used_peak_frac": 0.3}

    low = evaluate([rule], {**base, "gpu.util_frac": 0.2}, {})
    high = evaluate([rule], {**base, "gpu.util_frac": 0.9}, {})
    full = evaluate([rule], {**base, "gpu.util_frac": 0.2, "gpu.mem_used_peak_frac": 0.9}, {})

    assert [f["id"] for f in low] == ["UTIL001"]
    assert "NVML saw a kernel running 20.0%" in low[0]["evidence"]
    assert high == [] and full == []
