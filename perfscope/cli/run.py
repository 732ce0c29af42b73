"""`perfscope run`: SCRIPT [ARGS]..., -m MODULE [ARGS]..., or -- COMMAND [ARGS]..."""

from __future__ import annotations

from pathlib import Path

import click

from perfscope.errors import PerfscopeError

_VALUE_OPTIONS = {
    "-o",
    "--out",
    "-m",
    "--module",
    "--rules",
    "--select",
    "--ignore",
    "--config",
    "--host-interval",
    "--gpu-interval",
    "--pyspy-rate",
    "--trace-skip",
    "--trace-warmup",
    "--trace-steps",
    "--trace-max-mb",
    "--nproc-per-node",
}


class _RunCommand(click.Command):
    """Notes whether the program came after `--` (any command) or as SCRIPT (a Python file)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["perfscope.after_dashdash"] = _program_follows_dashdash(args)
        return super().parse_args(ctx, args)


def _program_follows_dashdash(args: list[str]) -> bool:
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--":
            return True
        elif arg in _VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return False
    return False


@click.command(
    "run",
    cls=_RunCommand,
    context_settings={"allow_interspersed_args": False},
)
@click.option("-m", "--module", metavar="MODULE", help="Run a module, like python -m.")
@click.option("-o", "--out", type=click.Path(path_type=Path), help="The run directory.")
@click.option(
    "--nproc-per-node",
    type=click.IntRange(1),
    metavar="N",
    help="Run N ranks of the script through torchrun (--standalone) on this machine.",
)
@click.option("-q", "--quiet", is_flag=True, help="No live status line and no summary.")
@click.option("--no-report", is_flag=True, help="Write the record but no HTML report.")
@click.option(
    "--live/--no-live",
    default=None,
    help="The live status line (default: on a terminal, not in CI).",
)
@click.option(
    "--host-interval",
    type=click.FloatRange(0.01, 60),
    default=0.2,
    show_default=True,
    help="Seconds between host CPU and memory samples.",
)
@click.option(
    "--gpu-interval",
    type=click.FloatRange(0.01, 60),
    default=0.2,
    show_default=True,
    help="Seconds between GPU (NVML) samples.",
)
@click.option("--pyspy/--no-pyspy", default=True, show_default=True, help="Python stacks (py-spy).")
@click.option(
    "--pyspy-rate", type=click.IntRange(1, 1000), default=50, show_default=True, help="Samples/s."
)
@click.option(
    "--trace/--no-trace", default=True, show_default=True, help="A torch.profiler op-trace window."
)
@click.option(
    "--trace-skip",
    type=click.IntRange(0),
    default=5,
    show_default=True,
    help="Steps before the op-trace window opens.",
)
@click.option(
    "--trace-warmup", type=click.IntRange(0), default=2, show_default=True, help="Warm-up steps."
)
@click.option(
    "--trace-steps", type=click.IntRange(1), default=5, show_default=True, help="Steps recorded."
)
@click.option(
    "--trace-max-mb",
    type=click.FloatRange(1),
    default=50.0,
    show_default=True,
    help="Largest op trace kept (uncompressed MB).",
)
@click.option(
    "--rules",
    "rule_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A folder of extra rule files (repeatable).",
)
@click.option("--select", metavar="IDS", help="Rule ID prefixes to run, comma-separated.")
@click.option("--ignore", metavar="IDS", help="Rule ID prefixes to skip, comma-separated.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The config file (default: the nearest perfscope.toml or pyproject.toml).",
)
@click.argument("program", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run_command(
    ctx: click.Context,
    module: str | None,
    out: Path | None,
    nproc_per_node: int | None,
    quiet: bool,
    no_report: bool,
    live: bool | None,
    host_interval: float,
    gpu_interval: float,
    pyspy: bool,
    pyspy_rate: int,
    trace: bool,
    trace_skip: int,
    trace_warmup: int,
    trace_steps: int,
    trace_max_mb: float,
    rule_dirs: tuple[Path, ...],
    select: str | None,
    ignore: str | None,
    config_file: Path | None,
    program: tuple[str, ...],
) -> int:
    """Run a Python script (or module, or any command) and explain its performance.

    \b
      perfscope run train.py --lr 3e-4
      perfscope run -m mypkg.train --epochs 1
      perfscope run -o runs/a -- torchrun --nproc-per-node 2 train.py
      perfscope run --nproc-per-node 2 train.py

    The script sees what `python SCRIPT ARGS` shows it; perfscope exits as the script did.
    """
    from perfscope.options import CollectorOptions
    from perfscope.paths import default_run_dir
    from perfscope.rules.config import parse_selectors, resolve_config
    from perfscope.supervisor.launch import (
        command_target,
        module_target,
        script_target,
        torchrun_target,
    )
    from perfscope.supervisor.signals import exit_like
    from perfscope.supervisor.supervisor import RunOptions, supervise

    if module is not None:
        target = module_target(module, list(program))
    elif ctx.meta.get("perfscope.after_dashdash"):
        target = command_target(list(program))
    elif program:
        target = script_target(program[0], list(program[1:]))
    else:
        raise PerfscopeError("nothing to run; usage: perfscope run [OPTIONS] SCRIPT [ARGS]...")
    if nproc_per_node is not None:
        target = torchrun_target(target, nproc_per_node)
    config = resolve_config(  # before the script starts: a bad config must not cost a run
        config_file,
        select=parse_selectors(select),
        ignore=parse_selectors(ignore),
        extra_rule_dirs=list(rule_dirs),
    )
    run_dir = out if out is not None else default_run_dir(target.label)
    options = RunOptions(
        quiet=quiet,
        report=not no_report,
        live=False if quiet else live,
        config=config,
        collectors=CollectorOptions(
            host_interval_s=host_interval,
            gpu_interval_s=gpu_interval,
            pyspy=pyspy,
            pyspy_rate=pyspy_rate,
            trace=trace,
            trace_skip=trace_skip,
            trace_warmup=trace_warmup,
            trace_active=trace_steps,
            trace_max_mb=trace_max_mb,
        ),
    )
    return exit_like(supervise(target, run_dir.resolve(), options))
