"""`perfscope run` with the GPU (NVML) and allocator collectors, as they really behave on this
machine: without a GPU, `collectors.gpu` says why, and the allocator records host RSS per step."""

from __future__ import annotations

from pathlib import Path

import pynvml
import pytest
import torch

from perfscope.collectors.gpu import LIBRARY_NOT_FOUND, explain_init_error
from tests.conftest import run_perfscope
from tests.unit.test_gpu_collector import _real_nvml_failure

GROWING_SCRIPT = """
import time

import torch

import perfscope

kept = []
for step in range({steps}):
    kept.append(torch.ones(2 * 2**20))  # 8 MiB each step, written, so resident, and kept
    time.sleep(0.1)
    perfscope.step()
print("kept", len(kept))
"""


def test_gpu_collector_is_unavailable_with_the_real_reason(workload: str, tmp_path: Path):
    failure = _real_nvml_failure()
    if failure is None:
        pytest.skip("NVML works on this machine")
    # WHEN a real run happens on a machine where NVML cannot start
    result = run_perfscope(["run", workload, "--steps", "3"], cwd=tmp_path, run_dir=tmp_path / "r")
    # THEN the run goes on, and the record says why the GPU was not measured
    assert result.returncode == 0
    gpu = result.record["collectors"]["gpu"]
    assert gpu["status"] == "unavailable"
    assert gpu["reason"] == explain_init_error(failure)
    if isinstance(failure, pynvml.NVMLError_LibraryNotFound):
        assert gpu["reason"] == LIBRARY_NOT_FOUND
    assert "gpu" not in result.record["samples"]
    assert not any(name.startswith("gpu.") for name in result.record["metrics"])


def test_allocator_records_host_rss_growing_step_after_step(tmp_path: Path):
    # GIVEN a script that allocates 8 MiB a step for 24 steps and keeps every tensor
    script = tmp_path / "grow.py"
    script.write_text(GROWING_SCRIPT.format(steps=24))
    # WHEN it runs under perfscope
    result = run_perfscope(["run", str(script)], cwd=tmp_path, run_dir=tmp_path / "r")
    assert result.returncode == 0, result.stderr.decode()
    record = result.record
    # THEN samples.allocator holds the process's RSS, sampled on steps at most every 0.5 s
    allocator = record["collectors"]["allocator"]
    assert allocator["status"] == "ok"
    assert allocator["interval_s"] == 0.5
    series = record["samples"]["allocator"]
    rss, ts = series["host_rss_mb"], series["ts"]
    assert len(rss) == len(ts) == allocator["points"]
    assert 3 <= len(rss) <= 24 + 1  # never more than one a step, plus the last at exit
    assert ts == sorted(ts) and ts[0] >= 0
    # and it grows by about what the script kept (23 x 8 MiB between the first and last points)
    assert rss[-1] - rss[0] > 100
    assert not (tmp_path / "r" / "memory_snapshot.pickle").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU-only path")
def test_allocator_says_cuda_is_missing_in_a_cpu_run(workload: str, tmp_path: Path):
    result = run_perfscope(["run", workload, "--steps", "5"], cwd=tmp_path, run_dir=tmp_path / "r")
    allocator = result.record["collectors"]["allocator"]
    assert allocator["status"] == "ok"
    assert allocator["cuda"] is False
    assert "CUDA is not available" in allocator["reason"]
    assert set(result.record["samples"]["allocator"]) == {"ts", "host_rss_mb"}


def test_allocator_reports_after_a_cpu_oom_ends_the_run(workload: str, tmp_path: Path):
    # GIVEN a run that dies of torch's CPU out-of-memory error at step 3
    args = ["run", workload, "--steps", "6", "--cpu-oom-at", "3"]
    result = run_perfscope(args, cwd=tmp_path, run_dir=tmp_path / "r")
    record = result.record
    assert record["run"]["exit"] == "oom"
    # THEN the allocator still closed and reported (its closer ran after the uncaught error),
    # and no CUDA snapshot was written for a CPU OOM
    allocator = record["collectors"]["allocator"]
    assert allocator["status"] == "ok"
    assert allocator["points"] >= 2  # the first step, and the last point at exit
    assert not (tmp_path / "r" / "memory_snapshot.pickle").exists()
