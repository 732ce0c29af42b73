"""The in-process step clock, the collector set, and the options handed to the child."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfscope.collectors.base import CollectorContext, CollectorResult, CollectorSet
from perfscope.options import ENV_OPTIONS, CollectorOptions
from perfscope.runtime.session import ProcessSession


def test_step_clock_follows_the_best_source_seen(tmp_path: Path) -> None:
    session = ProcessSession(tmp_path, origin="test")
    ticks: list[int] = []
    session.step_listeners.append(ticks.append)
    # GIVEN an inference-like start (DataLoader fetches), then backward, then optimizer steps
    session.wait(0.0, 0.01, loader=1, end=False)
    session.wait(0.1, 0.01, loader=None, end=False)
    session.mark("backward")
    session.wait(0.2, 0.01, loader=None, end=False)  # worse than backward: no tick
    session.mark("optimizer", aux=7)
    session.mark("backward")  # worse than optimizer now: no tick
    session.mark("optimizer", aux=7)
    session.wait(0.3, 0.0, loader=None, end=True)  # StopIteration never ticks
    session.close()
    assert ticks == [1, 2, 1, 1, 2]
    assert session.step_index == 2


class _Broken:
    name = "broken"

    def available(self) -> str | None:
        return None

    def start(self, ctx: CollectorContext) -> None:
        raise RuntimeError("no luck")

    def stop(self) -> CollectorResult:
        raise AssertionError("never started, never stopped")


class _Absent:
    name = "absent"

    def available(self) -> str | None:
        return "not on this machine (install X)"

    def start(self, ctx: CollectorContext) -> None:
        raise AssertionError("an unavailable collector is never started")

    def stop(self) -> CollectorResult:
        raise AssertionError("never started")


class _Good:
    name = "good"

    def __init__(self) -> None:
        self.ctx: CollectorContext | None = None

    def available(self) -> str | None:
        return None

    def start(self, ctx: CollectorContext) -> None:
        self.ctx = ctx

    def stop(self) -> CollectorResult:
        return CollectorResult(status="ok", samples={"x": [1.0]})


def test_collector_set_records_why_a_collector_is_missing_and_goes_on(tmp_path: Path) -> None:
    good = _Good()
    collectors = CollectorSet([_Broken(), _Absent(), good])
    collectors.start(CollectorContext(pid=1, run_dir=tmp_path, origin=0.0))
    results = collectors.stop()
    assert results["broken"].status == "failed" and "no luck" in str(results["broken"].reason)
    assert results["absent"].status == "unavailable"
    assert results["absent"].reason == "not on this machine (install X)"
    assert results["good"].status == "ok" and good.ctx is not None


def test_options_travel_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    options = CollectorOptions(host_interval_s=0.5, pyspy=False, trace_active=3)
    monkeypatch.setenv(ENV_OPTIONS, options.to_env())
    assert CollectorOptions.from_env() == options
    monkeypatch.setenv(ENV_OPTIONS, '{"trace_active": 9, "from_the_future": 1}')
    assert CollectorOptions.from_env() == CollectorOptions(trace_active=9)
    monkeypatch.setenv(ENV_OPTIONS, "not json")
    assert CollectorOptions.from_env() == CollectorOptions()


def test_in_process_collectors_reach_the_record(tmp_path: Path) -> None:
    import time

    from perfscope.pipeline import RunFacts, assemble

    # GIVEN a session whose in-process collectors report samples and a result
    origin = time.perf_counter()
    session = ProcessSession(tmp_path, origin="test")
    session.sample("alloc", {"rss_mb": 10.0})
    session.sample("alloc", {"rss_mb": 11.0, "reserved_mb": 3.0})
    session.closers.append(
        lambda: session.collector_result(
            "window", CollectorResult(status="ok", reason=None, samples={"ops": [{"name": "mm"}]})
        )
    )
    session.close()
    # WHEN the record is assembled
    facts = RunFacts(command=["x"], argv=["x"], cwd=".", origin=origin, started_at=0, mode="test")
    record = assemble(tmp_path, facts)
    # THEN both appear, columns padded to the same length
    alloc = record.samples["alloc"]
    assert alloc["rss_mb"] == [10.0, 11.0] and alloc["reserved_mb"] == [None, 3.0]
    assert len(alloc["ts"]) == 2 and 0 <= alloc["ts"][0] <= alloc["ts"][1]
    assert record.collectors["window"]["status"] == "ok"
    assert record.samples["window"] == {"ops": [{"name": "mm"}]}
