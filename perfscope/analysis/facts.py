"""Text facts (`name -> string`) from a record, for rule texts and conditions that need words, not
numbers: the hot function's name, the exception that ended the run. Listed in docs/metrics.md."""

from __future__ import annotations

import os
from typing import Any

from perfscope.record import Record

MAX_LEN = 300  # a fact quotes, it does not dump: exception messages can be megabytes


def compute_facts(record: Record) -> dict[str, str]:
    facts: dict[str, str | None] = {}
    facts.update(exception_facts(record.run.get("exception")))
    facts.update(pyspy_facts(record.samples.get("pyspy")))
    return {name: _clip(value) for name, value in facts.items() if value}


def exception_facts(exception: dict[str, Any] | None) -> dict[str, str | None]:
    if not exception:
        return {}
    message = str(exception.get("message") or "")
    return {
        "run.exception_type": exception.get("type"),
        "run.exception_message": message.strip().splitlines()[0] if message.strip() else None,
    }


def pyspy_facts(table: Any) -> dict[str, str | None]:
    top = table.get("top_user") if isinstance(table, dict) else None
    if not top:
        return {}
    where = f"{os.path.basename(top['file'])}:{top['line']}" if top.get("file") else None
    return {"py.top_user_function": top["function"], "py.top_user_location": where}


def _clip(value: str) -> str:
    return value if len(value) <= MAX_LEN else value[: MAX_LEN - 1] + "…"
