"""Starts recording inside a process launched by `perfscope run` (called from sitecustomize)."""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from perfscope.options import CollectorOptions
from perfscope.runtime import session as sessions
from perfscope.runtime.importwatch import after_import

ENV_RUN_DIR = "PERFSCOPE_RUN_DIR"
# Set by the supervisor for the process it starts; the first Python process to boot takes it, so
# the script's own Python subprocesses are not recorded as the run (DataLoader workers are forked
# and never boot). A distributed rank (torchrun) boots whether or not the claim is left: every rank
# is recorded, each in its own events file (distributed/identity.py says which process is a rank).
ENV_CLAIM = "PERFSCOPE_CLAIM"
_LAUNCHER_API = "torch.distributed.elastic.multiprocessing.api"


def boot() -> None:
    run_dir = os.environ.get(ENV_RUN_DIR)
    if not run_dir:
        return
    claimed = os.environ.pop(ENV_CLAIM, None) == "1"
    rank = _rank() if "RANK" in os.environ else None
    if rank is None and not claimed:
        return
    session = sessions.ProcessSession(
        Path(run_dir), origin="run", options=CollectorOptions.from_env(), rank=rank
    )
    sessions.activate(session)
    _watch_exceptions(session)
    atexit.register(session.close)
    after_import("torch", install_torch_hooks)
    if rank is None:  # torchrun's own process, if it is one: how its ranks end
        after_import(_LAUNCHER_API, _watch_launcher)


def _rank() -> dict[str, Any] | None:
    from perfscope.distributed.identity import ENV_RANK_PID, rank_identity  # only in a rank

    rank = rank_identity(os.environ)
    if rank is not None:
        os.environ[ENV_RANK_PID] = str(os.getpid())  # its children are not ranks
    return rank


def _watch_launcher(api: ModuleType) -> None:
    from perfscope.distributed.launcher import watch_launcher

    try:
        watch_launcher(api)
    except Exception as exc:  # noqa: BLE001 - never break the launcher's import
        session = sessions.active()
        if session is not None:
            session.note(f"could not watch the launcher: {type(exc).__name__}: {exc}")


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
