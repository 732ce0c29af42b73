"""User configuration: `[tool.perfscope]` in pyproject.toml or a perfscope.toml (same schema).

    select = ["DATA", "MEM001"]        # rule ID prefixes; default: every rule
    ignore = ["DATA002"]
    extend-select = ["HOST"]
    rules = ["perf_rules"]             # folders of the user's rule files, relative to the file
    [params.DATA001]                   # [tool.perfscope.params.DATA001] in pyproject.toml
    wait_frac = 0.2
    [check]                            # perfscope check's budgets: read by perfscope.check
    "steps.time_ms_p50" = { max = 120 }

Selection is ruff's: the most specific (longest) matching prefix decides; at equal length `ignore`
wins over `select`. A malformed file is refused in one line naming the file, the key and what is
wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfscope.errors import PerfscopeError
from perfscope.rules.model import Rule

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

CONFIG_FILE = "perfscope.toml"
PYPROJECT = "pyproject.toml"
_KEYS = ("select", "ignore", "extend-select", "params", "rules", "check")
_SELECTOR = re.compile(r"^(ALL|[A-Z]+[0-9]{0,3})$")


@dataclass(frozen=True)
class Selection:
    """Which rules run: ID prefixes selected and ignored ("" selects every rule)."""

    select: tuple[str, ...] = ("",)
    ignore: tuple[str, ...] = ()

    def enabled(self, rule_id: str) -> bool:
        """The longest matching prefix decides; at equal length, ignore wins."""
        matches = [(len(p), False) for p in self.ignore if rule_id.startswith(p)]
        matches += [(len(p), True) for p in self.select if rule_id.startswith(p)]
        # max() keeps the first of equal keys, so ignore (listed first) wins a tie in length
        return bool(matches) and max(matches, key=lambda match: match[0])[1]


@dataclass(frozen=True)
class Config:
    """A run's resolved configuration: where it came from, rule folders, selection, parameters."""

    path: Path | None = None
    rule_dirs: tuple[Path, ...] = ()
    selection: Selection = field(default_factory=Selection)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def all_rules(self) -> list[Rule]:
        """Every rule: the built-in ones, then those of the configured folders."""
        from perfscope.rules.loader import load_rules

        return load_rules(list(self.rule_dirs))

    def selected_rules(self) -> list[Rule]:
        return [rule for rule in self.all_rules() if self.selection.enabled(rule.id)]


def find_config(start: Path) -> Path | None:
    """perfscope.toml, or a pyproject.toml with [tool.perfscope], nearest from `start` upward."""
    for folder in [start, *start.parents]:
        if (folder / CONFIG_FILE).is_file():
            return folder / CONFIG_FILE
        pyproject = folder / PYPROJECT
        if pyproject.is_file() and "perfscope" in _read(pyproject).get("tool", {}):
            return pyproject
    return None


def resolve_config(
    explicit: Path | None = None,
    start: Path | None = None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    extra_rule_dirs: list[Path] | None = None,
) -> Config:
    """The configuration of a run: the file (named or found), then the command line's overrides.

    `select`/`ignore` replace the file's lists; `extra_rule_dirs` come after the file's folders.
    When the configuration names rule folders or parameter overrides, every rule file is read
    here, before a run starts, to refuse a malformed one (or an override of no rule) up front.
    """
    path = explicit if explicit is not None else find_config((start or Path.cwd()).resolve())
    if explicit is not None and not explicit.is_file():
        raise PerfscopeError(f"{explicit}: no such config file")
    table, prefix = _table(path) if path is not None else ({}, "")
    where = str(path)
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        known = ", ".join(_KEYS)
        raise PerfscopeError(f"{where}: {prefix}{unknown[0]}: unknown key (known: {known})")
    selected = _selectors(table, "select", where, prefix) if "select" in table else [""]
    selected += _selectors(table, "extend-select", where, prefix)
    ignored = _selectors(table, "ignore", where, prefix)
    if select is not None:  # the command line replaces the file's lists, as in ruff
        selected = _check_selectors(select, "--select", "command line")
    if ignore is not None:
        ignored = _check_selectors(ignore, "--ignore", "command line")
    selection = Selection(select=tuple(selected), ignore=tuple(ignored))
    folders = _rule_dirs(table, path, prefix) + [Path(d) for d in extra_rule_dirs or []]
    config = Config(path, tuple(folders), selection, _params_table(table, where, prefix))
    if config.rule_dirs or config.params:
        # Only user rule files and overrides can be wrong here (the built-in rules are tested),
        # so only then are the rules read before the script starts (~70 ms of its start-up).
        _check_params(config, config.all_rules(), where, prefix)
    return config


def config_table(
    explicit: Path | None = None, start: Path | None = None
) -> tuple[Path | None, dict[str, Any], str]:
    """The config file (named, or found from `start` upward as for a run), its perfscope table,
    and the key prefix errors quote (`tool.perfscope.` in a pyproject.toml, else "")."""
    if explicit is not None and not explicit.is_file():
        raise PerfscopeError(f"{explicit}: no such config file")
    path = explicit if explicit is not None else find_config((start or Path.cwd()).resolve())
    if path is None:
        return None, {}, ""
    table, prefix = _table(path)
    return path, table, prefix


def parse_selectors(text: str | None) -> list[str] | None:
    """A comma-separated command-line list (`DATA,MEM001`); None when not given."""
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PerfscopeError(f"{path}: cannot read this config file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PerfscopeError(f"{path}: not valid TOML ({exc})") from None


def _table(path: Path) -> tuple[dict[str, Any], str]:
    data = _read(path)
    if path.name != PYPROJECT:
        return data, ""
    table = data.get("tool", {}).get("perfscope", {})
    if not isinstance(table, dict):
        raise PerfscopeError(f"{path}: tool.perfscope: must be a table")
    return table, "tool.perfscope."


def _selectors(table: dict[str, Any], key: str, where: str, prefix: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PerfscopeError(f"{where}: {prefix}{key}: must be a list of rule ID prefixes")
    return _check_selectors(value, f"{prefix}{key}", where)


def _check_selectors(values: list[str], key: str, where: str) -> list[str]:
    for value in values:
        if not _SELECTOR.match(value):
            raise PerfscopeError(
                f"{where}: {key}: {value!r} is not a rule ID prefix (like DATA, DATA0 or DATA001)"
            )
    return ["" if value == "ALL" else value for value in values]


def _rule_dirs(table: dict[str, Any], path: Path | None, prefix: str) -> list[Path]:
    value = table.get("rules", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PerfscopeError(f"{path}: {prefix}rules: must be a list of folder paths (strings)")
    base = path.parent if path is not None else Path.cwd()
    folders = [(base / folder).resolve() for folder in value]
    for folder, text in zip(folders, value, strict=True):
        if not folder.is_dir():
            raise PerfscopeError(f"{path}: {prefix}rules: {text!r} is not a folder ({folder})")
    return folders


def _params_table(table: dict[str, Any], where: str, prefix: str) -> dict[str, dict[str, Any]]:
    value = table.get("params", {})
    if not isinstance(value, dict):
        raise PerfscopeError(f"{where}: {prefix}params: must be a table of rule IDs")
    for rule_id, overrides in value.items():
        if not isinstance(overrides, dict):
            raise PerfscopeError(f"{where}: {prefix}params.{rule_id}: must be a table of params")
    return value


def _check_params(config: Config, loaded: list[Rule], where: str, prefix: str) -> None:
    rules = {rule.id: rule for rule in loaded}
    for rule_id, overrides in config.params.items():
        key = f"{prefix}params.{rule_id}"
        if rule_id not in rules:
            raise PerfscopeError(f"{where}: {key}: no rule {rule_id}")
        defaults = rules[rule_id].params
        for name, value in overrides.items():
            if name not in defaults:
                known = ", ".join(sorted(defaults)) or "none"
                raise PerfscopeError(f"{where}: {key}.{name}: no such param (known: {known})")
            if _kind(value) != _kind(defaults[name]):
                raise PerfscopeError(
                    f"{where}: {key}.{name}: must be a {_kind(defaults[name])}, "
                    f"like its default {defaults[name]!r}"
                )


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else type(value).__name__
