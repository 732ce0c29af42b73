"""`autograd.*` metrics: whether the run's forward passes recorded graphs that no backward used."""

from __future__ import annotations

from typing import Any


def autograd_metrics(record: Any) -> dict[str, float]:
    """From `environment.autograd` (runtime/torch_hooks.py, AutogradProbe); absent without it."""
    probe = (getattr(record, "environment", None) or {}).get("autograd")
    if not isinstance(probe, dict):
        return {}
    sampled = float(probe.get("sampled_steps") or 0)
    metrics = {
        "autograd.backward_seen": float(bool(probe.get("backward"))),
        "autograd.sampled_steps": sampled,
    }
    if sampled:
        metrics["autograd.grad_mode_frac"] = float(probe.get("grad_mode_steps") or 0) / sampled
        metrics["autograd.graph_frac"] = float(probe.get("graph_steps") or 0) / sampled
    return metrics
