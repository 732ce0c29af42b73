"""Failure metrics and text facts, from the exception messages torch really writes."""

from __future__ import annotations

import pytest
import torch

from perfscope.analysis.facts import compute_facts
from perfscope.analysis.failure import failure_metrics
from perfscope.record import Record
from perfscope.runtime.session import describe_exception

# torch 2.x CUDA caching allocator message, as users paste it (a real GPU is not available here).
CUDA_OOM = (
    "CUDA out of memory. Tried to allocate 1.22 GiB. GPU 0 has a total capacity of 15.77 GiB of "
    "which 959.44 MiB is free. Process 12447 has 14.83 GiB memory in use. Of the allocated memory "
    "14.01 GiB is allocated by PyTorch, and 472.05 MiB is reserved by PyTorch but unallocated. If "
    "reserved but unallocated memory is large try setting "
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation."
)
BUS_ERROR = (
    "DataLoader worker (pid(s) 4242) exited unexpectedly"  # torch's wrapper, then the cause:
    "\nDataLoader worker (pid 4242) is killed by signal: Bus error. It is possible that "
    "dataloader's workers are out of shared memory. Please try to raise your shared memory limit."
)


def oom_run(message: str) -> dict:
    return {"exit": "oom", "exception": {"type": "torch.OutOfMemoryError", "message": message}}


def test_cuda_oom_message_gives_request_capacity_free_and_unallocated() -> None:
    metrics = failure_metrics(oom_run(CUDA_OOM))

    assert metrics["mem.oom_request_mb"] == pytest.approx(1.22 * 1024)
    assert metrics["mem.oom_device_total_mb"] == pytest.approx(15.77 * 1024)
    assert metrics["mem.oom_device_free_mb"] == pytest.approx(959.44)
    assert metrics["mem.oom_reserved_unallocated_mb"] == pytest.approx(472.05)


def test_real_cpu_allocator_failure_gives_the_size_that_failed() -> None:
    with pytest.raises(RuntimeError) as caught:
        torch.empty(2**40, dtype=torch.uint8)  # 1 TiB: more than this machine has
    info = describe_exception(RuntimeError, caught.value)

    metrics = failure_metrics({"exit": "oom", "exception": info})

    assert info["oom"]
    assert metrics == {"mem.oom_request_mb": pytest.approx(2**20)}


def test_bus_error_of_a_dataloader_worker_is_flagged() -> None:
    run = {"exit": "error", "exception": {"type": "RuntimeError", "message": BUS_ERROR}}

    assert failure_metrics(run) == {"data.worker_bus_error": 1.0}


def test_a_bus_error_in_the_cause_chain_is_found() -> None:
    # torch raises "exited unexpectedly" from the bus-error RuntimeError: the cause says why
    try:
        try:
            raise RuntimeError(BUS_ERROR.split("\n", 1)[1])
        except RuntimeError as worker_error:
            raise RuntimeError(
                "DataLoader worker (pid(s) 4242) exited unexpectedly"
            ) from worker_error
    except RuntimeError as exc:
        info = describe_exception(RuntimeError, exc)

    assert info["causes"][0].startswith("RuntimeError: DataLoader worker (pid 4242) is killed")
    assert failure_metrics({"exit": "error", "exception": info}) == {"data.worker_bus_error": 1.0}


def test_an_ordinary_error_gives_no_failure_metrics() -> None:
    run = {"exit": "error", "exception": {"type": "ValueError", "message": "bad shape 3"}}

    assert failure_metrics(run) == {}
    assert failure_metrics({"exit": "ok", "exception": None}) == {}


def test_facts_name_the_exception_and_the_hot_function() -> None:
    top = {"function": "featurize", "file": "/home/u/train.py", "line": 42, "self_frac": 0.4}
    record = Record(
        run=oom_run(CUDA_OOM),
        environment={},
        collectors={},
        steps=[],
        samples={"pyspy": {"total_samples": 10, "top_user": top}},
    )

    facts = compute_facts(record)

    assert facts["run.exception_type"] == "torch.OutOfMemoryError"
    assert facts["run.exception_message"].startswith("CUDA out of memory. Tried to allocate")
    assert len(facts["run.exception_message"]) <= 300
    assert facts["py.top_user_function"] == "featurize"
    assert facts["py.top_user_location"] == "train.py:42"
