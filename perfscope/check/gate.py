"""The checks of `perfscope check`, each an Outcome: the run ended ok, budgets, findings, and
the step times against a baseline run."""

from __future__ import annotations

import re

from perfscope.check.names import did_you_mean, is_known, missing_reason
from perfscope.check.outcome import Outcome
from perfscope.check.settings import Budget, CheckSettings
from perfscope.check.stats import compare_steps, step_times
from perfscope.errors import PerfscopeError
from perfscope.record import Record

SEVERITIES = ("info", "warning", "error")
_NEVER = ("never", "none")
_RULE_PREFIX = re.compile(r"^[A-Z]+[0-9]{0,3}$")


def gate(record: Record, settings: CheckSettings, baseline: Record | None) -> list[Outcome]:
    """Every outcome, in the order they are reported."""
    check_metric_names(record, settings.budgets)
    outcomes = [run_outcome(record)]
    outcomes += [budget_outcome(record, budget) for budget in settings.budgets]
    outcomes += finding_outcomes(record, settings.fail_on)
    if baseline is not None:
        outcomes.append(baseline_outcome(baseline, record, settings))
    return outcomes


def check_metric_names(record: Record, budgets: tuple[Budget, ...]) -> None:
    """An unknown metric name is a usage error (exit 2), with a did-you-mean."""
    for budget in budgets:
        if not is_known(budget.metric) and budget.metric not in record.metrics:
            hint = did_you_mean(budget.metric, list(record.metrics))
            raise PerfscopeError(f"{budget.where}: no metric {budget.metric!r}; {hint}")


def run_outcome(record: Record) -> Outcome:
    ended = record.run.get("exit")
    if ended == "ok":
        return Outcome("run", "run ended ok", "pass", "the program exited 0")
    exception = record.run.get("exception") or {}
    detail = f" ({exception.get('type')}: {exception.get('message')})" if exception else ""
    message = f"the run ended {ended}, exit code {record.run.get('exit_code')}{detail}"
    return Outcome("run", "run ended ok", "fail", message, {"exit": ended})


def budget_outcome(record: Record, budget: Budget) -> Outcome:
    name = budget.describe()
    data = {"metric": budget.metric, "max": budget.max, "min": budget.min, "value": None}
    value = record.metrics.get(budget.metric)
    if value is None:
        why = missing_reason(record, budget.metric)
        if budget.optional:
            return Outcome("budget", name, "pass", f"skipped (optional): absent, {why}", data)
        return Outcome("budget", name, "fail", f"the run has no {budget.metric}: {why}", data)
    data["value"] = value
    if budget.max is not None and value > budget.max:
        return Outcome("budget", name, "fail", f"{value:g} is above the max {budget.max:g}", data)
    if budget.min is not None and value < budget.min:
        return Outcome("budget", name, "fail", f"{value:g} is below the min {budget.min:g}", data)
    return Outcome("budget", name, "pass", f"{value:g}", data)


def finding_outcomes(record: Record, fail_on: str) -> list[Outcome]:
    """A failing outcome per finding `fail_on` selects, else one passing outcome saying so."""
    matches = finding_matcher(fail_on)
    failed = [
        Outcome(
            "finding",
            f"finding {f.get('id')} {f.get('name')}",
            "fail",
            f"{f.get('severity')}: {f.get('title')} {f.get('evidence') or ''}".strip(),
            {"id": f.get("id"), "severity": f.get("severity")},
        )
        for f in record.findings
        if matches(f)
    ]
    if failed:
        return failed
    seen = len(record.findings)
    message = f"no finding matches --fail-on {fail_on} ({seen} finding(s) in the run)"
    return [Outcome("finding", f"findings (fail-on {fail_on})", "pass", message)]


def finding_matcher(fail_on: str):  # noqa: ANN201 - a predicate over finding dicts
    """`warning` fails on warning and error findings; `DATA,MEM001` on those rule IDs/prefixes."""
    text = fail_on.strip()
    if text.lower() in _NEVER:
        return lambda finding: False
    if text.lower() in SEVERITIES:
        floor = SEVERITIES.index(text.lower())
        return lambda f: (
            f.get("severity") in SEVERITIES and SEVERITIES.index(f["severity"]) >= floor
        )
    prefixes = [part.strip().upper() for part in text.split(",") if part.strip()]
    bad = [p for p in prefixes if not _RULE_PREFIX.match(p)]
    if bad or not prefixes:
        raise PerfscopeError(
            f"fail-on {fail_on}: expected a severity (info, warning, error), never, "
            "or rule ID prefixes like DATA,MEM001"
        )
    return lambda f: any(str(f.get("id", "")).startswith(p) for p in prefixes)


def baseline_outcome(base: Record, new: Record, settings: CheckSettings) -> Outcome:
    comparison = compare_steps(
        step_times(base.steps, settings.warmup),
        step_times(new.steps, settings.warmup),
        tolerance=settings.tolerance,
        quantile=settings.quantile,
    )
    status = {"regressed": "fail", "inconclusive": "inconclusive"}.get(comparison.verdict, "pass")
    change = ""
    if comparison.change is not None:
        change = (
            f" by {comparison.change:+.1%} ({comparison.statistic} {comparison.base_ms:.2f} ms"
            f" -> {comparison.new_ms:.2f} ms)"
        )
    message = f"step time {comparison.verdict}{change}: {comparison.reason}"
    return Outcome("baseline", "step time vs baseline", status, message, comparison.to_dict())
