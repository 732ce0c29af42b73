"""The report's plotly figures: layout of the tables, run strings escaped for plotly's labels."""

from __future__ import annotations

from perfscope.analysis import tables
from perfscope.render import charts


def test_timelines_share_one_time_axis_under_the_last_panel():
    # GIVEN host series and two GPUs' readings
    ts = [0.5, 1.0, 1.5]
    samples = {
        "host": {"ts": ts, "cpu_frac": [0.1, 0.2, 0.3], "rss_mb": [1.0, 2.0, 3.0]},
        "gpu": {
            "ts": ts,
            **{f"gpu{d}_{k}": [1.0, 2.0, 3.0] for d in (0, 1) for k in ("util_frac", "power_w")},
        },
    }
    panels = tables.timeline_panels(samples, {})
    steps = [{"index": 0, "start_s": 0.6, "duration_ms": 500.0, "data_wait_ms": 1.0}]
    marks = tables.timeline_marks(steps, {"ops": {"window_s": [0.7, 0.9]}})
    # WHEN the figure is laid out
    figure = charts.timeline_figure(panels, marks)
    layout = figure["layout"]
    # THEN each panel has its own y axis, stacked without overlap, and every trace shares x
    assert len(panels) == 6  # cpu, memory, then util and power for each GPU
    axes = [layout["yaxis"]] + [layout[f"yaxis{i}"] for i in range(2, 7)]
    domains = [a["domain"] for a in axes]
    assert all(low < high for low, high in domains)
    assert all(domains[i][0] > domains[i + 1][1] for i in range(5))
    assert {t["xaxis"] for t in figure["data"]} == {"x"}
    assert layout["xaxis"]["anchor"] == "y6"
    rects = [s for s in layout["shapes"] if s["type"] == "rect"]
    assert [(r["x0"], r["x1"]) for r in rects] == [(0.6, 1.1), (0.7, 0.9)]


def test_plotly_labels_show_run_strings_as_text():
    tree = {
        "ids": ["all samples", "0"],
        "labels": ["all samples", "<module>"],
        "parents": ["", "all samples"],
        "values": [2, 2],
        "where": ["", "<img src=x onerror=alert(1)>:3"],
        "kinds": ["", "user"],
        "total": 2,
    }
    trace = charts.icicle_figure(tree)["data"][0]
    assert trace["labels"][1] == "&lt;module&gt;"
    assert trace["customdata"][1] == "&lt;img src=x onerror=alert(1)&gt;:3"
    assert trace["marker"]["colors"][1] == charts.KIND_COLORS["user"]


def test_step_figure_marks_outliers_and_profiled_steps():
    steps = [
        {"index": i, "start_s": i * 0.02, "duration_ms": 20.0, "data_wait_ms": 5.0}
        for i in range(40)
    ]
    steps[30]["duration_ms"] = 200.0
    steps[10]["profiled"] = True
    figure = charts.steps_figure(tables.step_table(steps))
    names = [t["name"] for t in figure["data"]]
    assert names[:2] == ["data wait", "compute and the rest"]
    outliers = figure["data"][names.index("outlier steps")]
    assert outliers["x"] == [30] and outliers["y"] == [200.0]
    assert figure["data"][names.index("op-trace window (slowed by the profiler)")]["x"] == [10]
    assert figure["layout"]["shapes"][0]["y0"] < 200.0  # the outlier limit's line
