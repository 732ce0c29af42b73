"""py-spy's speedscope profile as a table of hot functions, and the metrics read from it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from perfscope.analysis.pyspy import KINDS, frame_kind, pyspy_metrics, speedscope_table
from perfscope.record import Record

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pyspy"
RECORDED = FIXTURES / "recorded.speedscope.json"
WORKLOAD = FIXTURES / "workload.py"
# Where perfscope's package was when the fixture was recorded (see fixtures/pyspy/README.md).
RECORDED_ROOT = "/work/main/perfscope"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return json.loads(RECORDED.read_text())


@pytest.fixture(scope="module")
def table(doc: dict[str, Any]) -> dict[str, Any]:
    return speedscope_table(doc, perfscope_root=RECORDED_ROOT)


def row(table: dict[str, Any], function: str) -> dict[str, Any]:
    return next(r for r in table["functions"] if r["function"] == function)


def body_lines(function: str) -> range:
    """The lines of a function of the fixture's workload, from its `def` to its last line."""
    lines = WORKLOAD.read_text().splitlines()
    start = next(i for i, text in enumerate(lines, 1) if text.startswith(f"def {function}("))
    end = next(
        (i for i, text in enumerate(lines[start:], start + 1) if text and not text[0].isspace()),
        len(lines) + 1,
    )
    return range(start, end)


def stacks_with(doc: dict[str, Any], function: str) -> int:
    """A naive count: the samples with `function` anywhere on their stack."""
    frames = doc["shared"]["frames"]
    return sum(
        any(frames[i]["name"] == function for i in stack)
        for profile in doc["profiles"]
        for stack in profile["samples"]
    )


def test_recorded_profile_totals(table: dict[str, Any]):
    # GIVEN py-spy's profile of the fixture workload (3 threads in 2 processes, 50 Hz, ~4 s)
    # THEN the table counts every sample of every thread once
    assert table["total_samples"] == 199
    assert table["rate_hz"] == 50.0
    assert table["sampled_s"] == pytest.approx(3.98)
    assert (table["processes"], table["threads"]) == (2, 3)
    assert table["functions_seen"] == 66


def test_the_busy_loop_is_the_hottest_user_function(table: dict[str, Any]):
    top = table["top_user"]
    assert (top["function"], top["kind"], top["perfscope"]) == ("spin", "user", False)
    assert top["file"].endswith("tests/fixtures/pyspy/workload.py")
    assert top["line"] in body_lines("spin")
    assert top["step_self_frac"] >= top["self_frac"]  # the imports' samples left out
    assert {k: v for k, v in top.items() if k != "step_self_frac"} == table["functions"][0]
    assert top["self_samples"] == 92 and top["self_frac"] == pytest.approx(92 / 199, abs=1e-6)
    assert top["self_loader_samples"] == 0  # the workload has no DataLoader


def test_samples_inside_a_dataloader_fetch_do_not_make_the_top_user_function() -> None:
    # GIVEN __getitem__ hot under torch's fetcher (num_workers=0), and a smaller step function
    frames = [
        {"name": "<module>", "file": "/home/u/train.py", "line": 1},
        {"name": "__next__", "file": "/venv/site-packages/torch/utils/data/dataloader.py"},
        {"name": "fetch", "file": "/venv/site-packages/torch/utils/data/_utils/fetch.py"},
        {"name": "__getitem__", "file": "/home/u/train.py", "line": 20},
        {"name": "featurize", "file": "/home/u/train.py", "line": 40},
    ]
    frames.append({"name": "_find_and_load", "file": "<frozen importlib._bootstrap>", "line": 1})
    samples = [[0, 1, 2, 3]] * 60 + [[0, 4]] * 25 + [[0]] * 15 + [[0, 5]] * 100
    doc = {
        "shared": {"frames": frames},
        "profiles": [{"type": "sampled", "name": "Process 7 Thread 7", "samples": samples}],
    }

    table = speedscope_table(doc)

    # THEN the step's own Python hot spot is featurize, with its share of the non-import samples
    getitem = row(table, "__getitem__")
    assert (getitem["self_samples"], getitem["self_loader_samples"]) == (60, 60)
    assert table["top_user"]["function"] == "featurize"
    assert table["importing_samples"] == 100
    assert table["top_user"]["step_self_frac"] == pytest.approx(25 / 100)


def test_recursion_counts_once_per_sample(doc: dict[str, Any], table: dict[str, Any]):
    # GIVEN fib, which recurses about 18 frames deep in each of its samples
    fib = row(table, "fib")
    # THEN its total is the number of samples it is in, not the number of its frames
    assert fib["total_samples"] == stacks_with(doc, "fib") == 25
    assert fib["self_samples"] == fib["total_samples"]
    assert all(0 <= r["self_frac"] <= r["total_frac"] <= 1 for r in table["functions"])


def test_rows_are_sorted_by_self_then_total(table: dict[str, Any]):
    keys = [(-r["self_samples"], -r["total_samples"]) for r in table["functions"]]
    assert keys == sorted(keys)


def test_frames_are_told_apart_by_where_their_code_lives(table: dict[str, Any]):
    assert row(table, "percentile")["kind"] == "perfscope"
    assert row(table, "percentile")["perfscope"] is True
    assert row(table, "TextWrapper._split")["kind"] == "stdlib"
    assert row(table, "Environment._compile")["kind"] == "library"
    assert row(table, "main")["kind"] == "user"
    shares = table["self_frac_by_kind"]
    assert set(shares) == set(KINDS)
    assert shares["perfscope"] == pytest.approx(row(table, "percentile")["self_frac"], abs=1e-6)
    assert sum(shares.values()) <= 1.0 + 1e-6


def test_the_table_keeps_the_top_n_by_self_and_by_total(doc: dict[str, Any]):
    # WHEN only 3 functions are kept per ranking
    small = speedscope_table(doc, top=3, perfscope_root=RECORDED_ROOT)
    names = [r["function"] for r in small["functions"]]
    # THEN the table is the union of the top 3 by self and the top 3 by total, sorted by self
    assert names[:3] == ["spin", "fib", "percentile"]
    assert {"<module>", "main"} <= set(names) and len(names) <= 6
    assert small["functions_seen"] == 66 and small["top_user"]["function"] == "spin"
    assert len(json.dumps(small)) < 4000


def test_process_frames_are_not_functions():
    doc = synthetic(
        frames=[
            {"name": 'process 7:"python a.py"', "file": "", "line": 0},
            {"name": "loop", "file": "/home/u/a.py", "line": 3},
        ],
        samples=[[0, 1], [0, 1], [0]],
    )
    table = speedscope_table(doc)
    assert [r["function"] for r in table["functions"]] == ["loop"]
    assert table["total_samples"] == 3 and table["processes"] == 1
    assert table["functions"][0]["self_frac"] == pytest.approx(2 / 3, abs=1e-6)


def test_a_function_is_named_by_its_most_sampled_line():
    doc = synthetic(
        frames=[
            {"name": "f", "file": "/home/u/a.py", "line": 4},
            {"name": "f", "file": "/home/u/a.py", "line": 5},
        ],
        samples=[[0], [1], [1]],
    )
    (only,) = speedscope_table(doc)["functions"]
    assert (only["line"], only["self_samples"], only["total_samples"]) == (5, 3, 3)


def test_an_empty_profile_has_no_rows():
    table = speedscope_table({"shared": {"frames": []}, "profiles": []})
    assert table["total_samples"] == 0 and table["functions"] == []
    assert table["top_user"] is None and table["rate_hz"] is None
    assert table["self_frac_by_kind"] == dict.fromkeys(KINDS, 0.0)


def test_weights_in_other_units_give_no_rate():
    doc = synthetic(frames=[{"name": "f", "file": "/a.py", "line": 1}], samples=[[0]])
    doc["profiles"][0].update(unit="none", weights=[1])
    assert speedscope_table(doc)["rate_hz"] is None


@pytest.mark.parametrize("bad", [[], {"profiles": []}, {"shared": {}, "profiles": {}}])
def test_a_document_that_is_not_speedscope_is_refused(bad: Any):
    with pytest.raises(ValueError, match="not a speedscope document"):
        speedscope_table(bad)


@pytest.mark.parametrize(
    ("file", "kind"),
    [
        ("/home/u/train.py", "user"),
        ("<string>", "user"),  # python -c
        ("/usr/lib/python3.11/threading.py", "stdlib"),
        ("/opt/conda/lib/python3.12/json/encoder.py", "stdlib"),
        ("<frozen importlib._bootstrap>", "stdlib"),
        ("/venv/lib/python3.11/site-packages/torch/nn/modules/module.py", "library"),
        ("/usr/lib/python3/dist-packages/numpy/core/fromnumeric.py", "library"),
        ("<template>", "library"),  # jinja2's generated code
        ("/venv/lib/python3.11/site-packages/perfscope/api.py", "perfscope"),
        ("/src/perfscope/perfscope/runtime/session.py", "perfscope"),
    ],
)
def test_frame_kind(file: str, kind: str):
    assert frame_kind(file, perfscope_root="/src/perfscope/perfscope") == kind


def test_metrics_from_the_recorded_profile(table: dict[str, Any]):
    metrics = pyspy_metrics(record_with(table))
    assert metrics["py.samples"] == 199.0
    assert (metrics["py.processes"], metrics["py.threads"]) == (2.0, 3.0)
    assert table["importing_samples"] == 2  # two samples caught an import in the recording
    assert metrics["py.top_user_self_frac"] == pytest.approx(92 / (199 - 2), abs=1e-6)
    assert metrics["py.top_user_total_frac"] == pytest.approx(92 / 199, abs=1e-6)
    assert metrics["py.perfscope_self_frac"] == table["self_frac_by_kind"]["perfscope"]
    for name, value in metrics.items():
        assert re.fullmatch(r"py\.[a-z0-9_]+", name)
        assert isinstance(value, float)
        if name.endswith("_frac"):
            assert 0.0 <= value <= 1.0


def test_metrics_without_a_profile_are_absent():
    assert pyspy_metrics(record_with(None)) == {}
    empty = speedscope_table({"shared": {"frames": []}, "profiles": []})
    assert pyspy_metrics(record_with(empty)) == {
        "py.samples": 0.0,
        "py.processes": 0.0,
        "py.threads": 0.0,
    }


def synthetic(frames: list[dict[str, Any]], samples: list[list[int]]) -> dict[str, Any]:
    profile = {
        "type": "sampled",
        "name": 'Process 7 Thread 7 "MainThread"',
        "unit": "seconds",
        "samples": samples,
        "weights": [0.01] * len(samples),
    }
    return {"shared": {"frames": frames}, "profiles": [profile]}


def record_with(table: dict[str, Any] | None) -> Record:
    samples = {} if table is None else {"pyspy": table}
    return Record(run={}, environment={}, collectors={}, steps=[], samples=samples)
