"""The in-process allocator collector on this machine's real torch (CPU) and real session, and its
pure helpers on hand-built inputs. Nothing here pretends CUDA exists."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
import torch

from perfscope.analysis.memory import memory_metrics
from perfscope.events import event_files, read_events
from perfscope.record import Record
from perfscope.runtime.allocator import (
    NAME,
    AllocatorSampler,
    ResidentMemory,
    cuda_values,
    ending_exception,
    is_cuda_oom,
)
from perfscope.runtime.session import ProcessSession

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU-only path")


def _events(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in read_events(event_files(run_dir)[0]) if e["k"] == kind]


def test_resident_memory_is_read_and_grows_when_memory_is_touched() -> None:
    rss = ResidentMemory()
    before = rss.mb()
    block = bytearray(64 * 2**20)
    for i in range(0, len(block), 4096):  # touch every page so it is resident
        block[i] = 1
    after = rss.mb()
    rss.close()
    assert before > 0
    assert after - before > 48  # MiB; the allocator may reuse a little freed memory


def test_steps_are_sampled_at_most_once_per_interval(tmp_path: Path) -> None:
    # GIVEN a real session with the sampler and an interval no test run reaches
    session = ProcessSession(tmp_path, origin="test")
    AllocatorSampler(torch, session, interval_s=3600.0).start()
    # WHEN a hundred steps end
    for _ in range(100):
        session.mark("explicit")
    session.close()
    # THEN only the first step sampled, plus the final point at close
    samples = [e for e in _events(tmp_path, "sample") if e["c"] == NAME]
    assert len(samples) == 2
    assert all(e["v"]["host_rss_mb"] > 0 for e in samples)


def test_every_step_samples_with_a_zero_interval(tmp_path: Path) -> None:
    session = ProcessSession(tmp_path, origin="test")
    AllocatorSampler(torch, session, interval_s=0.0).start()
    for _ in range(10):
        session.mark("explicit")
    session.close()
    assert len([e for e in _events(tmp_path, "sample") if e["c"] == NAME]) == 11


@needs_no_cuda
def test_cpu_result_is_ok_and_says_cuda_is_missing(tmp_path: Path) -> None:
    session = ProcessSession(tmp_path, origin="test")
    AllocatorSampler(torch, session, interval_s=0.0).start()
    session.mark("explicit")
    session.close()
    results = _events(tmp_path, "collector")
    # reported at start (a killed run keeps it) and again, final, at close
    assert [e["name"] for e in results] == [NAME, NAME]
    final = results[-1]["summary"]
    assert final["status"] == "ok"
    assert "CUDA is not available" in final["reason"]
    assert "host_rss_mb" in final["reason"]
    assert final["cuda"] is False and final["points"] == 2
    assert not (tmp_path / "memory_snapshot.pickle").exists()


class _BrokenMemory:
    def mb(self) -> float:
        raise OSError("statm is gone")

    def close(self) -> None:
        pass


def test_a_failing_sample_never_reaches_the_training_loop(tmp_path: Path) -> None:
    session = ProcessSession(tmp_path, origin="test")
    sampler = AllocatorSampler(torch, session, interval_s=0.0)
    sampler.rss = _BrokenMemory()  # type: ignore[assignment]
    sampler.start()
    for _ in range(5):
        session.mark("explicit")  # must not raise
    session.close()
    final = _events(tmp_path, "collector")[-1]["summary"]
    assert final["status"] == "failed"
    assert "statm is gone" in final["reason"]


def test_cuda_values_from_handbuilt_memory_stats() -> None:
    # GIVEN a dict shaped like torch.cuda.memory_stats(), built by hand
    mib = 2**20
    stats = {
        "allocated_bytes.all.current": 300 * mib,
        "reserved_bytes.all.current": 512 * mib,
        "allocated_bytes.all.peak": 450 * mib,
        "reserved_bytes.all.peak": 600 * mib,
        "num_alloc_retries": 3,
        "num_ooms": 1,
    }
    assert cuda_values(stats) == {
        "allocated_mb": 300.0,
        "reserved_mb": 512.0,
        "allocated_peak_mb": 450.0,
        "reserved_peak_mb": 600.0,
        "alloc_retries": 3,
        "ooms": 1,
        "reserved_unallocated_mb": 212.0,
    }


def test_cuda_values_leave_out_what_torch_did_not_report() -> None:
    values = cuda_values({"reserved_bytes.all.current": 2**20})  # hand-built, partial
    assert values["reserved_mb"] == 1.0
    assert values["allocated_mb"] is None and values["reserved_unallocated_mb"] is None


def test_is_cuda_oom_on_handbuilt_exceptions() -> None:
    cuda_oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.")
    assert is_cuda_oom(cuda_oom, observed=False)
    assert is_cuda_oom(torch.OutOfMemoryError("out of memory"), observed=True)
    assert not is_cuda_oom(torch.OutOfMemoryError("out of memory"), observed=False)
    cpu = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 5 bytes")
    assert not is_cuda_oom(cpu, observed=True)
    assert not is_cuda_oom(MemoryError(), observed=True)
    assert not is_cuda_oom(ValueError("failed"), observed=True)


def test_ending_exception_sees_the_exception_being_handled() -> None:
    assert sys.exc_info()[1] is None
    try:
        raise torch.OutOfMemoryError("CUDA out of memory.")
    except torch.OutOfMemoryError as exc:
        assert ending_exception() is exc


HANDBUILT_ALLOCATOR_SAMPLES = {
    "ts": [1.0, 1.5, 2.0, 2.5],
    "host_rss_mb": [900.0, 910.0, 920.0, 930.0],
    "allocated_mb": [None, 300.0, 700.0, 200.0],  # None: CUDA not yet initialized
    "reserved_mb": [None, 512.0, 800.0, 800.0],
    "allocated_peak_mb": [None, 300.0, 750.0, 750.0],
    "reserved_peak_mb": [None, 512.0, 800.0, 800.0],
    "alloc_retries": [None, 0, 2, 2],
    "ooms": [None, 0, 0, 1],
    "reserved_unallocated_mb": [None, 212.0, 100.0, 600.0],
}


def _handbuilt_record(collectors: dict, samples: dict) -> Record:
    return Record(run={}, environment={}, collectors=collectors, steps=[], samples=samples)


def test_memory_metrics_on_handbuilt_allocator_samples() -> None:
    allocator = {"status": "ok", "cuda": True, "devices": [{"index": 0, "total_mb": 1000.0}]}
    record = _handbuilt_record({"allocator": allocator}, {"allocator": HANDBUILT_ALLOCATOR_SAMPLES})
    assert memory_metrics(record) == {
        "cuda.mem_allocated_peak_mb": 750.0,
        "cuda.mem_reserved_peak_mb": 800.0,
        "cuda.alloc_retries": 2.0,
        "cuda.ooms": 1.0,
        "cuda.reserved_unallocated_mb": 600.0,  # at the last sample where reserved was highest
        "cuda.mem_reserved_peak_frac": 0.8,
    }


def test_reserved_peak_frac_from_nvml_when_the_run_used_one_handbuilt_device() -> None:
    allocator = {"status": "ok", "cuda": True, "devices": []}
    gpu = {"devices": [{"index": 3, "memory_total_mb": 1600.0}], "devices_used": [3]}
    samples = {"allocator": HANDBUILT_ALLOCATOR_SAMPLES}
    record = _handbuilt_record({"allocator": allocator, "gpu": gpu}, samples)
    assert memory_metrics(record)["cuda.mem_reserved_peak_frac"] == 0.5


def test_cpu_only_allocator_samples_emit_no_cuda_metric() -> None:
    samples = {"allocator": {"ts": [1.0, 2.0], "host_rss_mb": [100.0, 200.0]}}
    record = _handbuilt_record({"allocator": {"status": "ok", "cuda": False}}, samples)
    assert memory_metrics(record) == {}


def test_the_torch_calls_used_on_cuda_exist_in_the_installed_torch() -> None:
    # The CUDA path cannot run here; at least its names and arguments are checked against torch.
    memory = torch.cuda.memory
    params = inspect.signature(memory._record_memory_history).parameters
    assert {"max_entries", "context", "stacks"} <= set(params)
    for name in ("_lazy_call", "is_initialized", "current_device", "get_device_properties"):
        assert callable(getattr(torch.cuda, name))
    assert callable(memory._snapshot) and callable(memory._dump_snapshot)
    documented = inspect.getdoc(torch.cuda.memory_stats) or ""
    for key in ("num_alloc_retries", "num_ooms", "allocated_bytes", "reserved_bytes"):
        assert key in documented


def growing_device_record(mb_per_step: float) -> Record:
    """20 steps of 100 ms; allocated memory sampled at each step's end, growing steadily."""
    steps = [
        {"index": i, "start_s": 1.0 + i / 10, "duration_ms": 100.0, "data_wait_ms": 0.0}
        for i in range(20)
    ]
    ts = [round(1.1 + i / 10, 3) for i in range(20)]
    allocated = [500.0 + mb_per_step * i for i in range(20)]
    allocator = {"status": "ok", "cuda": True, "devices": [{"index": 0, "total_mb": 8000.0}]}
    samples = {"allocator": {"ts": ts, "allocated_mb": allocated, "reserved_mb": allocated}}
    return Record(run={}, environment={}, collectors={"allocator": allocator}, steps=steps,
                  samples=samples)  # fmt: skip


def test_device_memory_growth_per_step_is_the_slope_of_allocated_memory() -> None:
    growing = memory_metrics(growing_device_record(8.0))
    flat = memory_metrics(growing_device_record(0.0))

    assert growing["cuda.mem_growth_mb_per_step"] == pytest.approx(8.0)
    assert flat["cuda.mem_growth_mb_per_step"] == pytest.approx(0.0)


def test_no_device_growth_without_steps_or_cuda_samples() -> None:
    record = growing_device_record(8.0)
    no_steps = Record(record.run, record.environment, record.collectors, [], record.samples)
    cpu_only = {"allocator": {"ts": [1.0, 2.0], "host_rss_mb": [100.0, 200.0]}}

    assert "cuda.mem_growth_mb_per_step" not in memory_metrics(no_steps)
    assert "cuda.mem_growth_mb_per_step" not in memory_metrics(
        Record(record.run, {}, record.collectors, record.steps, cpu_only)
    )
