"""One gated item of `perfscope check` (a budget, the baseline, a finding, the run's end), and
the exit code of them all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_INCONCLUSIVE = 3  # only under --strict; 2 is a usage or input error


@dataclass(frozen=True)
class Outcome:
    """`status` is pass, fail or inconclusive; `name` is the JUnit test case's name."""

    kind: str  # budget, baseline, finding, run
    name: str
    status: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "message": self.message,
            **self.data,
        }


def exit_code(outcomes: list[Outcome], strict: bool) -> int:
    """1 when anything failed; else 3 when something is inconclusive under --strict; else 0."""
    statuses = {o.status for o in outcomes}
    if "fail" in statuses:
        return EXIT_FAIL
    if strict and "inconclusive" in statuses:
        return EXIT_INCONCLUSIVE
    return EXIT_PASS


def overall(outcomes: list[Outcome], strict: bool) -> str:
    return {EXIT_PASS: "pass", EXIT_FAIL: "fail", EXIT_INCONCLUSIVE: "inconclusive"}[
        exit_code(outcomes, strict)
    ]
