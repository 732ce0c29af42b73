"""The command line: thin click commands; errors leave as one line and an exit code."""

from __future__ import annotations

import sys

import click

from perfscope._version import __version__
from perfscope.cli.analyze import analyze_command
from perfscope.cli.check import check_command
from perfscope.cli.compare import compare_command
from perfscope.cli.merge import merge_command
from perfscope.cli.report import report_command
from perfscope.cli.rules import rules_command
from perfscope.cli.run import run_command
from perfscope.errors import PerfscopeError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="perfscope")
def cli() -> None:
    """perfscope: why is my PyTorch run slow, and what should I change?

    \b
    Exit codes: perfscope run exits as the script did; other commands exit 0 on
    success, 1 on failure, 2 on a usage or input error; perfscope check --strict
    exits 3 when a baseline comparison is inconclusive.
    """


cli.add_command(run_command)
cli.add_command(report_command)
cli.add_command(rules_command)
cli.add_command(check_command)
cli.add_command(compare_command)
cli.add_command(merge_command)
cli.add_command(analyze_command)


def main() -> None:
    try:
        code = cli.main(standalone_mode=False)
    except PerfscopeError as exc:
        click.echo(f"perfscope: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("perfscope: aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "perfscope"
        click.echo(f"perfscope: error: {exc.format_message()} (see: {where} --help)", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"perfscope: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
