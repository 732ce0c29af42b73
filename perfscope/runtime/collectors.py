"""The collectors that run inside the script's process, started once torch is imported.

Each entry is `module:function`; the function takes (torch, session) and registers step
listeners, closers and samples on the session. One that fails is noted in the record and the run
goes on.
"""

from __future__ import annotations

import importlib
from typing import Any

from perfscope.runtime.session import ProcessSession

IN_PROCESS_COLLECTORS: list[str] = [
    "perfscope.runtime.profiler_window:install",
    "perfscope.runtime.allocator:install",
    "perfscope.runtime.loop_settings:install",
]


def install_all(torch: Any, session: ProcessSession) -> None:
    for entry in IN_PROCESS_COLLECTORS:
        module_name, _, function = entry.partition(":")
        try:
            getattr(importlib.import_module(module_name), function)(torch, session)
        except Exception as exc:  # noqa: BLE001 - never break the user's `import torch`
            session.note(
                f"in-process collector {entry} failed to start: {type(exc).__name__}: {exc}"
            )
