"""Evaluates rules over metrics in jinja2's sandbox: a rule file can never run arbitrary code."""

from __future__ import annotations

import functools
import warnings
from typing import Any

from jinja2 import StrictUndefined, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from perfscope.rules.model import SEVERITIES, Rule


class RuleWarning(UserWarning):
    """A rule could not be evaluated on this run."""


class MetricSpace:
    """Dotted metric names as attributes: `data.wait_frac` reads metrics["data.wait_frac"]."""

    __slots__ = ("_metrics", "_prefix")

    def __init__(self, metrics: dict[str, float], prefix: str = "") -> None:
        self._metrics = metrics
        self._prefix = prefix

    def __getattr__(self, part: str) -> Any:
        name = self._prefix + part
        if name in self._metrics:
            return self._metrics[name]
        if any(key.startswith(name + ".") for key in self._metrics):
            return MetricSpace(self._metrics, name + ".")
        raise AttributeError(name)

    def __getitem__(self, part: str) -> Any:
        try:
            return self.__getattr__(part)
        except AttributeError:
            raise KeyError(part) from None


@functools.lru_cache(maxsize=1)
def sandbox() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters["pct"] = lambda x, digits=0: f"{x * 100:.{digits}f}%"
    env.filters["ms"] = lambda x: f"{x:.1f} ms"
    env.filters["mib"] = _mib
    return env


def _mib(value: float) -> str:
    """MiB as people write sizes: 512.0 MiB, 1.22 GiB, 1.00 TiB."""
    for unit, scale in (("TiB", 2**20), ("GiB", 2**10)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.1f} MiB"


def evaluate(
    rules: list[Rule],
    metrics: dict[str, float],
    collectors: dict[str, dict[str, Any]],
    params: dict[str, dict[str, Any]] | None = None,
    facts: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Findings of the rules whose condition holds, deduplicated, worst and costliest first.

    `facts` (analysis/facts.py) are text values that rule texts and conditions read under their
    dotted names beside the metrics (`py.top_user_function`)."""
    findings: dict[str, dict[str, Any]] = {}
    for rule in rules:
        overrides = (params or {}).get(rule.id, {})
        finding = evaluate_rule(rule, metrics, collectors, overrides, facts or {})
        if finding is not None:
            findings.setdefault(rule.id, finding)
    return sort_findings(list(findings.values()))


def evaluate_rule(
    rule: Rule,
    metrics: dict[str, float],
    collectors: dict[str, dict[str, Any]],
    overrides: dict[str, Any],
    facts: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    env = sandbox()
    names = {**(facts or {}), **metrics}
    context = {
        **_namespace(names),
        "m": names,
        "params": {**rule.params, **overrides},
    }
    try:
        if not env.compile_expression(rule.when, undefined_to_none=False)(**context):
            return None
        severity = _severity(env, rule, context)
        saving = env.compile_expression(rule.saving)(**context) if rule.saving else None
        saving = round(float(saving), 3) if saving is not None else None
        texts = {
            key: env.from_string(getattr(rule, key)).render(**context).strip()
            for key in ("title", "evidence", "fix", "snippet")
        }
    except UndefinedError:
        return None  # a metric the rule needs is missing from this run
    except (TypeError, ValueError, ArithmeticError, SecurityError) as exc:
        # A faulty rule (a user's, say) must not take the other rules' findings down with it.
        warnings.warn(f"rule {rule.id} ({rule.source}) failed: {exc}", RuleWarning, stacklevel=2)
        return None
    missing = [name for name in rule.requires if collectors.get(name, {}).get("status") != "ok"]
    return {
        "id": rule.id,
        "name": rule.name,
        "class": rule.cls,
        "severity": severity,
        "confidence": "medium" if missing else "high",
        **texts,
        "est_saving_ms_per_step": saving,
    }


def _severity(env: ImmutableSandboxedEnvironment, rule: Rule, context: dict[str, Any]) -> str:
    """The worst severity whose `severity_if` condition holds, else the rule's own."""
    for level in reversed(SEVERITIES):
        condition = rule.severity_if.get(level)
        if condition and env.compile_expression(condition, undefined_to_none=False)(**context):
            return level
    return rule.severity


def sort_findings(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(finding: dict[str, Any]) -> tuple[int, float, str]:
        return (
            -SEVERITIES.index(finding["severity"]),
            -(finding.get("est_saving_ms_per_step") or 0.0),
            finding["id"],
        )

    return sorted(findings, key=key)


# Every metric family exists as a namespace even when a run has none of its metrics, so that
# `cuda.mem_reserved_peak_mb is defined` is false on a CPU run instead of an error.
NAMESPACES = (
    "autograd", "comm", "cpu", "cuda", "data", "dist", "env", "gpu", "host", "inference", "io",
    "mem", "ops", "optim", "overhead", "py", "run", "steps", "trace",
)  # fmt: skip


def _namespace(metrics: dict[str, Any]) -> dict[str, Any]:
    tops = set(NAMESPACES) | {name.split(".")[0] for name in metrics}
    return {top: MetricSpace(metrics, top + ".") for top in tops}
