"""In torchrun's own process: how each rank ended, as its launcher saw it.

A rank killed by a signal, or one that called os._exit, writes no end of its own; torchrun's
process context polls every rank's exit status and, when one fails, stops the others and notes
their statuses too. Wrapping `PContext.wait` reads those results as they come, without changing
them: each one becomes a `ranks` event (events.py) with the local rank, pid and exit status.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

from perfscope.runtime import session as sessions


def watch_launcher(api: ModuleType) -> None:
    """Called once torch.distributed.elastic.multiprocessing.api is imported (a launcher)."""
    context = getattr(api, "PContext", None)
    original = getattr(context, "wait", None)
    if original is None or getattr(original, "_perfscope", False):
        return
    reported: set[int] = set()

    def wait(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if result is not None:
            try:
                _report(self, result, reported)
            except Exception as exc:  # noqa: BLE001 - never disturb the launcher
                _note(f"could not read the ranks' exit statuses: {type(exc).__name__}: {exc}")
        return result

    wait._perfscope = True  # type: ignore[attr-defined]
    context.wait = wait


def _report(context: Any, result: Any, reported: set[int]) -> None:
    session = sessions.active()
    if session is None:
        return
    pids = dict(context.pids())
    procs = []
    for local_rank, pid in sorted(pids.items()):
        failure = result.failures.get(local_rank)
        if pid in reported:
            continue
        reported.add(pid)
        code = failure.exitcode if failure is not None else 0
        when = failure.timestamp if failure is not None else time.time()
        procs.append({"local_rank": local_rank, "pid": pid, "exitcode": code, "wall": when})
    if procs:
        session.writer.write({"k": "ranks", "ts": time.perf_counter(), "procs": procs})


def _note(text: str) -> None:
    session = sessions.active()
    if session is not None:
        session.note(text)
