"""How a run ended (classify_exit) and what an uncaught exception says (describe_exception)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from perfscope.exits import classify_exit
from perfscope.runtime.session import describe_exception

CUDA_OOM = (
    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB of "
    "which 1.06 GiB is free. Of the allocated memory 75.2 GiB is allocated by PyTorch."
)
OOM_EXC = {"type": "torch.OutOfMemoryError", "message": CUDA_OOM, "oom": True}
PLAIN_EXC = {"type": "ValueError", "message": "bad shape", "oom": False}


@pytest.mark.parametrize(
    ("returncode", "exception", "exit", "signal"),
    [
        (0, None, "ok", None),
        (3, None, "error", None),
        (1, PLAIN_EXC, "error", None),
        (1, OOM_EXC, "oom", None),
        (-9, None, "killed", "SIGKILL"),
        (-9, OOM_EXC, "killed", "SIGKILL"),  # the signal decides, whatever was reported before
        (-15, None, "signal", "SIGTERM"),
        (-2, PLAIN_EXC, "signal", "SIGINT"),
        (-11, None, "signal", "SIGSEGV"),
        (-200, None, "signal", "SIG200"),  # no such signal: still named
    ],
)
def test_classify_exit(
    returncode: int, exception: dict[str, Any] | None, exit: str, signal: str | None
) -> None:
    info = classify_exit(returncode, exception)

    assert info == {"exit": exit, "exit_code": returncode, "signal": signal, "exception": exception}


def _caught(action: Any) -> BaseException:
    try:
        action()
    except BaseException as exc:  # noqa: BLE001 - the exception is the subject of the test
        return exc
    raise AssertionError("the action did not raise")


def test_describes_the_real_cpu_allocator_failure_as_oom() -> None:
    # GIVEN torch's CPU allocator asked for 4 EiB, more than any address space holds
    exc = _caught(lambda: torch.empty(2**62, dtype=torch.uint8))

    # WHEN
    info = describe_exception(type(exc), exc)

    # THEN
    assert info["oom"] is True
    assert info["type"] == type(exc).__name__ == "RuntimeError"
    assert "can't allocate memory" in info["message"]
    assert info["alloc_size"] == str(2**62)
    json.dumps(info)  # it goes to the event stream as is


def test_describes_memory_error_as_oom() -> None:
    info = describe_exception(MemoryError, MemoryError())

    assert info == {"type": "MemoryError", "message": "", "oom": True}


def test_describes_a_cuda_oom_with_the_size_that_failed() -> None:
    exc = torch.OutOfMemoryError(CUDA_OOM)

    info = describe_exception(type(exc), exc)

    assert info == {
        "type": "torch.OutOfMemoryError",
        "message": CUDA_OOM,
        "oom": True,
        "alloc_size": "2.00 GiB",
    }


def test_a_cuda_oom_raised_as_runtime_error_is_still_oom() -> None:
    # torch before 2.1 raised CUDA OOM as a RuntimeError with the same message
    info = describe_exception(RuntimeError, RuntimeError(CUDA_OOM))

    assert (info["type"], info["oom"], info["alloc_size"]) == ("RuntimeError", True, "2.00 GiB")


def test_a_plain_exception_is_not_oom() -> None:
    exc = json.JSONDecodeError("Expecting value", "", 0)

    info = describe_exception(type(exc), exc)

    assert info["type"] == "json.decoder.JSONDecodeError"
    assert info["oom"] is False
    assert "alloc_size" not in info


@pytest.mark.parametrize(
    ("message", "size"),
    [
        ("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 15.78 GiB total)", "20.00 MiB"),
        ("CUDA out of memory. Tried to allocate 1.50 GiB", "1.50 GiB"),
        ("CUDA out of memory. Tried to allocate 512.00 KiB", "512.00 KiB"),
        ("DefaultCPUAllocator: can't allocate memory: you tried to allocate 123 bytes.", "123"),
        ("CUDA out of memory.", None),
    ],
)
def test_alloc_size_parsing(message: str, size: str | None) -> None:
    info = describe_exception(RuntimeError, RuntimeError(message))

    assert info["oom"] is True
    assert info.get("alloc_size") == size


def test_a_long_message_is_truncated() -> None:
    info = describe_exception(ValueError, ValueError("x" * 5000))

    assert info["message"] == "x" * 2000
