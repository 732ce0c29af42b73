"""`perfscope compare BASE NEW`: the step-time verdict, metric deltas and finding changes, on the
terminal and as an HTML page (default NEW/compare.html)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from perfscope.check.stats import DEFAULT_QUANTILE, DEFAULT_TOLERANCE, DEFAULT_WARMUP
from perfscope.errors import PerfscopeError


@click.command("compare")
@click.argument("base_dir", metavar="BASE", type=click.Path(path_type=Path))
@click.argument("new_dir", metavar="NEW", type=click.Path(path_type=Path))
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), help="The HTML page (default NEW/compare.html)."
)
@click.option("--no-html", is_flag=True, help="Only the terminal table.")
@click.option("--all", "show_all", is_flag=True, help="List unchanged metrics too.")
@click.option(
    "--tolerance",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=DEFAULT_TOLERANCE,
    show_default=True,
    help="A change of the step-time quantile within ±this fraction is unchanged.",
)
@click.option(
    "--quantile",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=DEFAULT_QUANTILE,
    show_default=True,
    help="The step-time quantile compared (0.5: medians).",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=DEFAULT_WARMUP,
    show_default=True,
    help="Steps left out at the start of each run.",
)
def compare_command(
    base_dir: Path,
    new_dir: Path,
    out: Path | None,
    no_html: bool,
    show_all: bool,
    tolerance: float,
    quantile: float,
    warmup: int,
) -> int:
    """Compare the run NEW to the run BASE: step times, metrics, findings (exit 0)."""
    from perfscope.check.stats import compare_steps, step_times
    from perfscope.record import find_record, load_record

    base, new = load_record(base_dir), load_record(new_dir)
    times = (step_times(base.steps, warmup), step_times(new.steps, warmup))
    comparison = compare_steps(*times, tolerance=tolerance, quantile=quantile)
    _print_terminal(base, new, comparison, show_all)
    if not no_html:
        from perfscope.render.compare_html import render_compare

        target = out or find_record(new_dir).parent / "compare.html"
        page = render_compare(base, new, comparison, times, (str(base_dir), str(new_dir)))
        try:
            target.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise PerfscopeError(
                f"{target}: cannot write the comparison ({exc.strerror})"
            ) from None
        click.echo(f"Comparison: {target}")
    return 0


def _print_terminal(base, new, comparison, show_all: bool) -> None:  # noqa: ANN001
    from rich.console import Console
    from rich.table import Table

    from perfscope.check.diff import finding_changes, metric_deltas

    console = Console(width=None if sys.stdout.isatty() else 120, highlight=False)
    c = comparison
    if c.change is not None:
        console.print(
            f"step time {c.verdict.upper()}: {c.statistic} {c.base_ms:.2f} ms -> "
            f"{c.new_ms:.2f} ms ({c.change:+.1%})",
            markup=False,
        )
    else:
        console.print(f"step time {c.verdict.upper()}", markup=False)
    console.print(f"  {c.reason}", markup=False)
    table = Table("metric", "base", "new", "change", box=None, header_style="bold")
    for d in metric_deltas(base, new, changed_only=not show_all):
        table.add_row(d.name, _num(d.base), _num(d.new), _change(d))
    console.print(table)
    changes = finding_changes(base, new)
    for label, key in (("appeared", "appeared"), ("went away", "gone")):
        for f in changes[key]:
            console.print(f"finding {label}: {f.get('id')} {f.get('title')}", markup=False)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _change(d) -> str:  # noqa: ANN001
    if d.change is not None:
        return f"{d.change:+.1%}"
    if d.delta is not None:
        return f"{d.delta:+g}"
    return "new" if d.base is None else "gone"
