"""`perfscope check` on real runs: budgets, exit codes, CI formats, and the baseline verdict on
runs of the same script and of one made 25% slower."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from tests.conftest import run_perfscope

SCENARIO = str(Path(__file__).resolve().parents[1] / "scenarios" / "scenario.py")
# Steps of 50 ms of sleep plus ~2 ms of compute: sleep wake-up jitter under load is ~2 ms here,
# a few percent of a step; 65 ms makes the third run about 28% slower.
STEADY = ["--steps", "40", "--step-ms", "50"]
SLOWER = ["--steps", "40", "--step-ms", "65"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("check")
    made = {}
    for name, args in (("base", STEADY), ("same", STEADY), ("slower", SLOWER)):
        cmd = ["run", "-q", "--no-pyspy", "--no-trace", SCENARIO, *args]
        result = run_perfscope(cmd, cwd=folder, run_dir=folder / name)
        assert result.returncode == 0, result.stderr.decode()
        made[name] = folder / name
    return made


def check(args: list[str], cwd: Path, **env: str) -> tuple[int, str, str]:
    result = run_perfscope(["check", *args], cwd=cwd, env=env or None)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def baseline_check(runs: dict[str, Path], new: str) -> dict:
    code, out, err = check([str(runs[new]), "--baseline", str(runs["base"]), "--format", "json"],
                           runs["base"].parent)  # fmt: skip
    assert code in (0, 1), err
    payload = json.loads(out)
    return next(c for c in payload["checks"] if c["kind"] == "baseline")


@pytest.mark.slow
def test_two_runs_of_the_same_script_are_not_called_changed(runs: dict[str, Path]) -> None:
    baseline = baseline_check(runs, "same")
    assert baseline["verdict"] in ("unchanged", "inconclusive"), baseline
    assert baseline["change_low"] < 0.05 and baseline["change_high"] > -0.05, baseline


@pytest.mark.slow
def test_a_run_made_25_percent_slower_has_regressed(runs: dict[str, Path]) -> None:
    code, out, _ = check([str(runs["slower"]), "--baseline", str(runs["base"])], runs["base"])
    assert code == 1
    assert "FAIL  step time vs baseline: step time regressed by +" in out
    baseline = baseline_check(runs, "slower")
    assert baseline["verdict"] == "regressed"
    assert 0.15 < baseline["change"] < 0.45, baseline
    assert baseline["change_low"] > 0.05, baseline


@pytest.mark.slow
def test_budgets_pass_fail_and_a_missing_metric_says_why(runs: dict[str, Path]) -> None:
    run = str(runs["base"])
    code, out, _ = check([run, "--max", "steps.time_ms_p50=500"], runs["base"])
    assert code == 0 and "PASS  steps.time_ms_p50 <= 500" in out
    code, out, _ = check([run, "--max", "steps.time_ms_p50=10"], runs["base"])
    assert code == 1 and "is above the max 10" in out
    code, out, _ = check([run, "--max", "ops.syncs_per_step=0"], runs["base"])
    assert code == 1 and "the run has no ops.syncs_per_step: the ops collector was" in out
    code, out, _ = check([run, "--min", "gpu.util_frac=0.6", "--fail-on", "never"], runs["base"])
    assert code == 1 and "gpu collector was unavailable" in out


@pytest.mark.slow
def test_budgets_from_pyproject_and_an_unknown_metric(runs: dict[str, Path], tmp_path) -> None:
    # GIVEN a project whose pyproject.toml sets budgets, one optional
    (tmp_path / "pyproject.toml").write_text(
        "[tool.perfscope.check]\n"
        '"steps.time_ms_p50" = { max = 500 }\n'
        '"gpu.util_frac" = { min = 0.6, optional = true }\n'
    )
    # WHEN the run is checked from that folder
    code, out, _ = check([str(runs["base"])], tmp_path)
    # THEN both budgets pass, the optional one saying it was skipped
    assert code == 0, out
    assert "PASS  gpu.util_frac >= 0.6: skipped (optional)" in out
    # AND a misspelled metric is a usage error with a did-you-mean
    (tmp_path / "pyproject.toml").write_text('[tool.perfscope.check]\n"data.wait_fraq" = {max=1}\n')
    code, _, err = check([str(runs["base"])], tmp_path)
    assert code == 2
    assert err.startswith("perfscope: error: ") and "did you mean data.wait_frac" in err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_strict_exits_3_on_an_inconclusive_comparison(runs: dict[str, Path]) -> None:
    # 1000 warm-up steps leave none to compare: inconclusive, a pass unless --strict
    args = [str(runs["same"]), "--baseline", str(runs["base"]), "--warmup", "1000"]
    code, out, _ = check(args, runs["base"])
    assert code == 0 and "too few steps" in out
    code, out, _ = check([*args, "--strict"], runs["base"])
    assert code == 3 and out.rstrip().endswith("(exit 3)")


@pytest.mark.slow
def test_github_format_and_the_step_summary(runs: dict[str, Path], tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    args = [str(runs["base"]), "--max", "steps.time_ms_p50=10", "--format", "github"]
    code, out, _ = check(args, tmp_path, GITHUB_STEP_SUMMARY=str(summary))
    assert code == 1
    assert out.startswith("::error title=perfscope budget%3A steps.time_ms_p50 <= 10::")
    text = summary.read_text()
    assert text.startswith("earlier step\n### perfscope check: ❌ fail")
    assert "| ❌ | steps.time_ms_p50 <= 10 |" in text


@pytest.mark.slow
def test_junit_written_to_a_file(runs: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "perf.xml"
    args = [str(runs["slower"]), "--baseline", str(runs["base"]), "--max", "data.wait_frac=0.5"]
    code, out, _ = check([*args, "--format", "junit", "-o", str(target)], tmp_path)
    assert code == 1 and out == ""
    suite = ET.parse(target).getroot().find("testsuite")
    names = [case.get("name") for case in suite.iter("testcase")]
    assert "data.wait_frac <= 0.5" in names and "step time vs baseline" in names
    assert suite.get("failures") == "1"  # the regression; the budget passed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere"], "nowhere: no such run directory"),
        (["{run}", "--max", "steps.time_ms_p50"], "--max steps.time_ms_p50: expected METRIC=VALUE"),
        (["{run}", "--fail-on", "data-1"], "fail-on data-1: expected a severity"),
        (["{run}", "--format", "xml"], "Invalid value for '--format'"),
        (["{run}", "--config", "missing.toml"], "missing.toml: no such config file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    run = tmp_path / "r"
    run.mkdir()
    (run / "record.json").write_text(
        json.dumps({"schema_version": 1, "run": {"exit": "ok"}, "environment": {},
                    "collectors": {}, "steps": [], "samples": {}, "metrics": {}, "findings": []})
    )  # fmt: skip
    code, out, err = check([a.replace("{run}", str(run)) for a in args], tmp_path)
    assert code == 2 and out == ""
    assert err.startswith("perfscope: error: ") and message in err, err
    assert err.count("\n") == 1
