"""A folder of per-rank traces: every trace is read and summarised in turn (one in memory at a
time), the lowest rank gives the record, and each rank's compact summary goes into
`record.ranks`, which analysis/ranks.py merges into the `dist.*` metrics (straggler, skew,
communication share)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from perfscope.analysis.metrics import percentile
from perfscope.errors import PerfscopeError
from perfscope.record import Record
from perfscope.traceimport.build import analyze_path
from perfscope.traceimport.reader import iter_trace_files


def analyze_folder(folder: Path) -> Record:
    files = list(iter_trace_files(folder))
    if not files:
        raise PerfscopeError(
            f"{folder}: no trace files (.json or .json.gz) in this folder; pass a trace file or "
            "the folder tensorboard_trace_handler wrote"
        )
    primary: Record | None = None
    summaries: list[dict[str, Any]] = []
    for i, path in enumerate(files):
        record = analyze_path(path)
        summary = rank_summary(record, default_rank=i)
        if any(s["rank"] == summary["rank"] for s in summaries):
            raise PerfscopeError(
                f"{path}: rank {summary['rank']} appears twice in {folder}; keep one trace per rank"
            )
        summaries.append(summary)
        if primary is None or summary["rank"] < primary.ranks[0]["rank"]:
            primary = replace(record, ranks=[summary])
    assert primary is not None
    summaries.sort(key=lambda s: s["rank"])
    run = {**primary.run, "argv": [str(folder)], "command": ["perfscope", "analyze", str(folder)]}
    run["notes"] = [
        *run.get("notes", []),
        f"{len(files)} rank traces in {folder}; the record shows rank {primary.ranks[0]['rank']}",
    ]
    return replace(primary, run=run, ranks=summaries)


def rank_summary(record: Record, default_rank: int) -> dict[str, Any]:
    """The rank's `ranks[]` entry (the fields analysis/ranks.py reads) from its trace record."""
    info = record.environment.get("distributed") or {}
    rank = info.get("rank") if isinstance(info.get("rank"), int) else default_rank
    times = [s["duration_ms"] for s in record.steps]
    series = (record.samples.get("trace") or {}).get("per_step") or {}
    comm = series.get("comm_us") or []
    overlap = sum(series.get("comm_overlap_us") or [])
    gpu = record.environment.get("gpu") or {}
    return {
        "rank": rank,
        "world_size": info.get("world_size"),
        "host": None,
        "exit": "ok",
        "exit_code": 0,
        "signal": None,
        "exception": None,
        "steps": len(times),
        "step_method": record.run.get("step_method"),
        "step_ms_p50": round(percentile(times, 50), 4) if times else None,
        "step_ms_p90": round(percentile(times, 90), 4) if times else None,
        "step_ms_mean": round(sum(times) / len(times), 4) if times else None,
        "data_wait_ms_mean": round(sum(s["data_wait_ms"] for s in record.steps) / len(times), 4)
        if times
        else None,
        "comm_ms_mean": round(sum(comm) / 1e3 / len(comm), 4) if comm else None,
        "comm_overlap_frac": round(overlap / sum(comm), 4) if sum(comm) > 0 else None,
        "mem_peak_mb": gpu.get("memory_reserved_peak_mb"),
        "trace": record.run.get("trace"),
    }
