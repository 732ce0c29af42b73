"""perfscope check: budgets from the config and the command line, missing metrics, findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from perfscope.check.gate import budget_outcome, check_metric_names, finding_outcomes, gate
from perfscope.check.names import known_metrics, missing_reason
from perfscope.check.outcome import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS, Outcome, exit_code
from perfscope.check.settings import (
    Budget,
    CheckSettings,
    parse_bound,
    settings_from_table,
    with_cli_bounds,
)
from perfscope.errors import PerfscopeError
from perfscope.record import Record
from perfscope.rules.config import config_table

METRICS_DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def record(metrics: dict[str, float], **extra: Any) -> Record:
    collectors = {
        "host": {"status": "ok", "reason": None},
        "allocator": {"status": "ok", "reason": None},
        "gpu": {"status": "unavailable", "reason": "NVML library not found"},
        "ops": {"status": "unavailable", "reason": "disabled (--no-trace)"},
    }
    return Record(
        run={"exit": "ok", "exit_code": 0},
        environment={},
        collectors=collectors,
        steps=[],
        samples={},
        metrics=metrics,
        **extra,
    )


def test_known_metric_names_are_read_from_docs_metrics_md() -> None:
    from tests.unit.test_metrics import doc_table

    assert known_metrics() == set(doc_table())
    assert "steps.time_ms_p50" in known_metrics()


def test_budgets_and_options_from_a_check_table() -> None:
    # GIVEN the table of the example
    table = {
        "steps.time_ms_p50": {"max": 120},
        "gpu.util_frac": {"min": 0.6, "optional": True},
        "fail-on": "warning",
        "tolerance": 0.1,
        "warmup": 3,
        "quantile": 0.5,
    }
    # WHEN it is read
    settings = settings_from_table(table, "perfscope.toml", "")
    # THEN each metric key is a budget and the others are options
    assert [(b.metric, b.max, b.min, b.optional) for b in settings.budgets] == [
        ("steps.time_ms_p50", 120, None, False),
        ("gpu.util_frac", None, 0.6, True),
    ]
    assert (settings.fail_on, settings.tolerance, settings.warmup) == ("warning", 0.1, 3)
    assert settings.quantile == 0.5


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"steps.time_ms_p50": 120}, 'check."steps.time_ms_p50": must be a table'),
        ({"steps.time_ms_p50": {"maximum": 1}}, ".maximum: unknown key (known: max, min"),
        ({"steps.time_ms_p50": {"max": "fast"}}, ".max: must be a number"),
        ({"steps.time_ms_p50": {}}, "needs max or min"),
        ({"data.wait_frac": {"min": 0.5, "max": 0.1}}, "min 0.5 is above max 0.1"),
        ({"tolerance": 5}, "check.tolerance: must be a fraction between 0 and 1"),
        ({"warmup": -1}, "check.warmup: must be a whole number"),
        ({"quantile": 1}, "check.quantile: must be a fraction between 0 and 1"),
        ({"fail_on": "error"}, "check.fail_on: unknown option (known: fail-on"),
    ],
)
def test_a_malformed_check_table_is_refused_in_one_line(
    table: dict[str, Any], message: str
) -> None:
    with pytest.raises(PerfscopeError) as err:
        settings_from_table(table, "pyproject.toml", "tool.perfscope.")
    assert message in str(err.value)
    assert str(err.value).startswith("pyproject.toml: tool.perfscope.check")
    assert "\n" not in str(err.value)


def test_command_line_bounds_replace_the_files_same_bound_only() -> None:
    settings = CheckSettings(budgets=(Budget("data.wait_frac", max=0.1, min=0.01, where="f"),))
    merged = with_cli_bounds(settings, ("data.wait_frac=0.3", "steps.time_ms_p50=80"), ())
    by_name = {b.metric: b for b in merged.budgets}
    assert (by_name["data.wait_frac"].max, by_name["data.wait_frac"].min) == (0.3, 0.01)
    assert by_name["steps.time_ms_p50"].max == 80


@pytest.mark.parametrize("text", ["steps.time_ms_p50", "=3", "steps.time_ms_p50=fast"])
def test_a_malformed_bound_names_the_flag(text: str) -> None:
    with pytest.raises(PerfscopeError, match=r"^--max .*like --max steps.time_ms_p50=120"):
        parse_bound(text, "--max")


def test_within_bounds_passes_and_beyond_fails_quoting_the_value() -> None:
    run = record({"steps.time_ms_p50": 130.0, "gpu.util_frac": 0.7})
    over = budget_outcome(run, Budget("steps.time_ms_p50", max=120))
    assert over.status == "fail" and "130 is above the max 120" in over.message
    assert budget_outcome(run, Budget("steps.time_ms_p50", max=130)).status == "pass"
    under = budget_outcome(run, Budget("gpu.util_frac", min=0.8))
    assert under.status == "fail" and "0.7 is below the min 0.8" in under.message


def test_a_missing_metric_fails_and_says_why_unless_optional() -> None:
    run = record({})
    missing = budget_outcome(run, Budget("gpu.util_frac", min=0.6))
    assert missing.status == "fail"
    assert "gpu collector was unavailable: NVML library not found" in missing.message
    optional = budget_outcome(run, Budget("gpu.util_frac", min=0.6, optional=True))
    assert optional.status == "pass" and "optional" in optional.message


def test_missing_reasons_follow_the_record() -> None:
    run = record({})
    assert "disabled (--no-trace)" in missing_reason(run, "ops.syncs_per_step")
    assert "DataLoader" in missing_reason(run, "data.num_workers")
    assert "no CUDA device" in missing_reason(run, "cuda.mem_reserved_peak_mb")


def test_an_unknown_metric_gets_a_did_you_mean() -> None:
    with pytest.raises(PerfscopeError) as err:
        check_metric_names(record({}), (Budget("steps.time_p50", max=1, where="perfscope.toml"),))
    assert "perfscope.toml: no metric 'steps.time_p50'; did you mean steps.time_ms_p50" in str(
        err.value
    )


def test_a_metric_of_the_record_not_yet_in_the_list_is_accepted() -> None:
    check_metric_names(record({"future.metric": 1.0}), (Budget("future.metric", max=2),))


FINDINGS = [
    {"id": "DATA001", "name": "dataloader-starvation", "severity": "warning", "title": "t"},
    {"id": "OPS002", "name": "host-syncs", "severity": "info", "title": "t"},
    {"id": "MEM001", "name": "oom", "severity": "error", "title": "t"},
]


@pytest.mark.parametrize(
    ("fail_on", "failing"),
    [
        ("error", ["MEM001"]),
        ("warning", ["DATA001", "MEM001"]),
        ("info", ["DATA001", "OPS002", "MEM001"]),
        ("never", []),
        ("OPS,DATA001", ["DATA001", "OPS002"]),
        ("mem", ["MEM001"]),
    ],
)
def test_fail_on_a_severity_or_rule_prefixes(fail_on: str, failing: list[str]) -> None:
    outcomes = finding_outcomes(record({}, findings=FINDINGS), fail_on)
    assert [o.data.get("id") for o in outcomes if o.status == "fail"] == failing
    assert all(o.status == "pass" for o in outcomes) == (not failing)


def test_fail_on_nonsense_is_a_usage_error() -> None:
    with pytest.raises(PerfscopeError, match="^fail-on DATA-1: expected a severity"):
        finding_outcomes(record({}, findings=FINDINGS), "DATA-1")


def test_a_failed_run_fails_the_gate() -> None:
    exception = {"type": "OutOfMemoryError", "message": "m"}
    crashed = Record(
        {"exit": "oom", "exit_code": 1, "exception": exception}, {}, {}, [], {}, {}, []
    )
    run_outcome = gate(crashed, CheckSettings(), None)[0]
    assert run_outcome.status == "fail" and "ended oom" in run_outcome.message


@pytest.mark.parametrize(
    ("statuses", "strict", "code"),
    [
        (["pass", "pass"], False, EXIT_PASS),
        (["pass", "inconclusive"], False, EXIT_PASS),
        (["pass", "inconclusive"], True, EXIT_INCONCLUSIVE),
        (["fail", "inconclusive"], True, EXIT_FAIL),
    ],
)
def test_exit_codes(statuses: list[str], strict: bool, code: int) -> None:
    assert exit_code([Outcome("budget", "x", s, "") for s in statuses], strict) == code


def test_the_check_table_is_read_from_pyproject_like_the_rules_config(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.perfscope]\nselect = ["DATA"]\n[tool.perfscope.check]\n'
        '"data.wait_frac" = { max = 0.1 }\n'
    )
    nested = tmp_path / "src" / "pkg"
    nested.mkdir(parents=True)
    path, table, prefix = config_table(start=nested)
    assert path == tmp_path / "pyproject.toml" and prefix == "tool.perfscope."
    settings = settings_from_table(table["check"], str(path), prefix)
    assert settings.budgets[0].metric == "data.wait_frac"


def test_a_check_table_does_not_trouble_the_rules_config(tmp_path: Path) -> None:
    from perfscope.rules.config import resolve_config

    config = tmp_path / "perfscope.toml"
    config.write_text('select = ["DATA"]\n[check]\n"data.wait_frac" = { max = 0.1 }\n')
    assert resolve_config(config).selection.select == ("DATA",)
