"""The live status line's tail reads new events in pieces, across big records and the padding."""

from __future__ import annotations

from pathlib import Path

from perfscope.events import MARK, SOURCE_CODES, EventWriter, events_path
from perfscope.render.live import EventTail


def test_tail_returns_each_event_once_across_pieces_and_padding(tmp_path: Path) -> None:
    # GIVEN a writer whose first record is bigger than a read piece, then many small ones
    writer = EventWriter(events_path(tmp_path))
    tail = EventTail(tmp_path)
    writer.write({"k": "hello", "big": "x" * (3 * EventTail.PIECE)})
    for i in range(5000):
        writer.hot(MARK, SOURCE_CODES["backward"], 0, 0, float(i), 0.0)
    # WHEN it is read, more is written, and it is read again twice
    first = tail.read()
    for i in range(10):
        writer.hot(MARK, SOURCE_CODES["backward"], 0, 0, 1e4 + i, 0.0)
    second, third = tail.read(), tail.read()
    writer.close()
    # THEN every event arrives exactly once
    assert first[0]["k"] == "hello" and len(first) == 5001
    assert [e["ts"] for e in second] == [1e4 + i for i in range(10)]
    assert third == []


def test_tail_moves_to_rank_zeros_file_once_it_appears(tmp_path: Path) -> None:
    # GIVEN torchrun's own process writing first (it never runs a step)
    agent = EventWriter(events_path(tmp_path, pid=100))
    tail = EventTail(tmp_path)
    agent.write({"k": "hello", "pid": 100})
    assert [e["k"] for e in tail.read()] == ["hello"]
    # WHEN ranks 1 and 0 start and mark steps
    ranks = [EventWriter(events_path(tmp_path, pid=200 + r, rank=r)) for r in (1, 0)]
    for rank, writer in zip((1, 0), ranks, strict=True):
        writer.hot(MARK, SOURCE_CODES["optimizer"], 0, rank, 1.0, 0.0)
    events = tail.read()
    for writer in (agent, *ranks):
        writer.close()
    # THEN the tail follows rank 0's file from its start
    assert [(e["k"], e["opt"]) for e in events] == [("mark", 0)]
