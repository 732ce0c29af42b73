"""The report's tables: bounded series keeping spikes, step tables, op rows, py-spy's call tree."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from perfscope.analysis import stacks, tables
from perfscope.analysis.metrics import spike_metrics, steady_steps

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def make_steps(n: int, slow: dict[int, float] | None = None, wait: float = 2.0) -> list[dict]:
    rng = random.Random(n)
    steps, start = [], 1.0
    for i in range(n):
        duration = (slow or {}).get(i, 20.0 + rng.uniform(-1, 1))
        steps.append(
            {"index": i, "start_s": round(start, 6), "duration_ms": duration, "data_wait_ms": wait}
        )
        start += duration / 1e3
    return steps


def test_minmax_keeps_every_point_of_a_short_series():
    assert tables.minmax_indices([3.0, None, 1.0, 2.0], max_points=10) == [0, 2, 3]


def test_downsampling_is_bounded_and_keeps_a_single_spike_and_dip():
    values = [10.0] * 100_000
    values[77_777] = 900.0
    values[12_345] = -5.0
    cut = tables.downsample(list(range(len(values))), values, max_points=500)
    assert len(cut["x"]) <= 500
    assert 900.0 in cut["y"] and -5.0 in cut["y"]
    assert 77_777 in cut["x"] and 12_345 in cut["x"]
    assert cut["x"] == sorted(cut["x"])


def test_step_table_marks_the_same_outliers_as_the_spike_metric():
    # GIVEN 10,000 steps, 7 of them far slower, and 5 profiled ones (left out of step metrics)
    slow = {i: 400.0 for i in (100, 2000, 2001, 5000, 7000, 9000, 9999)}
    steps = make_steps(10_000, slow)
    for s in steps[10:15]:
        s["profiled"] = True
        s["duration_ms"] = 300.0
    # WHEN the step table is built
    table = tables.step_table(steps, max_points=1000)
    # THEN it is bounded, keeps every slow step, and its outliers are those the metric counts
    assert table["kept"] <= 1000 and table["count"] == 10_000
    kept = set(table["index"])
    assert set(slow) - {2001} <= kept  # 2000 and 2001 share a bucket: its highest is kept
    assert [s["index"] for s in table["outliers"]] == sorted(slow)
    metric = spike_metrics(steady_steps(steps))["steps.spikes_count"]
    assert len(table["outliers"]) == metric
    assert table["limit_ms"] is not None and 20 < table["limit_ms"] < 400
    assert True in table["profiled"]  # the slow profiled steps win their bucket
    i = table["index"].index(100)
    assert table["compute_ms"][i] == pytest.approx(400.0 - 2.0)


def test_step_table_of_too_few_steps_has_no_outlier_limit():
    table = tables.step_table(make_steps(4))
    assert table["limit_ms"] is None and table["outliers"] == [] and table["kept"] == 4


def test_step_breakdown_splits_the_mean_step_and_says_what_is_not_measured():
    steps = make_steps(50, wait=5.0)
    breakdown = tables.step_breakdown(steps)
    rows = {r["phase"]: r for r in breakdown["rows"]}
    assert rows["data wait"]["ms_per_step"] == pytest.approx(5.0)
    assert rows["data wait"]["ms_per_step"] + rows["compute and the rest"]["ms_per_step"] == (
        pytest.approx(breakdown["step_ms"])
    )
    assert sum(r["frac"] for r in breakdown["rows"]) == pytest.approx(1.0)
    assert "optimizer" in breakdown["unmeasured"]
    assert tables.step_breakdown([])["rows"] == []


def test_the_trace_window_splits_out_the_optimizer_and_zero_grad():
    # GIVEN an op-trace window over steps 5-6 whose trace timed the optimizer and zero_grad
    steps = make_steps(10, wait=4.0)
    ops = {
        "per_step": {
            "step": [5, 6],
            "dur_us": [30_000.0, 34_000.0],
            "optimizer_us": [3_000.0, 5_000.0],
            "zero_grad_us": [1_000.0, 1_000.0],
        }
    }
    window = tables.step_breakdown(steps, ops)["window"]
    rows = {r["phase"]: r["ms_per_step"] for r in window["rows"]}
    # THEN each phase is its mean per step, and the rest is what is left of the step
    assert window["steps"] == 2 and window["step_ms"] == pytest.approx(32.0)
    assert rows == pytest.approx(
        {
            "data wait": 4.0,
            "optimizer step": 4.0,
            "zero_grad": 1.0,
            "forward, backward and the rest": 23.0,
        }
    )
    assert tables.window_breakdown(steps, {"per_step": {"step": [5], "dur_us": [1.0]}}) is None
    assert tables.window_breakdown(steps, {}) is None


def test_throughput_is_steps_over_their_time():
    series = tables.throughput_series(make_steps(1000), points=50)
    assert len(series["x"]) == 50
    assert all(45 < y < 55 for y in series["y"])  # 20 ms steps: 50 steps/s
    assert series["x"] == sorted(series["x"])


def test_timeline_panels_show_only_what_was_measured_and_scale_shares():
    samples = {
        "host": {
            "ts": [0.2, 0.4, 0.6],
            "cpu_frac": [0.5, 0.25, None],
            "rss_mb": [100.0, 120.0, 130.0],
            "cpu_workers_frac": [None, None, None],
        },
        "gpu": {"ts": [0.3, 0.5], "gpu0_util_frac": [0.9, 1.0], "gpu0_mem_used_mb": [10.0, 20.0]},
    }
    panels = tables.timeline_panels(samples, {"host": {"cores": 2}})
    by_id = {p["id"]: p for p in panels}
    assert list(by_id) == ["cpu", "memory", "gpu0-util", "gpu0-mem"]  # no power: not measured
    cpu = by_id["cpu"]["series"]
    assert [s["name"] for s in cpu] == ["process tree"]  # workers never measured
    assert cpu[0] == {"name": "process tree", "x": [0.2, 0.4], "y": [50.0, 25.0]}
    assert "2 cores" in by_id["cpu"]["title"]
    assert by_id["gpu0-util"]["series"][0]["y"] == [90.0, 100.0]
    assert tables.timeline_panels({}, {}) == []


def test_timeline_marks_the_steps_and_the_trace_window():
    marks = tables.timeline_marks(make_steps(3), {"ops": {"window_s": [1.01, 1.05]}})
    assert marks["steps_span"][0] == 1.0 and marks["steps_span"][1] > 1.059
    assert len(marks["step_starts"]) == 3
    assert marks["trace_window"] == [1.01, 1.05]
    many = tables.timeline_marks(make_steps(tables.STEP_LINES_MAX + 1), {})
    assert many["step_starts"] == [] and many["trace_window"] is None


def test_op_rows_sync_rows_and_copy_rows():
    ops = {
        "steps": 4,
        "ops": [
            {
                "name": "aten::mm",
                "count": 8,
                "self_cpu_us": 3000.0,
                "cpu_us": 3500.0,
                "shapes": [{"shape": "[8, 8], [8, 8] (float)", "count": 8}],
            },
            {
                "name": "aten::add",
                "count": 4,
                "self_cpu_us": 1000.0,
                "cpu_us": 1000.0,
                "self_device_us": 50.0,
                "device_us": 70.0,
            },
        ],
        "syncs": {"aten::item": 8, "cudaStreamSynchronize": 12},
        "copies": {"h2d": {"count": 4, "bytes": 4 * 2**20, "pageable": 4}},
    }
    rows = tables.op_rows(ops)
    assert rows[0]["self_cpu_ms"] == 3.0 and rows[0]["cpu_ms"] == 3.5
    assert rows[0]["self_frac"] == pytest.approx(0.75) and rows[0]["per_call_us"] == 375.0
    assert rows[0]["shapes"] == ["[8, 8], [8, 8] (float) ×8"]
    assert rows[0]["device_ms"] is None and rows[1]["device_ms"] == pytest.approx(0.07)
    syncs = tables.sync_rows(ops)
    assert [s["name"] for s in syncs] == ["cudaStreamSynchronize", "aten::item"]
    assert syncs[0]["per_step"] == 3.0
    copies = {c["direction"]: c for c in tables.copy_rows(ops)}
    assert copies["host → device"]["mb"] == 4.0 and copies["host → device"]["per_step"] == 1.0
    assert copies["device → host"]["count"] == 0


def test_call_tree_of_a_recorded_pyspy_profile():
    doc = json.loads((FIXTURES / "pyspy" / "recorded.speedscope.json").read_text())
    tree = stacks.call_tree(doc, max_nodes=60, min_frac=0.01)
    n = len(tree["ids"])
    assert 1 < n <= 60
    assert all(len(tree[k]) == n for k in ("labels", "parents", "values", "where", "kinds"))
    assert tree["values"][0] == tree["total"] == sum(len(p["samples"]) for p in doc["profiles"])
    ids = set(tree["ids"])
    for i in range(1, n):  # every node hangs off a kept parent and weighs no more than it
        parent = tree["ids"].index(tree["parents"][i])
        assert tree["parents"][i] in ids
        assert tree["values"][i] <= tree["values"][parent]
        assert tree["values"][i] >= 0.01 * tree["total"]
    children: dict[str, int] = {}
    for i in range(1, n):
        children[tree["parents"][i]] = children.get(tree["parents"][i], 0) + tree["values"][i]
    assert all(total <= tree["values"][tree["ids"].index(p)] for p, total in children.items())
    assert "user" in tree["kinds"]  # the workload's own functions


def test_call_tree_refuses_what_is_not_speedscope(tmp_path: Path):
    with pytest.raises(ValueError):
        stacks.call_tree({"profiles": []})
    (tmp_path / "p.json").write_text("{not json")
    assert stacks.tree_from_run_dir(tmp_path, {"speedscope": "p.json"}) is None
    assert stacks.tree_from_run_dir(tmp_path, {"speedscope": "../p.json"}) is None
    assert stacks.tree_from_run_dir(None, {"speedscope": "p.json"}) is None


def test_rank_rows_flag_the_straggler_and_the_failed_rank_and_keep_latest_restarts() -> None:
    from perfscope.analysis.metrics import compute_metrics
    from perfscope.analysis.tables import rank_rows
    from tests.unit.test_ranks import ranks_record

    record = ranks_record()  # 3 ranks: rank 1 slowed (compute), rank 2 crashed
    restarted = [*record.ranks, {**record.ranks[0], "restart": 1, "steps": 3}]

    rows = rank_rows(restarted, compute_metrics(record))

    assert [r["rank"] for r in rows] == [0, 1, 2]
    assert rows[0]["steps"] == 3  # the later restart of rank 0
    assert [r["straggler"] for r in rows] == [False, True, False]
    assert [r["failed"] for r in rows] == [False, False, True]
    # compute = step (100 ms) less data wait (5) and communication (10)
    assert rows[1]["compute_ms"] == pytest.approx(85.0)
