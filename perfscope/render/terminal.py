"""The short summary printed on stderr when a run ends."""

from __future__ import annotations

from pathlib import Path

from perfscope.record import Record

_EXIT_TEXT = {
    "ok": "finished",
    "error": "failed",
    "oom": "ran out of memory",
    "signal": "was stopped by a signal",
    "killed": "was killed (SIGKILL, as the kernel's OOM killer does)",
}
_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def summary_lines(record: Record, run_dir: Path, report: Path | None) -> list[str]:
    """The summary as rich-markup lines."""
    run, metrics = record.run, record.metrics
    lines = [f"[bold]perfscope[/]: the run {_exit_text(run)}."]
    if record.steps:
        lines.append(
            f"  {len(record.steps)} steps ({run.get('step_method')}), step time "
            f"p50 {metrics.get('steps.time_ms_p50', 0):.1f} ms, "
            f"p90 {metrics.get('steps.time_ms_p90', 0):.1f} ms, "
            f"data wait {metrics.get('data.wait_frac', 0) * 100:.1f}%"
        )
    else:
        lines.append(
            "  No steps found: call perfscope.step() at the end of each step to mark them."
        )
    for finding in record.findings[:3]:
        style = _SEVERITY_STYLE.get(finding["severity"], "")
        lines.append(
            f"  [{style}]{finding['severity']}[/] {finding['id']} {_escape(finding['title'])}"
        )
    if len(record.findings) > 3:
        lines.append(f"  ... and {len(record.findings) - 3} more findings in the report")
    where = report if report is not None else run_dir / "record.json"
    lines.append(f"  {'Report' if report else 'Record'}: {where}")
    return lines


def print_summary(record: Record, run_dir: Path, report: Path | None) -> None:
    from rich.console import Console

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    for line in summary_lines(record, run_dir, report):
        console.print(line)


def _exit_text(run: dict) -> str:
    text = _EXIT_TEXT.get(run.get("exit", ""), str(run.get("exit")))
    if run.get("exit") == "error" and run.get("exception"):
        text += f" with {run['exception']['type']}"
    elif run.get("exit") == "error":
        text += f" with exit code {run.get('exit_code')}"
    elif run.get("exit") == "signal":
        text += f" ({run.get('signal')})"
    return _escape(text)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
