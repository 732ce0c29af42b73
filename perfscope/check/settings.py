"""What `perfscope check` gates on: budgets and options from `[tool.perfscope.check]` (or the
`[check]` table of perfscope.toml), then the command line's.

    [tool.perfscope.check]
    "steps.time_ms_p50" = { max = 120 }
    "gpu.util_frac" = { min = 0.6, optional = true }
    fail-on = "warning"          # a severity, "never", or rule ID prefixes: "DATA,MEM001"
    tolerance = 0.05             # baseline: a change within ±5% is "unchanged"
    warmup = 5                   # baseline: steps left out at the start of each run
    quantile = 0.25              # baseline: the step-time quantile compared (0.5: medians)

A key with a dot is a metric; the others are options.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from perfscope.check.stats import DEFAULT_QUANTILE, DEFAULT_TOLERANCE, DEFAULT_WARMUP
from perfscope.errors import PerfscopeError

_OPTIONS = ("fail-on", "tolerance", "warmup", "quantile", "strict")
_BUDGET_KEYS = ("max", "min", "optional")
DEFAULT_FAIL_ON = "error"


@dataclass(frozen=True)
class Budget:
    """Bounds on one metric; `where` says where it was set, for messages."""

    metric: str
    max: float | None = None
    min: float | None = None
    optional: bool = False
    where: str = "command line"

    def describe(self) -> str:
        bounds = [f">= {_num(self.min)}" if self.min is not None else ""]
        bounds.append(f"<= {_num(self.max)}" if self.max is not None else "")
        return f"{self.metric} {' and '.join(b for b in bounds if b)}"


@dataclass(frozen=True)
class CheckSettings:
    budgets: tuple[Budget, ...] = ()
    fail_on: str = DEFAULT_FAIL_ON
    tolerance: float = DEFAULT_TOLERANCE
    warmup: int = DEFAULT_WARMUP
    quantile: float = DEFAULT_QUANTILE
    strict: bool = False
    config: Path | None = None


def settings_from_table(table: dict[str, Any], where: str, prefix: str) -> CheckSettings:
    """The `check` table of a config file, validated: one line naming the key when wrong."""
    if not isinstance(table, dict):
        raise PerfscopeError(f"{where}: {prefix}check: must be a table")
    budgets, options = [], {}
    for key, value in table.items():
        if "." in key:
            budgets.append(_budget(key, value, f"{where}: {prefix}check.{_quoted(key)}"))
        elif key in _OPTIONS:
            options[key] = _option(key, value, f"{where}: {prefix}check.{key}")
        else:
            known = ", ".join(_OPTIONS)
            raise PerfscopeError(
                f"{where}: {prefix}check.{key}: unknown option (known: {known}; "
                f'a metric budget is a quoted dotted name: "steps.time_ms_p50" = {{ max = 120 }})'
            )
    return CheckSettings(
        budgets=tuple(budgets),
        fail_on=options.get("fail-on", DEFAULT_FAIL_ON),
        tolerance=options.get("tolerance", DEFAULT_TOLERANCE),
        warmup=options.get("warmup", DEFAULT_WARMUP),
        quantile=options.get("quantile", DEFAULT_QUANTILE),
        strict=options.get("strict", False),
    )


def with_cli_bounds(
    settings: CheckSettings, maxima: tuple[str, ...], minima: tuple[str, ...]
) -> CheckSettings:
    """The file's budgets with `--max`/`--min METRIC=V` applied: a bound given replaces the
    file's same bound of that metric, and a metric the file lacks gets a budget of its own."""
    budgets = {b.metric: b for b in settings.budgets}
    for flag, items in (("max", maxima), ("min", minima)):
        for item in items:
            metric, value = parse_bound(item, f"--{flag}")
            old = budgets.get(metric, Budget(metric))
            budgets[metric] = replace(old, **{flag: value, "where": "command line"})
    for budget in budgets.values():
        _check_order(budget, budget.where)
    return replace(settings, budgets=tuple(budgets.values()))


def parse_bound(text: str, flag: str) -> tuple[str, float]:
    """`steps.time_ms_p50=120` -> ("steps.time_ms_p50", 120.0)."""
    metric, sep, value = text.partition("=")
    example = f"like {flag} steps.time_ms_p50=120"
    if not sep or not metric.strip():
        raise PerfscopeError(f"{flag} {text}: expected METRIC=VALUE, {example}")
    try:
        number = float(value)
    except ValueError:
        raise PerfscopeError(f"{flag} {text}: {value!r} is not a number, {example}") from None
    return metric.strip(), number


def _budget(metric: str, value: Any, where: str) -> Budget:
    if not isinstance(value, dict):
        raise PerfscopeError(f"{where}: must be a table like {{ max = 120 }} or {{ min = 0.6 }}")
    unknown = sorted(set(value) - set(_BUDGET_KEYS))
    if unknown:
        raise PerfscopeError(f"{where}.{unknown[0]}: unknown key (known: max, min, optional)")
    for bound in ("max", "min"):
        if bound in value and not _is_number(value[bound]):
            raise PerfscopeError(f"{where}.{bound}: must be a number, not {value[bound]!r}")
    if "max" not in value and "min" not in value:
        raise PerfscopeError(f"{where}: needs max or min, like {{ max = 120 }}")
    if not isinstance(value.get("optional", False), bool):
        raise PerfscopeError(f"{where}.optional: must be true or false")
    budget = Budget(metric, value.get("max"), value.get("min"), value.get("optional", False), where)
    _check_order(budget, where)
    return budget


def _check_order(budget: Budget, where: str) -> None:
    if budget.min is not None and budget.max is not None and budget.min > budget.max:
        raise PerfscopeError(
            f"{where}: {budget.metric}: min {_num(budget.min)} is above max {_num(budget.max)}"
        )


def _option(key: str, value: Any, where: str) -> Any:
    if key == "fail-on" and isinstance(value, str):
        return value
    if key in ("tolerance", "quantile") and _is_number(value) and 0 < value < 1:
        return float(value)
    if key == "warmup" and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if key == "strict" and isinstance(value, bool):
        return value
    wanted = {
        "fail-on": 'a string: a severity, "never", or rule ID prefixes like "DATA,MEM001"',
        "tolerance": "a fraction between 0 and 1, like 0.05",
        "quantile": "a fraction between 0 and 1, like 0.25 (0.5: the median)",
        "warmup": "a whole number of steps, 0 or more",
        "strict": "true or false",
    }[key]
    raise PerfscopeError(f"{where}: must be {wanted}, not {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _quoted(key: str) -> str:
    return f'"{key}"'


def _num(value: float) -> str:
    return f"{value:g}"
