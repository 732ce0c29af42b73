"""`perfscope rules list|explain` and rule selection on `perfscope run`, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_perfscope
from tests.unit.test_rules import rule_toml, write_rules

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "train_cnn.py")
QUICK = ["--no-pyspy", "--no-trace", EXAMPLE, "--samples", "320"]


def findings(run_dir: Path) -> list[str]:
    record = json.loads((run_dir / "record.json").read_text())
    return [finding["id"] for finding in record["findings"]]


def test_rules_list_shows_a_table_of_the_builtin_rules(tmp_path: Path) -> None:
    result = run_perfscope(["rules", "list"], cwd=tmp_path)

    out = result.stdout.decode()
    assert result.returncode == 0
    assert out.split()[:5] == ["ID", "Name", "Class", "Severity", "Title"]
    assert "DATA001" in out and "dataloader-starvation" in out and "MEM001" in out


def test_rules_list_json_filters_by_class_and_includes_user_rules(tmp_path: Path) -> None:
    write_rules(tmp_path / "mine", rule_toml())
    (tmp_path / "perfscope.toml").write_text('ignore = ["TEST"]\n')

    args = ["rules", "list", "--json", "--class", "data", "--rules", "mine"]
    result = run_perfscope(args, cwd=tmp_path)

    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert result.returncode == 0
    assert {"DATA001", "TEST001"} <= set(rows) and "MEM001" not in rows
    assert rows["DATA001"]["selected"] and not rows["TEST001"]["selected"]
    assert rows["TEST001"]["title"] == "Waits {data.wait_frac}"


def test_rules_explain_shows_the_six_sections_condition_and_params(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.perfscope.params.DATA001]\nwait_frac = 0.2\n")

    result = run_perfscope(["rules", "explain", "DATA001"], cwd=tmp_path)

    out = result.stdout.decode()
    assert result.returncode == 0
    for heading in ("What it detects", "Why it matters", "Example", "Fix", "Options"):
        assert f"## {heading}" in out
    assert "## References" in out and "## Condition" in out and "## Parameters" in out
    assert "data.wait_frac >= params.wait_frac" in out
    assert "| `wait_frac` | `0.1` | `0.2` |" in out  # default, then the configured value


def test_rules_explain_an_unknown_id_suggests_the_closest(tmp_path: Path) -> None:
    result = run_perfscope(["rules", "explain", "DATA01"], cwd=tmp_path)

    err = result.stderr.decode().strip()
    assert result.returncode == 2 and result.stdout == b""
    assert err.startswith("perfscope: error: no rule DATA01; did you mean DATA001")
    assert "\n" not in err


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("default")
    result = run_perfscope(["run", "-q", *QUICK], cwd=base, run_dir=base / "run")
    assert result.returncode == 0, result.stderr.decode()
    return base / "run"


def test_the_default_run_finds_data_starvation_and_no_config(default_run: Path) -> None:
    assert "DATA001" in findings(default_run)
    assert json.loads((default_run / "record.json").read_text())["run"]["config"] is None


def test_ignore_data_on_the_command_line_drops_data001(tmp_path: Path) -> None:
    result = run_perfscope(["run", "-q", "--ignore", "DATA", *QUICK], tmp_path, tmp_path / "run")

    assert result.returncode == 0, result.stderr.decode()
    assert "DATA001" not in findings(tmp_path / "run")


def test_a_config_param_override_is_used_and_recorded(tmp_path: Path) -> None:
    config = tmp_path / "perfscope.toml"
    config.write_text("[params.DATA001]\nwait_frac = 0.99\n")

    result = run_perfscope(["run", "-q", *QUICK], cwd=tmp_path, run_dir=tmp_path / "run")

    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert result.returncode == 0, result.stderr.decode()
    assert "DATA001" not in findings(tmp_path / "run")
    assert record["run"]["config"] == str(config)


def test_a_malformed_config_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    (tmp_path / "perfscope.toml").write_text('select = ["DATA"]\nselct = []\n')

    result = run_perfscope(["run", "-q", *QUICK], cwd=tmp_path, run_dir=tmp_path / "run")

    err = result.stderr.decode().strip()
    assert result.returncode == 2 and not (tmp_path / "run").exists()
    assert err.startswith(f"perfscope: error: {tmp_path / 'perfscope.toml'}: selct: unknown key")
    assert "\n" not in err
