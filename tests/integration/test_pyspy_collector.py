"""The py-spy collector under a real py-spy: `perfscope run`, `perfscope.profile()`, and its
failures (disabled, not installed, ptrace refused, a py-spy that will not stop)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest

from perfscope.analysis.pyspy import pyspy_metrics
from perfscope.collectors.base import CollectorContext, CollectorSet
from perfscope.collectors.pyspy import (
    LOG_NAME,
    SPEEDSCOPE_NAME,
    PySpyCollector,
    explain_failure,
    find_pyspy,
    ptrace_refusal,
)
from perfscope.options import CollectorOptions
from perfscope.record import Record
from tests.conftest import run_perfscope, run_python

needs_pyspy = pytest.mark.skipif(find_pyspy() is None, reason="py-spy is not installed")

SPIN = textwrap.dedent(
    """
    import sys
    import time


    def spin(seconds):
        end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < end:
            n += 1
        return n
    """
)
SPIN_LINES = range(6, 12)  # `def spin` to `return n` in SPIN


def write(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "spin.py"
    script.write_text(SPIN + textwrap.dedent(body))
    return script


def load(run_dir: Path) -> dict:
    return json.loads((run_dir / "record.json").read_text())


def assert_spin_is_hottest(record: dict, script: Path) -> None:
    assert record["collectors"]["pyspy"]["status"] == "ok", record["collectors"]["pyspy"]
    assert record["collectors"]["pyspy"]["speedscope"] == SPEEDSCOPE_NAME
    table = record["samples"]["pyspy"]
    assert table["total_samples"] > 0
    top = table["top_user"]
    assert (top["function"], top["file"]) == ("spin", str(script))
    assert top["line"] in SPIN_LINES
    assert top["self_frac"] > 0.5  # a busy loop with nothing else to do
    metrics = pyspy_metrics(Record.from_dict(record))
    assert metrics["py.samples"] == table["total_samples"]
    assert metrics["py.top_user_self_frac"] == top["step_self_frac"]  # imports left out


@needs_pyspy
def test_run_names_the_hot_function_with_its_file_and_line(tmp_path: Path):
    # GIVEN a script that spins in one Python function for 2 s
    script = write(tmp_path, "spin(2.0)\n")
    # WHEN perfscope runs it
    result = run_perfscope(["run", str(script)], cwd=tmp_path, run_dir=tmp_path / "r")
    # THEN py-spy sampled it, and the record names the function, its file and its line
    assert result.returncode == 0, result.stderr
    record = load(tmp_path / "r")
    assert_spin_is_hottest(record, script)
    assert record["collectors"]["pyspy"]["interval_s"] == 0.02  # --pyspy-rate 50
    assert (tmp_path / "r" / SPEEDSCOPE_NAME).is_file()
    # py-spy's messages went to its log, never to the user's terminal
    assert "py-spy>" in (tmp_path / "r" / LOG_NAME).read_text()
    assert b"py-spy" not in result.stderr and b"py-spy" not in result.stdout


@needs_pyspy
def test_profile_block_samples_its_own_process(tmp_path: Path):
    # GIVEN a profile() block in a plain `python script.py` (py-spy is the script's own child)
    script = write(
        tmp_path,
        """
        import perfscope

        with perfscope.profile(out=sys.argv[1], quiet=True, report=False):
            spin(1.5)
        """,
    )
    # WHEN it runs
    result = run_python([str(script), str(tmp_path / "p")], cwd=tmp_path)
    # THEN py-spy was stopped at the block's end and its stacks are in the record
    assert result.returncode == 0, result.stderr
    assert_spin_is_hottest(load(tmp_path / "p"), script)


def test_no_pyspy_disables_it(tmp_path: Path):
    script = write(tmp_path, "spin(0.1)\n")
    result = run_perfscope(["run", "--no-pyspy", str(script)], cwd=tmp_path, run_dir=tmp_path / "r")
    assert result.returncode == 0, result.stderr
    entry = load(tmp_path / "r")["collectors"]["pyspy"]
    assert (entry["status"], entry["reason"]) == ("unavailable", "disabled (--no-pyspy)")
    assert not (tmp_path / "r" / LOG_NAME).exists()
    assert PySpyCollector(CollectorOptions(pyspy=False)).available() == "disabled (--no-pyspy)"


def test_missing_binary_simulates_a_missing_install(tmp_path: Path):
    # GIVEN a collector pointed at a py-spy that does not exist (as without `pip install py-spy`)
    collector = PySpyCollector(binary=str(tmp_path / "nowhere" / "py-spy"))
    # WHEN a run starts it
    collectors = CollectorSet([collector])
    collectors.start(CollectorContext(os.getpid(), tmp_path, time.perf_counter()))
    result = collectors.stop()["pyspy"]
    # THEN it is unavailable, and says how to install it
    assert result.status == "unavailable"
    assert "py-spy is not installed" in result.reason and "pip install py-spy" in result.reason


@needs_pyspy
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_ptrace_refusal_simulated_by_another_user_gives_the_remedy(tmp_path: Path):
    # GIVEN py-spy running as another user than the program (the kernel refuses it access)
    wrapper = tmp_path / "py-spy-as-nobody"
    wrapper.write_text(
        f'#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups {find_pyspy()} "$@"\n'
    )
    wrapper.chmod(0o755)
    collector = PySpyCollector(binary=str(wrapper), grace_s=3.0)
    # WHEN it tries to sample this test's process
    collector.start(CollectorContext(os.getpid(), tmp_path, time.perf_counter()))
    time.sleep(1.5)  # py-spy gives up after about 1 s
    result = collector.stop()
    # THEN the collector is unavailable, quotes py-spy, and says how to allow ptrace
    assert result.status == "unavailable", result.reason
    assert result.reason.startswith("ptrace refused (")
    assert "SYS_PTRACE" in result.reason or "ptrace_scope" in result.reason
    assert collector._started == 1  # a refusal is not retried


def test_a_pyspy_that_ignores_sigint_is_killed(tmp_path: Path):
    # GIVEN a "py-spy" that ignores SIGINT and never writes a profile
    fake = tmp_path / "stubborn-py-spy"
    fake.write_text("#!/bin/sh\ntrap '' INT\necho ready\nexec sleep 30\n")
    fake.chmod(0o755)
    collector = PySpyCollector(binary=str(fake), grace_s=0.3)
    collector.start(CollectorContext(os.getpid(), tmp_path, time.perf_counter()))
    wait_for(lambda: "ready" in (tmp_path / LOG_NAME).read_text())  # its trap is set
    # WHEN the run ends
    started = time.monotonic()
    result = collector.stop()
    # THEN it was killed after SIGINT failed, and the run is told
    assert result.status == "failed"
    assert "did not stop and was killed" in result.reason
    assert time.monotonic() - started < 10  # bounded, never waits for py-spy's 30 s


def test_an_unreadable_profile_is_a_failure(tmp_path: Path):
    # GIVEN a "py-spy" that writes a truncated file where the profile goes (`-o PATH`, last)
    fake = tmp_path / "truncating-py-spy"
    fake.write_text('#!/bin/sh\nfor out; do :; done\nprintf \'{"profiles": [\' > "$out"\n')
    fake.chmod(0o755)
    collector = PySpyCollector(binary=str(fake), grace_s=2.0)
    collector.start(CollectorContext(os.getpid(), tmp_path, time.perf_counter()))
    wait_for(lambda: (tmp_path / SPEEDSCOPE_NAME).exists())
    # WHEN the run ends
    result = collector.stop()
    # THEN the collector failed, naming the file, and the run goes on
    assert result.status == "failed"
    assert result.reason.startswith(f"py-spy wrote an unreadable {SPEEDSCOPE_NAME}")


@needs_pyspy
def test_python_that_starts_late_is_still_sampled(tmp_path: Path):
    # GIVEN a command whose Python starts after py-spy's first attempt gave up (about 1 s)
    script = write(tmp_path, "spin(1.5)\n")
    command = ["sh", "-c", f'sleep 1.2; exec "$0" {script}', sys.executable]
    # WHEN perfscope runs it
    result = run_perfscope(["run", "--", *command], cwd=tmp_path, run_dir=tmp_path / "r")
    # THEN py-spy was started again and found it
    assert result.returncode == 0, result.stderr
    record = load(tmp_path / "r")
    assert_spin_is_hottest(record, script)
    assert (tmp_path / "r" / LOG_NAME).read_text().count("perfscope: ") >= 2


def wait_for(condition, timeout_s: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("scope", "is_privileged", "refused"),
    [(None, False, False), (0, False, False), (1, False, False), (2, True, False),
     (2, False, True), (3, True, True)],
)  # fmt: skip
def test_ptrace_scope_refusals(scope: int | None, is_privileged: bool, refused: bool):
    reason = ptrace_refusal(scope, is_privileged)
    assert (reason is not None) == refused
    if refused:
        assert reason.startswith("ptrace refused") and "kernel.yama.ptrace_scope" in reason


# What py-spy 0.4.3 wrote (RUST_LOG=warn) in the failures the collector explains.
LOG_OTHER_USER = (
    "[2026-11-23T05:16:05Z WARN  py_spy::sampler] Failed to profile python from process 19182: "
    "Failed to get process executable name. Check that the process is running.\n"
    "Error: No python processes found in process 19182 or any of its subprocesses\n"
)
LOG_PERMISSION = "Permission Denied: Try running again with elevated permissions by going 'sudo'\n"
LOG_NOT_PYTHON = (
    "[2026-11-23T05:16:09Z WARN  py_spy::sampler] Failed to profile python from process 19224: "
    "Failed to find python version from target process\n"
    "Error: No python processes found in process 19224 or any of its subprocesses\n"
)


def test_explains_ptrace_refusal_with_the_remedy_for_this_machine():
    status, reason = explain_failure(
        LOG_PERMISSION,
        exit_status=1,
        target_pid=19182,
        target_alive=True,
        ptrace_scope=1,
        in_container=True,
    )
    assert status == "unavailable"
    assert "Permission Denied" in reason
    assert "--cap-add SYS_PTRACE" in reason
    assert "`sudo sysctl kernel.yama.ptrace_scope=0` (it is 1)" in reason
    assert "run perfscope as root" in reason
    status, reason = explain_failure(
        LOG_OTHER_USER, exit_status=1, target_pid=19182, target_alive=True, is_root=True
    )
    assert status == "unavailable" and "Failed to get process executable name" in reason
    # the same message about a child that ended while py-spy looked is no refusal
    status, reason = explain_failure(
        LOG_OTHER_USER, exit_status=1, target_pid=19181, target_alive=True
    )
    assert status == "failed" and "no Python interpreter" in reason


def test_explains_a_program_without_python_or_too_short():
    status, reason = explain_failure(
        LOG_NOT_PYTHON, exit_status=1, target_pid=19224, target_alive=True
    )
    assert status == "failed" and "no Python interpreter" in reason
    assert "Failed to find python version" in reason or "No python processes" in reason
    status, reason = explain_failure(
        LOG_NOT_PYTHON, exit_status=1, target_pid=19224, target_alive=False
    )
    assert status == "failed" and "ended before py-spy could read it" in reason
    status, reason = explain_failure(
        LOG_OTHER_USER, exit_status=1, target_pid=19182, target_alive=False
    )
    assert status == "failed" and "ended before" in reason
