"""`perfscope compare BASE NEW` on real runs: the terminal table, and the HTML page in a real
headless Chromium (offline plotly over a static SVG, no console errors, deltas visible)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import run_perfscope

SCENARIO = str(Path(__file__).resolve().parents[1] / "scenarios" / "scenario.py")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # base: 10 ms steps; new: 30 ms steps with 20 .item() calls each, so OPS002 (would sync on
    # a GPU: a count from the op trace, 21 syncs/step against 1) fires in NEW only
    folder = tmp_path_factory.mktemp("compare")
    flags = {
        "base": ["--steps", "30", "--step-ms", "10"],
        "new": ["--steps", "30", "--step-ms", "30", "--items", "20"],
    }
    for name, args in flags.items():
        cmd = ["run", "-q", "--no-pyspy", SCENARIO, *args]
        result = run_perfscope(cmd, cwd=folder, run_dir=folder / name)
        assert result.returncode == 0, result.stderr.decode()
    return {name: folder / name for name in flags}


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs it (make browser)")
        pytest.skip("chromium is not installed (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.slow
def test_the_terminal_table_shows_the_verdict_deltas_and_findings(runs: dict[str, Path]) -> None:
    base, new = str(runs["base"]), str(runs["new"])
    result = run_perfscope(["compare", base, new, "--no-html"], cwd=runs["base"].parent)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert out.startswith("step time REGRESSED: p25 "), out
    assert "steps.time_ms_p50" in out and "finding appeared: OPS002" in out
    assert not (runs["new"] / "compare.html").exists()
    back = run_perfscope(["compare", new, base, "--no-html"], cwd=runs["base"].parent)
    assert "step time IMPROVED" in back.stdout.decode()
    assert "finding went away: OPS002" in back.stdout.decode()


@pytest.mark.slow
def test_the_html_comparison_in_chromium(runs: dict[str, Path], browser, tmp_path: Path) -> None:
    # GIVEN the comparison page of the two runs
    target = tmp_path / "cmp.html"
    args = ["compare", str(runs["base"]), str(runs["new"]), "-o", str(target)]
    result = run_perfscope(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert f"Comparison: {target}" in result.stdout.decode()
    # WHEN Chromium opens it, offline
    page = browser.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(target.as_uri())
    # A selector, not wait_for_function: the page's CSP forbids the eval that one needs.
    page.wait_for_selector(
        "body[data-charts=drawn], body[data-charts=failed]", state="attached", timeout=30_000
    )
    # THEN plotly drew the overlaid histograms, without an error or a network request
    assert page.evaluate("document.body.dataset.charts") == "drawn", errors
    assert errors == []
    assert all(url.startswith(("file:", "blob:", "data:")) for url in requests), requests
    traces = page.evaluate("document.getElementById('step-hist').data.map(t => t.type)")
    assert traces == ["histogram", "histogram"]
    # AND the verdict, the metric deltas and the finding that appeared are visible
    assert page.is_visible("#verdict") and "regressed" in page.inner_text("#verdict").lower()
    row = page.locator("#metric-deltas tr", has_text="steps.time_ms_p50")
    assert row.is_visible() and "+" in row.locator("td").nth(3).inner_text()
    appeared = page.locator("#finding-changes tr.finding-appeared", has_text="OPS002")
    assert appeared.count() == 1 and appeared.is_visible()
    page.close()


@pytest.mark.slow
def test_without_scripts_the_static_histograms_show(runs, browser, tmp_path: Path) -> None:
    target = tmp_path / "cmp.html"
    run_perfscope(["compare", str(runs["base"]), str(runs["new"]), "-o", str(target)], tmp_path)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(target.as_uri())
    assert page.is_visible("#step-hist-svg")
    assert page.locator("#step-hist-svg rect").count() > 0
    context.close()


def test_a_missing_run_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_perfscope(["compare", "nowhere", "elsewhere"], cwd=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 2
    assert (
        err.startswith("perfscope: error: nowhere: no such run directory") and err.count("\n") == 1
    )


@pytest.mark.slow
def test_hostile_run_names_are_shown_not_run(runs, browser, tmp_path: Path) -> None:
    # GIVEN a run directory whose name is markup
    import shutil

    name = "<img src=x onerror=\"document.title='pwned'\">"
    hostile = tmp_path / name
    shutil.copytree(runs["new"], hostile)
    target = tmp_path / "cmp.html"
    result = run_perfscope(["compare", str(runs["base"]), name, "-o", str(target)], tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    # WHEN Chromium opens the comparison
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(target.as_uri())
    page.wait_for_selector("body[data-charts=drawn]", state="attached", timeout=30_000)
    # THEN the name shows as text, in the page and in the chart's legend, and nothing ran
    assert dialogs == [] and page.title().startswith("perfscope · compare")
    assert name in page.inner_text("body")
    assert f"new: {name}" in page.locator("#step-hist .legend").text_content()
    page.close()
