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
