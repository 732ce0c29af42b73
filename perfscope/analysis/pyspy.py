"""Python stacks sampled by py-spy: a table of the hottest functions, and metrics from it.

`speedscope_table` reads py-spy's speedscope file (already parsed from JSON) into the small table
kept in `record.samples["pyspy"]`; `pyspy_metrics` turns that table into flat metrics. Both are
pure.

py-spy's speedscope file has one "sampled" profile per thread; each sample is a list of indices into
`shared.frames`, from the root to the leaf. With `--subprocesses` the root frame of every stack
names the process (`process 123:"python train.py"`, no file); that frame is not a function.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TOP_N = 40
KINDS = ("user", "library", "stdlib", "perfscope")

_PROCESS_FRAME = re.compile(r"^process (\d+):")
_PROFILE_NAME = re.compile(r"Process (\d+) Thread (\d+)")
_LIBRARY = re.compile(r"[/\\](site|dist)-packages[/\\]")
_STDLIB = re.compile(r"[/\\]lib(64)?[/\\]python\d+(\.\d+)?t?[/\\]")
_INSTALLED_PERFSCOPE = re.compile(r"[/\\](site|dist)-packages[/\\]perfscope[/\\]")

_USER_PSEUDO_FILES = ("<string>", "<stdin>")  # python -c, python - (and exec'd strings)

FuncKey = tuple[str, str]  # (function name, file)


@dataclass
class _Counts:
    """Sample counts gathered over every stack of every profile."""

    total: int = 0
    self_: Counter[FuncKey] = field(default_factory=Counter)
    total_by_func: Counter[FuncKey] = field(default_factory=Counter)
    lines: Counter[tuple[FuncKey, int]] = field(default_factory=Counter)
    self_in_loader: Counter[FuncKey] = field(default_factory=Counter)
    importing: int = 0  # samples taken while a module was being imported (start-up)


# A sample taken inside a DataLoader fetch (the main process's own __getitem__ with num_workers=0,
# or a worker process) is data loading, not the step's Python: the data rules judge that time.
_LOADER_FILE = re.compile(r"torch[/\\]utils[/\\]data[/\\]")


def frame_kind(file: str, perfscope_root: str | None = None) -> str:
    """Where a frame's code lives: `perfscope`, `library` (site-packages), `stdlib` or `user`.

    The file name decides: perfscope's package folder, then site-packages or dist-packages, then
    a Python install's `lib/pythonX.Y/` and frozen modules; anything else is the user's code.

    Args:
        file: the frame's file name as py-spy reports it (the code object's `co_filename`).
        perfscope_root: the folder of the perfscope package that ran, to tell its frames apart
            when it is not installed in site-packages (an editable install).
    """
    if (perfscope_root and _under(file, perfscope_root)) or _INSTALLED_PERFSCOPE.search(file):
        return "perfscope"
    if _LIBRARY.search(file):
        return "library"
    if not file or file.startswith("<frozen ") or _STDLIB.search(file):
        return "stdlib"  # <frozen importlib._bootstrap>: the interpreter's own
    if file.startswith("<") and file not in _USER_PSEUDO_FILES:
        return "library"  # code a library generated: jinja2's <template>
    return "user"


def speedscope_table(
    doc: dict[str, Any], top: int = TOP_N, perfscope_root: str | None = None
) -> dict[str, Any]:
    """The hottest functions of a py-spy speedscope profile, small enough for the record.

    A function is a (name, file) pair; its `line` is the line of it seen in most samples. Its
    self samples are those where it is the innermost frame; its total samples those where it is
    anywhere on the stack, counted once per sample even when it recurses. Fractions are of all
    samples of all threads and processes.

    Args:
        doc: the parsed JSON of a speedscope file written by `py-spy record --format speedscope`.
        top: how many functions to keep by self samples, and how many by total samples (the
            table is the union of the two, sorted by self samples).
        perfscope_root: the perfscope package's folder (see `frame_kind`).

    Returns:
        `total_samples`, `rate_hz` and `sampled_s` (null unless the weights are in seconds),
        `processes`, `threads`, `functions_seen`, `functions` (rows: `function`, `file`, `line`,
        `kind`, `perfscope`, `self_samples`, `total_samples`, `self_frac`, `total_frac`),
        `self_frac_by_kind` (share of samples whose innermost frame is of each kind) and
        `top_user` (the row of the user function with the most self samples, or null).

    Raises:
        ValueError: when `doc` is not a speedscope document.
    """
    frames, profiles = _parts(doc)
    keys = [_frame_key(frame) for frame in frames]
    counts, pids, threads = _Counts(), set(), set()
    weights: list[float] = []
    for index, profile in enumerate(profiles):
        found = _PROFILE_NAME.search(str(profile.get("name", "")))
        threads.add((found.group(1), found.group(2)) if found else ("?", str(index)))
        if found:
            pids.add(int(found.group(1)))
        stacks = Counter(tuple(s) for s in profile.get("samples") or [] if isinstance(s, list))
        for stack, n in stacks.items():  # a loop repeats its stacks: count each kind once
            _count_stack(stack, n, frames, keys, counts, pids)
        if profile.get("unit") == "seconds":
            weights.extend(w for w in profile.get("weights") or [] if isinstance(w, int | float))
    rows = _rows(counts, perfscope_root)
    return {
        "total_samples": counts.total,
        "rate_hz": _rate(weights),
        "sampled_s": round(sum(weights), 3) if weights else None,
        "processes": len(pids),
        "threads": len(threads),
        "functions_seen": len(rows),
        "functions": _top(rows, top),
        "self_frac_by_kind": _by_kind(rows, counts.total),
        "importing_samples": counts.importing,
        "top_user": _top_user(rows, counts.total - counts.importing),
    }


def _top_user(rows: list[dict[str, Any]], total: int) -> dict[str, Any] | None:
    """The user function with the most self samples outside DataLoader fetches, with its share
    of the samples taken outside imports as `step_self_frac`; None when no user function has any.
    (Import time is start-up, ANY002's concern: in a short run it would hide a hot loop.)"""
    outside = [(row["self_samples"] - row["self_loader_samples"], row) for row in rows]
    best = max(
        (pair for pair in outside if pair[1]["kind"] == "user" and pair[0] > 0),
        key=lambda pair: pair[0],
        default=None,
    )
    if best is None:
        return None
    return {**best[1], "step_self_frac": round(best[0] / max(total, 1), 6)}


def pyspy_metrics(record: Any) -> dict[str, float]:
    """Metrics of the py-spy table in `record.samples["pyspy"]`; empty when there is none.

    `py.samples`, `py.processes` and `py.threads` are present whenever py-spy wrote a table; the
    fractions need at least one sample, and `py.top_user_*` a function of the user's own code.
    """
    table = (getattr(record, "samples", None) or {}).get("pyspy")
    if not isinstance(table, dict) or "total_samples" not in table:
        return {}
    metrics = {
        "py.samples": float(table["total_samples"]),
        "py.processes": float(table.get("processes") or 0),
        "py.threads": float(table.get("threads") or 0),
    }
    if not table["total_samples"]:
        return metrics
    for kind in KINDS:
        metrics[f"py.{kind}_self_frac"] = float(table.get("self_frac_by_kind", {}).get(kind, 0.0))
    top_user = table.get("top_user")
    if top_user:
        metrics["py.top_user_self_frac"] = float(
            top_user.get("step_self_frac", top_user["self_frac"])
        )
        metrics["py.top_user_total_frac"] = float(top_user["total_frac"])
    return metrics


def _parts(doc: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(doc, dict):
        raise ValueError("not a speedscope document (expected a JSON object)")
    frames = (doc.get("shared") or {}).get("frames")
    profiles = doc.get("profiles")
    if not isinstance(frames, list) or not isinstance(profiles, list):
        raise ValueError("not a speedscope document (no shared.frames or profiles)")
    return frames, [p for p in profiles if isinstance(p, dict)]


def _frame_key(frame: Any) -> FuncKey | None:
    """A function's key, or None for py-spy's process frames (and anything unreadable)."""
    if not isinstance(frame, dict):
        return None
    name, file = str(frame.get("name", "?")), frame.get("file") or ""
    if not file and _PROCESS_FRAME.match(name):
        return None
    return (name, str(file))


def _count_stack(
    stack: tuple[Any, ...],
    n: int,
    frames: list[Any],
    keys: list[FuncKey | None],
    counts: _Counts,
    pids: set[int],
) -> None:
    """Counts `n` samples of one stack (frame indices, root first)."""
    valid = [i for i in stack if isinstance(i, int) and 0 <= i < len(keys)]
    for i in valid:
        if keys[i] is None and (found := _PROCESS_FRAME.match(str(frames[i].get("name", "")))):
            pids.add(int(found.group(1)))
    funcs = [i for i in valid if keys[i] is not None]
    counts.total += n
    if not funcs:
        return
    counts.self_[keys[funcs[-1]]] += n
    if any(keys[i][1].startswith("<frozen importlib") for i in funcs):
        counts.importing += n
    if any(_LOADER_FILE.search(keys[i][1]) for i in funcs[:-1]):
        counts.self_in_loader[keys[funcs[-1]]] += n
    for key in {keys[i] for i in funcs}:  # once per sample, however deep it recurses
        counts.total_by_func[key] += n
    for key_line in {(keys[i], _line(frames[i])) for i in funcs}:
        counts.lines[key_line] += n


def _line(frame: dict[str, Any]) -> int:
    line = frame.get("line")
    return line if isinstance(line, int) else 0


def _rows(counts: _Counts, perfscope_root: str | None) -> list[dict[str, Any]]:
    best_line: dict[FuncKey, tuple[int, int]] = {}
    for (key, line), n in counts.lines.items():
        if (n, -line) > best_line.get(key, (0, 0)):  # the most seen; the first line on a tie
            best_line[key] = (n, -line)
    rows = []
    for key, total in counts.total_by_func.items():
        name, file = key
        kind = frame_kind(file, perfscope_root)
        rows.append(
            {
                "function": name,
                "file": file,
                "line": -best_line[key][1],
                "kind": kind,
                "perfscope": kind == "perfscope",
                "self_samples": counts.self_[key],
                "self_loader_samples": counts.self_in_loader[key],
                "total_samples": total,
                "self_frac": round(counts.self_[key] / counts.total, 6),
                "total_frac": round(total / counts.total, 6),
            }
        )
    rows.sort(key=lambda r: (-r["self_samples"], -r["total_samples"], r["function"], r["file"]))
    return rows


def _top(rows: list[dict[str, Any]], top: int) -> list[dict[str, Any]]:
    by_total = sorted(rows, key=lambda r: -r["total_samples"])[:top]  # stable: ties keep order
    keep = {id(row) for row in rows[:top]} | {id(row) for row in by_total}
    return [row for row in rows if id(row) in keep]


def _by_kind(rows: list[dict[str, Any]], total: int) -> dict[str, float]:
    if not total:
        return {kind: 0.0 for kind in KINDS}
    return {
        kind: round(sum(r["self_samples"] for r in rows if r["kind"] == kind) / total, 6)
        for kind in KINDS
    }


def _rate(weights: list[float]) -> float | None:
    interval = statistics.median(weights) if weights else 0.0
    return round(1.0 / interval, 3) if interval > 0 else None


def _under(file: str, root: str) -> bool:
    root = root.rstrip("/\\")
    return file == root or file.startswith((root + "/", root + "\\"))
