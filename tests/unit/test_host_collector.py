"""The host collector driven through `sample()` with a fake clock, and its metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from subprocess import PIPE
from typing import Any

import psutil
import pytest

from perfscope.analysis.host import host_detail_metrics, steps_window
from perfscope.collectors import host, procfs
from perfscope.collectors.base import CollectorContext
from perfscope.collectors.host import Cadence, HostCollector
from perfscope.collectors.procfs import ProcessTree, usable_cores
from perfscope.record import Record

ORIGIN = 100.0


class FakeClock:
    def __init__(self, start: float = ORIGIN) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 0.2) -> None:
        self.now += seconds


def prepared(clock: FakeClock, pid: int | None = None, **kwargs: Any) -> HostCollector:
    collector = HostCollector(0.2, clock=clock, **kwargs)
    collector.prepare(CollectorContext(pid or os.getpid(), Path("."), ORIGIN))
    return collector


def run_samples(collector: HostCollector, clock: FakeClock, n: int) -> None:
    for _ in range(n):
        assert collector.sample()
        clock.tick()


@pytest.fixture
def waiting_child() -> Iterator[subprocess.Popen[bytes]]:
    """A Python child that waits on stdin (no sleeping), so it lives as long as the test."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=PIPE)
    yield child
    child.communicate(b"")


def test_samples_of_this_process_with_a_fake_clock() -> None:
    # GIVEN a collector of this very process whose clock moves 0.2 s between samples
    clock = FakeClock()
    collector = prepared(clock)
    # WHEN it samples 30 times (the first one only primes the counters)
    run_samples(collector, clock, 30)
    result = collector.result()
    # THEN it reports every column, equally long, at the fake clock's times since the origin
    assert result.status == "ok" and result.interval_s == 0.2
    samples = result.samples
    assert samples is not None
    assert samples["ts"] == [round(0.2 * k, 4) for k in range(1, 30)]
    assert {len(column) for column in samples.values()} == {29}
    for name in ("cpu_frac", "rss_mb", "avail_mb", "cpu_main_frac", "rss_main_mb", "workers"):
        assert name in samples and None not in samples[name]
    assert set(samples["workers"]) == {0} and set(samples["cpu_workers_frac"]) == {0.0}
    assert min(samples["rss_main_mb"]) > 1 and samples["rss_mb"] == samples["rss_main_mb"]
    # AND the slower reads come at their own pace: context switches once a (fake) second
    switches = samples["ctx_switches_per_s"]
    assert 4 <= sum(v is not None for v in switches) <= 7
    assert result.extra["cores"] == usable_cores()
    assert result.extra["sample_stride"] == 1


@pytest.mark.slow
def test_memory_stays_flat_over_many_samples() -> None:
    # GIVEN a collector bounded to 128 points
    clock = FakeClock()
    collector = prepared(clock, max_points=128)
    tracemalloc.start()
    try:
        # WHEN it samples 1,000 times, then 19,000 times more
        run_samples(collector, clock, 1_000)
        current_1k, peak_1k = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        run_samples(collector, clock, 19_000)
        current_20k, peak_20k = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # THEN it holds no more memory after 20,000 samples than after 1,000 (8 bytes kept per
    # sample would be 152 KB), and its transient peak (a halving, a pid list) does not grow
    assert current_20k - current_1k < 32 * 1024
    assert peak_20k - peak_1k < 64 * 1024
    samples = collector.result().samples
    assert samples is not None and len(samples["ts"]) <= 128
    assert samples["ts"][-1] == round(0.2 * 19_999, 4)


def test_refused_io_counters_are_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a system that refuses /proc/<pid>/io (AccessDenied is real in some containers)
    def refuse(self: psutil.Process) -> None:
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "io_counters", refuse)
    clock = FakeClock()
    collector = prepared(clock)
    # WHEN it samples
    run_samples(collector, clock, 12)
    result = collector.result()
    # THEN the rest is measured, the I/O columns are left out and the record says why
    assert result.status == "ok" and result.samples is not None
    assert "io_read_mb_per_s" not in result.samples and "cpu_frac" in result.samples
    assert "AccessDenied" in result.extra["unavailable"]["io"]


def test_refused_uss_is_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: psutil.Process) -> None:
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "memory_full_info", refuse)
    clock = FakeClock()
    collector = prepared(clock)
    run_samples(collector, clock, 5)
    result = collector.result()
    assert result.samples is not None and "uss_main_mb" not in result.samples
    assert "AccessDenied" in result.extra["unavailable"]["uss"]
    assert result.extra["uss_interval_s"] is None


def test_uss_is_sampled_at_most_every_two_seconds() -> None:
    clock = FakeClock()
    collector = prepared(clock)
    run_samples(collector, clock, 41)  # 8 s of fake time
    samples = collector.result().samples
    assert samples is not None
    measured = [v for v in samples["uss_main_mb"] if v is not None]
    assert 1 <= len(measured) <= 5 and min(measured) > 0


def test_an_unreadable_tree_gives_no_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(procfs, "cpu_rss", lambda handle: None)
    clock = FakeClock()
    collector = prepared(clock)
    assert collector.sample() is False
    result = collector.result()
    assert result.status == "ok" and result.samples is None


def test_a_sampler_error_is_recorded_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    collector = prepared(clock)

    def broken() -> bool:
        raise RuntimeError("boom")

    monkeypatch.setattr(collector, "sample", broken)
    collector._timed_sample()
    result = collector.result()
    assert result.status == "failed" and result.reason == "RuntimeError: boom"


def test_cgroup_limits_and_usage_from_a_fixture(tmp_path: Path) -> None:
    # GIVEN this process in a v2 cgroup of half a core and 1 GiB, using 256 MiB
    root = tmp_path / "cgroup"
    job = root / "job"
    job.mkdir(parents=True)
    (job / "cpu.max").write_text("50000 100000\n")
    (job / "memory.max").write_text(f"{2**30}\n")
    (job / "memory.current").write_text(f"{300 * 2**20}\n")
    (job / "memory.stat").write_text(f"inactive_file {44 * 2**20}\n")
    proc = tmp_path / "proc"
    (proc / str(os.getpid())).mkdir(parents=True)
    (proc / str(os.getpid()) / "cgroup").write_text("0::/job\n")
    (proc / "self").mkdir()
    (proc / "self" / "mountinfo").write_text(f"30 23 0:26 / {root} rw - cgroup2 cgroup2 rw\n")
    clock = FakeClock()
    # WHEN the collector samples it
    collector = prepared(clock, proc=proc)
    run_samples(collector, clock, 4)
    result = collector.result()
    # THEN CPU shares are of half a core, and the cgroup's limit and use are recorded
    assert result.extra["cores"] == 0.5
    assert result.extra["cpu_quota_cores"] == 0.5
    assert result.extra["cgroup_version"] == 2
    assert result.extra["cgroup_mem_limit_mb"] == 1024.0
    assert result.samples is not None and result.samples["cgroup_mem_mb"] == [256.0] * 3


def test_cadence_keeps_an_expensive_read_within_its_budget() -> None:
    cadence = Cadence(1.0, budget_frac=0.001, max_interval_s=60.0)
    assert cadence.due(0.0)
    cadence.done(0.0, cost_s=0.0001)  # cheap: the minimum interval
    assert not cadence.due(0.5) and cadence.due(1.0)
    cadence.done(1.0, cost_s=0.005)  # 5 ms: every 5 s keeps it at 0.1% of a core
    assert cadence.interval_s == pytest.approx(5.0)
    assert not cadence.due(5.9) and cadence.due(6.0)
    cadence.done(6.0, cost_s=1.0)
    assert cadence.interval_s == 60.0


def test_process_tree_finds_children_and_forgets_the_dead(
    waiting_child: subprocess.Popen[bytes],
) -> None:
    tree = ProcessTree(os.getpid())
    assert {os.getpid(), waiting_child.pid} <= set(tree.pids())
    waiting_child.communicate(b"")
    assert waiting_child.pid not in tree.pids()
    assert ProcessTree(-5).pids() == []


def test_python_children_are_workers_and_others_are_not(
    waiting_child: subprocess.Popen[bytes],
) -> None:
    clock = FakeClock()
    collector = prepared(clock)
    other = subprocess.Popen(["cat"], stdin=PIPE)
    try:
        collector.sample()
        kinds = {pid: proc.kind for pid, proc in collector._procs.items()}
    finally:
        other.communicate(b"")
    assert kinds[os.getpid()] == "main"
    assert kinds[waiting_child.pid] == "worker"
    assert kinds[other.pid] == "other"


def test_usable_cores_is_the_affinity_of_the_process() -> None:
    assert usable_cores(os.getpid()) == len(os.sched_getaffinity(0))
    assert usable_cores(-1) == (os.cpu_count() or 1)  # an unknown process: the machine's
    assert host.cores_for(8, 2.5) == 2.5 and host.cores_for(2, None) == 2.0


def test_proc_counter_parsing() -> None:
    data = b"MemTotal: 10 kB\nMemAvailable:   2048 kB\npswpin 7\npswpout 9"
    assert procfs.counter(data, b"MemTotal:") == 10
    assert procfs.counter(data, b"MemAvailable:") == 2048
    assert procfs.counter(data, b"pswpout") == 9
    assert procfs.counter(data, b"nothing") is None


# --- host_detail_metrics --------------------------------------------------------------------


def host_record(samples: dict[str, list[Any]] | None, **collector: Any) -> Record:
    steps = [
        {"index": i, "start_s": 1.0 + i, "duration_ms": 1000.0, "data_wait_ms": 0.0}
        for i in range(3)
    ]
    return Record(
        run={"exit": "ok", "duration_s": 5.0},
        environment={},
        collectors={"host": {"status": "ok", "reason": None, "cores": 2, **collector}},
        steps=steps,
        samples={"host": samples} if samples is not None else {},
    )


FULL = {
    "ts": [0.5, 1.5, 2.5, 3.5, 4.5],  # the steps span 1.0 to 4.0: the middle three are inside
    "cpu_frac": [0.9, 0.5, 0.6, 0.7, 0.1],
    "rss_mb": [100.0, 300.0, 320.0, 310.0, 90.0],
    "avail_mb": [900.0, 800.0, 700.0, 750.0, 950.0],
    "cpu_main_frac": [0.9, 0.1, 0.2, 0.3, 0.1],
    "cpu_workers_frac": [0.0, 0.4, 0.4, 0.4, 0.0],
    "workers": [0, 2, 2, 1, 0],
    "rss_main_mb": [100.0, 120.0, 130.0, 140.0, 90.0],
    "rss_workers_mb": [0.0, 180.0, 190.0, 170.0, 0.0],
    "uss_main_mb": [None, 60.0, None, 70.0, None],
    "uss_workers_mb": [None, 10.0, None, 12.0, None],
    "ctx_switches_per_s": [None, 100.0, None, 300.0, None],
    "ctx_invol_per_s": [None, 50.0, None, 50.0, None],
    "io_read_mb_per_s": [None, 2.0, None, 4.0, None],
    "io_write_mb_per_s": [None, 1.0, None, 1.0, None],
    "swap_in_mb_per_s": [None, 0.0, None, 0.0, None],
    "swap_out_mb_per_s": [None, 0.0, None, 3.0, None],
    "cgroup_mem_mb": [200.0, 400.0, 500.0, 450.0, 210.0],
    "shm_used_mb": [None, 64.0, None, 32.0, None],
}


def test_host_detail_metrics_of_a_full_record() -> None:
    record = host_record(
        FULL, cgroup_mem_limit_mb=1000.0, cpu_quota_cores=2.0, shm_total_mb=64.0, shm_free_mb=60.0
    )
    metrics = host_detail_metrics(record)
    expected = {
        "cpu.cores_usable": 2.0,
        "cpu.quota_cores": 2.0,
        "cpu.main_util_frac": 0.2,  # the steps' span only
        "cpu.workers_util_frac": 0.4,
        "cpu.workers_count": 2.0,
        "cpu.worker_busy_frac": (0.4 + 0.4 + 0.8) / 3,  # share x cores / workers
        "mem.rss_main_peak_mb": 140.0,
        "mem.rss_workers_peak_mb": 190.0,
        "mem.uss_main_peak_mb": 70.0,
        "mem.uss_workers_peak_mb": 12.0,
        "mem.cgroup_limit_mb": 1000.0,
        "mem.cgroup_peak_mb": 500.0,
        "mem.cgroup_peak_frac": 0.5,
        "mem.shm_total_mb": 64.0,
        "mem.shm_free_mb": 60.0,
        "mem.shm_used_peak_mb": 64.0,
        "mem.swap_in_mb_per_s": 0.0,
        "mem.swap_out_mb_per_s": 1.5,
        "host.ctx_switches_per_s": 200.0,
        "host.ctx_switches_per_step": 200.0,  # 3 steps of 1 s
        "host.ctx_invol_frac": 0.25,
        "io.read_mb_per_s": 3.0,
        "io.write_mb_per_s": 1.0,
    }
    assert metrics == pytest.approx(expected)
    assert all(isinstance(v, float) for v in metrics.values())


def test_host_detail_metrics_of_an_older_record() -> None:
    # GIVEN a record from before these columns existed: only ts, cpu_frac, rss_mb, avail_mb
    old = {k: FULL[k] for k in ("ts", "cpu_frac", "rss_mb", "avail_mb")}
    assert host_detail_metrics(host_record(old)) == {"cpu.cores_usable": 2.0}
    assert host_detail_metrics(host_record(None, cores=None)) == {}


def test_without_steps_the_whole_run_counts() -> None:
    assert steps_window([0.5, 1.5], []) == [0, 1]
    steps = [{"start_s": 10.0, "duration_ms": 100.0}]
    assert steps_window([0.5, 1.5], steps) == [0, 1]  # none inside: all of them
