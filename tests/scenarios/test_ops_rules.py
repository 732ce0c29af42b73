"""The redundant-ops and inference rules on real runs of their example scripts: each fires with the
numbers the script was written to produce, and the healthy scripts raise none of them.

The counts asserted are those of the scripts' code (casts, gradients, factory calls per step), not
timings, so a busy machine does not change them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_perfscope

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
OWN_RULES = {"OPS003", "OPS004", "OPS005", "OPS006", "OPS007", "INF001"}


def run(tmp_path: Path, script: str, *args: str) -> dict[str, Any]:
    cmd = ["run", "-q", "--no-pyspy", str(EXAMPLES / script), *args]
    result = run_perfscope(cmd, cwd=tmp_path, run_dir=tmp_path / "r")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.record["collectors"]["ops"]["status"] == "ok"
    return result.record


def fired(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in record["findings"]}


@pytest.mark.slow
def test_repeated_casts(tmp_path: Path) -> None:
    record = run(tmp_path, "ops004_repeated_casts.py", "--steps", "20")
    metrics = record["metrics"]
    # x is cast to float64 once before the 6 blocks and again in each: 6 repeats a step
    assert metrics["ops.repeated_casts_per_step"] == 6
    found = fired(record)["OPS004"]
    assert found["est_saving_ms_per_step"] == round(metrics["ops.repeated_cast_ms_per_step"], 3)
    assert "6.0 times per step" in found["title"]
    assert 'autocast("cpu"' in found["fix"]  # a CPU run gets CPU advice


@pytest.mark.slow
def test_zero_grad_set_to_none_false(tmp_path: Path) -> None:
    record = run(tmp_path, "ops005_zero_grad_set_to_none_false.py", "--steps", "20")
    # 5 Linear layers: 10 gradients zeroed each step
    assert record["metrics"]["ops.zero_grad_memsets_per_step"] == 10
    assert "10 gradients" in fired(record)["OPS005"]["title"]


@pytest.mark.slow
def test_optimizer_for_loop(tmp_path: Path) -> None:
    record = run(tmp_path, "ops006_optimizer_for_loop.py", "--steps", "20")
    metrics = record["metrics"]
    # Adam's for-loop: several ops for each of the 40 parameter tensors, none multi-tensor
    assert metrics["ops.optimizer_loop_ops_per_step"] >= 4 * 40
    assert metrics["ops.optimizer_multi_tensor_ops_per_step"] == 0
    found = fired(record)["OPS006"]
    assert "fused=True" in found["snippet"] and "on CUDA" not in found["fix"]
    # AND the optimizer's settings, recorded when it was built, agree
    assert record["environment"]["optimizers"][0]["implementation"] == "for-loop"
    assert "settings of 1 of the run's 1 optimizer(s)" in found["evidence"]


@pytest.mark.slow
def test_constants_rebuilt(tmp_path: Path) -> None:
    record = run(tmp_path, "ops007_constants_each_step.py", "--steps", "20")
    # ones (the mask), arange (positions) and linspace (weights), each step
    assert record["metrics"]["ops.constant_builds_per_step"] == 3
    assert 'device="cuda"' not in fired(record)["OPS007"]["snippet"]


@pytest.mark.slow
def test_autograd_in_inference(tmp_path: Path) -> None:
    record = run(tmp_path, "inf001_autograd_in_inference.py", "--batches", "40")
    metrics = record["metrics"]
    assert metrics["autograd.backward_seen"] == 0 and metrics["autograd.graph_frac"] == 1
    assert record["environment"]["autograd"]["sampled_steps"] == 4
    assert "40 steps" in fired(record)["INF001"]["title"]


@pytest.mark.slow
def test_inference_mode_is_quiet(tmp_path: Path) -> None:
    record = run(tmp_path, "healthy_inference.py", "--batches", "40")
    assert record["metrics"]["autograd.graph_frac"] == 0
    assert not OWN_RULES & set(fired(record))


@pytest.mark.slow
def test_clean_training_is_quiet(tmp_path: Path) -> None:
    record = run(tmp_path, "ops_clean_training.py", "--steps", "20")
    metrics = record["metrics"]
    assert metrics["ops.optimizer_multi_tensor_ops_per_step"] >= 1  # the fused Adam
    assert metrics["autograd.backward_seen"] == 1
    assert not OWN_RULES & set(fired(record)), record["findings"]
