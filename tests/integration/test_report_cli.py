"""`perfscope report` re-renders from the record alone and refuses a bad record in one line."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_perfscope


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, workload: str) -> Path:
    base = tmp_path_factory.mktemp("report")
    # 14 steps: enough for the op-trace window to open and keep its trace
    run_perfscope(["run", "-q", workload, "--steps", "14"], cwd=base, run_dir=base / "run")
    return base / "run"


@pytest.fixture(scope="module")
def workload() -> str:  # module-scoped twin of the conftest fixture
    from tests.conftest import SCRIPTS

    return str(SCRIPTS / "workload.py")


def test_rerender_from_the_record_alone(finished_run: Path, tmp_path: Path):
    # GIVEN only the record of a run, moved elsewhere
    alone = tmp_path / "copy"
    alone.mkdir()
    (alone / "record.json").write_bytes((finished_run / "record.json").read_bytes())
    # WHEN the report is rendered again, to the default place and to a chosen file
    first = run_perfscope(["report", str(alone)], cwd=tmp_path)
    second = run_perfscope(["report", str(alone), "-o", str(tmp_path / "x.html")], cwd=tmp_path)
    # THEN both exist and show the run's steps
    assert first.returncode == 0 and second.returncode == 0
    html = (alone / "report.html").read_text()
    assert html == (tmp_path / "x.html").read_text()
    assert "steps" in html and "14</b>" in html


def test_gzipped_record_is_read(finished_run: Path, tmp_path: Path):
    (tmp_path / "record.json.gz").write_bytes(
        gzip.compress((finished_run / "record.json").read_bytes())
    )
    result = run_perfscope(["report", str(tmp_path)], cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / "report.html").is_file()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "newer", "not-a-record"])
def test_bad_record_is_a_one_line_error_with_exit_2(
    finished_run: Path, tmp_path: Path, damage: str
):
    text = (finished_run / "record.json").read_text()
    bad = {
        "truncated": text[: len(text) // 2],
        "garbage": "\x00\x01 not json",
        "newer": json.dumps({**json.loads(text), "schema_version": 999}),
        "not-a-record": json.dumps([1, 2, 3]),
    }[damage]
    (tmp_path / "record.json").write_text(bad)
    result = run_perfscope(["report", str(tmp_path)], cwd=tmp_path)
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2
    assert len(lines) == 1 and lines[0].startswith("perfscope: error: ")
    assert str(tmp_path / "record.json") in lines[0]
    assert not (tmp_path / "report.html").exists()
    if damage == "newer":
        assert "upgrade perfscope" in lines[0]


def test_missing_run_directory(tmp_path: Path):
    result = run_perfscope(["report", str(tmp_path / "nope")], cwd=tmp_path)
    assert result.returncode == 2
    assert b"no such run directory" in result.stderr


def test_a_record_the_report_cannot_show_is_a_one_line_error(finished_run: Path, tmp_path: Path):
    # GIVEN a record with every top-level key but a `run` stripped of its fields
    data = json.loads((finished_run / "record.json").read_text())
    data["run"] = {}
    (tmp_path / "record.json").write_text(json.dumps(data))
    # WHEN it is rendered
    result = run_perfscope(["report", str(tmp_path)], cwd=tmp_path)
    # THEN one line names the record and what is wrong, and no report is written
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert lines[0].startswith(f"perfscope: error: {tmp_path / 'record.json'}: cannot render")
    assert not (tmp_path / "report.html").exists()


def test_open_hands_the_report_to_the_users_browser(finished_run: Path, tmp_path: Path):
    # GIVEN a "browser" (the BROWSER variable webbrowser reads) that records what it was given
    seen = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{seen}"\n')
    browser.chmod(0o755)
    # WHEN the report is rendered with --open
    result = run_perfscope(
        ["report", str(finished_run), "-o", str(tmp_path / "r.html"), "--open"],
        cwd=tmp_path,
        env={"BROWSER": str(browser)},
    )
    # THEN the browser got the report's file URI
    assert result.returncode == 0, result.stderr
    assert seen.read_text() == (tmp_path / "r.html").resolve().as_uri()


def test_report_links_to_the_run_files_from_wherever_it_is_written(
    finished_run: Path, tmp_path: Path
):
    # GIVEN a run with a kept op trace, rendered to another folder
    out = tmp_path / "elsewhere" / "r.html"
    out.parent.mkdir()
    assert (
        run_perfscope(["report", str(finished_run), "-o", str(out)], cwd=tmp_path).returncode == 0
    )
    html = out.read_text()
    # THEN its link to the trace is relative to where the report is and reaches the file
    record = json.loads((finished_run / "record.json").read_text())
    trace = record["collectors"]["ops"]["trace"]
    href = re.search(r'id="trace-link">[^<]*<a href="([^"]+)"', html).group(1)
    assert (out.parent / href).resolve() == (finished_run / trace).resolve()


def test_open_without_a_browser_is_a_one_line_error(finished_run: Path, tmp_path: Path):
    # GIVEN no display, no terminal browser, and a BROWSER command that fails
    env = {"BROWSER": "false", "DISPLAY": "", "WAYLAND_DISPLAY": "", "TERM": ""}
    out = tmp_path / "r.html"
    result = run_perfscope(
        ["report", str(finished_run), "-o", str(out), "--open"], tmp_path, env=env
    )
    # THEN the report is written, and one line says how to open it
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert lines[0].startswith("perfscope: error: no web browser found")
    assert out.resolve().as_uri() in lines[0]
    assert out.is_file()
