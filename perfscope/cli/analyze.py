"""`perfscope analyze PATH`: diagnose an existing torch.profiler/Kineto trace (docs/analyze.md)."""

from __future__ import annotations

import gc
from pathlib import Path

import click

from perfscope.errors import PerfscopeError


@click.command("analyze")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Run directory for record.json and report.html (default ./perfscope-runs/<name>-<time>).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only where the report is.")
@click.option("--no-report", is_flag=True, help="Write the record only, no HTML report.")
@click.option("--select", metavar="IDS", help="Rule ID prefixes to run, comma-separated.")
@click.option("--ignore", metavar="IDS", help="Rule ID prefixes to skip, comma-separated.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The config file (default: the nearest perfscope.toml or pyproject.toml).",
)
def analyze_command(
    path: Path,
    out: Path | None,
    quiet: bool,
    no_report: bool,
    select: str | None,
    ignore: str | None,
    config_file: Path | None,
) -> int:
    """Diagnose a torch.profiler (Kineto) trace: a .json or .json.gz file, or a folder of
    per-rank traces (tensorboard_trace_handler's output).

    \b
      perfscope analyze log/run1/host_1234.pt.trace.json.gz
      perfscope analyze -o runs/imported traces/
    """
    from perfscope.paths import default_run_dir
    from perfscope.pipeline import diagnose, render_html
    from perfscope.render.terminal import print_summary
    from perfscope.rules.config import parse_selectors, resolve_config
    from perfscope.traceimport.build import analyze_path
    from perfscope.traceimport.folder import analyze_folder

    config = resolve_config(
        config_file, select=parse_selectors(select), ignore=parse_selectors(ignore)
    )
    # A one-shot command holding a million small objects that all live to the end: the cyclic
    # GC would rescan them again and again (0.3-0.5 s of a 4 s run) for no garbage.
    gc.disable()
    if path.is_dir():
        record = analyze_folder(path)
    elif path.is_file():
        record = analyze_path(path)
    else:
        raise PerfscopeError(f"{path}: no such trace file or folder")
    record = diagnose(record, config)
    run_dir = out if out is not None else default_run_dir(_label(path))
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PerfscopeError(
            f"{run_dir}: cannot create the run directory: {exc.strerror}"
        ) from None
    record.save(run_dir)
    report = None if no_report else render_html(record, run_dir / "report.html")
    if quiet:
        click.echo(f"Report: {report}" if report else f"Record: {run_dir / 'record.json'}")
    else:
        print_summary(record, run_dir, report)
    return 0


def _label(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".json", ".trace", ".pt"):
        name = name.removesuffix(suffix)
    return (name or "trace")[:60]
