"""The report renders whatever part of the record is there: empty metrics, no samples, no files."""

from __future__ import annotations

import json
import re
from typing import Any

from perfscope.record import Record
from perfscope.render.html import render_report


def bare_record(**changes: Any) -> Record:
    run = {
        "argv": ["train.py"],
        "command": ["python", "train.py"],
        "cwd": "/",
        "started_at": "t",
        "ended_at": "t",
        "duration_s": 2.0,
        "exit": "ok",
        "exit_code": 0,
        "signal": None,
        "exception": None,
        "step_method": "optimizer",
        "time_to_first_step_s": 0.5,
        "notes": [],
    }
    steps = [
        {"index": i, "start_s": 0.5 + i * 0.03, "duration_ms": 30.0, "data_wait_ms": 10.0}
        for i in range(40)
    ]
    fields = {"run": run, "environment": {}, "collectors": {}, "steps": steps, "samples": {}}
    return Record(**{**fields, **changes})


def chart_data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
    assert found is not None
    return json.loads(found.group(1))


def test_a_record_whose_analysis_failed_still_shows_its_steps():
    # GIVEN steps but no metrics and no findings (the record of a failed diagnosis)
    page = render_report(bare_record())
    # THEN the steps' charts are there, with placeholders where nothing was measured
    charts = chart_data(page)["charts"]
    assert set(charts) == {"chart-steps", "chart-breakdown", "chart-throughput"}
    assert 'id="no-findings"' in page
    assert 'id="no-timelines"' in page and 'id="no-pyspy"' in page
    assert "step time p50" not in page  # a metric that is absent is not shown as 0


def test_a_record_without_steps_says_how_to_mark_them():
    page = render_report(bare_record(steps=[]))
    assert 'id="no-steps"' in page and "perfscope.step()" in page
    assert chart_data(page)["charts"] == {}


def test_a_crash_comes_first_with_its_exception_escaped():
    run = {**bare_record().run, "exit": "oom", "exit_code": 1}
    run["exception"] = {
        "type": "torch.OutOfMemoryError",
        "message": "<b>2 GiB</b>",
        "oom": True,
        "alloc_size": "2.00 GiB",
    }
    page = render_report(bare_record(run=run))
    assert page.index('id="crash"') < page.index('id="findings"')
    assert "ran out of memory" in page and "&lt;b&gt;2 GiB&lt;/b&gt;" in page
    assert "It failed to allocate 2.00 GiB." in page


def test_a_distributed_record_gets_a_ranks_table_naming_the_straggler() -> None:
    from perfscope.analysis.metrics import compute_metrics
    from tests.unit.test_ranks import ranks_record

    ranks = ranks_record().ranks
    record = bare_record()
    record = Record(record.run, record.environment, record.collectors, record.steps,
                    record.samples, ranks=ranks)  # fmt: skip
    metrics = compute_metrics(record)
    straggler = {"id": "DIST001", "name": "straggler-rank", "severity": "warning",
                 "class": "distributed", "title": "t",
                 "evidence": "e", "fix": "f", "snippet": "", "confidence": "high",
                 "est_saving_ms_per_step": None}  # fmt: skip

    html = render_report(record.with_diagnosis(metrics, [straggler]))
    without_finding = render_report(record.with_diagnosis(metrics, []))

    assert 'id="rank-table"' in html and 'href="#ranks"' in html
    assert html.count("straggler</span>") == 1 and html.count("failed first</span>") == 1
    assert "straggler</span>" not in without_finding  # the slowest of balanced ranks


def test_a_single_process_record_has_no_ranks_section() -> None:
    assert 'id="rank-table"' not in render_report(bare_record())
