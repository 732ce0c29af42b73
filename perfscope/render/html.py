"""The HTML report: one self-contained file from reports/templates/, every run string escaped.

The tables come from perfscope.analysis.tables (and .stacks for py-spy's call tree); this module
only gathers them, turns them into plotly figures (perfscope.render.charts) and fills the
templates. Run strings reach the page two ways, both escaped: jinja2's autoescape in the markup,
and `json_for_script` for the chart data, which sits in a `<script type="application/json">`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from perfscope import __version__
from perfscope.analysis import stacks, tables
from perfscope.paths import templates_dir
from perfscope.record import Record
from perfscope.render import charts
from perfscope.render.plotly_assets import json_for_script, page_assets

CHARTS_SCRIPT = "report.js"
RULE_DOC_SECTIONS = (("what", "What it detects"), ("why", "Why it matters"), ("fix", "Fix"))


@functools.lru_cache(maxsize=1)
def template_environment():  # noqa: ANN202 - jinja2 is imported lazily
    """The jinja2 environment of reports/templates/ (autoescaped, strict), for every page."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@functools.lru_cache(maxsize=4)
def page_script(name: str) -> str:
    """A static script of the templates folder, as the exact text its CSP hash is taken over."""
    return (templates_dir() / name).read_text(encoding="utf-8").strip()


def render_report(
    record: Record, run_dir: Path | None = None, report_path: Path | None = None
) -> str:
    """The report's HTML. `run_dir` holds the files the record names (py-spy's stacks, the op
    trace); `report_path` is where the page will be, so its links to them are relative."""
    script = page_script(CHARTS_SCRIPT)
    context = report_context(record, run_dir, report_path)
    return (
        template_environment()
        .get_template("report.html")
        .render(**context, **page_assets(script), page_js=script)
    )


def report_context(
    record: Record, run_dir: Path | None = None, report_path: Path | None = None
) -> dict[str, Any]:
    """Everything report.html shows, tables and figures included."""
    ops = record.samples.get("ops") if isinstance(record.samples.get("ops"), dict) else None
    pyspy = record.samples.get("pyspy") if isinstance(record.samples.get("pyspy"), dict) else None
    tree = stacks.tree_from_run_dir(run_dir, record.collectors.get("pyspy") or {})
    step_table = tables.step_table(record.steps)
    breakdown = tables.step_breakdown(record.steps, ops)
    panels = tables.timeline_panels(record.samples, record.collectors)
    figures: dict[str, Any] = {}
    if record.steps:
        figures["chart-steps"] = charts.steps_figure(step_table)
        figures["chart-breakdown"] = charts.breakdown_figure(breakdown)
        figures["chart-throughput"] = charts.throughput_figure(
            tables.throughput_series(record.steps)
        )
    if panels:
        marks = tables.timeline_marks(record.steps, record.collectors)
        figures["chart-timeline"] = charts.timeline_figure(panels, marks)
    if tree and tree["total"]:
        figures["chart-icicle"] = charts.icicle_figure(tree)
    return {
        "record": record,
        "run": record.run,
        "metrics": record.metrics,
        "findings": record.findings,
        "rule_docs": rule_docs(tuple(f.get("id", "") for f in record.findings)),
        "step_table": step_table,
        "rank_rows": tables.rank_rows(
            record.ranks,
            record.metrics,
            straggler_found=any(f.get("id") == "DIST001" for f in record.findings),
        ),
        "breakdown": breakdown,
        "timeline_panels": panels,
        "ops": ops,
        "op_rows": tables.op_rows(ops) if ops else [],
        "sync_rows": tables.sync_rows(ops) if ops else [],
        "copy_rows": tables.copy_rows(ops) if ops else [],
        "trace_href": _sibling_href(record.collectors.get("ops"), "trace", run_dir, report_path),
        "pyspy": pyspy,
        "flame_href": _sibling_href(
            record.collectors.get("pyspy"), "speedscope", run_dir, report_path
        ),
        "figures": figures,
        "report_json": json_for_script({"charts": figures}),
        "version": __version__,
    }


@functools.lru_cache(maxsize=16)
def rule_docs(ids: tuple[str, ...]) -> dict[str, list[tuple[str, list[str]]]]:
    """The documentation of the built-in rules that fired, by ID, to embed in the report.

    Embedded rather than linked so it reads offline; a user's own rule has none here (the
    report shows `perfscope rules explain ID`, which finds it through the config).
    """
    from perfscope.errors import PerfscopeError
    from perfscope.rules.loader import load_rules

    try:
        rules = {rule.id: rule for rule in load_rules()}
    except PerfscopeError:
        return {}
    return {
        rule_id: [
            (heading, _paragraphs(rules[rule_id].doc[key]))
            for key, heading in RULE_DOC_SECTIONS
            if rules[rule_id].doc.get(key, "").strip()
        ]
        for rule_id in ids
        if rule_id in rules
    }


def _sibling_href(
    collector: dict[str, Any] | None, key: str, run_dir: Path | None, report_path: Path | None
) -> str | None:
    """A relative link from the report to a file of the run directory, when the file is there."""
    name = (collector or {}).get(key)
    if run_dir is None or not isinstance(name, str) or "/" in name or name.startswith("."):
        return None
    target = run_dir / name
    if not target.is_file():
        return None
    base = (report_path or run_dir / "report.html").resolve().parent
    return quote(os.path.relpath(target.resolve(), base))


def _paragraphs(text: str) -> list[str]:
    """Markdown-ish text as paragraphs: blank lines split them, single line breaks do not."""
    return [" ".join(block.split()) for block in text.strip().split("\n\n") if block.strip()]
