"""How a run ended, from the child's wait status and the exception it reported."""

from __future__ import annotations

import signal
from typing import Any


def classify_exit(returncode: int, exception: dict[str, Any] | None) -> dict[str, Any]:
    """`run.exit` and its details: ok, error, oom, signal or killed (docs/record.md)."""
    info: dict[str, Any] = {"exit_code": returncode, "signal": None, "exception": exception}
    if returncode < 0:
        signum = -returncode
        info["signal"] = _signal_name(signum)
        info["exit"] = "killed" if signum == signal.SIGKILL else "signal"
    elif exception is not None and exception.get("oom"):
        info["exit"] = "oom"
    elif returncode == 0:
        info["exit"] = "ok"
    else:
        info["exit"] = "error"
    return info


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"
