"""User configuration (rules/config.py): finding the file, its schema, selection and params."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfscope.errors import PerfscopeError
from perfscope.rules.config import Config, Selection, find_config, parse_selectors, resolve_config
from perfscope.rules.docs import generate
from perfscope.rules.engine import evaluate
from tests.unit.test_rules import STEPS_OK, data_metrics, rule_toml, write_rules

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def ids(config: Config) -> set[str]:
    return {rule.id for rule in config.selected_rules()}


# --- finding the file ------------------------------------------------------------------------


def test_no_config_means_every_rule_with_defaults(tmp_path: Path) -> None:
    config = resolve_config(start=tmp_path)

    assert config.path is None and config.params == {}
    assert {r.id for r in config.selected_rules()} >= {"DATA001", "MEM001"}


def test_pyproject_tool_perfscope_is_found_from_a_nested_directory(tmp_path: Path) -> None:
    pyproject = write(tmp_path / "pyproject.toml", '[tool.perfscope]\nselect = ["MEM"]\n')
    nested = tmp_path / "src" / "pkg"
    nested.mkdir(parents=True)

    config = resolve_config(start=nested)

    assert config.path == pyproject
    assert ids(config) >= {"MEM001"} and all(i.startswith("MEM") for i in ids(config))


def test_a_pyproject_without_the_section_is_skipped(tmp_path: Path) -> None:
    outer = write(tmp_path / "pyproject.toml", '[tool.perfscope]\nignore = ["MEM"]\n')
    write(tmp_path / "inner" / "pyproject.toml", '[project]\nname = "x"\n')

    assert find_config(tmp_path / "inner") == outer


def test_perfscope_toml_wins_over_pyproject_in_the_same_folder(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.perfscope]\nselect = ["MEM"]\n')
    own = write(tmp_path / "perfscope.toml", 'select = ["DATA"]\n')

    config = resolve_config(start=tmp_path)

    assert config.path == own
    assert ids(config) >= {"DATA001"} and all(i.startswith("DATA") for i in ids(config))


def test_the_nearest_file_wins(tmp_path: Path) -> None:
    write(tmp_path / "perfscope.toml", 'select = ["DATA"]\n')
    near = write(tmp_path / "a" / "pyproject.toml", '[tool.perfscope]\nselect = ["MEM"]\n')

    assert find_config(tmp_path / "a") == near


def test_an_explicit_config_file_is_used_and_must_exist(tmp_path: Path) -> None:
    named = write(tmp_path / "conf" / "mine.toml", 'ignore = ["DATA"]\n')

    assert resolve_config(named, start=tmp_path).path == named
    with pytest.raises(PerfscopeError, match="nope.toml: no such config file"):
        resolve_config(tmp_path / "nope.toml")


def test_rule_folders_are_relative_to_the_config_file(tmp_path: Path) -> None:
    write_rules(tmp_path / "proj" / "my_rules", rule_toml())
    write(tmp_path / "proj" / "perfscope.toml", 'rules = ["my_rules"]\n')
    elsewhere = tmp_path / "proj" / "deep" / "er"
    elsewhere.mkdir(parents=True)

    config = resolve_config(start=elsewhere)

    assert config.rule_dirs == ((tmp_path / "proj" / "my_rules").resolve(),)
    assert "TEST001" in {r.id for r in config.selected_rules()}


# --- malformed files -------------------------------------------------------------------------

MALFORMED = {
    "bad toml": ("select = [", "not valid TOML"),
    "unknown key": ("colour = 1\n", "colour: unknown key"),
    "select not a list": ('select = "DATA"\n', "select: must be a list of rule ID prefixes"),
    "select of numbers": ("select = [1]\n", "select: must be a list of rule ID prefixes"),
    "bad prefix": ('ignore = ["data"]\n', "ignore: 'data' is not a rule ID prefix"),
    "extend-select bad": ('extend-select = ["D-1"]\n', "extend-select: 'D-1' is not a rule ID"),
    "rules not a list": ('rules = "x"\n', "rules: must be a list of folder paths"),
    "rules folder missing": ('rules = ["gone"]\n', "rules: 'gone' is not a folder"),
    "params not a table": ("params = 3\n", "params: must be a table of rule IDs"),
    "params of a rule not a table": ("params.DATA001 = 3\n", "params.DATA001: must be a table"),
    "unknown rule": ("[params.NOPE001]\nx = 1\n", "params.NOPE001: no rule NOPE001"),
    "unknown param": ("[params.DATA001]\nwait = 0.2\n", "params.DATA001.wait: no such param"),
    "param type": ('[params.DATA001]\nwait_frac = "high"\n', "wait_frac: must be a number"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_perfscope_toml_is_one_line_naming_file_and_key(
    tmp_path: Path, case: str
) -> None:
    text, problem = MALFORMED[case]
    path = write(tmp_path / "perfscope.toml", text)

    with pytest.raises(PerfscopeError) as caught:
        resolve_config(start=tmp_path)

    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 2
    assert message.startswith(f"{path}: ") and problem in message


def test_a_malformed_pyproject_names_the_full_key(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", "[tool.perfscope.params.DATA001]\nwait = 0.2\n")

    with pytest.raises(PerfscopeError, match="tool.perfscope.params.DATA001.wait: no such param"):
        resolve_config(start=tmp_path)
    write(path, "[tool]\nperfscope = 3\n")
    with pytest.raises(PerfscopeError, match="tool.perfscope: must be a table"):
        resolve_config(start=tmp_path)


def test_a_bad_command_line_prefix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PerfscopeError, match="--select: 'mem' is not a rule ID prefix"):
        resolve_config(start=tmp_path, select=["mem"])


# --- selection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("select", "ignore", "on", "off"),
    [
        (("",), (), ["DATA001", "MEM001", "HOST002"], []),
        (("DATA",), (), ["DATA001", "DATA012"], ["MEM001"]),
        (("DATA", "MEM001"), (), ["DATA001", "MEM001"], ["MEM002"]),
        (("",), ("DATA",), ["MEM001"], ["DATA001"]),
        (("DATA",), ("DATA",), [], ["DATA001"]),  # equal specificity: ignore wins
        (("DATA001",), ("DATA",), ["DATA001"], ["DATA002"]),  # the more specific select wins
        (("DATA",), ("DATA001",), ["DATA002"], ["DATA001"]),  # the more specific ignore wins
        (("DATA0",), ("DATA",), ["DATA001"], ["DATA100"]),
        ((), (), [], ["DATA001"]),
    ],
)
def test_the_most_specific_prefix_decides_and_ignore_wins_ties(
    select: tuple[str, ...], ignore: tuple[str, ...], on: list[str], off: list[str]
) -> None:
    selection = Selection(select, ignore)

    assert all(selection.enabled(rule_id) for rule_id in on)
    assert not any(selection.enabled(rule_id) for rule_id in off)


def test_extend_select_adds_to_select_and_all_means_every_rule(tmp_path: Path) -> None:
    write(tmp_path / "perfscope.toml", 'select = ["MEM"]\nextend-select = ["DATA001"]\n')
    chosen = ids(resolve_config(start=tmp_path))
    assert {"DATA001", "MEM001"} <= chosen
    assert all(i.startswith("MEM") or i == "DATA001" for i in chosen)

    write(tmp_path / "perfscope.toml", 'select = ["ALL"]\nignore = ["MEM001"]\n')
    chosen = ids(resolve_config(start=tmp_path))
    assert "MEM001" not in chosen and "DATA001" in chosen


def test_the_command_line_replaces_the_files_lists(tmp_path: Path) -> None:
    write(tmp_path / "perfscope.toml", 'select = ["MEM"]\nignore = ["DATA"]\n')

    config = resolve_config(start=tmp_path, select=["DATA"], ignore=[])

    assert ids(config) >= {"DATA001"} and all(i.startswith("DATA") for i in ids(config))


def test_parse_selectors() -> None:
    assert parse_selectors(None) is None
    assert parse_selectors("DATA, MEM001,") == ["DATA", "MEM001"]


# --- params ----------------------------------------------------------------------------------


def test_a_param_override_stops_data001_from_firing(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.perfscope.params.DATA001]\nwait_frac = 0.5\n")
    metrics = data_metrics(0.3)

    default = evaluate(Config().selected_rules(), metrics, STEPS_OK)
    config = resolve_config(start=tmp_path)
    configured = evaluate(config.selected_rules(), metrics, STEPS_OK, config.params)

    assert config.params == {"DATA001": {"wait_frac": 0.5}}
    assert "DATA001" in [f["id"] for f in default]
    assert "DATA001" not in [f["id"] for f in configured]


def test_an_integer_override_of_a_float_param_is_accepted(tmp_path: Path) -> None:
    write(tmp_path / "perfscope.toml", "[params.DATA001]\nwait_frac = 1\nmin_steps = 5\n")

    assert resolve_config(start=tmp_path).params["DATA001"] == {"wait_frac": 1, "min_steps": 5}


# --- docs/rules/ -----------------------------------------------------------------------------


def test_docs_rules_is_up_to_date_with_the_rule_files(tmp_path: Path) -> None:
    # Regenerate with: python -m perfscope.rules.docs docs/rules
    generate(tmp_path)
    shipped = REPO / "docs" / "rules"

    expected = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.md")}
    actual = {p.name: p.read_text(encoding="utf-8") for p in shipped.glob("*.md")}

    assert sorted(actual) == sorted(expected), "docs/rules/ is stale: regenerate it"
    stale = [name for name in expected if actual[name] != expected[name]]
    assert not stale, f"docs/rules/ is stale ({', '.join(stale)}): regenerate it"


def test_generating_twice_changes_nothing(tmp_path: Path) -> None:
    first = {p.name: p.read_text() for p in generate(tmp_path)}
    (tmp_path / "GONE001.md").write_text("a rule that no longer exists")
    second = {p.name: p.read_text() for p in generate(tmp_path)}

    assert first == second
    assert sorted(p.name for p in tmp_path.glob("*.md")) == sorted(first)
