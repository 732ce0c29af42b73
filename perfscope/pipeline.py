"""One pipeline, in order: assemble the record, analyse, diagnose, render (DESIGN.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfscope.analysis.metrics import compute_metrics
from perfscope.analysis.steps import build_steps, flag_profiled
from perfscope.collectors.base import CollectorResult
from perfscope.events import event_files, read_events
from perfscope.exits import classify_exit
from perfscope.record import Record

if TYPE_CHECKING:
    from perfscope.rules.config import Config


@dataclass
class RunFacts:
    """What the supervisor (or the in-process profiler) knows of the run besides the events."""

    command: list[str]
    argv: list[str]
    cwd: str
    origin: float  # perf_counter at the start: step times are relative to it
    started_at: float  # wall clock at the same moment
    mode: str  # script | module | command | profile | trace (analyze builds its record itself)
    returncode: int = 0
    ended_at: float = field(default_factory=time.time)
    collectors: dict[str, CollectorResult] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)


def assemble(run_dir: Path, facts: RunFacts) -> Record:
    """The record of a finished run, from the event files and what the supervisor measured.

    With distributed ranks (torchrun), rank 0 is the run's main process (its steps are the
    record's `steps`) and every rank gets a summary in `ranks`."""
    processes = _processes(run_dir)
    events = _main_process_events(processes)
    ranks = _rank_summaries(processes, run_dir)
    table = build_steps(events, facts.origin)
    exception = next((_exception(e) for e in reversed(events) if e["k"] == "exc"), None)
    if ranks:  # the rank whose failure ended the run, not rank 0's consequence of it
        exception = _failed_rank_exception(ranks) or exception
    run = {
        "command": facts.command,
        "argv": facts.argv,
        "cwd": facts.cwd,
        "mode": facts.mode,
        "pid": next((e["pid"] for e in events if e["k"] == "hello"), None),
        "started_at": _iso(facts.started_at),
        "ended_at": _iso(facts.ended_at),
        "duration_s": round(facts.ended_at - facts.started_at, 4),
        **classify_exit(facts.returncode, exception),
        "step_method": table.method,
        "step_methods_seen": list(table.methods_seen),
        "time_to_first_step_s": table.steps[0]["start_s"] if table.steps else None,
        "notes": [e["text"] for e in events if e["k"] == "note"],
    }
    collectors = {name: result.summary() for name, result in facts.collectors.items()}
    collectors["steps"] = _steps_collector(events, table.method)
    samples = {n: r.samples for n, r in facts.collectors.items() if r.samples is not None}
    merge_in_process_collectors(events, facts.origin, collectors, samples)
    _mark_profiled_steps(table.steps, collectors.get("ops", {}), facts.origin)
    environment = {**facts.environment, **_process_environment(events)}
    _analyze_device_trace(run_dir, collectors, samples, environment)
    return Record(run, environment, collectors, table.steps, samples, ranks=ranks)


def _analyze_device_trace(
    run_dir: Path,
    collectors: dict[str, dict[str, Any]],
    samples: dict[str, Any],
    environment: dict[str, Any],
) -> None:
    """A GPU run's op-trace window goes through `perfscope analyze`'s device analysis (GPU busy
    and idle time, launch overhead, tensor cores, communication: the `gpu.*` trace metrics)."""
    ops = collectors.get("ops") or {}
    name = ops.get("trace")
    if ops.get("status") != "ok" or not name or not (samples.get("ops") or {}).get("device"):
        return
    from perfscope.errors import PerfscopeError
    from perfscope.traceimport.build import device_analysis

    try:
        entry, device, gpu = device_analysis(Path(run_dir) / name)
    except (PerfscopeError, OSError, ValueError, KeyError) as exc:
        reason = f"the op trace's device analysis failed: {type(exc).__name__}: {exc}"
        collectors["trace"] = {"status": "failed", "reason": reason[:300]}
        return
    collectors["trace"] = entry
    samples["trace"] = device
    if gpu is not None:
        environment["gpu"] = gpu


def diagnose(record: Record, config: Config | None = None) -> Record:
    """Metrics and findings; `config` (rules/config.py) selects the rules, adds rule folders and
    overrides params. Without one every built-in rule runs with its defaults. The config file
    used, if any, is kept as the record's `run.config`."""
    from dataclasses import replace

    from perfscope.analysis.facts import compute_facts
    from perfscope.rules.config import Config
    from perfscope.rules.engine import evaluate

    config = config or Config()
    metrics = compute_metrics(record)
    facts = compute_facts(record)
    findings = evaluate(config.selected_rules(), metrics, record.collectors, config.params, facts)
    run = {**record.run, "config": str(config.path) if config.path is not None else None}
    return replace(record, run=run).with_diagnosis(metrics, findings)


def render_html(record: Record, path: Path, run_dir: Path | None = None) -> Path:
    """Writes the HTML report; a record the templates cannot show is a one-line error.

    `run_dir` (default: the report's folder) holds the files the record names, such as py-spy's
    stacks for the report's call tree and the op trace it links to.
    """
    from jinja2 import TemplateError

    from perfscope.errors import PerfscopeError
    from perfscope.render.html import render_report

    try:
        html = render_report(record, run_dir or path.parent, path)
    except (TemplateError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PerfscopeError(f"cannot render this record: {type(exc).__name__}: {exc}") from None
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise PerfscopeError(f"cannot write the report to {path}: {exc.strerror}") from None
    return path


def _processes(run_dir: Path) -> list[list[dict[str, Any]]]:
    """The events of every instrumented process that started recording (its first is `hello`,
    to which the events file's stem is added as `file`)."""
    processes = []
    for path in event_files(run_dir):
        events = list(read_events(path))
        if events and events[0]["k"] == "hello":
            events[0]["file"] = path.stem
            processes.append(events)
    return processes


def _main_process_events(processes: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rank 0's events (its last restart) when there are ranks, else the one claimed process's:
    torchrun's own process, which claims the run, never runs a step."""
    ranks = [events for events in processes if events[0].get("rank")]
    if not ranks:
        return processes[0] if processes else []
    return min(ranks, key=lambda events: (_rank_of(events), -_rank_restart(events)))


def _rank_summaries(processes: list[list[dict[str, Any]]], run_dir: Path) -> list[dict[str, Any]]:
    """One summary per rank process (distributed/summary.py), by rank then restart."""
    from perfscope.distributed.summary import rank_summary

    ranks = [events for events in processes if events[0].get("rank")]
    if not ranks:
        return []
    exits = {
        proc["pid"]: proc
        for events in processes
        if not events[0].get("rank")
        for event in events
        if event["k"] == "ranks"
        for proc in event["procs"]
    }
    ranks.sort(key=lambda events: (_rank_of(events), _rank_restart(events)))
    return [
        rank_summary(events, exits.get(events[0]["pid"]), events[0]["file"], run_dir)
        for events in ranks
    ]


def _rank_of(events: list[dict[str, Any]]) -> int:
    return int(events[0]["rank"]["rank"])


def _rank_restart(events: list[dict[str, Any]]) -> int:
    return int(events[0]["rank"].get("restart") or 0)


def _failed_rank_exception(ranks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The exception of the rank whose failure ended the run, named as that rank's."""
    from perfscope.analysis.ranks import failed_rank, latest_attempts

    culprit = failed_rank(latest_attempts(ranks))
    if culprit is None or not culprit.get("exception"):
        return None
    exception = dict(culprit["exception"])
    exception["message"] = f"rank {culprit['rank']}: {exception['message']}"
    exception.setdefault("oom", culprit.get("exit") == "oom")
    return exception


def merge_in_process_collectors(
    events: list[dict[str, Any]],
    origin: float,
    collectors: dict[str, dict[str, Any]],
    samples: dict[str, Any],
) -> None:
    """What collectors inside the script's process reported: results and time-series points."""
    for event in events:
        if event["k"] == "collector":
            collectors[event["name"]] = event["summary"]
            if event.get("samples") is not None:
                samples[event["name"]] = event["samples"]
        elif event["k"] == "sample":
            series = samples.setdefault(event["c"], {"ts": []})
            series["ts"].append(round(event["ts"] - origin, 4))
            for key, value in event["v"].items():
                column = series.setdefault(key, [None] * (len(series["ts"]) - 1))
                column.append(value)
    # A column missing from later points is padded with None (one missing from earlier ones was
    # padded when it first appeared), so every column is as long as `ts`.
    for series in samples.values():
        if isinstance(series, dict) and "ts" in series:
            for column in series.values():
                if isinstance(column, list) and len(column) < len(series["ts"]):
                    column.extend([None] * (len(series["ts"]) - len(column)))


def _mark_profiled_steps(steps: list[dict[str, Any]], ops: dict[str, Any], origin: float) -> None:
    """Flags the steps the op-trace window slowed down; the window's perf_counter span becomes
    `window_s`, in seconds since the run's start."""
    span = ops.pop("window_perf", None)
    if span:
        ops["window_s"] = [round(span[0] - origin, 6), round(span[1] - origin, 6)]
        flag_profiled(steps, span, origin)


def _exception(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ("k", "ts")}


def _steps_collector(events: list[dict[str, Any]], method: str | None) -> dict[str, Any]:
    if not any(e["k"] == "hello" for e in events):
        return {
            "status": "unavailable",
            "reason": "the script's Python did not load perfscope's hooks (perfscope must be "
            "installed in the interpreter that runs the script, and python -I/-E/-S disable them)",
            "method": None,
        }
    # The hooks' own cost is not measured in the run (benchmarks/startup.py measures it).
    return {"status": "ok", "reason": None, "method": method, "overhead_s": None}


def _process_environment(events: list[dict[str, Any]]) -> dict[str, Any]:
    env: dict[str, Any] = {}
    torch_event = next((e for e in events if e["k"] == "torch"), None)
    if torch_event:
        env["torch"] = {k: v for k, v in torch_event.items() if k not in ("k", "ts")}
        settings = next((e for e in reversed(events) if e["k"] == "settings"), None)
        if settings is not None:  # read at the third step: what the loop really ran with
            env["torch"].update({k: v for k, v in settings.items() if k not in ("k", "ts")})
    first_fetch: dict[Any, float] = {}
    for e in events:
        if e["k"] == "wait" and e.get("first"):
            first_fetch.setdefault(e.get("loader"), e["dur"])  # its first epoch's first batch
    loaders = []
    for e in events:
        if e["k"] == "loader":
            loader = {k: v for k, v in e.items() if k not in ("k", "ts", "key")}
            if e.get("key") in first_fetch:
                loader["first_batch_ms"] = round(first_fetch[e["key"]] * 1e3, 3)
            loaders.append(loader)
    env["dataloaders"] = loaders
    optimizers = [e for e in events if e["k"] == "optimizer"]  # torch_hooks: one per optimizer
    env["optimizers"] = [{k: v for k, v in e.items() if k not in ("k", "ts")} for e in optimizers]
    autograd = next((e for e in events if e["k"] == "autograd"), None)
    if autograd:  # torch_hooks.AutogradProbe
        env["autograd"] = {k: v for k, v in autograd.items() if k not in ("k", "ts")}
    return env


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall).astimezone().isoformat(timespec="milliseconds")
