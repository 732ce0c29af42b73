"""A non-editable install of the wheel carries the rules and templates and works from anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = out.glob("perfscope-*.whl")
    target = out / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    return target


def test_wheel_contains_rules_and_templates(installed: Path):
    names = {str(p.relative_to(installed)) for p in installed.rglob("*") if p.is_file()}
    assert "perfscope/_data/rules/data.toml" in names
    assert "perfscope/_data/templates/report.html" in names
    assert "perfscope/_data/rules/WRITING.md" in names
    assert "perfscope/_data/metrics.md" in names
    assert "perfscope/inject/sitecustomize.py" in names


def test_installed_copy_runs_from_another_directory(installed: Path, tmp_path: Path):
    # GIVEN the installed copy first on the path, and a working directory outside the repository
    env = {**os.environ, "PYTHONPATH": str(installed), "CI": "1", "OMP_NUM_THREADS": "1"}
    script = REPO / "tests" / "scripts" / "workload.py"
    # WHEN perfscope runs a script from there
    result = subprocess.run(
        [sys.executable, "-m", "perfscope", "run", "-o", "r", str(script), "--steps", "4"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # THEN it used its own packaged data and produced a record and a report
    assert result.returncode == 0, result.stderr
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import perfscope.paths as p; print(p.rules_dir(), p.templates_dir(), p.metrics_doc())",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split() == [
        str(installed / "perfscope" / "_data" / "rules"),
        str(installed / "perfscope" / "_data" / "templates"),
        str(installed / "perfscope" / "_data" / "metrics.md"),
    ]
    assert (tmp_path / "r" / "record.json").is_file() and (tmp_path / "r" / "report.html").is_file()
    assert "4 steps (optimizer)" in result.stderr
    # AND the CI gate knows the metric names from the packaged docs/metrics.md
    gate = subprocess.run(
        [sys.executable, "-m", "perfscope", "check", "r", "--max", "steps.time_ms_p5=1e9"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gate.returncode == 2 and "did you mean steps.time_ms_p50" in gate.stderr
