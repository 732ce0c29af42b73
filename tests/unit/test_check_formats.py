"""perfscope check's output formats: JUnit XML, GitHub annotations, markdown, JSON, text."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from perfscope.check.formats import FORMATS, render
from perfscope.check.outcome import Outcome

OUTCOMES = [
    Outcome("run", "run ended ok", "pass", "the program exited 0"),
    Outcome("budget", "steps.time_ms_p50 <= 120", "fail", "130 is above the max 120"),
    Outcome("budget", "gpu.util_frac >= 0.6", "pass", "0.7"),
    Outcome("baseline", "step time vs baseline", "inconclusive", "50% | 100%\nwide: too noisy"),
]


def test_junit_has_one_test_case_per_check() -> None:
    root = ET.fromstring(render("junit", OUTCOMES, "runs/a", strict=False))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "4"
    assert (suite.get("failures"), suite.get("skipped")) == ("1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == [o.name for o in OUTCOMES]
    assert cases["steps.time_ms_p50 <= 120"].find("failure").get("message") == OUTCOMES[1].message
    assert cases["step time vs baseline"].find("skipped") is not None


def test_junit_under_strict_fails_an_inconclusive_check() -> None:
    suite = ET.fromstring(render("junit", OUTCOMES, "runs/a", strict=True)).find("testsuite")
    assert (suite.get("failures"), suite.get("skipped")) == ("2", "0")


def test_github_annotations_escape_their_text() -> None:
    lines = render("github", OUTCOMES, "runs/a", strict=False).splitlines()
    assert lines[0] == (
        "::error title=perfscope budget%3A steps.time_ms_p50 <= 120::130 is above the max 120"
    )
    assert lines[1].startswith("::warning title=perfscope baseline%3A step time vs baseline::")
    assert "50%25 | 100%25%0Awide" in lines[1]  # one line: % and newlines escaped
    assert lines[-1].startswith("fail: 2 passed, 1 failed, 1 inconclusive (exit 1)")


def test_markdown_is_a_table_that_survives_pipes() -> None:
    text = render("markdown", OUTCOMES, "runs/a", strict=False)
    assert text.startswith("### perfscope check: ❌ fail")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + len(OUTCOMES)  # header, separator, one row per check
    assert "50% \\| 100% wide" in rows[-1]


def test_json_carries_the_status_and_exit_code() -> None:
    payload = json.loads(render("json", OUTCOMES, "runs/a", strict=True))
    assert (payload["status"], payload["exit_code"]) == ("fail", 1)
    assert [c["status"] for c in payload["checks"]] == [o.status for o in OUTCOMES]


def test_every_format_names_each_failure() -> None:
    for fmt in FORMATS:
        assert "130 is above the max 120" in render(fmt, OUTCOMES, "runs/a", strict=False), fmt
