"""The in-code API gives the record `perfscope run` gives, and joins a run, never doubling it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.conftest import run_perfscope, run_python

LOOP = textwrap.dedent(
    """
    import sys
    import torch
    import perfscope
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    def train_step():
        model(torch.randn(4, 8)).sum().backward()
        opt.step()
        opt.zero_grad()
    """
)


def write(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "script.py"
    script.write_text(LOOP + textwrap.dedent(body))
    return script


def load(run_dir: Path) -> dict:
    return json.loads((run_dir / "record.json").read_text())


def test_profile_block_writes_a_record_and_report(tmp_path: Path):
    script = write(
        tmp_path,
        """
        with perfscope.profile(out=sys.argv[1], quiet=True) as prof:
            for _ in range(9):
                train_step()
                prof.step()
        print("after", prof.run_dir.name)
        """,
    )
    result = run_python([str(script), str(tmp_path / "p")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = load(tmp_path / "p")
    assert record["run"]["mode"] == "profile" and record["run"]["exit"] == "ok"
    assert record["run"]["step_method"] == "explicit"
    assert len(record["steps"]) == 9  # the block's start opens the first step
    assert record["collectors"]["host"]["status"] == "ok"
    assert (tmp_path / "p" / "report.html").is_file()


def test_exception_in_profile_block_propagates_unchanged(tmp_path: Path):
    script = write(
        tmp_path,
        """
        with perfscope.profile(out=sys.argv[1], quiet=True) as prof:
            train_step()
            prof.step()
            raise RuntimeError("user error")
        """,
    )
    plain_like = run_python([str(script), str(tmp_path / "p")], cwd=tmp_path)
    assert plain_like.returncode == 1
    assert plain_like.stderr.decode().rstrip().endswith("RuntimeError: user error")
    record = load(tmp_path / "p")
    assert record["run"]["exit"] == "error"
    assert record["run"]["exception"]["type"] == "RuntimeError"


def test_trace_decorator_makes_each_call_a_step(tmp_path: Path):
    script = write(
        tmp_path,
        """
        @perfscope.trace
        def traced(depth=0):
            if depth < 2:
                return traced(depth + 1)  # recursion stays inside the one step
            train_step()
        for _ in range(7):
            traced()
        """,
    )
    result = run_python([str(script)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "perfscope-runs").iterdir()
    record = load(run_dir)
    assert record["run"]["mode"] == "trace" and record["run"]["step_method"] == "trace"
    assert len(record["steps"]) == 7


def test_profile_inside_perfscope_run_joins_the_run(tmp_path: Path):
    # GIVEN a script with its own profile() block, run under perfscope run
    script = write(
        tmp_path,
        """
        with perfscope.profile(out="own-dir") as prof:
            for _ in range(6):
                train_step()
                prof.step()
        """,
    )
    result = run_perfscope(["run", "-q", str(script)], cwd=tmp_path, run_dir=tmp_path / "r")
    # THEN one record, in perfscope run's directory, with each step counted once
    assert result.returncode == 0
    assert not (tmp_path / "own-dir").exists()
    record = result.record
    assert record["run"]["step_method"] == "explicit"
    assert len(record["steps"]) == 6


def test_nested_profiles_and_step_calls_never_double_count(tmp_path: Path):
    script = write(
        tmp_path,
        """
        with perfscope.profile(out=sys.argv[1], quiet=True) as outer:
            with perfscope.profile() as inner:
                for _ in range(5):
                    train_step()
                    inner.step()
                    perfscope.step()
                    outer.step()
        """,
    )
    result = run_python([str(script), str(tmp_path / "p")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = load(tmp_path / "p")
    assert len(record["steps"]) == 5
    assert not (tmp_path / "perfscope-runs").exists()  # the inner block wrote no second run


def test_reentering_an_active_profile_is_an_error(tmp_path: Path):
    script = write(
        tmp_path,
        """
        prof = perfscope.profile(out=sys.argv[1], quiet=True)
        with prof:
            try:
                with prof:
                    pass
            except Exception as exc:
                print(type(exc).__name__, exc)
        """,
    )
    result = run_python([str(script), str(tmp_path / "p")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert b"PerfscopeError this perfscope.profile() is already active" in result.stdout
    assert load(tmp_path / "p")["run"]["exit"] == "ok"


def test_step_outside_any_run_does_nothing(tmp_path: Path):
    script = write(tmp_path, "perfscope.step()\nprint('fine')\n")
    result = run_python([str(script)], cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == b"fine\n"
    assert not (tmp_path / "perfscope-runs").exists()


def test_unknown_profile_option_names_the_known_ones(tmp_path: Path):
    script = write(
        tmp_path,
        """
        try:
            perfscope.profile(out=sys.argv[1], trace_stpes=3)
        except Exception as exc:
            print(type(exc).__name__, exc)
        with perfscope.profile(out=sys.argv[1], quiet=True, pyspy=False, trace=False) as prof:
            train_step()
            prof.step()
        """,
    )
    result = run_python([str(script), str(tmp_path / "p")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "PerfscopeError unknown perfscope.profile() option(s): trace_stpes" in out
    assert "trace_steps" not in out.split("known:")[0] and "trace_active" in out
    assert load(tmp_path / "p")["run"]["exit"] == "ok"


def test_a_second_profile_block_gets_its_own_collectors(tmp_path: Path):
    script = write(
        tmp_path,
        """
        for name in ("first", "second"):
            with perfscope.profile(out=name, quiet=True, pyspy=False, trace_skip=0) as prof:
                for _ in range(4):
                    train_step()
                    prof.step()
        """,
    )
    result = run_python([str(script)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("first", "second"):
        record = load(tmp_path / name)
        assert record["environment"]["torch"]["version"].startswith("2.")
        assert record["collectors"]["ops"]["status"] == "ok", record["collectors"]["ops"]
        assert record["collectors"]["allocator"]["status"] == "ok"
        assert len(record["steps"]) == 4
