"""The run record: the frozen, versioned result of one run (docs/record.md)."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from perfscope.errors import PerfscopeError

SCHEMA_VERSION = 1
RECORD_NAMES = ("record.json", "record.json.gz")
REQUIRED_KEYS = (
    "schema_version",
    "run",
    "environment",
    "collectors",
    "steps",
    "samples",
    "metrics",
    "findings",
)
# Optional on read (older records lack them), always written.
OPTIONAL_KEYS = ("ranks",)


@dataclass(frozen=True)
class Record:
    """Everything a run left, as plain JSON-ready data. Renderers and rules read only this."""

    run: dict[str, Any]
    environment: dict[str, Any]
    collectors: dict[str, dict[str, Any]]
    steps: list[dict[str, Any]]
    samples: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    # One compact summary per distributed rank (docs/record.md, "ranks"); [] for one process.
    ranks: list[dict[str, Any]] = field(default_factory=list)

    def with_diagnosis(self, metrics: dict[str, float], findings: list[dict[str, Any]]) -> Record:
        return replace(self, metrics=metrics, findings=findings)

    def to_dict(self) -> dict[str, Any]:
        # Shallow on purpose: dataclasses.asdict deep-copies, 2 s for a 35k-step record.
        return {key: getattr(self, key) for key in (*REQUIRED_KEYS, *OPTIONAL_KEYS)}

    @classmethod
    def from_dict(cls, data: Any, source: str = "record") -> Record:
        if not isinstance(data, dict):
            raise PerfscopeError(f"{source}: not a perfscope record (expected a JSON object)")
        version = data.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise PerfscopeError(f"{source}: not a perfscope record (no valid schema_version)")
        if version > SCHEMA_VERSION:
            raise PerfscopeError(
                f"{source}: record schema_version {version} is newer than this perfscope reads "
                f"({SCHEMA_VERSION}); upgrade perfscope (pip install -U perfscope)"
            )
        missing = [key for key in REQUIRED_KEYS if key not in data]
        if missing:
            raise PerfscopeError(f"{source}: record lacks the keys {', '.join(missing)}")
        ranks = data.get("ranks")
        if ranks is not None and not isinstance(ranks, list):
            raise PerfscopeError(f"{source}: record key ranks is not a list")
        return cls(**{key: data[key] for key in REQUIRED_KEYS}, ranks=ranks or [])

    def save(self, run_dir: Path, compress: bool = False) -> Path:
        text = json.dumps(self.to_dict(), indent=None, separators=(",", ":"), allow_nan=False)
        path = Path(run_dir) / RECORD_NAMES[1 if compress else 0]
        tmp = path.with_name(path.name + ".tmp")
        if compress:
            tmp.write_bytes(gzip.compress(text.encode(), compresslevel=6))
        else:
            tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic: a reader never sees half a record
        return path


def find_record(path: Path) -> Path:
    """The record file of a run directory (or the file itself)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise PerfscopeError(
            f"{path}: no such run directory; pass the folder `perfscope run` wrote"
        )
    for name in RECORD_NAMES:
        if (path / name).is_file():
            return path / name
    raise PerfscopeError(f"{path}: no record.json in this folder; is it a perfscope run directory?")


def load_record(path: Path) -> Record:
    """Reads a record, refusing a corrupt, truncated or newer one with a one-line error."""
    file = find_record(path)
    try:
        raw = file.read_bytes()
        if file.suffix == ".gz":
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    except (OSError, EOFError, ValueError, gzip.BadGzipFile) as exc:
        raise PerfscopeError(f"{file}: corrupt or truncated record ({_short(exc)})") from None
    return Record.from_dict(data, source=str(file))


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
