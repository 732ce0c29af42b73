"""What perfscope's collectors cost a training run, measured side by side in one run.

Each round runs the same workload three ways, alternating, with OMP_NUM_THREADS=1:
  A  plain `python`
  B  `perfscope run -q --no-report --no-pyspy --no-trace`: the sampling collectors (host, GPU
     when there is one) and the step and DataLoader hooks
  C  `perfscope run -q --no-report`: everything on by default, the op-trace window and py-spy too
The workload times its own steps. Printed: the median step time of B over A (target < 1.02) and
the whole run's wall time, process start to exit, of C over A (target < 1.05 for a two-minute run:
`--seconds 120`). It never asserts: timings depend on the machine.

    .venv/bin/python benchmarks/overhead.py                       # both workloads, ~2 minutes
    .venv/bin/python benchmarks/overhead.py --workload cnn --seconds 120 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PERFSCOPE = Path(sys.executable).parent / "perfscope"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
STEP_TARGET = 1.02
WALL_TARGET = 1.05

# Trains for about `seconds`, timing each step itself; writes the step times as JSON.
WORKLOAD = """\
import json, sys, time
sys.path.insert(0, {examples!r})
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

out, kind, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
torch.manual_seed(0)
if kind == "cnn":
    from train_cnn import SyntheticImages, make_model
    loader = DataLoader(SyntheticImages(640, augment_ms=0.5), batch_size=32, shuffle=True)
    model = make_model()
else:  # tiny steps: dispatch-bound, the worst case for per-step hooks
    loader = DataLoader(TensorDataset(torch.randn(4096, 32), torch.randint(0, 4, (4096,))),
                        batch_size=8)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
times = []
deadline = time.perf_counter() + seconds
while time.perf_counter() < deadline:
    for x, y in loader:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
        if time.perf_counter() >= deadline:
            break
json.dump(times, open(out, "w"))
"""

VARIANTS = {
    "A": [],
    "B": ["run", "-q", "--no-report", "--no-pyspy", "--no-trace"],
    "C": ["run", "-q", "--no-report"],
}


def run_once(variant: str, script: Path, kind: str, seconds: float, tmp: Path) -> dict[str, float]:
    out = tmp / f"{variant}-{kind}.json"
    args = [str(script), str(out), kind, str(seconds)]
    if variant == "A":
        cmd = [sys.executable, *args]
    else:
        cmd = [str(PERFSCOPE), *VARIANTS[variant], "-o", str(tmp / f"run-{variant}"), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "1"}
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    times = json.loads(out.read_text())
    # Skip the first steps: start-up and the first batch are not the steady state.
    steady = times[min(10, len(times) // 10) :]
    return {"wall": wall, "step_ms": statistics.median(steady) * 1e3, "steps": len(times)}


def bench(kind: str, rounds: int, seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        script = tmp / "workload.py"
        script.write_text(WORKLOAD.format(examples=str(EXAMPLES)))
        results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
        for _ in range(rounds):
            for variant in VARIANTS:
                results[variant].append(run_once(variant, script, kind, seconds, tmp))
    return report(kind, results)


def ratios(results: dict[str, list[dict[str, float]]], variant: str, key: str) -> list[float]:
    """Per round: the variant's figure over plain python's, from the same round."""
    return [v[key] / a[key] for a, v in zip(results["A"], results[variant], strict=True)]


def report(kind: str, results: dict[str, list[dict[str, float]]]) -> tuple[float, float]:
    print(f"== {kind}: {len(results['A'])} rounds")
    for variant, runs in results.items():
        steps = " ".join(f"{r['step_ms']:.3f}" for r in runs)
        walls = " ".join(f"{r['wall']:.2f}" for r in runs)
        print(f"  {variant} step ms (median each run): {steps} | wall s: {walls}")
    step_ratios = [
        b["step_ms"] / a["step_ms"] for a, b in zip(results["A"], results["B"], strict=True)
    ]
    wall_ratios = [c["wall"] / a["wall"] for a, c in zip(results["A"], results["C"], strict=True)]
    full_step = [
        c["step_ms"] / a["step_ms"] for a, c in zip(results["A"], results["C"], strict=True)
    ]
    step, wall = statistics.median(step_ratios), statistics.median(wall_ratios)
    print(f"  B/A step time per round: {' '.join(f'{r:.4f}' for r in step_ratios)}")
    print(f"  C/A step time per round: {' '.join(f'{r:.4f}' for r in full_step)}")
    print(f"  C/A wall time per round: {' '.join(f'{r:.4f}' for r in wall_ratios)}")
    print(
        f"  {kind}: sampling+hooks x{step:.4f} step time (target < x{STEP_TARGET}); "
        f"everything x{wall:.4f} wall time (target < x{WALL_TARGET} for a two-minute run)"
    )
    return step, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", choices=("cnn", "tiny", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each run")
    args = parser.parse_args()
    kinds = ["cnn", "tiny"] if args.workload == "both" else [args.workload]
    for kind in kinds:
        bench(kind, args.rounds, args.seconds)


if __name__ == "__main__":
    main()
