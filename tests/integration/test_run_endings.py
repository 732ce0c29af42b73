"""Any end of the run leaves a record and a report that say how it ended, with its steps."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from perfscope.events import event_files, read_events
from tests.conftest import PERFSCOPE, child_env, run_perfscope


def assert_complete(run_dir: Path) -> dict:
    assert (run_dir / "report.html").is_file()
    return json.loads((run_dir / "record.json").read_text())


def test_normal_end(workload: str, tmp_path: Path):
    result = run_perfscope(["run", workload, "--steps", "12"], cwd=tmp_path, run_dir=tmp_path / "r")
    record = assert_complete(tmp_path / "r")
    assert result.returncode == 0
    assert record["run"]["exit"] == "ok" and record["run"]["exit_code"] == 0
    assert record["run"]["step_method"] == "optimizer"
    assert len(record["steps"]) == 12
    assert record["collectors"]["host"]["status"] == "ok"
    assert record["samples"]["host"]["ts"], "the host sampler took no sample"


def test_sys_exit_code_is_kept(workload: str, tmp_path: Path):
    args = ["run", workload, "--steps", "5", "--exit-code", "3"]
    result = run_perfscope(args, cwd=tmp_path, run_dir=tmp_path / "r")
    record = assert_complete(tmp_path / "r")
    assert result.returncode == 3
    assert record["run"]["exit"] == "error" and record["run"]["exit_code"] == 3
    assert len(record["steps"]) == 5


def test_uncaught_exception(workload: str, tmp_path: Path):
    result = run_perfscope(
        ["run", workload, "--raise-at", "5"], cwd=tmp_path, run_dir=tmp_path / "r"
    )
    record = assert_complete(tmp_path / "r")
    assert result.returncode == 1
    assert b"ValueError: failed at step 5" in result.stderr
    assert record["run"]["exit"] == "error"
    assert record["run"]["exception"]["type"] == "ValueError"
    assert record["run"]["exception"]["message"] == "failed at step 5"
    assert len(record["steps"]) == 5


def test_sigkill_of_the_script_as_the_oom_killer_does(workload: str, tmp_path: Path):
    result = run_perfscope(
        ["run", workload, "--kill-at", "7"], cwd=tmp_path, run_dir=tmp_path / "r"
    )
    record = assert_complete(tmp_path / "r")
    assert result.returncode == -signal.SIGKILL  # perfscope ends the way the script did
    assert record["run"]["exit"] == "killed" and record["run"]["signal"] == "SIGKILL"
    assert len(record["steps"]) == 7  # every step up to the kill was kept
    assert b"killed" in result.stderr


def start_forever(workload: str, run_dir: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [PERFSCOPE, "run", "-o", str(run_dir), workload, "--forever", "--sleep-ms", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        files = event_files(run_dir)
        marks = [e for e in read_events(files[0]) if e["k"] == "mark"] if files else []
        if len(marks) >= 6:  # the first mark may only open a step, not close one
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the workload never reached 5 steps")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_sent_to_perfscope_is_forwarded(workload: str, tmp_path: Path, signum: int):
    # GIVEN a training loop that runs until stopped
    proc = start_forever(workload, tmp_path / "r")
    # WHEN perfscope (not the script) receives the signal
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    # THEN the script got it, and perfscope ends as it did, with a finished record
    record = assert_complete(tmp_path / "r")
    assert proc.returncode == -signum
    assert record["run"]["exit"] == "signal"
    assert record["run"]["signal"] == signal.Signals(signum).name
    assert len(record["steps"]) >= 5
    if signum == signal.SIGINT:
        assert record["run"]["exception"]["type"] == "KeyboardInterrupt"
        assert b"KeyboardInterrupt" in stderr


def test_cpu_allocator_out_of_memory(workload: str, tmp_path: Path):
    args = ["run", workload, "--cpu-oom-at", "4"]
    result = run_perfscope(args, cwd=tmp_path, run_dir=tmp_path / "r")
    record = assert_complete(tmp_path / "r")
    assert result.returncode == 1
    assert record["run"]["exit"] == "oom"
    assert record["run"]["exception"]["alloc_size"] == str(2**50)
    assert len(record["steps"]) == 4
    assert [f["id"] for f in record["findings"]][:1] == ["MEM001"]


def test_torch_outofmemoryerror_raised_by_the_script_stands_in_for_cuda_oom(tmp_path: Path):
    # No GPU here: the script raises torch's own OutOfMemoryError with a real CUDA message.
    script = tmp_path / "cuda_oom.py"
    script.write_text(
        "import torch\n"
        "raise torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has"
        " a total capacity of 15.77 GiB of which 1.12 GiB is free.')\n"
    )
    result = run_perfscope(["run", str(script)], cwd=tmp_path, run_dir=tmp_path / "r")
    record = assert_complete(tmp_path / "r")
    assert result.returncode == 1
    assert record["run"]["exit"] == "oom"
    assert record["run"]["exception"]["type"] == "torch.OutOfMemoryError"
    assert record["run"]["exception"]["alloc_size"] == "2.00 GiB"
