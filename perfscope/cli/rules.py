"""`perfscope rules list|explain`: the rules a run would use, and each one's documentation."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

import click

from perfscope.errors import PerfscopeError
from perfscope.rules.model import CLASSES

_rule_dirs_option = click.option(
    "--rules",
    "rule_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A folder of extra rule files (repeatable).",
)
_config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The config file (default: the nearest perfscope.toml or pyproject.toml).",
)


@click.group("rules")
def rules_command() -> None:
    """The diagnosis rules: list them, or explain one."""


@rules_command.command("list")
@click.option("--class", "cls", type=click.Choice(CLASSES), help="Only the rules of this class.")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout instead of a table.")
@_rule_dirs_option
@_config_option
def list_command(
    cls: str | None, as_json: bool, rule_dirs: tuple[Path, ...], config_file: Path | None
) -> int:
    """List the rules: ID, name, class, severity and title (dimmed: not selected)."""
    from perfscope.rules.docs import plain_title

    config = _config(config_file, rule_dirs)
    rules = sorted(config.all_rules(), key=lambda r: r.id)
    rows = [
        {
            "id": rule.id,
            "name": rule.name,
            "class": rule.cls,
            "severity": rule.severity,
            "title": plain_title(rule),
            "selected": config.selection.enabled(rule.id),
            "source": str(rule.source),
        }
        for rule in rules
        if cls is None or rule.cls == cls
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
    return 0


@rules_command.command("explain")
@click.argument("rule_id")
@_rule_dirs_option
@_config_option
def explain_command(rule_id: str, rule_dirs: tuple[Path, ...], config_file: Path | None) -> int:
    """Explain RULE_ID: what it detects, why it matters, example, fix, options, references."""
    from perfscope.rules.docs import rule_page

    config = _config(config_file, rule_dirs)
    rules = {rule.id: rule for rule in config.all_rules()}
    wanted = rule_id.upper()
    if wanted not in rules:
        close = difflib.get_close_matches(wanted, list(rules), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see: perfscope rules list"
        raise PerfscopeError(f"no rule {rule_id}{hint}")
    page = rule_page(rules[wanted], config.params.get(wanted))
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(page))
    else:
        click.echo(page, nl=False)
    return 0


def _config(config_file: Path | None, rule_dirs: tuple[Path, ...]):  # noqa: ANN202
    from perfscope.rules.config import resolve_config

    return resolve_config(config_file, extra_rule_dirs=list(rule_dirs))


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("ID", "Name", "Class", "Severity", "Title", box=None, header_style="bold")
    for row in rows:
        style = None if row["selected"] else "dim"
        cells = (row["id"], row["name"], row["class"], row["severity"], row["title"])
        table.add_row(*cells, style=style)
    Console(width=None if sys.stdout.isatty() else 160).print(table, markup=False)
