"""Precision and recall of the diagnosis over the scenario scripts in examples/scenarios/.

Each scenario is run through `perfscope run` as a user would (OMP_NUM_THREADS=1 unless it says
otherwise). A rule's true positive is a scenario that expects it and in which it fired; a false
positive is a warning or error finding of a rule the scenario did not expect (info findings are
advice, not diagnoses, and are left out); a false negative is an expected rule that did not fire.

    .venv/bin/python benchmarks/diagnosis.py [--only PREFIX] [--rounds N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from perfscope.scenarios import BLOCKING, Scenario, discover, judge, run_scenario

ROOT = Path(__file__).resolve().parents[1]
PERFSCOPE = str(Path(sys.executable).parent / "perfscope")


def main() -> int:
    args = parse()
    scenarios = [
        s
        for s in discover(ROOT / "examples" / "scenarios")
        if s.name.startswith(args.only) and s.requires == "cpu"
    ]
    tp, fp, fn = Counter(), Counter(), Counter()
    failures: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="perfscope-diagnosis-"))
    try:
        for round_index in range(args.rounds):
            for scenario in scenarios:
                verdict = run_one(scenario, work / f"{scenario.name}-{round_index}")
                if verdict is None:
                    failures.append(f"{scenario.name}: no record or wrong exit code")
                    fn.update(scenario.expect)
                    continue
                tp.update(i for i in scenario.expect if i in verdict.fired)
                fn.update(verdict.missing)
                fp.update(verdict.unexpected)
                mark = "ok " if verdict.ok else "BAD"
                print(f"{mark} {scenario.name:40} fired {', '.join(verdict.fired) or '-'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(tp, fp, fn)
    for line in failures:
        print("failed:", line)
    return 0 if not failures and not fp and not fn else 1


def run_one(scenario: Scenario, run_dir: Path):  # noqa: ANN201 - Verdict | None
    proc, record = run_scenario(scenario, run_dir, PERFSCOPE)
    if proc.returncode != scenario.exit_code or not record:
        return None
    return judge(scenario, record["findings"])


def print_table(tp: Counter, fp: Counter, fn: Counter) -> None:
    rules = sorted(set(tp) | set(fp) | set(fn))
    print(f"\n{'rule':8} {'TP':>3} {'FP':>3} {'FN':>3} {'precision':>9} {'recall':>7}")
    for rule in rules:
        print(f"{rule:8} {tp[rule]:3} {fp[rule]:3} {fn[rule]:3} {_ratio(tp[rule], fp[rule]):>9} "
              f"{_ratio(tp[rule], fn[rule]):>7}")  # fmt: skip
    t, f, n = sum(tp.values()), sum(fp.values()), sum(fn.values())
    print(f"{'all':8} {t:3} {f:3} {n:3} {_ratio(t, f):>9} {_ratio(t, n):>7}")
    print(f"(false positives count {' and '.join(BLOCKING)} findings only)")


def _ratio(hits: int, misses: int) -> str:
    return f"{hits / (hits + misses):.2f}" if hits + misses else "-"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the scenarios whose name starts so")
    parser.add_argument("--rounds", type=int, default=1, help="run every scenario N times")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
