"""The op-trace window: real training loops under `perfscope run`, `profile()`, and in-process."""

from __future__ import annotations

import gzip
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from perfscope.analysis.ops import ops_metrics
from perfscope.events import events_path, read_events
from perfscope.options import CollectorOptions
from perfscope.record import Record
from perfscope.runtime import profiler_window
from perfscope.runtime.session import ProcessSession
from tests.conftest import run_perfscope, run_python

# 20 steps, each calling .item(); with the default window (skip 5, warm-up 2, record 5) the
# clock's steps 7 to 11 are recorded. It writes to stderr itself, so parity means something.
ITEM_LOOP = textwrap.dedent(
    """
    import sys
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    print("starting", file=sys.stderr)
    total = 0.0
    for step in range(20):
        loss = torch.nn.functional.mse_loss(model(torch.randn(8, 16)), torch.zeros(8, 1))
        loss.backward()
        opt.step()
        opt.zero_grad()
        total += loss.item()
    print(f"done {total > 0}", file=sys.stderr)
    """
)


def ops_of(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    return record["collectors"]["ops"], record["samples"].get("ops")


def test_window_of_a_training_loop(tmp_path: Path) -> None:
    # GIVEN a training loop that calls .item() every step
    script = tmp_path / "loop.py"
    script.write_text(ITEM_LOOP)
    # WHEN it runs under perfscope run -q and under plain python
    result = run_perfscope(["run", "-q", str(script)], cwd=tmp_path, run_dir=tmp_path / "r")
    plain = run_python([str(script)], cwd=tmp_path)
    # THEN the script's stderr is byte for byte what python gives: no Kineto lines
    assert result.returncode == 0 == plain.returncode
    assert result.stderr == plain.stderr
    # AND the ops collector recorded the configured window with the model's ops
    entry, summary = ops_of(result.record)
    assert entry["status"] == "ok", entry
    assert entry["window"] == [7, 11] and entry["partial_step"] is False
    assert summary is not None and summary["per_step"]["step"] == [7, 8, 9, 10, 11]
    names = {row["name"] for row in summary["ops"]}
    assert {"aten::linear", "aten::addmm", "aten::mse_loss"} <= names
    # AND each step's .item() is a sync
    metrics = ops_metrics(Record.from_dict(result.record))
    assert metrics["ops.trace_window_steps"] == 5
    assert metrics["ops.syncs_per_step"] >= 1
    assert metrics["ops.h2d_count_per_step"] == 0  # a CPU run copies nothing to a device
    # AND the trace beside the record is Chrome trace JSON (what Perfetto opens)
    assert entry["trace"] == "trace.json.gz"
    trace = json.loads(gzip.decompress((tmp_path / "r" / "trace.json.gz").read_bytes()))
    events = trace["traceEvents"]
    assert all("ph" in e and "name" in e for e in events)
    assert all(isinstance(e["ts"], (int, float)) for e in events if e["ph"] == "X")
    steps = sorted(e["name"] for e in events if e["name"].startswith("ProfilerStep#"))
    assert steps == [f"ProfilerStep#{n}" for n in range(2, 7)]


def test_a_run_ending_inside_the_window_reports_what_was_recorded(
    tmp_path: Path, workload: str
) -> None:
    # GIVEN a loop that raises at step 9, after two of the five recorded steps
    args = [workload, "--steps", "20", "--raise-at", "9"]
    result = run_perfscope(["run", "-q", *args], cwd=tmp_path, run_dir=tmp_path / "r")
    plain = run_python(args, cwd=tmp_path)
    # THEN the script fails as under python, with the same stderr
    assert result.returncode == 1 == plain.returncode
    assert result.stderr == plain.stderr
    # AND the two whole steps are summarised, the partial one is in the op table only
    entry, summary = ops_of(result.record)
    assert entry["status"] == "ok", entry
    assert entry["window"] == [7, 8] and entry["partial_step"] is True
    assert summary is not None and summary["per_step"]["step"] == [7, 8]
    assert any(row["name"] == "aten::addmm" for row in summary["ops"])
    assert (tmp_path / "r" / "trace.json.gz").is_file()


def test_a_run_killed_inside_the_window_says_so(tmp_path: Path, workload: str) -> None:
    # GIVEN a loop killed (SIGKILL, as the OOM killer does) while the window records
    args = ["run", "-q", workload, "--steps", "20", "--kill-at", "9"]
    result = run_perfscope(args, cwd=tmp_path, run_dir=tmp_path / "r")
    # THEN the record still says why there is no op summary
    assert result.returncode == -9
    entry, summary = ops_of(result.record)
    assert entry["status"] == "unavailable" and "killed" in entry["reason"]
    assert summary is None


def test_a_run_shorter_than_the_skip_says_no_window_was_reached(
    tmp_path: Path, workload: str
) -> None:
    result = run_perfscope(
        ["run", "-q", workload, "--steps", "3"], cwd=tmp_path, run_dir=tmp_path / "r"
    )
    assert result.returncode == 0
    entry, summary = ops_of(result.record)
    assert entry["status"] == "unavailable"
    assert "no op-trace window" in entry["reason"] and "after 5 steps" in entry["reason"]
    assert summary is None and not (tmp_path / "r" / "trace.json.gz").exists()


def test_profile_block_without_supervisor_keeps_stderr_clean(tmp_path: Path) -> None:
    # GIVEN perfscope.profile() in the script itself: no supervisor sets the child's environment
    script = tmp_path / "own.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import torch
            import perfscope
            model = torch.nn.Linear(16, 4)
            opt = torch.optim.SGD(model.parameters(), lr=0.01)
            with perfscope.profile(out=sys.argv[1], quiet=True) as prof:
                for _ in range(15):
                    model(torch.randn(8, 16)).sum().backward()
                    opt.step()
                    opt.zero_grad()
                    prof.step()
            """
        )
    )
    result = run_python([str(script), str(tmp_path / "p")], cwd=tmp_path)
    # THEN nothing reaches stderr, and the window was recorded
    assert result.returncode == 0
    assert result.stderr == b""
    record = json.loads((tmp_path / "p" / "record.json").read_text())
    entry, summary = ops_of(record)
    assert entry["status"] == "ok", entry
    assert summary is not None and summary["steps"] == 5


# In-process: a real session and the real profiler, options chosen by the test. -------------


def collector_events(run_dir: Path) -> list[dict[str, Any]]:
    return [
        e for e in read_events(events_path(run_dir)) if e["k"] == "collector" and e["name"] == "ops"
    ]


def train_steps(torch: Any, session: ProcessSession, count: int) -> None:
    model = torch.nn.Linear(8, 2)
    for _ in range(count):
        model(torch.randn(4, 8)).sum().backward()
        session.mark("explicit")


def test_trace_disabled(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    session = ProcessSession(tmp_path, "test", CollectorOptions(trace=False))
    profiler_window.install(torch, session)
    session.close()
    (event,) = collector_events(tmp_path)
    assert event["summary"]["status"] == "unavailable"
    assert event["summary"]["reason"] == "disabled (--no-trace)"
    assert not session.step_listeners


def test_oversized_trace_is_dropped_and_the_summary_kept(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    options = CollectorOptions(trace_skip=1, trace_warmup=0, trace_active=2, trace_max_mb=0.001)
    session = ProcessSession(tmp_path, "test", options)
    profiler_window.install(torch, session)
    # WHEN more steps run than the window needs
    train_steps(torch, session, 6)
    # THEN the window left the step clock once done, and reported the two recorded steps
    assert not session.step_listeners
    session.close()
    pending, event = collector_events(tmp_path)  # the last report wins in the record
    assert pending["summary"]["status"] == "unavailable"
    assert "killed" in pending["summary"]["reason"]
    summary = event["summary"]
    assert summary["status"] == "ok" and summary["window"] == [1, 2]
    assert summary["trace"] is None and "over trace_max_mb" in summary["trace_note"]
    assert not (tmp_path / "trace.json.gz").exists()
    assert not list(tmp_path.glob(".trace-*"))  # no temporary file left
    assert event["samples"]["per_step"]["step"] == [1, 2]
    assert summary["overhead_s"] > 0


def test_the_scripts_own_profiler_wins(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch.profiler import ProfilerActivity, profile

    session = ProcessSession(tmp_path, "test", CollectorOptions(trace_skip=1))
    profiler_window.install(torch, session)
    # GIVEN the script profiles itself when the window would open
    with profile(activities=[ProfilerActivity.CPU]):
        train_steps(torch, session, 2)
    session.close()
    event = collector_events(tmp_path)[-1]
    assert event["summary"]["status"] == "unavailable"
    assert "its own torch.profiler" in event["summary"]["reason"]
