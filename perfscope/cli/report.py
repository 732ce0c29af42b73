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
@click.option("--open", "open_it", is_flag=True, help="Open the report in the web browser.")
def report_command(run_dir: Path, out: Path | None, open_it: bool) -> int:
    """Render RUN_DIR's record to HTML (default RUN_DIR/report.html)."""
    from perfscope.pipeline import render_html
    from perfscope.record import find_record, load_record

    source = find_record(run_dir)
    record = load_record(source)
    target = out or source.parent / "report.html"
    try:
        render_html(record, target, run_dir=source.parent)
    except PerfscopeError as exc:
        raise PerfscopeError(f"{source}: {exc}") from None
    click.echo(f"Report: {target}")
    if open_it:
        open_in_browser(target)
    return 0


def open_in_browser(path: Path) -> None:
    """Opens the file in the user's browser (the BROWSER variable, else the system's default)."""
    import webbrowser

    uri = path.resolve().as_uri()
    try:
        opened = webbrowser.open(uri)
    except webbrowser.Error as exc:
        raise PerfscopeError(f"cannot open a browser ({exc}); open {uri} yourself") from None
    if not opened:
        raise PerfscopeError(
            f"no web browser found to open the report; open {uri} yourself "
            "(or set BROWSER to a browser command)"
        )
