"""`perfscope report RUN_DIR`: re-render the report from the record alone."""

from __future__ import annotations

from pathlib import Path

import click

from perfscope.errors import PerfscopeError


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), help="Where to write the HTML report."
)
def report_command(run_dir: Path, out: Path | None) -> int:
    """Render RUN_DIR's record to HTML (default RUN_DIR/report.html)."""
    from perfscope.pipeline import render_html
    from perfscope.record import find_record, load_record

    source = find_record(run_dir)
    record = load_record(source)
    target = out or source.parent / "report.html"
    try:
        render_html(record, target)
    except PerfscopeError as exc:
        raise PerfscopeError(f"{source}: {exc}") from None
    click.echo(f"Report: {target}")
    return 0
