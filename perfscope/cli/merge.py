"""`perfscope merge DIR... -o OUT`: one record and report from several hosts' run directories."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("merge")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), required=True, help="The merged run directory."
)
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
@click.option("--no-report", is_flag=True, help="Write the record but no HTML report.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The config file (default: the nearest perfscope.toml or pyproject.toml).",
)
def merge_command(
    run_dirs: tuple[Path, ...], out: Path, quiet: bool, no_report: bool, config_file: Path | None
) -> int:
    """Merge the run directories of a multi-node torchrun run (one per host) into one.

    \b
      perfscope merge runs/node0 runs/node1 -o runs/all

    Only each record's per-rank summaries (and rank 0's record) are read; the merged
    directory gets a record with every rank, the distributed findings, and a report.
    """
    from perfscope.distributed.merge import merge_runs
    from perfscope.errors import PerfscopeError
    from perfscope.pipeline import diagnose, render_html
    from perfscope.render.terminal import print_summary
    from perfscope.rules.config import resolve_config

    config = resolve_config(config_file)
    merged, base_dir = merge_runs(list(run_dirs))
    record = diagnose(merged, config)
    if out.exists() and not out.is_dir():
        raise PerfscopeError(f"{out} is a file; -o/--out takes a directory")
    out.mkdir(parents=True, exist_ok=True)
    record.save(out)
    report = None if no_report else render_html(record, out / "report.html", run_dir=base_dir)
    if not quiet:
        print_summary(record, out, report)
    return 0
