"""`perfscope check` output: text, json, junit, github (annotations) and markdown. They only
format the outcomes; nothing is computed here."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from perfscope.check import FORMATS
from perfscope.check.outcome import Outcome, exit_code, overall

__all__ = ["FORMATS", "render"]
_MARK = {"pass": "PASS", "fail": "FAIL", "inconclusive": "WARN"}  # WARN: as ::warning
_ICON = {"pass": "✅", "fail": "❌", "inconclusive": "⚠️"}


def render(fmt: str, outcomes: list[Outcome], run: str, strict: bool) -> str:
    renderer = {
        "text": text,
        "json": as_json,
        "junit": junit,
        "github": github,
        "markdown": markdown,
    }[fmt]
    return renderer(outcomes, run, strict)


def text(outcomes: list[Outcome], run: str, strict: bool) -> str:
    lines = [f"perfscope check {run}"]
    lines += [f"  {_MARK[o.status]}  {o.name}: {o.message}" for o in outcomes]
    lines.append(_verdict_line(outcomes, strict))
    return "\n".join(lines) + "\n"


def as_json(outcomes: list[Outcome], run: str, strict: bool) -> str:
    payload = {
        "run": run,
        "status": overall(outcomes, strict),
        "exit_code": exit_code(outcomes, strict),
        "strict": strict,
        "checks": [o.to_dict() for o in outcomes],
    }
    return json.dumps(payload, indent=2) + "\n"


def junit(outcomes: list[Outcome], run: str, strict: bool) -> str:
    """One test case per outcome; an inconclusive one is skipped, or failed under --strict."""
    counts = {s: sum(o.status == s for o in outcomes) for s in ("fail", "inconclusive")}
    suite = ET.Element(
        "testsuite",
        name="perfscope.check",
        tests=str(len(outcomes)),
        failures=str(counts["fail"] + (counts["inconclusive"] if strict else 0)),
        skipped=str(0 if strict else counts["inconclusive"]),
        errors="0",
    )
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="run", value=run)
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname=f"perfscope.{o.kind}", name=o.name)
        if o.status == "fail" or (o.status == "inconclusive" and strict):
            ET.SubElement(case, "failure", message=o.message, type=o.status).text = o.message
        elif o.status == "inconclusive":
            ET.SubElement(case, "skipped", message=o.message)
        else:
            ET.SubElement(case, "system-out").text = o.message
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def github(outcomes: list[Outcome], run: str, strict: bool) -> str:
    """Workflow commands: ::error for a failure, ::warning for an inconclusive comparison."""
    lines = []
    for o in outcomes:
        if o.status == "fail" or (o.status == "inconclusive" and strict):
            level = "error"
        elif o.status == "inconclusive":
            level = "warning"
        else:
            continue
        title = _escape_property(f"perfscope {o.kind}: {o.name}")
        lines.append(f"::{level} title={title}::{_escape_data(o.message)}")
    lines.append(_verdict_line(outcomes, strict))
    return "\n".join(lines) + "\n"


def markdown(outcomes: list[Outcome], run: str, strict: bool) -> str:
    status = overall(outcomes, strict)
    lines = [
        f"### perfscope check: {_ICON[status]} {status}",
        "",
        f"Run: `{run}`",
        "",
        "| | check | result |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {_ICON[o.status]} | {_cell(o.name)} | {_cell(o.message)} |" for o in outcomes]
    return "\n".join(lines) + "\n"


def _verdict_line(outcomes: list[Outcome], strict: bool) -> str:
    n = {s: sum(o.status == s for o in outcomes) for s in _MARK}
    code = exit_code(outcomes, strict)
    return (
        f"{overall(outcomes, strict)}: {n['pass']} passed, {n['fail']} failed, "
        f"{n['inconclusive']} inconclusive (exit {code})"
    )


def _escape_data(text: str) -> str:
    # GitHub's workflow-command escaping (actions/toolkit, command.ts)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
