"""`perfscope run`: start the program, measure it from outside, finish the record at any end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from perfscope.collectors.base import CollectorContext, CollectorSet
from perfscope.collectors.registry import supervisor_collectors
from perfscope.environment import collect_environment
from perfscope.errors import PerfscopeError
from perfscope.options import CollectorOptions
from perfscope.pipeline import RunFacts
from perfscope.rules.config import Config
from perfscope.supervisor import signals
from perfscope.supervisor.launch import Target, child_environment


@dataclass
class RunOptions:
    quiet: bool = False
    report: bool = True
    live: bool | None = None  # None: only when stderr is a terminal and not in CI
    config: Config | None = None  # rules/config.py; None: every rule with its defaults
    collectors: CollectorOptions = field(default_factory=CollectorOptions)


def supervise(target: Target, run_dir: Path, options: RunOptions) -> int:
    """Runs the target to its end and writes the run directory; returns the child's wait status."""
    prepare_run_dir(run_dir)
    facts = RunFacts(
        command=target.command,
        argv=target.argv,
        cwd=os.getcwd(),
        origin=time.perf_counter(),
        started_at=time.time(),
        mode=target.mode,
    )
    signals.block()
    try:
        proc = subprocess.Popen(
            target.command,
            env=child_environment(run_dir, options.collectors),
            preexec_fn=_child_setup(options.collectors),
        )
    except OSError as exc:
        signals.unblock()
        raise PerfscopeError(f"could not start {target.command[0]}: {exc.strerror}") from None
    collectors = CollectorSet(supervisor_collectors(options.collectors))
    collectors.start(CollectorContext(proc.pid, run_dir, facts.origin, options.collectors))
    live = _start_live(run_dir, options, facts.origin)
    try:
        facts.returncode = signals.wait_forwarding(proc)
    finally:
        facts.ended_at = time.time()
        if live is not None:
            live.stop()
        facts.collectors.update(collectors.stop())
    facts.environment = collect_environment()
    finish(run_dir, facts, options)
    return facts.returncode


def _child_setup(options: CollectorOptions):  # noqa: ANN202
    """What runs in the child between fork and exec: no inherited signal mask, and, under Yama's
    ptrace_scope 1, permission for the supervisor's descendants (py-spy) to read the child."""

    from perfscope.collectors.pyspy import allow_tracer  # imported before the fork, not after

    def setup() -> None:
        signals.unblock()
        if options.pyspy:
            allow_tracer(os.getppid())

    return setup


def prepare_run_dir(run_dir: Path) -> None:
    """Creates the run directory; a previous run's files in it are replaced, nothing else."""
    from perfscope.events import EVENTS_DIR
    from perfscope.record import RECORD_NAMES
    from perfscope.runtime.session import RANKS_DIR

    if run_dir.exists() and not run_dir.is_dir():
        raise PerfscopeError(f"{run_dir} is a file; -o/--out takes a directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(run_dir / EVENTS_DIR, ignore_errors=True)
    shutil.rmtree(run_dir / RANKS_DIR, ignore_errors=True)  # the ranks' own files (op traces)
    for name in (*RECORD_NAMES, "report.html"):
        (run_dir / name).unlink(missing_ok=True)


def finish(run_dir: Path, facts: RunFacts, options: RunOptions) -> None:
    """Assembles, diagnoses, saves and renders; a failure here never hides the script's result."""
    from perfscope.pipeline import assemble, diagnose, render_html
    from perfscope.render.terminal import print_summary

    try:
        record = assemble(run_dir, facts)
        record.save(run_dir)  # the facts first: a rule or template bug must not lose them
        record = diagnose(record, options.config)
        record.save(run_dir)
        report = render_html(record, run_dir / "report.html") if options.report else None
    except Exception as exc:  # noqa: BLE001 - report it, keep the script's exit code
        print(f"perfscope: could not finish the run record in {run_dir}: {exc!r}", file=sys.stderr)
        return
    if not options.quiet:
        print_summary(record, run_dir, report)


def _start_live(run_dir: Path, options: RunOptions, origin: float):  # noqa: ANN202
    from perfscope.render.live import LiveStatus, live_wanted

    wanted = options.live if options.live is not None else live_wanted(options.quiet)
    if not wanted:
        return None
    live = LiveStatus(run_dir, origin)
    live.start()
    return live
