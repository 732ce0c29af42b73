"""The HTML report in a real headless Chromium, over reports of real runs.

Each run (healthy, crashed, slow data, no steps) is a real `perfscope run`, made once per module
and only when a test asks for it. The page must draw its charts offline (no request but the file
itself and the blob: the inflated plotly.js runs from), log no console error, show what matters,
fit a phone's width, follow the dark theme, and never run a string that came from the run.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_perfscope

ROOT = Path(__file__).resolve().parents[2]
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
PAYLOAD_OP = "aten::<script>alert('op')</script><img src=x onerror=alert(2)>"
PAYLOAD_ENV = "\"><script>alert('env')</script>"
CRASHING_LOOP = textwrap.dedent(
    f"""
    import torch
    model = torch.nn.Linear(32, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for step in range(30):
        loss = model(torch.randn(64, 32)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 25:
            raise RuntimeError({PAYLOAD_MSG!r})
    """
)
NO_STEPS = "import torch\nx = torch.randn(400, 400)\nfor _ in range(150):\n    x = (x @ x).tanh()\n"
SCENARIO = ROOT / "tests" / "scenarios" / "scenario.py"
RUNS: dict[str, Callable[[Path], list[str]]] = {
    "healthy": lambda d: [str(ROOT / "examples" / "train_cnn.py"), "--samples", "320"],
    "crashed": lambda d: [_write(d / "crash.py", CRASHING_LOOP), PAYLOAD_ARG],
    "slow-data": lambda d: [str(SCENARIO), "--augment-ms", "1", "--batch", "16", "--steps", "30"],
    "no-steps": lambda d: [_write(d / "no_steps.py", NO_STEPS)],
}


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs it (make browser)")
        pytest.skip("chromium is not installed (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def run_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The run directory of a scenario, run for real the first time a test asks for it."""
    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            base = tmp_path_factory.mktemp(name)
            result = run_perfscope(["run", "-q", *RUNS[name](base)], cwd=base, run_dir=base / "r")
            assert (base / "r" / "report.html").is_file(), result.stderr.decode()
            done[name] = base / "r"
        return done[name]

    return get


class Opened:
    """A report opened in a fresh page, with what the page logged and requested."""

    def __init__(self, browser: Any, report: Path, **page_options: Any) -> None:
        self.page = browser.new_page(**page_options)
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(report.as_uri())
        # A selector, not wait_for_function: the page's CSP forbids the eval that one needs.
        self.page.wait_for_selector(
            "body[data-charts=drawn], body[data-charts=failed]", state="attached", timeout=20_000
        )
        self.report = report

    def assert_clean(self) -> None:
        assert self.page.get_attribute("body", "data-charts") == "drawn"
        assert self.errors == []
        assert self.dialogs == []
        others = [u for u in self.requests if u != self.report.as_uri()]
        assert all(u.startswith("blob:") for u in others), others  # only the inflated plotly.js
        assert len(others) == 1

    def drawn(self, chart_id: str) -> bool:
        return self.page.locator(f"#{chart_id} .main-svg").count() > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_report_of_a_real_run_draws_its_charts_offline(browser, run_of, name: str):
    # GIVEN the report a real run wrote
    report = run_of(name) / "report.html"
    # WHEN Chromium opens it at a phone's width
    opened = Opened(browser, report, viewport={"width": 390, "height": 844})
    # THEN the charts are drawn, nothing was fetched, the console is clean, nothing overflows
    opened.assert_clean()
    assert opened.page.evaluate("document.documentElement.scrollWidth") <= 390
    record = json.loads((report.parent / "record.json").read_text())
    assert opened.drawn("chart-timeline")
    assert opened.drawn("chart-steps") == bool(record["steps"])
    # AND what matters about this run is on screen
    page = opened.page
    for finding in record["findings"]:
        assert page.locator(f".finding#{finding['id']}").is_visible()
    expected = {
        "healthy": "#exit-ok",
        "crashed": "#crash",
        "slow-data": ".finding#DATA001",
        "no-steps": "#no-steps",
    }[name]
    assert page.locator(expected).is_visible()
    if name == "healthy":
        assert opened.drawn("chart-icicle")
        assert page.locator("#op-table tbody tr").count() >= 10
        assert page.locator("#trace-link a").get_attribute("href") == "trace.json.gz"
    page.close()


@pytest.mark.slow
def test_hostile_run_strings_are_shown_not_run(browser, run_of, tmp_path: Path):
    # GIVEN a crashed run whose argv and exception carry script and event-handler payloads,
    # its record given hostile op names, py-spy functions and an environment value too
    data = json.loads((run_of("crashed") / "record.json").read_text())
    assert data["samples"]["ops"]["ops"], "the crashing loop ran long enough for the op window"
    for row in data["samples"]["ops"]["ops"][:3]:
        row["name"] = PAYLOAD_OP
    data["samples"]["ops"]["syncs"] = {PAYLOAD_OP: 3}
    for row in (data["samples"].get("pyspy") or {}).get("functions", [])[:2]:
        row["function"] = PAYLOAD_OP
    data["environment"]["env"] = {"OMP_NUM_THREADS": PAYLOAD_ENV}
    (tmp_path / "record.json").write_text(json.dumps(data))
    assert run_perfscope(["report", str(tmp_path)], cwd=tmp_path).returncode == 0
    # WHEN Chromium opens its report
    opened = Opened(browser, tmp_path / "report.html")
    # THEN nothing ran, the payloads show as text, and the page asked for nothing outside itself
    opened.assert_clean()
    page = opened.page
    assert "pwned" not in page.title()
    body = page.inner_text("body")
    assert PAYLOAD_ARG in body
    assert "RuntimeError: " + PAYLOAD_MSG in body
    assert PAYLOAD_OP in page.inner_text("#op-table")
    assert PAYLOAD_OP in page.inner_text("#sync-table")
    assert PAYLOAD_ENV in page.inner_text("#facts-table")
    assert page.locator("#crash").is_visible()
    # the only scripts: the loader, the page's own, and plotly.js inflated to a blob: URL
    assert page.locator("script:not([type]):not([src])").count() == 2
    assert page.locator("script[src]").get_attribute("src").startswith("blob:")
    page.close()


@pytest.mark.slow
def test_phone_width_and_the_readme_screenshot(browser, run_of, tmp_path: Path):
    opened = Opened(
        browser, run_of("healthy") / "report.html", viewport={"width": 390, "height": 844}
    )
    opened.assert_clean()
    page = opened.page
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    assert page.locator(".finding#DATA001").is_visible()
    page.close()
    wide = Opened(
        browser, run_of("healthy") / "report.html", viewport={"width": 1100, "height": 1500}
    )
    shot = tmp_path / "report.png"
    wide.page.screenshot(path=str(shot), full_page=False)
    if os.environ.get("PERFSCOPE_UPDATE_SCREENSHOT"):  # refreshes the README's picture
        shutil.copy(shot, ROOT / "docs" / "report-screenshot.png")
    wide.page.close()


@pytest.mark.slow
def test_dark_theme_follows_the_system_setting(browser, run_of):
    backgrounds = {}
    for scheme in ("light", "dark"):
        opened = Opened(browser, run_of("slow-data") / "report.html", color_scheme=scheme)
        opened.assert_clean()
        backgrounds[scheme] = opened.page.evaluate(
            "getComputedStyle(document.body).backgroundColor"
        )
        # the charts take the theme's text colour too
        fill = opened.page.locator("#chart-steps .xtick text").first.get_attribute("style") or ""
        backgrounds[scheme + "-tick"] = fill
        opened.page.close()
    assert backgrounds["light"] == "rgb(255, 255, 255)"
    assert backgrounds["dark"] != backgrounds["light"]
    assert backgrounds["dark-tick"] != backgrounds["light-tick"]


@pytest.mark.slow
def test_op_table_sorts_by_a_clicked_column(browser, run_of):
    opened = Opened(browser, run_of("healthy") / "report.html")
    page = opened.page
    page.click("#op-table thead th:nth-child(2)")  # count, descending
    counts = [int(t) for t in page.locator("#op-table tbody td:nth-child(2)").all_inner_texts()]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    page.click("#op-table thead th:nth-child(2)")  # again: ascending
    counts = [int(t) for t in page.locator("#op-table tbody td:nth-child(2)").all_inner_texts()]
    assert counts == sorted(counts)
    opened.assert_clean()
    page.close()


def _long_run_record(base: dict[str, Any], steps: int, points: int) -> dict[str, Any]:
    """A real record stretched to `steps` steps and `points` host samples (the host series' cap).

    Step times repeat the real run's, with a slow step every 500; the series repeat theirs.
    """
    real = base["steps"][1:] or base["steps"]
    out, start = [], 1.0
    for i in range(steps):
        model = real[i % len(real)]
        duration = model["duration_ms"] * (8 if i % 500 == 250 else 1)
        out.append(
            {
                "index": i,
                "start_s": round(start, 6),
                "duration_ms": duration,
                "data_wait_ms": model["data_wait_ms"],
            }
        )
        start += duration / 1e3
    host = base["samples"]["host"]
    n = len(host["ts"])
    stretched = {key: [col[i % n] for i in range(points)] for key, col in host.items()}
    stretched["ts"] = [round(1.0 + i * (start - 1.0) / points, 4) for i in range(points)]
    return {
        **base,
        "steps": out,
        "samples": {**base["samples"], "host": stretched},
        "run": {**base["run"], "duration_s": start + 1},
    }


@pytest.mark.slow
def test_a_10000_step_report_is_small_and_draws_fast(browser, run_of, tmp_path: Path):
    # GIVEN a 10,000-step record with full-length host series, and the real run it came from
    healthy = run_of("healthy")
    base = json.loads((healthy / "record.json").read_text())
    (tmp_path / "record.json").write_text(json.dumps(_long_run_record(base, 10_000, 4096)))
    # WHEN it is rendered and opened
    assert run_perfscope(["report", str(tmp_path)], cwd=tmp_path).returncode == 0
    report = tmp_path / "report.html"
    opened = Opened(browser, report)
    # THEN the file stays under 6 MB, and the charts are drawn soon after navigation starts
    opened.assert_clean()
    size_mb = report.stat().st_size / 1e6
    real_mb = (healthy / "report.html").stat().st_size / 1e6
    drawn_ms = int(opened.page.get_attribute("body", "data-drawn-ms") or 0)
    paint_ms = opened.page.evaluate(
        "performance.getEntriesByName('first-contentful-paint')[0].startTime"
    )
    print(
        f"\n10,000-step report: {size_mb:.2f} MB, first paint {paint_ms:.0f} ms, charts drawn"
        f" {drawn_ms} ms after navigation; real run's report: {real_mb:.2f} MB"
    )
    assert size_mb < 6.0
    assert real_mb < 6.0
    assert 0 < paint_ms < 2000  # the text, tables and findings
    assert 0 < drawn_ms < 5000  # generous: CI machines are noisy
    assert opened.page.locator("#chart-steps .main-svg").count() > 0
    opened.page.close()
