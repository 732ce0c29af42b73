"""`perfscope run` shows the script what `python` shows it, and gives back the same bytes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import PERFSCOPE, child_env, run_perfscope, run_python

PROBE = textwrap.dedent(
    """
    import os, sys
    data = sys.stdin.read()
    print("argv", sys.argv)
    print("name", __name__)
    print("path0", os.path.relpath(sys.path[0], os.path.dirname(os.path.abspath(__file__))))
    print("file", __file__)
    print("stdin", repr(data))
    print("to stderr", file=sys.stderr)
    code = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 0
    if "raise" in sys.argv:
        def inner():
            raise KeyError("nope <b>")
        inner()
    sys.exit(code)
    """
)


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    (tmp_path / "sub").mkdir()
    script = tmp_path / "sub" / "probe.py"
    script.write_text(PROBE)
    return script


@pytest.mark.parametrize(
    "args",
    [["a", "--lr", "3e-4", "spaced arg"], ["3"], ["raise"], []],
    ids=["args", "exit-3", "uncaught-exception", "no-args"],
)
def test_script_sees_and_gives_what_python_does(probe: Path, tmp_path: Path, args: list[str]):
    # GIVEN the same script, arguments and stdin
    script = str(probe.relative_to(tmp_path))
    # WHEN it runs under plain python and under perfscope run --quiet
    plain = run_python([script, *args], cwd=tmp_path, stdin=b"line one\n")
    traced = run_perfscope(
        ["run", "-q", script, *args], cwd=tmp_path, run_dir=tmp_path / "run", stdin=b"line one\n"
    )
    # THEN stdout, stderr and the exit code are byte for byte the same
    assert traced.stdout == plain.stdout
    assert traced.stderr == plain.stderr
    assert traced.returncode == plain.returncode
    assert b"name __main__" in traced.stdout and b"path0 .\n" in traced.stdout
    assert (tmp_path / "run" / "record.json").is_file()


def test_summary_goes_after_the_scripts_own_stderr(probe: Path, tmp_path: Path):
    plain = run_python([str(probe), "raise"], cwd=tmp_path)
    traced = run_perfscope(["run", str(probe), "raise"], cwd=tmp_path, run_dir=tmp_path / "r")
    assert traced.stdout == plain.stdout
    assert traced.stderr.startswith(plain.stderr)
    summary = traced.stderr[len(plain.stderr) :].decode()
    assert "perfscope: the run failed with KeyError" in summary
    assert str(tmp_path / "r" / "report.html") in summary


def test_module_mode_matches_python_dash_m(tmp_path: Path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tool.py").write_text(PROBE)
    plain = run_python(["-m", "pkg.tool", "x", "4"], cwd=tmp_path)
    traced = run_perfscope(
        ["run", "-q", "-m", "pkg.tool", "x", "4"], cwd=tmp_path, run_dir=tmp_path / "r"
    )
    assert (traced.stdout, traced.stderr, traced.returncode) == (
        plain.stdout,
        plain.stderr,
        plain.returncode,
    )
    assert traced.record["run"]["mode"] == "module"


def test_command_mode_runs_any_command_after_dashdash(probe: Path, tmp_path: Path):
    plain = run_python([str(probe), "5"], cwd=tmp_path)
    traced = run_perfscope(
        ["run", "-q", "--", sys.executable, str(probe), "5"], cwd=tmp_path, run_dir=tmp_path / "r"
    )
    assert (traced.stdout, traced.stderr, traced.returncode) == (plain.stdout, plain.stderr, 5)
    record = traced.record
    assert record["run"]["mode"] == "command"
    assert record["run"]["exit"] == "error" and record["run"]["exit_code"] == 5
    assert record["collectors"]["steps"]["status"] == "ok"  # the python after -- was instrumented


def test_output_streams_through_while_the_script_runs(tmp_path: Path):
    # GIVEN a script that prints, then blocks on stdin
    script = tmp_path / "echo.py"
    script.write_text("print('ready', flush=True)\nprint('got', input())\n")
    proc = subprocess.Popen(
        [PERFSCOPE, "run", "-q", "-o", str(tmp_path / "r"), str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    # WHEN we read its first line before giving it any input
    first = proc.stdout.readline()
    proc.stdin.write(b"hello\n")
    proc.stdin.close()
    rest = proc.stdout.read()
    # THEN the line arrived while the script was still waiting on us
    assert first == b"ready\n"
    assert rest == b"got hello\n"
    assert proc.wait(timeout=60) == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "missing.py"], "script not found: missing.py"),
        (["run"], "nothing to run"),
        (["run", "--", "no-such-command-xyz"], "command not found: no-such-command-xyz"),
    ],
)
def test_bad_targets_are_one_line_errors_with_exit_2(tmp_path: Path, args: list[str], message: str):
    result = run_perfscope(args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("perfscope: error: ") and message in lines[0]
    assert not (tmp_path / "perfscope-runs").exists()


def test_rerun_into_the_same_directory_replaces_the_previous_run(workload: str, tmp_path: Path):
    run_dir = tmp_path / "r"
    first = run_perfscope(["run", "-q", workload, "--steps", "3"], cwd=tmp_path, run_dir=run_dir)
    (run_dir / "notes.txt").write_text("mine")
    second = run_perfscope(
        ["run", "-q", "--no-report", workload, "--steps", "5"], cwd=tmp_path, run_dir=run_dir
    )
    assert first.returncode == second.returncode == 0
    assert len(second.record["steps"]) == 5
    assert len(list((run_dir / "events").iterdir())) == 1
    assert not (run_dir / "report.html").exists()  # --no-report, and the old one is gone
    assert (run_dir / "notes.txt").read_text() == "mine"


def test_a_sitecustomize_of_the_users_still_runs_in_the_script(tmp_path: Path):
    # GIVEN a sitecustomize of the user's own on PYTHONPATH, which perfscope's hook shadows
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(
        "import os\nopen(os.path.join(os.path.dirname(__file__), f'ran-{os.getpid()}'), 'w')\n"
    )
    script = tmp_path / "s.py"
    script.write_text("print('hi')\n")
    # WHEN the script runs under perfscope
    result = run_perfscope(
        ["run", "-q", str(script)],
        cwd=tmp_path,
        run_dir=tmp_path / "r",
        env={"PYTHONPATH": str(tmp_path / "site")},
    )
    # THEN the user's sitecustomize ran in the script's process, after perfscope's
    assert result.returncode == 0 and result.stdout == b"hi\n"
    assert (tmp_path / "site" / f"ran-{result.record['run']['pid']}").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--host-interval", "abc", "x.py"], "'abc' is not a valid float range"),
        (["run", "--no-such-option", "x.py"], "No such option"),
        (["nonsense"], "No such command 'nonsense'"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(tmp_path: Path, args: list[str], message: str):
    result = run_perfscope(args, cwd=tmp_path)
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2
    assert len(lines) == 1 and lines[0].startswith("perfscope: error: ")
    assert message in lines[0] and "--help" in lines[0]
