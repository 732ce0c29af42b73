"""The run record on disk: save, load, and refusing what is not a record we can read."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from perfscope.errors import PerfscopeError
from perfscope.events import (
    MARK,
    SOURCE_CODES,
    SPAN,
    VIA_CODES,
    WAIT,
    WAIT_END,
    WAIT_FIRST,
    EventWriter,
    parse_events,
    read_events,
)
from perfscope.record import (
    OPTIONAL_KEYS,
    REQUIRED_KEYS,
    SCHEMA_VERSION,
    Record,
    find_record,
    load_record,
)


def make_record() -> Record:
    return Record(
        run={"command": ["python", "train.py"], "exit": "ok", "exit_code": 0, "duration_s": 3.5},
        environment={"python": "3.11.7", "dataloaders": [{"num_workers": 0}]},
        collectors={"host": {"status": "ok", "reason": None, "interval_s": 0.2}},
        steps=[
            {"index": i, "start_s": 1.0 + i * 0.1, "duration_ms": 100.0, "data_wait_ms": 5.0}
            for i in range(50)
        ],
        samples={"host": {"ts": [0.0, 0.2], "cpu_frac": [0.5, 0.6], "rss_mb": [80.0, 90.0]}},
        metrics={"steps.count": 50.0, "data.wait_frac": 0.05},
        findings=[{"id": "DATA001", "title": "Waits for data — 5%", "est_saving_ms_per_step": 4.0}],
    )


@pytest.mark.parametrize(("compress", "name"), [(False, "record.json"), (True, "record.json.gz")])
def test_save_then_load_gives_the_same_record(tmp_path: Path, compress: bool, name: str) -> None:
    # GIVEN
    record = make_record()

    # WHEN
    path = record.save(tmp_path, compress=compress)

    # THEN
    assert path == tmp_path / name
    assert load_record(tmp_path) == record
    assert load_record(path) == record
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


def test_saved_record_is_json_with_exactly_the_contract_keys(tmp_path: Path) -> None:
    path = make_record().save(tmp_path, compress=True)

    data = json.loads(gzip.decompress(path.read_bytes()))

    assert list(data) == [*REQUIRED_KEYS, *OPTIONAL_KEYS]
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["ranks"] == []


def test_a_record_without_ranks_reads_with_no_ranks_and_ranks_round_trip(tmp_path: Path) -> None:
    data = make_record().to_dict()
    del data["ranks"]
    (tmp_path / "record.json").write_text(json.dumps(data), encoding="utf-8")
    assert load_record(tmp_path).ranks == []

    summary = {"rank": 1, "host": "h", "exit": "ok", "steps": 3, "step_ms_mean": 10.0}
    replace(make_record(), ranks=[summary]).save(tmp_path)
    assert load_record(tmp_path).ranks == [summary]


def test_a_ranks_key_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    data = {**make_record().to_dict(), "ranks": {"rank": 0}}
    (tmp_path / "record.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(PerfscopeError, match="ranks is not a list"):
        load_record(tmp_path)


def _saved_text(tmp_path: Path) -> str:
    return make_record().save(tmp_path).read_text(encoding="utf-8")


def _dict_without(key: str) -> Callable[[Path], None]:
    def write(tmp_path: Path) -> None:
        data = make_record().to_dict()
        del data[key]
        (tmp_path / "record.json").write_text(json.dumps(data))

    return write


def _newer(tmp_path: Path) -> None:
    data = {**make_record().to_dict(), "schema_version": SCHEMA_VERSION + 1}
    (tmp_path / "record.json").write_text(json.dumps(data))


def _truncated_json(tmp_path: Path) -> None:
    text = _saved_text(tmp_path)
    (tmp_path / "record.json").write_text(text[: len(text) // 2])


def _truncated_gzip(tmp_path: Path) -> None:
    raw = make_record().save(tmp_path, compress=True).read_bytes()
    (tmp_path / "record.json.gz").write_bytes(raw[: len(raw) // 2])


BROKEN: dict[str, tuple[Callable[[Path], object], str]] = {
    "corrupt-json": (
        lambda d: (d / "record.json").write_text('{"schema_version": 1, "run": {'),
        "corrupt or truncated record",
    ),
    "truncated-file": (_truncated_json, "corrupt or truncated record"),
    "truncated-gzip": (_truncated_gzip, "corrupt or truncated record"),
    "not-gzip": (lambda d: (d / "record.json.gz").write_text("{}"), "corrupt or truncated"),
    "json-list": (lambda d: (d / "record.json").write_text("[1, 2]"), "expected a JSON object"),
    "no-version": (_dict_without("schema_version"), "no valid schema_version"),
    "missing-key": (_dict_without("findings"), "record lacks the keys findings"),
    "newer-version": (_newer, f"schema_version {SCHEMA_VERSION + 1} is newer"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_load_refuses_with_a_one_line_usage_error(tmp_path: Path, case: str) -> None:
    # GIVEN a run directory whose record is broken in one way
    write, problem = BROKEN[case]
    write(tmp_path)

    # WHEN
    with pytest.raises(PerfscopeError) as caught:
        load_record(tmp_path)

    # THEN
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "\n" not in message
    assert str(tmp_path) in message
    assert problem in message


def test_newer_schema_message_says_to_upgrade(tmp_path: Path) -> None:
    _newer(tmp_path)

    with pytest.raises(PerfscopeError, match="upgrade perfscope"):
        load_record(tmp_path)


def test_find_record_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(PerfscopeError, match="no such run directory") as caught:
        find_record(tmp_path / "nope")
    assert caught.value.exit_code == 2


def test_find_record_refuses_a_directory_without_a_record(tmp_path: Path) -> None:
    (tmp_path / "report.html").write_text("<html></html>")

    with pytest.raises(PerfscopeError, match="no record.json in this folder") as caught:
        find_record(tmp_path)
    assert caught.value.exit_code == 2


def test_find_record_accepts_the_gzip_record_or_the_file_itself(tmp_path: Path) -> None:
    path = make_record().save(tmp_path, compress=True)

    assert find_record(tmp_path) == path
    assert find_record(path) == path


def write_sample_events(path: Path, close: bool = True) -> EventWriter:
    writer = EventWriter(path)
    writer.write({"k": "hello", "pid": 1, "ts": 0.5})
    writer.hot(WAIT, WAIT_FIRST, 0, 77, 0.75, 0.125)
    writer.hot(MARK, SOURCE_CODES["optimizer"], 0, 4242, 1.0, 0.0)
    writer.hot(MARK, SOURCE_CODES["explicit"], 2, VIA_CODES["profile"], 1.5, 0.0)
    writer.hot(WAIT, WAIT_END, 0, 0, 1.75, 0.25)
    writer.hot(SPAN, 0, 0, 0, 2.0, 0.5)
    if close:
        writer.close()
    return writer


SAMPLE_EVENTS = [
    {"k": "hello", "pid": 1, "ts": 0.5},
    {"k": "wait", "ts": 0.75, "dur": 0.125, "first": True, "loader": 77},
    {"k": "mark", "src": "optimizer", "ts": 1.0, "opt": 4242},
    {"k": "mark", "src": "explicit", "ts": 1.5, "scope": 2, "via": "profile"},
    {"k": "wait", "ts": 1.75, "dur": 0.25, "end": True},
    {"k": "span", "src": "trace", "ts": 2.0, "dur": 0.5},
]


def test_events_read_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "events" / "host-1.events"
    write_sample_events(path)

    assert list(read_events(path)) == SAMPLE_EVENTS
    assert path.stat().st_size < 200  # trimmed to what was written at close


def test_events_survive_a_writer_that_never_closed(tmp_path: Path) -> None:
    # GIVEN a writer that is never closed (its process was SIGKILLed): the file is still padded
    path = tmp_path / "host-2.events"
    writer = write_sample_events(path, close=False)

    # THEN every event is readable from the file alone
    assert path.stat().st_size == EventWriter.CHUNK
    assert list(read_events(path)) == SAMPLE_EVENTS
    writer.close()


def test_a_torn_or_damaged_tail_ends_the_stream_without_error(tmp_path: Path) -> None:
    path = tmp_path / "host-3.events"
    write_sample_events(path)
    whole = path.read_bytes()
    # a JSON record cut in the middle, then garbage
    path.write_bytes(whole + b'J\x40\x00\x00\x00{"k":"by')
    assert list(read_events(path)) == SAMPLE_EVENTS
    path.write_bytes(whole + b"\xff\xfe garbage")
    assert list(read_events(path)) == SAMPLE_EVENTS
    path.write_bytes(whole[:-5])  # the last binary record cut short
    assert list(read_events(path)) == SAMPLE_EVENTS[:-1]


def test_parse_events_resumes_where_it_stopped(tmp_path: Path) -> None:
    path = tmp_path / "host-4.events"
    write_sample_events(path)
    data = path.read_bytes()
    first, used = parse_events(data[:40])
    rest, end = parse_events(data, used)
    assert first + rest == SAMPLE_EVENTS and end == len(data)


def test_a_writer_grows_past_one_chunk(tmp_path: Path) -> None:
    path = tmp_path / "host-5.events"
    writer = EventWriter(path)
    count = EventWriter.CHUNK // 24 + 100
    for i in range(count):
        writer.hot(MARK, SOURCE_CODES["backward"], 0, 0, float(i), 0.0)
    writer.close()
    events = list(read_events(path))
    assert len(events) == count and events[-1]["ts"] == float(count - 1)


def test_the_example_in_docs_record_md_is_a_record_this_perfscope_reads(tmp_path: Path) -> None:
    # GIVEN the JSON example of the record contract's documentation
    doc = (Path(__file__).resolve().parents[2] / "docs" / "record.md").read_text(encoding="utf-8")
    example = doc.split("```json\n", 1)[1].split("\n```", 1)[0]
    (tmp_path / "record.json").write_text(example, encoding="utf-8")

    # WHEN
    record = load_record(tmp_path)

    # THEN
    assert record.schema_version == SCHEMA_VERSION
    assert set(record.run) >= {"exit", "exit_code", "signal", "exception", "step_method"}
    assert all(set(s) == {"index", "start_s", "duration_ms", "data_wait_ms"} for s in record.steps)


def test_a_forked_child_never_writes_to_its_parents_stream(tmp_path: Path) -> None:
    # GIVEN a writer, and a fork (as a DataLoader worker is) that tries to write to it
    path = tmp_path / "host-6.events"
    writer = EventWriter(path)
    pid = os.fork()
    if pid == 0:  # the child
        writer.hot(MARK, SOURCE_CODES["backward"], 0, 0, 99.0, 0.0)
        os._exit(0)
    os.waitpid(pid, 0)
    writer.hot(MARK, SOURCE_CODES["backward"], 0, 0, 1.0, 0.0)
    writer.close()
    # THEN only the parent's event is there
    assert [e["ts"] for e in read_events(path)] == [1.0]
