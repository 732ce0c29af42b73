"""The autograd probe: real torch forwards under a real session, read back from its events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from perfscope.analysis.autograd import autograd_metrics
from perfscope.events import event_files, read_events
from perfscope.record import Record
from perfscope.rules.engine import evaluate
from perfscope.rules.loader import load_rules
from perfscope.runtime.session import ProcessSession
from perfscope.runtime.torch_hooks import AutogradProbe

torch = pytest.importorskip("torch")
STEPS = 20  # past the last sampled step (16): the probe has left the clock


def _run(tmp_path: Path, mode: str) -> dict[str, Any]:
    """STEPS explicit steps of a small model in `mode`; the probe's event at the session's end."""
    session = ProcessSession(tmp_path, origin="test")
    probe = AutogradProbe(torch, session)
    probe.install()
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    for _ in range(STEPS):
        x = torch.randn(4, 8)
        if mode == "inference_mode":
            with torch.inference_mode():
                model(x)
        elif mode == "train":
            model(x).sum().backward()
            session.backward_seen = True  # what the backward hook does (installed once per process)
        else:
            model(x)
        session.mark("explicit")
    assert probe.on_step not in session.step_listeners  # gone after the last sample
    session.close()
    (path,) = event_files(tmp_path)
    return next(e for e in read_events(path) if e["k"] == "autograd")


def test_an_inference_loop_with_autograd_on_records_graphs(tmp_path: Path) -> None:
    event = _run(tmp_path, "grad")
    assert event["backward"] is False
    assert event["sampled_steps"] == 4  # steps 2, 4, 8, 16
    assert event["grad_mode_steps"] == 4 and event["graph_steps"] == 4


def test_inference_mode_records_no_graph(tmp_path: Path) -> None:
    event = _run(tmp_path, "inference_mode")
    assert event["sampled_steps"] == 4
    assert event["grad_mode_steps"] == 0 and event["graph_steps"] == 0


def test_a_training_loop_is_seen_as_one(tmp_path: Path) -> None:
    event = _run(tmp_path, "train")
    assert event["backward"] is True and event["graph_steps"] == 4


def test_the_backward_hook_sets_the_flag(tmp_path: Path) -> None:
    from perfscope.runtime import session as sessions
    from perfscope.runtime import torch_hooks

    torch_hooks.install(torch)  # idempotent: the process-wide hooks
    session = ProcessSession(tmp_path, origin="test")
    sessions.activate(session)
    try:
        w = torch.ones(2, requires_grad=True)
        torch.autograd.grad((w * 2).sum(), w)
        assert session.backward_seen is True
    finally:
        sessions.deactivate(session)
        session.close()


def _metrics(probe: dict[str, Any] | None, steps: int = 30) -> dict[str, float]:
    environment = {"autograd": probe} if probe is not None else {}
    step_rows = [{"index": i, "duration_ms": 5.0, "data_wait_ms": 0.1} for i in range(steps)]
    record = Record({"exit": "ok"}, environment, {}, step_rows, {})
    from perfscope.analysis.metrics import compute_metrics

    return compute_metrics(record)


def autograd_record() -> Record:
    """A record with the probe's event, for the metrics doc test (tests/unit/test_metrics.py)."""
    probe = {"backward": False, "sampled_steps": 4, "grad_mode_steps": 4, "graph_steps": 3}
    return Record({"exit": "ok"}, {"autograd": probe}, {}, [], {})


def test_autograd_metrics() -> None:
    metrics = autograd_metrics(autograd_record())
    assert metrics == {
        "autograd.backward_seen": 0.0,
        "autograd.sampled_steps": 4.0,
        "autograd.grad_mode_frac": 1.0,
        "autograd.graph_frac": 0.75,
    }
    assert autograd_metrics(Record({}, {}, {}, [], {})) == {}
    empty = {"backward": True, "sampled_steps": 0, "grad_mode_steps": 0, "graph_steps": 0}
    assert autograd_metrics(Record({}, {"autograd": empty}, {}, [], {})) == {
        "autograd.backward_seen": 1.0,
        "autograd.sampled_steps": 0.0,
    }


@pytest.mark.parametrize(
    ("probe", "steps", "fires"),
    [
        ({"backward": False, "sampled_steps": 4, "grad_mode_steps": 4, "graph_steps": 4}, 30, True),
        ({"backward": True, "sampled_steps": 4, "grad_mode_steps": 4, "graph_steps": 4}, 30, False),
        (
            {"backward": False, "sampled_steps": 4, "grad_mode_steps": 0, "graph_steps": 0},
            30,
            False,
        ),
        ({"backward": False, "sampled_steps": 4, "grad_mode_steps": 4, "graph_steps": 4}, 3, False),
        (
            {"backward": False, "sampled_steps": 0, "grad_mode_steps": 0, "graph_steps": 0},
            30,
            False,
        ),
        (None, 30, False),
    ],
)
def test_inf001_conditions(probe: dict[str, Any] | None, steps: int, fires: bool) -> None:
    rules = [r for r in load_rules() if r.id == "INF001"]
    findings = evaluate(rules, _metrics(probe, steps), {})
    assert bool(findings) is fires
    if fires:
        assert f"{steps} steps" in findings[0]["title"]
        assert "4 of the\n4 sampled steps" in findings[0]["evidence"]
