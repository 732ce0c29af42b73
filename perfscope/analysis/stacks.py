"""py-spy's stacks as a call tree for an icicle chart: bounded, small functions folded away.

The record keeps only py-spy's top functions; the stacks are in the run directory's speedscope
file (`collectors.pyspy.speedscope`). `call_tree` merges every thread's samples into one tree
(root: all samples; a node: a function called along one path) and keeps the nodes with at least
`min_frac` of the samples, at most `max_nodes` of them, heaviest first.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from perfscope.analysis.pyspy import frame_kind

MAX_NODES = 400
MIN_FRAC = 0.005
ROOT = "all samples"
_ROOT = str(Path(__file__).resolve().parents[1])  # perfscope's own folder, for frame_kind


def call_tree(
    doc: dict[str, Any], max_nodes: int = MAX_NODES, min_frac: float = MIN_FRAC
) -> dict[str, Any]:
    """Icicle data from a parsed speedscope document.

    Returns parallel lists `ids`, `labels` (function names), `parents` ("" for the root),
    `values` (samples with the node on that path; a parent's value is at least its children's
    sum), `where` (file:line) and `kinds` (`frame_kind`: user, library, stdlib, perfscope; ""
    for the root and py-spy's process frames), plus `total` samples. Raises ValueError for a
    document that is not speedscope.
    """
    frames, profiles = _parts(doc)
    counts: dict[tuple[int, ...], int] = {}
    total = 0
    for profile in profiles:
        for stack in profile.get("samples") or []:
            path = tuple(i for i in stack if isinstance(i, int) and 0 <= i < len(frames))
            total += 1
            for depth in range(1, len(path) + 1):
                counts[path[:depth]] = counts.get(path[:depth], 0) + 1
    floor = max(1, math.ceil(total * min_frac))
    kept = sorted(
        (p for p, n in counts.items() if n >= floor), key=lambda p: (-counts[p], len(p), p)
    )
    chosen = set(kept[: max(0, max_nodes - 1)])
    # A node whose parent was cut would float free: keep only paths whose prefixes are all kept.
    paths = sorted(p for p in chosen if all(p[:d] in chosen for d in range(1, len(p))))
    tree: dict[str, list[Any]] = {
        "ids": [ROOT],
        "labels": [ROOT],
        "parents": [""],
        "values": [total],
        "where": [""],
        "kinds": [""],
    }
    for p in paths:
        frame = frames[p[-1]] if isinstance(frames[p[-1]], dict) else {}
        tree["ids"].append(_node_id(p))
        tree["labels"].append(str(frame.get("name", "?")))
        tree["parents"].append(_node_id(p[:-1]) if len(p) > 1 else ROOT)
        tree["values"].append(counts[p])
        tree["where"].append(_where(frame))
        tree["kinds"].append(frame_kind(str(frame["file"]), _ROOT) if frame.get("file") else "")
    return {**tree, "total": total}


def tree_from_run_dir(run_dir: Path | None, pyspy: dict[str, Any]) -> dict[str, Any] | None:
    """The call tree of a run's speedscope file; None when the run kept none or it is unreadable."""
    name = pyspy.get("speedscope")
    if run_dir is None or not isinstance(name, str) or "/" in name or name.startswith("."):
        return None
    try:
        doc = json.loads((run_dir / name).read_text(encoding="utf-8"))
        return call_tree(doc)
    except (OSError, ValueError):
        return None


def _parts(doc: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    frames = (doc.get("shared") or {}).get("frames") if isinstance(doc, dict) else None
    profiles = doc.get("profiles") if isinstance(doc, dict) else None
    if not isinstance(frames, list) or not isinstance(profiles, list):
        raise ValueError("not a speedscope document (no shared.frames or profiles)")
    return frames, [p for p in profiles if isinstance(p, dict)]


def _node_id(path: tuple[int, ...]) -> str:
    return "/".join(str(i) for i in path)


def _where(frame: dict[str, Any]) -> str:
    file, line = frame.get("file") or "", frame.get("line")
    return f"{file}:{line}" if file and isinstance(line, int) else str(file)
