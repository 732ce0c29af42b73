"""examples/ci/: the shell recipe run for real (its exit codes), and the GitHub workflow parsed
and checked to run that same recipe."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PERFSCOPE, child_env

REPO = Path(__file__).resolve().parents[2]
CI = REPO / "examples" / "ci"
GATE = CI / "gate.sh"
SCENARIO = str(REPO / "tests" / "scenarios" / "scenario.py")


def gate(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(GATE), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=child_env(PERFSCOPE=PERFSCOPE, **env),
        timeout=300,
    )


@pytest.mark.slow
def test_the_recipe_as_shipped_profiles_the_demo_and_passes(tmp_path: Path) -> None:
    # GIVEN no arguments: examples/train_cnn.py under examples/ci/perfscope.toml's budgets
    # WHEN the recipe runs
    result = gate(tmp_path)
    # THEN the run directory has a record and a report, and every budget passed
    assert result.returncode == 0, result.stdout + result.stderr
    run_dir = tmp_path / "perfscope-runs" / "ci"
    assert (run_dir / "record.json").is_file() and (run_dir / "report.html").is_file()
    assert "PASS  steps.time_ms_p50 <= 500" in result.stdout
    assert "PASS  gpu.util_frac >= 0.6" in result.stdout  # optional: skipped without a GPU
    assert result.stdout.rstrip().endswith("(exit 0)")


@pytest.mark.slow
def test_the_recipe_fails_on_a_budget_and_a_regression(tmp_path: Path) -> None:
    # GIVEN a baseline run of 10 ms steps, and budgets that the next run breaks
    fast = ["--steps", "30", "--step-ms", "10"]
    assert gate(tmp_path, SCENARIO, *fast, RUN_DIR="base").returncode == 0
    tight = tmp_path / "tight.toml"
    tight.write_text('[check]\n"steps.time_ms_p50" = { max = 5 }\n')
    # WHEN a run of 20 ms steps is gated against both, in GitHub's format
    summary = tmp_path / "summary.md"
    result = gate(
        tmp_path,
        SCENARIO,
        "--steps", "30", "--step-ms", "20",
        RUN_DIR="new", CONFIG=str(tight), BASELINE="base", FORMAT="github",
        GITHUB_STEP_SUMMARY=str(summary),
    )  # fmt: skip
    # THEN it exits 1 with an annotation for the budget and one for the regression
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 2, result.stdout
    assert "steps.time_ms_p50 <= 5" in errors[0] and "regressed" in errors[1]
    assert "### perfscope check: ❌ fail" in summary.read_text()


@pytest.mark.slow
def test_the_recipe_exits_2_on_a_bad_config_and_3_when_inconclusive(tmp_path: Path) -> None:
    short = [SCENARIO, "--steps", "6", "--step-ms", "5"]
    typo = tmp_path / "typo.toml"
    typo.write_text('[check]\n"steps.time_ms_p5" = { max = 100 }\n')
    result = gate(tmp_path, *short, CONFIG=str(typo))
    assert result.returncode == 2
    assert "did you mean steps.time_ms_p50" in result.stderr
    # Six steps leave one after warm-up: too few to compare, which --strict refuses to pass
    loose = tmp_path / "loose.toml"
    loose.write_text("[check]\n")
    ok = gate(tmp_path, *short, CONFIG=str(loose), RUN_DIR="a")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    strict = gate(tmp_path, *short, CONFIG=str(loose), BASELINE="a", STRICT="1")
    assert strict.returncode == 3, strict.stdout + strict.stderr
    assert "too few steps" in strict.stdout


def test_a_script_that_crashes_fails_the_gate(tmp_path: Path) -> None:
    crash = tmp_path / "crash.py"
    crash.write_text("raise SystemExit('the training diverged')\n")
    result = gate(tmp_path, str(crash), CONFIG=str(CI / "perfscope.toml"))
    assert result.returncode == 1
    assert "FAIL  run ended ok: the run ended error, exit code 1" in result.stdout


def load_workflow() -> dict:
    try:
        import yaml
    except ModuleNotFoundError:
        if os.environ.get("CI"):
            pytest.fail("PyYAML is missing: it is a dev dependency (pip install -e '.[dev]')")
        pytest.skip("PyYAML is not installed")
    return yaml.safe_load((CI / "perfscope.yml").read_text())


def test_the_workflow_runs_the_recipe_with_github_output() -> None:
    workflow = load_workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"pull_request", "push"}
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    runs = [step for step in steps if "run" in step]
    gated = [step for step in runs if "examples/ci/gate.sh" in step["run"]]
    assert len(gated) == 1, "the workflow must run the shell recipe, the commands it tests"
    assert gated[0]["env"]["FORMAT"] == "github"
    assert gated[0]["env"]["RUN_DIR"] == "perfscope-runs/ci"
    assert "BASELINE=perfscope-baseline" in gated[0]["run"]
    assert any("pip install" in step["run"] and "perfscope" in step["run"] for step in runs)
    uses = [step["uses"].split("@")[0] for step in steps if "uses" in step]
    assert uses[:2] == ["actions/checkout", "actions/setup-python"]
    assert "actions/upload-artifact" in uses
    restored = next(s for s in steps if s.get("uses", "").startswith("actions/cache/restore"))
    saved = next(s for s in steps if s.get("uses", "").startswith("actions/cache/save"))
    assert restored["with"]["path"] == saved["with"]["path"] == "perfscope-baseline"


def test_the_recipe_runs_perfscope_run_then_check() -> None:
    commands = [
        line.split()[1]
        for line in GATE.read_text().splitlines()
        if line.strip().startswith(('"$perfscope"', 'exec "$perfscope"'))
        for line in [line.strip().removeprefix("exec ")]
    ]
    assert commands == ["run", "check"]
