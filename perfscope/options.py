"""The settings of a run's collectors, shared by the supervisor and the instrumented process.

The supervisor hands them to its child as JSON in PERFSCOPE_OPTIONS.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

ENV_OPTIONS = "PERFSCOPE_OPTIONS"


@dataclass(frozen=True)
class CollectorOptions:
    host_interval_s: float = 0.2
    gpu_interval_s: float = 0.2
    pyspy: bool = True
    pyspy_rate: int = 50
    trace: bool = True
    trace_skip: int = 5  # steps before the profiler wakes: start-up and the first epoch's fill
    trace_warmup: int = 2
    trace_active: int = 5
    trace_max_mb: float = 50.0

    def to_env(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_env(cls) -> CollectorOptions:
        """The options the supervisor passed; defaults for any missing or unreadable one."""
        try:
            given = json.loads(os.environ.get(ENV_OPTIONS, "{}"))
        except ValueError:
            given = {}
        known = {f.name for f in fields(cls)}
        return (
            cls(**{k: v for k, v in given.items() if k in known})
            if isinstance(given, dict)
            else cls()
        )
