"""`perfscope report RUN_DIR`: re-render the report from the record alone."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), help="Where to write the HTML report."
)
def report_command(run_dir: Path, out: Path | None) -> int:
    """Render RUN_DIR's record to HTML (default RUN_DIR/report.html)."""
    from perfscope.pipeline import render_html
    from perfscope.record import find_record, load_record

    record = load_record(run_dir)
    target = out or find_record(run_dir).parent / "report.html"
    render_html(record, target)
    click.echo(f"Report: {target}")
    return 0
