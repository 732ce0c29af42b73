"""`optim.*` metrics: the optimizers the run built and the implementation their settings select."""

from __future__ import annotations

from typing import Any


def optimizer_metrics(record: Any) -> dict[str, float]:
    """From `environment.optimizers` (runtime/torch_hooks.py); absent in records without it."""
    optimizers = (getattr(record, "environment", None) or {}).get("optimizers")
    if not isinstance(optimizers, list):
        return {}
    loops = [o for o in optimizers if isinstance(o, dict) and o.get("implementation") == "for-loop"]
    return {"optim.count": float(len(optimizers)), "optim.for_loop_count": float(len(loops))}
