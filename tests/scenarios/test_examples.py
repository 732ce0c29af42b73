"""Every script in examples/scenarios/ run through `perfscope run`: its expected rules fire with the
run's numbers in their evidence, and no other warning or error does (healthy scripts: none at all).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from perfscope.scenarios import Scenario, discover, judge, run_scenario
from tests.conftest import PERFSCOPE

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
SCENARIOS = discover(EXAMPLES)


def test_there_are_scenarios_and_at_least_three_healthy_ones() -> None:
    assert len(SCENARIOS) >= 10
    assert sum(s.healthy for s in SCENARIOS) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_is_diagnosed_as_declared(scenario: Scenario, tmp_path: Path) -> None:
    if scenario.requires == "cuda":
        pytest.skip("needs a CUDA GPU (run it on one: perfscope run " + scenario.path.name + ")")
    proc, record = run_scenario(scenario, tmp_path / "run", PERFSCOPE)
    assert proc.returncode == scenario.exit_code, proc.stderr.decode()[-2000:]
    assert record, "no record written"
    verdict = judge(scenario, record["findings"])
    assert verdict.ok, (verdict, record["metrics"])
    for finding in record["findings"]:
        if finding["id"] in scenario.expect:
            assert re.search(r"\d", finding["evidence"]), finding  # quotes the run's numbers
            assert finding["title"] and finding["fix"]
