"""Steps are found without code changes, by the best method the run offers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SCRIPTS, run_perfscope


@pytest.mark.parametrize(
    "style, steps, method",
    [
        ("train", 12, "optimizer"),
        ("backward", 12, "backward"),
        ("explicit", 12, "explicit"),
        # An inference loop: DataLoader iterations; 64 batches exhaust the loader, whose final
        # StopIteration closes the last step.
        ("infer", 64, "dataloader"),
    ],
)
def test_method_and_step_count(workload: str, tmp_path: Path, style: str, steps: int, method: str):
    args = ["run", "-q", workload, "--style", style, "--steps", str(steps)]
    result = run_perfscope(args, cwd=tmp_path, run_dir=tmp_path / "r")
    record = result.record
    assert result.returncode == 0
    assert record["run"]["step_method"] == method
    assert len(record["steps"]) == steps
    assert record["metrics"]["steps.count"] == steps
    for step in record["steps"]:
        assert step["duration_ms"] > 0
        assert 0 <= step["data_wait_ms"] <= step["duration_ms"]


def test_explicit_steps_win_and_other_methods_are_noted(workload: str, tmp_path: Path):
    args = ["run", "-q", workload, "--style", "explicit"]
    record = run_perfscope(args, cwd=tmp_path, run_dir=tmp_path / "r").record
    assert record["run"]["step_methods_seen"][:3] == ["explicit", "optimizer", "backward"]


def test_step_times_follow_the_work_done(workload: str, tmp_path: Path):
    # Each step sleeps 30 ms after its batch arrives: step time must show it, data wait must not.
    args = ["run", "-q", workload, "--steps", "10", "--sleep-ms", "30"]
    record = run_perfscope(args, cwd=tmp_path, run_dir=tmp_path / "r").record
    metrics = record["metrics"]
    assert 30 <= metrics["steps.time_ms_p50"] < 200
    assert metrics["data.wait_frac"] < 0.10
    assert "DATA001" not in [f["id"] for f in record["findings"]]


def test_slow_data_loading_is_found_and_explained(tmp_path: Path):
    example = SCRIPTS.parent.parent / "examples" / "train_cnn.py"
    args = ["run", "-q", str(example), "--augment-ms", "2", "--samples", "320"]
    record = run_perfscope(args, cwd=tmp_path, run_dir=tmp_path / "r").record
    assert record["metrics"]["data.wait_frac"] > 0.3
    finding = next(f for f in record["findings"] if f["id"] == "DATA001")
    assert "num_workers=0" in finding["evidence"]
    assert "prefetch_factor" not in finding["fix"] + finding["snippet"]  # invalid with 0 workers
    assert finding["est_saving_ms_per_step"] > 0
    assert record["environment"]["dataloaders"][0]["num_workers"] == 0


def test_a_run_without_steps_says_how_to_mark_them(tmp_path: Path):
    script = tmp_path / "plain.py"
    script.write_text("print(sum(range(10)))\n")
    result = run_perfscope(["run", str(script)], cwd=tmp_path, run_dir=tmp_path / "r")
    record = result.record
    assert record["steps"] == [] and record["run"]["step_method"] is None
    assert b"No steps found" in result.stderr
    html = (tmp_path / "r" / "report.html").read_text()
    assert "No steps were found" in html and "perfscope.step()" in html
