"""`perfscope analyze` as a user runs it: a real subprocess on real Kineto traces, a folder of
per-rank traces, and the ways a trace can be wrong."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_perfscope

FIXTURES = Path(__file__).parents[1] / "fixtures" / "traces"
V100 = FIXTURES / "kineto_v100_1gpu_train_5steps.json.gz"
RANKS = [FIXTURES / f"kineto_sampled_rank{r}_of128.json.gz" for r in (0, 1)]


def analyze(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = run_perfscope(["analyze", *args], cwd=tmp_path)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def test_analyze_a_gpu_trace_writes_the_record_and_report(tmp_path: Path) -> None:
    # WHEN
    code, out, err = analyze(tmp_path, "-o", str(tmp_path / "run"), str(V100))

    # THEN
    assert code == 0, err
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["run"]["mode"] == "analyze"
    assert record["run"]["exit"] == "ok"
    assert len(record["steps"]) == 5
    for name in ("host", "gpu", "pyspy", "allocator"):
        assert record["collectors"][name]["status"] == "unavailable"
        assert record["collectors"][name]["reason"]
    assert record["collectors"]["trace"]["status"] == "ok"
    assert record["collectors"]["ops"]["status"] == "ok"
    assert record["environment"]["gpu"]["name"] == "Tesla V100-SXM2-32GB"
    assert record["metrics"]["gpu.busy_frac"] > 0.9
    assert "UTIL003" in [f["id"] for f in record["findings"]]
    assert (tmp_path / "run" / "report.html").stat().st_size > 10_000
    assert "report.html" in out + err  # the summary goes to stderr, as for perfscope run


def test_the_record_re_renders_with_perfscope_report(tmp_path: Path) -> None:
    code, _, err = analyze(tmp_path, "-q", "-o", str(tmp_path / "run"), str(V100))
    assert code == 0, err
    (tmp_path / "run" / "report.html").unlink()

    result = run_perfscope(["report", str(tmp_path / "run")], cwd=tmp_path)

    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "run" / "report.html").is_file()


def test_a_cpu_only_trace_gets_a_record_without_gpu_metrics(tmp_path: Path) -> None:
    trace = FIXTURES / "kineto_cpu_only_gloo_rank34_of300.json.gz"

    code, _, err = analyze(tmp_path, "-q", "-o", str(tmp_path / "run"), str(trace))

    assert code == 0, err
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["collectors"]["trace"]["platform"] == "cpu"
    assert not any(name.startswith("gpu.") for name in record["metrics"])


def test_a_folder_of_rank_traces_gives_per_rank_summaries(tmp_path: Path) -> None:
    # GIVEN the traces of ranks 0 and 1 of a 128-rank job, as tensorboard_trace_handler names them
    folder = tmp_path / "traces"
    folder.mkdir()
    for i, path in enumerate(RANKS):
        shutil.copy(path, folder / f"host_{i}.1234.pt.trace.json.gz")

    # WHEN
    code, _, err = analyze(tmp_path, "-q", "-o", str(tmp_path / "run"), str(folder))

    # THEN
    assert code == 0, err
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    ranks = record["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["world_size"] == 128 and r["steps"] == 2 for r in ranks)
    for summary, path in zip(ranks, RANKS, strict=True):
        events = json.loads(gzip.decompress(path.read_bytes()))["traceEvents"]
        steps = [e["dur"] for e in events if str(e.get("name")).startswith("ProfilerStep#")]
        assert summary["step_ms_mean"] == pytest.approx(sum(steps) / len(steps) / 1e3, abs=1e-3)
        assert summary["comm_ms_mean"] > 0
    assert record["metrics"]["dist.ranks_seen"] == 2
    assert record["metrics"]["dist.world_size"] == 128
    assert "dist.straggler_rank" in record["metrics"]
    assert "dist.comm_frac" in record["metrics"]


def test_a_truncated_trace_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(V100.read_bytes()[:300_000])

    code, _, err = analyze(tmp_path, "-o", str(tmp_path / "run"), str(broken))

    assert code == 2
    assert err.startswith("perfscope: error: ") and err.count("\n") == 1
    assert "broken.json.gz: corrupt or truncated trace at byte" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.json", "no such trace file or folder"),
        (lambda p: p, "no trace files (.json or .json.gz) in this folder"),
    ],
    ids=["missing", "empty-folder"],
)
def test_a_wrong_path_is_a_one_line_error(tmp_path: Path, make, message: str) -> None:
    target = make(tmp_path / "in")
    (tmp_path / "in").mkdir()

    code, _, err = analyze(tmp_path, str(target))

    assert code == 2
    assert err.startswith("perfscope: error: ") and message in err


def test_a_trace_without_timed_events_is_a_one_line_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"schemaVersion": 1, "traceEvents": []}))

    code, _, err = analyze(tmp_path, str(empty))

    assert code == 2
    assert "empty.json: the trace holds no timed events" in err


@pytest.mark.slow
@pytest.mark.parametrize(
    "trace", ["kineto_v100_1gpu_train_5steps", "kineto_mi250_rocm_toy_train_3steps"]
)
def test_the_report_of_a_trace_opens_clean_in_chromium(tmp_path: Path, trace: str) -> None:
    from tests.integration.test_report_browser import CHROMIUM, CHROMIUM_ARGS, Opened

    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (make browser)")
    from playwright.sync_api import sync_playwright

    # GIVEN the report perfscope analyze wrote for a real trace
    code, _, err = analyze(
        tmp_path, "-q", "-o", str(tmp_path / "run"), str(FIXTURES / f"{trace}.json.gz")
    )
    assert code == 0, err
    record = json.loads((tmp_path / "run" / "record.json").read_text())

    # WHEN Chromium opens it
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        opened = Opened(browser, tmp_path / "run" / "report.html")

        # THEN it draws, offline, with a clean console, and shows every finding
        opened.assert_clean()
        assert opened.drawn("chart-steps")
        assert record["findings"]
        for finding in record["findings"]:
            assert opened.page.locator(f".finding#{finding['id']}").is_visible()
        browser.close()
