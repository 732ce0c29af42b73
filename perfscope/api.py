"""The in-code API: `with perfscope.profile()`, `@perfscope.trace` and `perfscope.step()`.

Inside `perfscope run`, or inside another `profile()`, these join the run already recording: they
mark steps there and write no second record. See docs/api.md for the rules on nesting.
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from perfscope.errors import PerfscopeError
from perfscope.events import VIA_CODES
from perfscope.options import CollectorOptions
from perfscope.runtime import session as sessions

F = TypeVar("F", bound=Callable[..., Any])

_scope_depth = 0  # how many profile() blocks are open in this process


def step() -> None:
    """Marks the end of a step in the run recording this process; does nothing outside a run."""
    session = sessions.active()
    if session is not None:
        session.mark("explicit", scope=max(_scope_depth - 1, 0), aux=VIA_CODES["step"])


class profile:  # noqa: N801 - used as a context manager, named like one
    """Records the block as a run: steps, host samples, a record and a report on exit.

    Args:
        out: the run directory (default ./perfscope-runs/<script>-<time>).
        report: write report.html.
        quiet: print no summary.
        **options: collector settings, the fields of `perfscope.options.CollectorOptions`
            (host_interval_s, pyspy, pyspy_rate, trace, trace_skip, trace_warmup,
            trace_active, trace_max_mb, gpu_interval_s).
    """

    def __init__(
        self,
        out: str | os.PathLike[str] | None = None,
        *,
        report: bool = True,
        quiet: bool = False,
        **options: Any,
    ) -> None:
        self.out = Path(out) if out is not None else None
        self.report = report
        self.quiet = quiet
        self.options = collector_options(options)
        self.run_dir: Path | None = None
        self._entered = False
        self._owner: _OwnSession | None = None
        self._scope = 0

    def __enter__(self) -> profile:
        global _scope_depth
        if self._entered:
            raise PerfscopeError(
                "this perfscope.profile() is already active; use a new one to nest"
            )
        self._entered = True
        self._scope = _scope_depth
        _scope_depth += 1
        session = sessions.active()
        if session is None:
            self._owner = _OwnSession(self.out, "profile", self.report, self.quiet, self.options)
            session = self._owner.session
        self.run_dir = session.run_dir
        session.writer.write({"k": "begin", "ts": time.perf_counter(), "scope": self._scope})
        return self

    def step(self) -> None:
        """Marks the end of a step."""
        session = sessions.active()
        if not self._entered or session is None:
            raise PerfscopeError("prof.step() called outside its `with perfscope.profile()` block")
        session.mark("explicit", scope=self._scope, aux=VIA_CODES["profile"])

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _scope_depth
        _scope_depth -= 1
        self._entered = False
        session = sessions.active()
        if session is not None:
            session.writer.write({"k": "end", "ts": time.perf_counter(), "scope": self._scope})
        if self._owner is not None:
            self._owner.finish(exc_type, exc)
            self._owner = None


def collector_options(given: dict[str, Any]) -> CollectorOptions:
    """CollectorOptions from keyword arguments; an unknown name is an error that lists the known."""
    known = {f.name for f in fields(CollectorOptions)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise PerfscopeError(
            f"unknown perfscope.profile() option(s): {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    return CollectorOptions(**given)


def trace(func: F) -> F:
    """Each call of the decorated function is one step (a recursive call is part of its caller's).

    Outside a run, the first call starts one, finished when the interpreter exits.
    """
    local = threading.local()

    @functools.wraps(func)
    def traced(*args: Any, **kwargs: Any) -> Any:
        if getattr(local, "depth", 0):
            return func(*args, **kwargs)
        session = sessions.active() or _trace_session()
        local.depth = 1
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            local.depth = 0
            session.span(start, time.perf_counter() - start)

    return traced  # type: ignore[return-value]


class _OwnSession:
    """A run recorded inside this process (profile() or trace() outside `perfscope run`)."""

    def __init__(
        self, out: Path | None, mode: str, report: bool, quiet: bool, options: CollectorOptions
    ) -> None:
        from perfscope.collectors.base import CollectorContext, CollectorSet
        from perfscope.collectors.registry import supervisor_collectors
        from perfscope.paths import default_run_dir
        from perfscope.pipeline import RunFacts
        from perfscope.runtime.bootstrap import install_torch_hooks
        from perfscope.runtime.importwatch import after_import
        from perfscope.supervisor.supervisor import prepare_run_dir

        label = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "python"
        self.run_dir = Path(out) if out is not None else default_run_dir(label or "python")
        prepare_run_dir(self.run_dir)
        self.mode, self.report, self.quiet = mode, report, quiet
        self.facts = RunFacts(
            command=[sys.executable, *sys.argv],
            argv=list(sys.argv),
            cwd=os.getcwd(),
            origin=time.perf_counter(),
            started_at=time.time(),
            mode=mode,
        )
        self.session = sessions.ProcessSession(self.run_dir, origin=mode, options=options)
        sessions.activate(self.session)
        after_import("torch", install_torch_hooks)
        # The same collectors `perfscope run` uses, measuring this very process.
        self.collectors = CollectorSet(supervisor_collectors(options))
        self.collectors.start(
            CollectorContext(os.getpid(), self.run_dir, self.facts.origin, options)
        )

    def finish(self, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        from perfscope.environment import collect_environment
        from perfscope.supervisor.supervisor import RunOptions, finish

        if exc_type is not None and exc is not None:
            self.session.exception(exc_type, exc)
        self.session.close()
        sessions.deactivate(self.session)
        self.facts.returncode = _returncode(exc)
        self.facts.ended_at = time.time()
        self.facts.collectors.update(self.collectors.stop())
        self.facts.environment = collect_environment()
        finish(self.run_dir, self.facts, RunOptions(quiet=self.quiet, report=self.report))


def _returncode(exc: BaseException | None) -> int:
    if exc is None:
        return 0
    if isinstance(exc, SystemExit):
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    if isinstance(exc, KeyboardInterrupt):
        return -signal.SIGINT
    return 1


def _trace_session() -> sessions.ProcessSession:
    owner = _OwnSession(None, "trace", report=True, quiet=False, options=CollectorOptions())

    def finish_at_exit() -> None:
        exc = getattr(sys, "last_value", None)
        owner.finish(type(exc) if exc is not None else None, exc)

    atexit.register(finish_at_exit)
    return owner.session
