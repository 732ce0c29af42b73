"""`perfscope check RUN_DIR`: the CI gate. Budgets on metrics, findings, a baseline comparison;
exit 0 pass, 1 fail, 2 usage or input error, 3 inconclusive under --strict (docs/check.md)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import click

from perfscope.check import FORMATS
from perfscope.errors import PerfscopeError


@click.command("check")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The config file (default: the nearest perfscope.toml or pyproject.toml).",
)
@click.option("--baseline", type=click.Path(path_type=Path), help="A run to compare step times to.")
@click.option("--max", "maxima", multiple=True, metavar="METRIC=V", help="Fail above V.")
@click.option("--min", "minima", multiple=True, metavar="METRIC=V", help="Fail below V.")
@click.option(
    "--fail-on",
    metavar="SEVERITY|IDS",
    help="Findings that fail: a severity (info, warning, error) and above, never, "
    "or rule ID prefixes like DATA,MEM001 (default: error).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write there, not stdout.")
@click.option(
    "--tolerance",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Baseline: a change within ±this fraction is unchanged (default 0.05).",
)
@click.option(
    "--warmup", type=click.IntRange(min=0), help="Baseline: steps left out first (default 5)."
)
@click.option(
    "--quantile",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Baseline: the step-time quantile compared (default 0.25; 0.5: medians).",
)
@click.option("--strict", is_flag=True, default=None, help="Exit 3 on an inconclusive comparison.")
def check_command(
    run_dir: Path,
    config_file: Path | None,
    baseline: Path | None,
    maxima: tuple[str, ...],
    minima: tuple[str, ...],
    fail_on: str | None,
    fmt: str,
    output: Path | None,
    tolerance: float | None,
    warmup: int | None,
    quantile: float | None,
    strict: bool | None,
) -> int:
    """Gate RUN_DIR on budgets, findings and a baseline run; exit 0 pass, 1 fail, 3 inconclusive."""
    from perfscope.check.formats import markdown, render
    from perfscope.check.gate import gate
    from perfscope.check.outcome import exit_code
    from perfscope.record import load_record

    settings = _settings(config_file, maxima, minima)
    overrides = {
        "fail_on": fail_on,
        "tolerance": tolerance,
        "warmup": warmup,
        "quantile": quantile,
        "strict": strict,
    }
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    record = load_record(run_dir)
    base = load_record(baseline) if baseline is not None else None
    outcomes = gate(record, settings, base)
    text = render(fmt, outcomes, str(run_dir), settings.strict)
    _write(text, output)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        _append(Path(summary), markdown(outcomes, str(run_dir), settings.strict))
    return exit_code(outcomes, settings.strict)


def _settings(config_file: Path | None, maxima: tuple[str, ...], minima: tuple[str, ...]):  # noqa: ANN202
    from perfscope.check.settings import settings_from_table, with_cli_bounds
    from perfscope.rules.config import config_table

    path, table, prefix = config_table(config_file)
    settings = settings_from_table(table.get("check", {}), str(path), prefix)
    return replace(with_cli_bounds(settings, maxima, minima), config=path)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PerfscopeError(f"{output}: cannot write the output ({exc.strerror})") from None


def _append(path: Path, text: str) -> None:
    try:
        with path.open("a", encoding="utf-8") as summary:
            summary.write(text + "\n")
    except OSError as exc:
        raise PerfscopeError(
            f"$GITHUB_STEP_SUMMARY {path}: cannot append ({exc.strerror})"
        ) from None
