"""The HTML report in a real headless Chromium: it renders offline; run strings never execute."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run_perfscope

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAYLOAD_ARG = "<img src=x onerror=\"document.title='pwned-arg'\">"
PAYLOAD_MSG = "<script>document.title='pwned-exc'</script><svg onload=alert(1)>"


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


def test_hostile_run_strings_are_shown_not_run(browser, tmp_path: Path):
    # GIVEN a run whose argv and exception carry script and event-handler payloads
    script = tmp_path / "hostile.py"
    script.write_text(textwrap.dedent(f"raise RuntimeError({PAYLOAD_MSG!r})\n"))
    run_perfscope(["run", "-q", str(script), PAYLOAD_ARG], cwd=tmp_path, run_dir=tmp_path / "r")
    report = tmp_path / "r" / "report.html"
    # WHEN Chromium opens its report
    page = browser.new_page()
    dialogs: list[str] = []
    requests: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    # THEN nothing ran, the payloads show as text, and the page asked for nothing but itself
    assert dialogs == []
    assert "pwned" not in page.title()
    body = page.inner_text("body")
    assert PAYLOAD_ARG in body
    assert "RuntimeError: " + PAYLOAD_MSG in body
    assert page.locator("#crash").is_visible()
    assert requests == [report.as_uri()]
    page.close()


def test_report_of_a_training_run_shows_findings_and_steps(browser, tmp_path: Path):
    example = Path(__file__).resolve().parents[2] / "examples" / "train_cnn.py"
    run_perfscope(
        ["run", "-q", str(example), "--samples", "320"], cwd=tmp_path, run_dir=tmp_path / "r"
    )
    page = browser.new_page(viewport={"width": 390, "height": 844})  # phone width
    page.goto((tmp_path / "r" / "report.html").as_uri())
    assert page.locator(".finding#DATA001").is_visible()
    assert page.locator("svg.chart rect").count() >= 10
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("PERFSCOPE_UPDATE_SCREENSHOT"):  # refreshes the README's picture
        shutil.copy(shot, Path(__file__).resolve().parents[2] / "docs" / "report-screenshot.png")
    page.close()
