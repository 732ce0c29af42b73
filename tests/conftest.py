from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).parent / "scripts"
PERFSCOPE = str(Path(sys.executable).parent / "perfscope")


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes
    run_dir: Path | None

    @property
    def record(self) -> dict[str, Any]:
        assert self.run_dir is not None
        return json.loads((self.run_dir / "record.json").read_text())


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PERFSCOPE_RUN_DIR"}
    env.update({"OMP_NUM_THREADS": "1", "CI": "1", **extra})
    return env


def run_python(args: list[str], cwd: Path, stdin: bytes = b"", timeout: float = 120) -> Result:
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=child_env(),
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr, None)


def run_perfscope(
    args: list[str],
    cwd: Path,
    run_dir: Path | None = None,
    stdin: bytes = b"",
    timeout: float = 180,
    env: dict[str, str] | None = None,
) -> Result:
    cmd = [PERFSCOPE, *args]
    if run_dir is not None and args and args[0] == "run":
        cmd = [PERFSCOPE, "run", "-o", str(run_dir), *args[1:]]
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=child_env(**(env or {})),
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr, run_dir)


@pytest.fixture
def workload() -> str:
    return str(SCRIPTS / "workload.py")
