"""Starts recording inside a process launched by `perfscope run` (called from sitecustomize)."""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from types import ModuleType

from perfscope.options import CollectorOptions
from perfscope.runtime import session as sessions
from perfscope.runtime.importwatch import after_import

ENV_RUN_DIR = "PERFSCOPE_RUN_DIR"
# Set by the supervisor for the process it starts; the first Python process to boot takes it, so
# the script's own Python subprocesses are not recorded as the run (DataLoader workers are forked
# and never boot).
ENV_CLAIM = "PERFSCOPE_CLAIM"


def boot() -> None:
    run_dir = os.environ.get(ENV_RUN_DIR)
    if not run_dir or os.environ.pop(ENV_CLAIM, None) != "1":
        return
    session = sessions.ProcessSession(
        Path(run_dir), origin="run", options=CollectorOptions.from_env()
    )
    sessions.activate(session)
    _watch_exceptions(session)
    atexit.register(session.close)
    after_import("torch", install_torch_hooks)


def _watch_exceptions(session: sessions.ProcessSession) -> None:
    previous = sys.excepthook

    def excepthook(exc_type, exc, tb):  # type: ignore[no-untyped-def]
        try:
            session.exception(exc_type, exc)
        finally:
            previous(exc_type, exc, tb)

    sys.excepthook = excepthook


def install_torch_hooks(torch: ModuleType) -> None:
    from perfscope.runtime import torch_hooks

    try:
        torch_hooks.install(torch)
    except Exception as exc:  # never break the user's `import torch`
        session = sessions.active()
        if session is not None:
            session.note(f"torch hooks failed: {type(exc).__name__}: {exc}")
