"""`perfscope merge`: one record from the run directories of several hosts (docs/scaling.md).

Each host's `perfscope run` writes a run directory whose record lists its ranks' summaries. The
merge keeps the record holding rank 0 whole (its steps, samples and collectors stay those of
rank 0, so single-process consumers keep working) and takes only `ranks` and `run` from the
others: memory is one full record plus a few hundred bytes per rank.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from perfscope.analysis.ranks import failed_rank, latest_attempts
from perfscope.errors import PerfscopeError
from perfscope.record import Record, load_record

RUN_END_KEYS = ("exit", "exit_code", "signal", "exception")


def merge_runs(run_dirs: list[Path]) -> tuple[Record, Path]:
    """The merged record (metrics and findings empty: diagnose it next), and the run directory
    of rank 0, whose files (op trace, stacks) the record names."""
    if not run_dirs:
        raise PerfscopeError("no run directory to merge; usage: perfscope merge DIR... -o OUT")
    parts = [_part(path) for path in run_dirs]
    ranks = _all_ranks(parts)
    base_path = min(parts, key=lambda p: min(r["rank"] for r in p[2]))[0]
    base = load_record(base_path)  # read again, whole: the only full record kept in memory
    run = _merged_run(base.run, [p[1] for p in parts], ranks, [p[0] for p in parts])
    return replace(base, run=run, ranks=ranks, metrics={}, findings=[]), base_path


def _part(path: Path) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    """(path, run, ranks) of one run directory; the rest of its record is dropped at once."""
    record = load_record(path)
    if not record.ranks:
        raise PerfscopeError(
            f"{path}: not a distributed run (its record has no ranks); perfscope merge takes the "
            "run directories of torchrun runs (perfscope run --nproc-per-node N, or -- torchrun)"
        )
    return path, record.run, record.ranks


def _all_ranks(parts: list[tuple[Path, dict[str, Any], list[dict[str, Any]]]]) -> list[dict]:
    seen: dict[tuple[Any, ...], Path] = {}
    ranks = []
    for path, _, summaries in parts:
        for summary in summaries:
            key = (summary.get("host"), summary["rank"], summary.get("pid"), summary.get("restart"))
            if key in seen:
                raise PerfscopeError(
                    f"rank {summary['rank']} of host {summary.get('host')} (pid "
                    f"{summary.get('pid')}) is in both {seen[key]} and {path}; give each run "
                    "directory once"
                )
            seen[key] = path
            ranks.append(summary)
    ranks.sort(key=lambda r: (r["rank"], r.get("restart") or 0, str(r.get("host"))))
    return ranks


def _merged_run(
    base: dict[str, Any], runs: list[dict[str, Any]], ranks: list[dict], paths: list[Path]
) -> dict[str, Any]:
    """rank 0's run, over the span of every host's run, ending as the run of the failed rank."""
    run = dict(base)
    starts = [_time(r["started_at"]) for r in runs if r.get("started_at")]
    ends = [_time(r["ended_at"]) for r in runs if r.get("ended_at")]
    if starts and ends:
        run["started_at"] = min(starts).isoformat(timespec="milliseconds")
        run["ended_at"] = max(ends).isoformat(timespec="milliseconds")
        run["duration_s"] = round((max(ends) - min(starts)).total_seconds(), 4)
    failed = [r for r in runs if r.get("exit") != "ok"]
    if failed:
        culprit = failed_rank(latest_attempts(ranks))
        owner = _run_of(culprit, runs) if culprit is not None else None
        run.update({key: (owner or failed[0]).get(key) for key in RUN_END_KEYS})
    names = ", ".join(str(p) for p in paths)
    run["notes"] = [*run.get("notes", []), f"merged from {len(paths)} run directories: {names}"]
    return run


def _run_of(rank: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run whose exception is this rank's, else the first that failed on its host."""
    for run in runs:
        message = ((run.get("exception") or {}).get("message")) or ""
        if message.startswith(f"rank {rank['rank']}: "):
            return run
    return None


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)
