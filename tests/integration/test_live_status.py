"""The live status line: on a terminal, never garbling the script's lines, never in a pipe."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

from tests.conftest import PERFSCOPE, child_env, run_perfscope


def run_in_terminal(args: list[str], cwd: Path, rows: int = 24, cols: int = 100) -> bytes:
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = child_env(TERM="xterm-256color")
    env.pop("CI")
    proc = subprocess.Popen(
        [PERFSCOPE, *args], cwd=cwd, stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process tree is gone
                break
            if not chunk:
                break
            output += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(leader)
    return output


def test_status_line_on_a_terminal_keeps_the_scripts_lines_whole(workload: str, tmp_path: Path):
    # GIVEN a loop of about 3 s that prints a line now and then
    script = tmp_path / "chatty.py"
    script.write_text(
        "import time, torch\n"
        "m = torch.nn.Linear(4, 1); o = torch.optim.SGD(m.parameters(), lr=0.1)\n"
        "for i in range(60):\n"
        "    m(torch.randn(2, 4)).sum().backward(); o.step(); time.sleep(0.05)\n"
        "    if i % 10 == 0: print(f'script line {i} ' + 'x' * 30, flush=True)\n"
    )
    # WHEN it runs under perfscope in a terminal
    output = run_in_terminal(["run", "-o", str(tmp_path / "r"), str(script)], cwd=tmp_path)
    # THEN the status line was drawn on the last row, outside the scroll region
    assert b"\x1b[1;23r" in output  # the script scrolls in rows 1-23
    assert b"\x1b[24;1H" in output and b"perfscope |" in output
    assert b"ms/step" in output
    # and every line of the script arrived whole, and the screen was given back
    for i in range(0, 60, 10):
        assert f"script line {i} {'x' * 30}\r\n".encode() in output
    assert b"\x1b[r" in output


def test_no_status_line_when_piped(workload: str, tmp_path: Path):
    result = run_perfscope(["run", workload, "--steps", "5"], cwd=tmp_path, run_dir=tmp_path / "r")
    assert b"\x1b[" not in result.stderr and b"\x1b[" not in result.stdout
    assert b"perfscope: the run finished." in result.stderr
