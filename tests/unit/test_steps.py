"""Step detection from hand-built event streams (perfscope.analysis.steps.build_steps)."""

from __future__ import annotations

from typing import Any

import pytest

from perfscope.analysis.steps import METHODS, StepTable, build_steps

Event = dict[str, Any]


def mark(ts: float, src: str = "optimizer", **extra: Any) -> Event:
    return {"k": "mark", "src": src, "ts": ts, **extra}


def explicit(ts: float, scope: int = 0, via: str = "step") -> Event:
    return mark(ts, "explicit", scope=scope, via=via)


def wait(ts: float, dur: float = 0.01, **extra: Any) -> Event:
    return {"k": "wait", "ts": ts, "dur": dur, **extra}


def span(ts: float, dur: float) -> Event:
    return {"k": "span", "src": "trace", "ts": ts, "dur": dur}


def begin(ts: float, scope: int = 0) -> Event:
    return {"k": "begin", "ts": ts, "scope": scope}


def bounds(table: StepTable) -> list[tuple[float, float]]:
    """(start, end) in seconds of each step, rounded against float noise."""
    return [
        (round(s["start_s"], 6), round(s["start_s"] + s["duration_ms"] / 1e3, 6))
        for s in table.steps
    ]


# One piece of evidence for each method, in METHODS order.
EVIDENCE: dict[str, list[Event]] = {
    "explicit": [explicit(1.0), explicit(2.0)],
    "trace": [span(1.0, 0.5), span(2.0, 0.5)],
    "optimizer": [mark(1.0, opt=1), mark(2.0, opt=1)],
    "backward": [mark(0.9, "backward"), mark(1.9, "backward")],
    "dataloader": [wait(0.5), wait(1.5), wait(2.5)],
}


@pytest.mark.parametrize("position", range(len(METHODS)))
def test_the_most_preferred_method_present_wins(position: int) -> None:
    # GIVEN evidence of this method and of every less preferred one
    present = METHODS[position:]
    events = sorted((e for m in present for e in EVIDENCE[m]), key=lambda e: e["ts"])

    # WHEN
    table = build_steps(events, origin=0.0)

    # THEN
    assert table.method == METHODS[position]
    assert table.methods_seen == present
    assert table.steps


def test_no_evidence_gives_no_method_and_no_steps() -> None:
    # An `end` wait alone (StopIteration) is not evidence of a dataloader loop.
    events = [{"k": "hello", "ts": 0.0}, wait(1.0, end=True), {"k": "bye", "ts": 2.0}]

    table = build_steps(events, origin=0.0)

    assert table == StepTable(None, [], ())


def test_first_step_opens_at_the_first_wait_before_the_first_mark() -> None:
    # GIVEN a loop: fetch, then an optimizer step, three times
    events = [
        wait(1.0, 0.1),
        mark(1.5, opt=7),
        wait(1.5, 0.2),
        mark(2.5, opt=7),
        wait(2.5, 0.3),
        mark(3.0, opt=7),
    ]

    table = build_steps(events, origin=0.0)

    # THEN three steps, the first from its fetch, each with its own wait
    assert bounds(table) == [(1.0, 1.5), (1.5, 2.5), (2.5, 3.0)]
    assert [s["data_wait_ms"] for s in table.steps] == [100.0, 200.0, 300.0]
    assert [s["index"] for s in table.steps] == [0, 1, 2]


def test_gradient_accumulation_first_step_opens_at_the_first_of_several_waits() -> None:
    # GIVEN four micro-batches per optimizer step
    events: list[Event] = []
    for i in range(2):
        base = 1.0 + i
        events += [wait(base + j * 0.2, 0.05) for j in range(4)]
        events.append(mark(base + 0.9, opt=1))

    table = build_steps(events, origin=0.0)

    # THEN one step per optimizer step, the first opening at the first micro-batch's fetch
    assert bounds(table) == [(1.0, 1.9), (1.9, 2.9)]
    assert table.steps[0]["data_wait_ms"] == pytest.approx(200.0)
    assert table.steps[1]["data_wait_ms"] == pytest.approx(200.0)


def test_a_first_step_whose_start_is_unknown_is_dropped() -> None:
    # GIVEN marks with nothing before the first one (no fetch, no profile() block)
    events = [mark(1.0, opt=1), wait(1.2), mark(2.0, opt=1), mark(3.0, opt=1)]

    table = build_steps(events, origin=0.0)

    # THEN the first mark only opens the next step
    assert bounds(table) == [(1.0, 2.0), (2.0, 3.0)]


def test_begin_anchors_the_first_step_when_no_wait_precedes_the_first_mark() -> None:
    events = [begin(0.5), explicit(1.0, via="profile"), explicit(2.0, via="profile")]

    table = build_steps(events, origin=0.0)

    assert bounds(table) == [(0.5, 1.0), (1.0, 2.0)]


def test_waits_before_the_begin_anchor_do_not_open_the_first_step() -> None:
    # GIVEN a fetch before the profile() block (ignored) and one inside it (opens step 0)
    events = [wait(0.1), begin(0.5), wait(0.7, 0.1), mark(1.0, opt=1), mark(2.0, opt=1)]

    table = build_steps(events, origin=0.0)

    assert bounds(table) == [(0.7, 1.0), (1.0, 2.0)]
    assert table.steps[0]["data_wait_ms"] == pytest.approx(100.0)


def test_two_optimizers_stepping_once_per_iteration_give_one_step_per_iteration() -> None:
    # GIVEN a GAN: each iteration fetches, steps the discriminator (3), then the generator (4)
    events: list[Event] = []
    for i in range(3):
        events += [wait(i + 1.0), mark(i + 1.3, opt=3), mark(i + 1.6, opt=4)]

    table = build_steps(events, origin=0.0)

    # THEN three steps, not six, each closed by the optimizer that steps last
    assert table.method == "optimizer"
    assert bounds(table) == [(1.0, 1.6), (1.6, 2.6), (2.6, 3.6)]


def test_nested_explicit_scopes_count_only_the_outermost_scope_with_marks() -> None:
    # GIVEN an outer profile() (scope 0) marking each step and an inner one (scope 1) marking too
    events = [
        begin(0.5, scope=0),
        begin(0.6, scope=1),
        explicit(0.8, scope=1, via="profile"),
        explicit(1.0, scope=0, via="profile"),
        explicit(1.5, scope=1, via="profile"),
        explicit(2.0, scope=0, via="profile"),
    ]

    table = build_steps(events, origin=0.0)

    assert bounds(table) == [(0.5, 1.0), (1.0, 2.0)]


def test_an_inner_scope_counts_when_the_outer_scope_marks_nothing() -> None:
    events = [explicit(t, scope=2) for t in (1.0, 2.0)] + [explicit(t, scope=1) for t in (3.0, 4.0)]

    table = build_steps(sorted(events, key=lambda e: e["ts"]), origin=0.0)

    assert bounds(table) == [(3.0, 4.0)]


def test_step_and_prof_step_in_the_same_scope_are_not_double_counted() -> None:
    # GIVEN a loop calling both perfscope.step() and prof.step() at the end of each step
    events: list[Event] = [begin(0.0)]
    for t in (1.0, 2.0, 3.0):
        events += [explicit(t, via="step"), explicit(t + 1e-4, via="profile")]

    table = build_steps(events, origin=0.0)

    assert len(table.steps) == 3
    assert [end for _, end in bounds(table)] == [1.0001, 2.0001, 3.0001]


def test_a_wait_belongs_to_the_step_it_started_in() -> None:
    # GIVEN a fetch that starts before a mark and one that starts exactly at a mark
    events = [
        begin(0.0),
        mark(1.0, opt=1),
        wait(1.9, 0.2),  # starts in step 1, ends in step 2
        mark(2.0, opt=1),
        wait(3.0, 0.05),  # starts at the mark closing step 2: belongs to step 3
        mark(3.0, opt=1),
        mark(4.0, opt=1),
    ]

    table = build_steps(events, origin=0.0)

    assert [s["data_wait_ms"] for s in table.steps] == pytest.approx([0.0, 200.0, 0.0, 50.0])


def test_dataloader_method_ends_the_last_step_at_stop_iteration_and_never_spans_epochs() -> None:
    # GIVEN two epochs of three batches, each ending with the StopIteration `end` wait
    events = [
        *[wait(t, 0.1, first=(t == 0.0)) for t in (0.0, 1.0, 2.0)],
        wait(3.0, 0.001, end=True),
        *[wait(t, 0.1, first=(t == 10.0)) for t in (10.0, 11.0, 12.0)],
        wait(13.0, 0.001, end=True),
    ]

    table = build_steps(events, origin=0.0)

    # THEN six steps: one per batch, none from the end of epoch 1 to the start of epoch 2
    assert table.method == "dataloader"
    assert table.methods_seen == ("dataloader",)
    assert bounds(table) == [(0, 1), (1, 2), (2, 3), (10, 11), (11, 12), (12, 13)]
    assert all(s["data_wait_ms"] == pytest.approx(100.0) for s in table.steps)


def test_durations_are_in_ms_and_starts_relative_to_origin() -> None:
    events = [begin(100.5), mark(101.0, opt=1), mark(101.25, opt=1)]

    table = build_steps(events, origin=100.0)

    assert [s["start_s"] for s in table.steps] == [0.5, 1.0]
    assert [s["duration_ms"] for s in table.steps] == [500.0, 250.0]


def test_traced_spans_are_steps_with_their_own_duration() -> None:
    events = [span(1.0, 0.25), wait(1.1, 0.05), span(2.0, 0.5)]

    table = build_steps(events, origin=0.5)

    assert [(s["start_s"], s["duration_ms"]) for s in table.steps] == [(0.5, 250.0), (1.5, 500.0)]
    assert [s["data_wait_ms"] for s in table.steps] == pytest.approx([50.0, 0.0])


# Known defects (see the report of this test file's author); strict, so a fix turns them red.


def test_a_profile_block_opened_mid_run_yields_no_negative_step() -> None:
    # GIVEN optimizer steps under `perfscope run`, then a profile() block opened at 2.5
    events = [mark(1.0, opt=1), mark(2.0, opt=1), begin(2.5), mark(3.0, opt=1)]

    table = build_steps(events, origin=0.0)

    assert all(s["duration_ms"] > 0 for s in table.steps)
    assert [s["start_s"] for s in table.steps] == sorted(s["start_s"] for s in table.steps)


def test_the_first_step_of_an_inner_scope_opens_at_that_scope_begin() -> None:
    # GIVEN an outer profile() that marks nothing and an inner one, entered at 5.0, that does
    events = [begin(0.0, scope=0), begin(5.0, scope=1)]
    events += [explicit(t, scope=1, via="profile") for t in (6.0, 7.0)]

    table = build_steps(events, origin=0.0)

    assert bounds(table)[0] == (5.0, 6.0)


def test_step_calls_outside_a_block_that_marks_its_own_steps_still_count() -> None:
    # GIVEN perfscope.step() in a loop, then a profile() block (same scope) marking with prof.step()
    events: list[Event] = [wait(0.5), explicit(1.0), explicit(2.0)]
    events += [begin(2.5), explicit(3.0, via="profile"), explicit(3.0001, via="step")]
    events += [explicit(4.0, via="profile"), explicit(4.0001, via="step")]
    events += [{"k": "end", "ts": 4.5, "scope": 0}, explicit(5.0)]

    table = build_steps(events, origin=0.0)

    # THEN the loop's own marks count outside the block, and inside it only prof.step()'s do
    assert [end for _, end in bounds(table)] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_steps_holding_an_iterators_first_fetch_are_flagged() -> None:
    # GIVEN two epochs whose first fetches start the workers
    events = [
        *[wait(t, 0.1, first=(t == 0.0)) for t in (0.0, 1.0, 2.0)],
        wait(3.0, 0.001, end=True),
        *[wait(t, 0.1, first=(t == 10.0)) for t in (10.0, 11.0, 12.0)],
        wait(13.0, 0.001, end=True),
    ]

    table = build_steps(events, origin=0.0)

    # THEN the first step of each epoch is flagged and no other
    assert [bool(s.get("first_batch")) for s in table.steps] == [1, 0, 0, 1, 0, 0]
