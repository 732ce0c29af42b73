"""Rule documentation as markdown, from the rule files: `perfscope rules explain` and docs/rules/.

python -m perfscope.rules.docs docs/rules    # regenerate the pages (idempotent)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from perfscope.paths import rules_dir
from perfscope.rules.model import Rule

GENERATED = "<!-- Generated from rules/*.toml by `python -m perfscope.rules.docs docs/rules`. -->"
SECTIONS = (
    ("what", "What it detects"),
    ("why", "Why it matters"),
    ("example", "Example"),
    ("fix", "Fix"),
    ("options", "Options"),
    ("references", "References"),
)
_EXPRESSION = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.S)
_STATEMENT = re.compile(r"\{%.*?%\}", re.S)


def plain_title(rule: Rule) -> str:
    """The title template on one line, its values shown as `{metric}`: `waits {data.wait_frac}`."""
    text = _STATEMENT.sub("", rule.title)
    text = _EXPRESSION.sub(lambda m: "{" + m.group(1).split("|")[0].strip() + "}", text)
    return " ".join(text.split())


def rule_page(rule: Rule, overrides: dict[str, Any] | None = None) -> str:
    """One rule's page: summary, the six doc sections, its condition and its parameters."""
    lines = [
        f"# {rule.id}: {rule.name}",
        "",
        f"**Class:** {rule.cls} · **Severity:** {rule.severity}",
        "",
        f"> {plain_title(rule)}",
        "",
    ]
    for key, heading in SECTIONS:
        lines += [f"## {heading}", "", rule.doc.get(key, "").strip() or "(not documented)", ""]
    lines += ["## Condition", "", "```jinja", rule.when.strip(), "```", ""]
    for level, condition in rule.severity_if.items():
        lines += [f"Severity becomes **{level}** when: `{' '.join(condition.split())}`", ""]
    if rule.saving:
        lines += [f"Estimated saving per step (ms): `{rule.saving.strip()}`", ""]
    if rule.requires:
        lines += [f"Needs the collector(s): {', '.join(rule.requires)}.", ""]
    lines += ["## Parameters", "", *_params_table(rule, overrides or {}), ""]
    return "\n".join(lines).rstrip() + "\n"


def index_page(rules: list[Rule]) -> str:
    lines = [
        GENERATED,
        "",
        "# Rules",
        "",
        "Select or ignore them by ID prefix in `[tool.perfscope]` of pyproject.toml or in a",
        "perfscope.toml; `perfscope rules explain ID` shows a page in the terminal.",
        "",
        "| ID | Name | Class | Severity | Title |",
        "|----|------|-------|----------|-------|",
    ]
    for rule in sorted(rules, key=lambda r: r.id):
        title = plain_title(rule).replace("|", "\\|")
        lines.append(
            f"| [{rule.id}]({rule.id}.md) | {rule.name} | {rule.cls} | {rule.severity} | {title} |"
        )
    writing = (rules_dir() / "WRITING.md").read_text(encoding="utf-8")
    return "\n".join(lines) + "\n\n" + writing


def generate(folder: Path, rules: list[Rule] | None = None) -> list[Path]:
    """Writes index.md and one page per rule; removes the pages of rules that no longer exist."""
    if rules is None:
        from perfscope.rules.loader import load_rules

        rules = load_rules()
    folder.mkdir(parents=True, exist_ok=True)
    pages = {"index.md": index_page(rules)}
    pages.update({f"{r.id}.md": f"{GENERATED}\n\n{rule_page(r)}" for r in rules})
    for stale in folder.glob("*.md"):
        if stale.name not in pages:
            stale.unlink()
    written = []
    for name, text in sorted(pages.items()):
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _params_table(rule: Rule, overrides: dict[str, Any]) -> list[str]:
    if not rule.params:
        return ["None."]
    rows = ["| Name | Default |" + (" Configured |" if overrides else ""), "|---|---|"]
    rows[1] += "---|" if overrides else ""
    for name, default in rule.params.items():
        row = f"| `{name}` | `{default!r}` |"
        if overrides:
            row += f" `{overrides[name]!r}` |" if name in overrides else " |"
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m perfscope.rules.docs FOLDER", file=sys.stderr)
        return 2
    written = generate(Path(args[0]))
    print(f"{len(written)} pages in {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
