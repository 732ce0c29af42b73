"""`perfscope run --nproc-per-node N`: what it refuses, before anything starts."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_perfscope


def test_nproc_per_node_with_a_command_after_dashdash_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_perfscope(["run", "--nproc-per-node", "2", "--", "python", "-c", "0"], tmp_path)

    assert result.returncode == 2
    assert result.stderr.startswith(b"perfscope: error: --nproc-per-node launches a script")
    assert b"perfscope run -- torchrun --nproc-per-node N" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "perfscope-runs").exists()


def test_nproc_per_node_must_be_a_positive_count(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("print('never runs')\n")

    result = run_perfscope(["run", "--nproc-per-node", "0", str(script)], tmp_path)

    assert result.returncode == 2
    assert result.stderr.startswith(b"perfscope: error: ") and b"--nproc-per-node" in result.stderr
    assert b"never runs" not in result.stdout
