"""The streaming Kineto trace reader on real traces and on the shapes a broken file takes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from perfscope.analysis.ops import DEVICE_CATEGORIES, HOST_CATEGORIES
from perfscope.errors import PerfscopeError
from perfscope.traceimport import reader
from perfscope.traceimport.reader import read_trace

FIXTURES = Path(__file__).parents[1] / "fixtures" / "traces"
V100 = FIXTURES / "kineto_v100_1gpu_train_5steps.json.gz"
SAMPLED = FIXTURES / "kineto_sampled_rank0_of128.json.gz"  # written on one line


def raw(path: Path) -> dict[str, Any]:
    return json.loads(gzip.decompress(path.read_bytes()))


def kept(events: list[dict[str, Any]]) -> int:
    """The complete host and device events, counted straight from the parsed JSON."""
    return sum(
        1
        for e in events
        if e.get("ph") == "X" and e.get("cat") in HOST_CATEGORIES | DEVICE_CATEGORIES
    )


@pytest.mark.parametrize("path", [V100, SAMPLED], ids=["pretty-printed", "one-line"])
def test_reads_every_event_of_a_real_trace(path: Path) -> None:
    expected = raw(path)

    trace = read_trace(path)

    assert trace.events == len(expected["traceEvents"])
    assert len(trace.host) + len(trace.device) == kept(expected["traceEvents"])
    assert trace.meta["distributedInfo"] == expected["distributedInfo"]


def test_keeps_nanosecond_timestamps_and_durations_exactly() -> None:
    events = raw(V100)["traceEvents"]
    steps = sorted(
        (e["ts"], e["dur"]) for e in events if str(e.get("name")).startswith("ProfilerStep#")
    )

    trace = read_trace(V100)

    got = sorted((e.ts, e.dur) for e in trace.host if e.name.startswith("ProfilerStep#"))
    assert got == steps
    assert steps[0] == (1712195495502094.5, 35115.869)  # sub-microsecond parts survive


def test_a_plain_json_file_reads_like_its_gzip(tmp_path: Path) -> None:
    plain = tmp_path / "trace.json"
    plain.write_bytes(gzip.decompress(V100.read_bytes()))

    assert _facts(read_trace(plain)) == _facts(read_trace(V100))


def test_small_pieces_and_nested_objects_in_args_read_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a trace whose events carry lists of objects in their args (cut points that are not
    # between two events), read in pieces far smaller than one event
    data = raw(SAMPLED)
    for i, event in enumerate(data["traceEvents"][:500]):
        event.setdefault("args", {})["nested"] = [{"a": i}, {"b": '}, {"x"'}]
    path = tmp_path / "nested.json"
    path.write_text(json.dumps(data, indent=1))
    monkeypatch.setattr(reader, "CHUNK", 97)

    # WHEN
    trace = read_trace(path)

    # THEN
    assert trace.events == len(data["traceEvents"])
    assert len(trace.host) + len(trace.device) == kept(data["traceEvents"])


def test_a_bare_list_of_events_reads(tmp_path: Path) -> None:
    events = raw(SAMPLED)["traceEvents"]
    path = tmp_path / "list.json"
    path.write_text(json.dumps(events))

    trace = read_trace(path)

    assert trace.events == len(events)
    assert trace.meta == {}


def test_memory_events_give_the_reserved_peak_per_device(tmp_path: Path) -> None:
    def memory(device: int, reserved: int) -> dict[str, Any]:
        args = {"Device Type": 1, "Device Id": device, "Total Reserved": reserved}
        return {"ph": "i", "name": "[memory]", "ts": 1.0, "args": args}

    events = [memory(0, 100), memory(0, 300), memory(0, 200), memory(1, 50), memory(-1, 999)]
    path = tmp_path / "memory.json"
    path.write_text(json.dumps({"traceEvents": events}))

    assert read_trace(path).memory_peak_bytes == {0: 300.0, 1: 50.0}


def test_a_truncated_gzip_names_the_file_and_where_it_broke(tmp_path: Path) -> None:
    path = tmp_path / "cut.json.gz"
    path.write_bytes(V100.read_bytes()[:400_000])

    with pytest.raises(PerfscopeError, match=r"cut\.json\.gz: corrupt or truncated trace at byte"):
        read_trace(path)


def test_a_truncated_json_names_the_file_and_where_it_broke(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_bytes(gzip.decompress(V100.read_bytes())[:5_000_000])

    with pytest.raises(
        PerfscopeError, match=r"cut\.json: corrupt or truncated trace at byte [\d,]+"
    ):
        read_trace(path)


def test_garbage_inside_points_near_the_broken_byte(tmp_path: Path) -> None:
    # GIVEN a trace with one event overwritten by garbage at a known offset
    text = gzip.decompress(V100.read_bytes())
    at = text.index(b'"ph"', 6_000_000)
    path = tmp_path / "bad.json"
    path.write_bytes(text[:at] + b"#garbage#" + text[at + 9 :])

    # WHEN
    with pytest.raises(PerfscopeError) as caught:
        read_trace(path)

    # THEN the error says a byte within the damaged event
    byte = int(str(caught.value).split("at byte ")[1].split()[0].replace(",", ""))
    assert abs(byte - at) < 2_000, (byte, at)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no traceEvents list"),
        (b'{"schemaVersion": 1, "other": []}', "no traceEvents list"),
        (b"not json at all", "no traceEvents list"),
    ],
)
def test_a_file_that_is_no_trace_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content)

    with pytest.raises(PerfscopeError, match=message):
        read_trace(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PerfscopeError, match="no such trace file"):
        read_trace(tmp_path / "nope.json")


def _facts(trace: reader.Trace) -> tuple[Any, ...]:
    return (
        trace.events,
        len(trace.host),
        len(trace.device),
        sum(e.dur for e in trace.device),
        trace.meta.get("deviceProperties"),
    )
