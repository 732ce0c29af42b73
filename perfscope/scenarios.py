"""Scenario scripts (examples/scenarios/): each declares the findings a run of it must produce.

A scenario is a small real script with a literal `PERFSCOPE_SCENARIO = {...}` near its top, read
here with `ast.literal_eval` without running it. The test suite and benchmarks/diagnosis.py run
every scenario through `perfscope run` and compare what fired with what was expected.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfscope.errors import PerfscopeError

MARKER = "PERFSCOPE_SCENARIO"
BLOCKING = ("warning", "error")  # severities a scenario must not raise unless it expects them


@dataclass(frozen=True)
class Scenario:
    path: Path
    expect: tuple[str, ...]
    args: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    requires: str = "cpu"  # "cpu" runs anywhere; "cuda" needs a CUDA GPU
    exit_code: int = 0  # what the script itself exits with (a crash scenario exits non-zero)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def healthy(self) -> bool:
        return not self.expect


@dataclass(frozen=True)
class Verdict:
    """What one scenario run produced against what it declared."""

    scenario: Scenario
    fired: tuple[str, ...]  # ids of every finding
    missing: tuple[str, ...]  # expected, did not fire
    unexpected: tuple[str, ...]  # warning/error findings not expected

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


def load_scenario(path: Path) -> Scenario:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == MARKER for t in node.targets
        ):
            return _scenario(path, ast.literal_eval(node.value))
    raise PerfscopeError(f"{path}: no {MARKER} = {{...}} dict; add one (see examples/scenarios)")


def discover(folder: Path) -> list[Scenario]:
    return [load_scenario(p) for p in sorted(Path(folder).glob("*.py"))]


def judge(scenario: Scenario, findings: list[dict[str, Any]]) -> Verdict:
    fired = tuple(f["id"] for f in findings)
    missing = tuple(i for i in scenario.expect if i not in fired)
    unexpected = tuple(
        f["id"] for f in findings if f["severity"] in BLOCKING and f["id"] not in scenario.expect
    )
    return Verdict(scenario, fired, missing, unexpected)


def _scenario(path: Path, spec: Any) -> Scenario:
    if not isinstance(spec, dict) or not isinstance(spec.get("expect"), list):
        raise PerfscopeError(f"{path}: {MARKER} must be a dict with an `expect` list of rule IDs")
    unknown = set(spec) - {"expect", "args", "flags", "env", "requires", "exit_code"}
    if unknown:
        raise PerfscopeError(f"{path}: {MARKER} has unknown keys {sorted(unknown)}")
    return Scenario(
        path=path,
        expect=tuple(spec["expect"]),
        args=tuple(spec.get("args", ())),
        flags=tuple(spec.get("flags", ())),
        env=dict(spec.get("env", {})),
        requires=spec.get("requires", "cpu"),
        exit_code=int(spec.get("exit_code", 0)),
    )


def run_scenario(
    scenario: Scenario, run_dir: Path, perfscope: str, timeout: float = 300
) -> tuple[subprocess.CompletedProcess[bytes], dict[str, Any]]:
    """Runs the scenario through `perfscope run` as CI does; returns the process and the record."""
    cmd = [perfscope, "run", "-q", "-o", str(run_dir), *scenario.flags, str(scenario.path)]
    env = {k: v for k, v in os.environ.items() if k != "PERFSCOPE_RUN_DIR"}
    env.update({"CI": "1", "OMP_NUM_THREADS": "1", **scenario.env})
    proc = subprocess.run(
        [*cmd, *scenario.args], capture_output=True, env=env, timeout=timeout, cwd=run_dir.parent
    )
    record_file = run_dir / "record.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    return proc, record
