"""Reads and validates rule files: a malformed one is refused with its path, rule and problem."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from perfscope.errors import PerfscopeError
from perfscope.paths import rules_dir
from perfscope.rules.model import CLASSES, DOC_SECTIONS, SEVERITIES, Rule

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

_ID = re.compile(r"^[A-Z]+[0-9]{3}$")
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_REQUIRED = ("id", "name", "class", "severity", "when", "title", "evidence", "fix")
_OPTIONAL = ("snippet", "saving", "requires", "params", "doc", "severity_if")


def load_rules(extra_dirs: list[Path] | None = None) -> list[Rule]:
    """The built-in rules, then the users' own folders; an ID defined twice is an error."""
    rules: dict[str, Rule] = {}
    for folder in [rules_dir(), *(extra_dirs or [])]:
        if not Path(folder).is_dir():
            raise PerfscopeError(f"{folder}: no such rules folder")
        for path in sorted(Path(folder).glob("*.toml")):
            for rule in load_rule_file(path):
                if rule.id in rules:
                    raise PerfscopeError(
                        f"{path}: rule {rule.id}: ID already defined in {rules[rule.id].source}"
                    )
                rules[rule.id] = rule
    return list(rules.values())


def load_rule_file(path: Path) -> list[Rule]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PerfscopeError(f"{path}: not a readable TOML rule file ({exc})") from None
    entries = data.get("rule")
    if not isinstance(entries, list) or not entries:
        raise PerfscopeError(f"{path}: no [[rule]] tables in this file")
    return [_parse_rule(path, i, entry) for i, entry in enumerate(entries)]


def _parse_rule(path: Path, index: int, entry: Any) -> Rule:
    label = entry.get("id", f"#{index + 1}") if isinstance(entry, dict) else f"#{index + 1}"

    def fail(problem: str) -> PerfscopeError:
        return PerfscopeError(f"{path}: rule {label}: {problem}")

    if not isinstance(entry, dict):
        raise fail("not a table")
    missing = [key for key in _REQUIRED if not isinstance(entry.get(key), str) or not entry[key]]
    if missing:
        raise fail(f"missing or empty text field(s): {', '.join(missing)}")
    unknown = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise fail(f"unknown field(s): {', '.join(unknown)}")
    if not _ID.match(entry["id"]):
        raise fail("id must be a class prefix and three digits, like DATA001")
    if not _NAME.match(entry["name"]):
        raise fail("name must be kebab-case, like dataloader-starvation")
    if entry["class"] not in CLASSES:
        raise fail(f"class must be one of {', '.join(CLASSES)}")
    if entry["severity"] not in SEVERITIES:
        raise fail(f"severity must be one of {', '.join(SEVERITIES)}")
    params = entry.get("params", {})
    if not isinstance(params, dict) or not all(
        isinstance(v, (int, float, str, bool)) for v in params.values()
    ):
        raise fail("params must be a table of numbers, strings or booleans")
    doc = entry.get("doc", {})
    if not isinstance(doc, dict) or set(doc) - set(DOC_SECTIONS):
        raise fail(f"doc may only have the sections {', '.join(DOC_SECTIONS)}")
    requires = entry.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise fail("requires must be a list of collector names")
    severity_if = entry.get("severity_if", {})
    if (
        not isinstance(severity_if, dict)
        or set(severity_if) - set(SEVERITIES)
        or not all(isinstance(v, str) and v for v in severity_if.values())
    ):
        raise fail(f"severity_if must map severities ({', '.join(SEVERITIES)}) to conditions")
    _check_templates(entry, fail)
    return Rule(
        id=entry["id"],
        name=entry["name"],
        cls=entry["class"],
        severity=entry["severity"],
        when=entry["when"],
        title=entry["title"],
        evidence=entry["evidence"],
        fix=entry["fix"],
        snippet=entry.get("snippet", ""),
        saving=entry.get("saving", ""),
        requires=tuple(requires),
        params=params,
        severity_if=severity_if,
        doc=doc,
        source=Path(path),
    )


def _check_templates(entry: dict[str, Any], fail: Any) -> None:
    from jinja2 import TemplateSyntaxError

    from perfscope.rules.engine import sandbox

    env = sandbox()
    expressions = {key: entry.get(key) for key in ("when", "saving")}
    expressions.update({f"severity_if.{k}": v for k, v in entry.get("severity_if", {}).items()})
    for key, text in expressions.items():
        if text:
            try:
                env.compile_expression(text)
            except TemplateSyntaxError as exc:
                raise fail(f"{key}: not a valid expression ({exc.message})") from None
    for key in ("title", "evidence", "fix", "snippet"):
        try:
            env.parse(entry.get(key, ""))
        except TemplateSyntaxError as exc:
            raise fail(f"{key}: not a valid template ({exc.message})") from None
