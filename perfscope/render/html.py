"""The HTML report: one self-contained file from reports/templates/, every run string escaped."""

from __future__ import annotations

import functools
from typing import Any

from perfscope import __version__
from perfscope.paths import templates_dir
from perfscope.record import Record

_MAX_BARS = 600


@functools.lru_cache(maxsize=1)
def _environment():  # noqa: ANN202 - jinja2 is imported lazily
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(record: Record) -> str:
    template = _environment().get_template("report.html")
    return template.render(
        record=record,
        run=record.run,
        metrics=record.metrics,
        findings=record.findings,
        step_bars=step_bars(record.steps),
        version=__version__,
    )


def step_bars(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Bar geometry for the step-time chart: at most _MAX_BARS bars, each the max of its bucket."""
    if not steps:
        return {"bars": [], "max_ms": 0.0}
    bucket = max(1, -(-len(steps) // _MAX_BARS))
    bars = []
    for i in range(0, len(steps), bucket):
        group = steps[i : i + bucket]
        worst = max(group, key=lambda s: s["duration_ms"])
        bars.append(
            {"index": worst["index"], "ms": worst["duration_ms"], "wait": worst["data_wait_ms"]}
        )
    return {"bars": bars, "max_ms": max(b["ms"] for b in bars) or 1.0}
