"""A rule as loaded from its TOML file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLASSES = ("memory", "data", "redundant-ops", "utilization", "host", "distributed", "inference")
SEVERITIES = ("info", "warning", "error")
DOC_SECTIONS = ("what", "why", "example", "fix", "options", "references")


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    cls: str
    severity: str
    when: str
    title: str
    evidence: str
    fix: str
    snippet: str = ""
    saving: str = ""
    requires: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    severity_if: dict[str, str] = field(default_factory=dict)  # severity -> condition raising it
    doc: dict[str, str] = field(default_factory=dict)
    source: Path | None = None
