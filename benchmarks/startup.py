"""What `perfscope run` costs a script: startup time before its first line, and time per step.

Runs, side by side and alternating (A, B, A, B, ...), the same child script under plain `python`
(A) and under `perfscope run -q --no-report --no-pyspy --no-trace` (B), with OMP_NUM_THREADS=1
in the children's environment, and prints medians and ratios. It never asserts: timings depend
on the machine.

    .venv/bin/python benchmarks/startup.py [--rounds 7] [--steps 2000] [--batch-size 16]

1. Startup: the parent takes time.time() just before it spawns the child; the child's very first
   line takes time.time() again. The difference, B minus A, is what perfscope adds before the
   script's first line (target < 0.3 s). Wall time to the end, perfscope's finishing work
   included, is reported separately. A third variant, C, runs plain `python` with the environment
   perfscope gives its child (the injected sitecustomize, without the supervisor) to split the
   added time between perfscope's own process and the hooks' boot inside the child.
2. Step detection: a small MLP trained with SGD on a DataLoader over a TensorDataset (about 1 ms
   per step on one thread); the child times its own loop. The median per-round ratio B/A of the
   loop time per step is the cost of the in-process hooks (target < 1.01).
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
from dataclasses import dataclass
from pathlib import Path

PERFSCOPE = Path(sys.executable).parent / "perfscope"

STARTUP_TARGET_S = 0.3
STEP_TARGET_RATIO = 1.01

# The very first line takes the wall clock; nothing of the script runs before it.
STARTUP_SCRIPT = """\
import time; FIRST_LINE = time.time()
import sys

with open(sys.argv[1], "w") as f:
    f.write(repr(FIRST_LINE))
"""

TRAIN_SCRIPT = """\
import json
import sys
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def main() -> None:
    out, steps, warmup, batch_size, chunks = sys.argv[1], *map(int, sys.argv[2:6])
    torch.manual_seed(0)
    x = torch.randn(4096, 128)
    y = torch.randint(0, 10, (4096,))
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    model = nn.Sequential(
        nn.Linear(128, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def batches():
        while True:
            yield from loader

    it = batches()
    every = max(1, steps // chunks)
    marks = []
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        if i >= warmup and (i - warmup) % every == 0:
            marks.append(time.perf_counter())
        xb, yb = next(it)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
    end = time.perf_counter()
    marks.append(end)
    chunk_s = [(b - a) / every for a, b in zip(marks, marks[1:])][: steps // every]
    result = {
        "loop_s": end - start,
        "steps": steps,
        "chunk_step_s": chunk_s,
        "threads": torch.get_num_threads(),
    }
    with open(out, "w") as f:
        json.dump(result, f)


main()
"""


@dataclass
class Timing:
    spawn: float  # time.time() just before the child was spawned
    end: float  # time.time() once it had exited


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFSCOPE_")}
    env["OMP_NUM_THREADS"] = "1"
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env.update(extra or {})
    return env


def run_child(cmd: list[str], env: dict[str, str], cwd: Path) -> Timing:
    spawn = time.time()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    end = time.time()
    if proc.returncode != 0:
        sys.exit(f"child failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return Timing(spawn, end)


def plain(script: Path, args: list[str]) -> list[str]:
    return [sys.executable, str(script), *args]


def under_perfscope(run_dir: Path, script: Path, args: list[str]) -> list[str]:
    # py-spy and the op-trace window are left out: they are benchmarks/overhead.py's business.
    flags = ["-q", "--no-report", "--no-pyspy", "--no-trace"]
    return [str(PERFSCOPE), "run", *flags, "-o", str(run_dir), str(script), *args]


def count_events(run_dir: Path, kind: str) -> int:
    from perfscope.events import event_files, read_events

    return sum(1 for path in event_files(run_dir) for e in read_events(path) if e["k"] == kind)


def injected_env(run_dir: Path) -> dict[str, str]:
    """What `perfscope run` adds to its child's environment, to boot the hooks without it."""
    from perfscope.supervisor.launch import child_environment

    env = child_environment(run_dir)
    return {k: env[k] for k in env if k == "PYTHONPATH" or k.startswith("PERFSCOPE_")}


def fmt_list(values: list[float], spec: str) -> str:
    return " ".join(format(v, spec) for v in values)


def bench_startup(work: Path, rounds: int, reps: int) -> float:
    script = work / "first_line.py"
    script.write_text(STARTUP_SCRIPT)
    stamp = work / "first_line.txt"
    env = child_env()
    counter = iter(range(10**9))

    def one(variant: str) -> tuple[float, float]:
        run_dir = work / f"startup-{variant}-{next(counter)}"
        if variant == "A":
            timing = run_child(plain(script, [str(stamp)]), env, work)
        elif variant == "B":
            timing = run_child(under_perfscope(run_dir, script, [str(stamp)]), env, work)
            if count_events(run_dir, "hello") != 1:
                sys.exit(f"perfscope recorded no process start in {run_dir}")
        else:
            timing = run_child(plain(script, [str(stamp)]), child_env(injected_env(run_dir)), work)
            if count_events(run_dir, "hello") != 1:
                sys.exit(f"the injected hooks recorded no process start in {run_dir}")
        first = float(stamp.read_text())
        return first - timing.spawn, timing.end - timing.spawn

    for variant in "ABC":  # warm-up: bytecode caches, page cache
        one(variant)
    first: dict[str, list[float]] = {v: [] for v in "ABC"}
    total: dict[str, list[float]] = {v: [] for v in "ABC"}
    added_first: list[float] = []
    added_total: list[float] = []
    added_boot: list[float] = []
    for _ in range(rounds):
        per: dict[str, list[tuple[float, float]]] = {v: [] for v in "ABC"}
        for _ in range(reps):
            for variant in "ABC":
                per[variant].append(one(variant))
        for variant in "ABC":
            first[variant].append(statistics.median(f for f, _ in per[variant]))
            total[variant].append(statistics.median(t for _, t in per[variant]))
        added_first.append(first["B"][-1] - first["A"][-1])
        added_total.append(total["B"][-1] - total["A"][-1])
        added_boot.append(first["C"][-1] - first["A"][-1])

    med = {v: statistics.median(first[v]) for v in "ABC"}
    med_total = {v: statistics.median(total[v]) for v in "ABC"}
    added = statistics.median(added_first)
    boot = statistics.median(added_boot)
    print(f"== startup ({rounds} rounds x {reps} runs each; medians of each round's runs)")
    print(f"  spawn -> first line  A python        : {fmt_list(first['A'], '.3f')} s")
    print(f"  spawn -> first line  B perfscope run : {fmt_list(first['B'], '.3f')} s")
    print(f"  spawn -> first line  C hooks only    : {fmt_list(first['C'], '.3f')} s")
    print(f"  added before first line (B - A)      : {fmt_list(added_first, '+.3f')} s")
    print(f"  spawn -> exit        A python        : {fmt_list(total['A'], '.3f')} s")
    print(f"  spawn -> exit        B perfscope run : {fmt_list(total['B'], '.3f')} s")
    print(f"  added to total wall time (B - A)     : {fmt_list(added_total, '+.3f')} s")
    print(
        f"  median: first line A {med['A']:.3f} s, B {med['B']:.3f} s, "
        f"added {added:+.3f} s (target < {STARTUP_TARGET_S} s)"
    )
    print(
        f"  of which: in-child hook boot (C - A) {boot:+.3f} s, "
        f"perfscope's own process before the spawn (B - C) {added - boot:+.3f} s"
    )
    print(
        f"  median total wall: A {med_total['A']:.3f} s, B {med_total['B']:.3f} s, "
        f"added {statistics.median(added_total):+.3f} s (finishing work: "
        f"{statistics.median(added_total) - added:+.3f} s after the script)"
    )
    return added


def bench_steps(work: Path, rounds: int, steps: int, warmup: int, batch_size: int) -> tuple:
    script = work / "train.py"
    script.write_text(TRAIN_SCRIPT)
    out = work / "train.json"
    chunks = 10
    args = [str(out), str(steps), str(warmup), str(batch_size), str(chunks)]
    env = child_env()

    def one(variant: str, index: int) -> dict:
        if variant == "A":
            timing = run_child(plain(script, args), env, work)
        else:
            run_dir = work / f"train-{index}"
            timing = run_child(under_perfscope(run_dir, script, args), env, work)
        result = json.loads(out.read_text())
        result["wall_s"] = timing.end - timing.spawn
        if variant == "B":
            result["marks"] = count_events(run_dir, "mark")
        return result

    a_step: list[float] = []
    b_step: list[float] = []
    a_chunk: list[float] = []
    b_chunk: list[float] = []
    marks: list[int] = []
    added_wall: list[float] = []
    threads: set[int] = set()
    for i in range(rounds):
        a = one("A", i)
        b = one("B", i)
        a_step.append(a["loop_s"] / a["steps"])
        b_step.append(b["loop_s"] / b["steps"])
        a_chunk.append(min(a["chunk_step_s"]))
        b_chunk.append(min(b["chunk_step_s"]))
        marks.append(b["marks"])
        added_wall.append(b["wall_s"] - a["wall_s"])
        threads |= {a["threads"], b["threads"]}

    ratios = [b / a for a, b in zip(a_step, b_step, strict=True)]
    added_us = [(b - a) * 1e6 for a, b in zip(a_step, b_step, strict=True)]
    chunk_ratios = [b / a for a, b in zip(a_chunk, b_chunk, strict=True)]
    ratio = statistics.median(ratios)
    added = statistics.median(added_us)
    print(
        f"== step detection ({rounds} rounds; {steps} timed steps after {warmup} warm-up, "
        f"batch {batch_size}, torch threads {sorted(threads)})"
    )
    print(f"  per step A python        : {fmt_list([s * 1e3 for s in a_step], '.4f')} ms")
    print(f"  per step B perfscope run : {fmt_list([s * 1e3 for s in b_step], '.4f')} ms")
    print(f"  ratio B/A per round      : {fmt_list(ratios, '.4f')}")
    print(f"  added per step (B - A)   : {fmt_list(added_us, '+.1f')} us")
    print(f"  best-chunk ratio B/A     : {fmt_list(chunk_ratios, '.4f')} (less noise-prone)")
    print(f"  whole run wall (B - A)   : {fmt_list(added_wall, '+.2f')} s (incl. finishing work)")
    print(f"  step marks recorded by B : {marks} (one optimizer mark per step, plus warm-up)")
    print(
        f"  median: A {statistics.median(a_step) * 1e3:.4f} ms/step, "
        f"B {statistics.median(b_step) * 1e3:.4f} ms/step, ratio x{ratio:.4f} "
        f"({added:+.1f} us/step; target < x{STEP_TARGET_RATIO}), "
        f"best-chunk ratio x{statistics.median(chunk_ratios):.4f}"
    )
    return ratio, added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of A then B (default 7)")
    parser.add_argument(
        "--startup-reps", type=int, default=3, help="startup runs of each kind per round"
    )
    parser.add_argument("--steps", type=int, default=2000, help="timed training steps per run")
    parser.add_argument("--warmup-steps", type=int, default=100, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=16, help="DataLoader batch size")
    parser.add_argument(
        "--only", choices=("startup", "steps"), help="run one of the two benchmarks"
    )
    opts = parser.parse_args(argv)
    if not PERFSCOPE.exists():
        sys.exit(f"{PERFSCOPE} not found: run this with the Python that has perfscope installed")
    print(f"python {sys.executable}; perfscope {PERFSCOPE}; cores {os.cpu_count()}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="perfscope-bench-") as tmp:
        work = Path(tmp)
        added_s = ratio = added_us = None
        if opts.only in (None, "startup"):
            added_s = bench_startup(work, opts.rounds, opts.startup_reps)
        if opts.only in (None, "steps"):
            ratio, added_us = bench_steps(
                work, opts.rounds, opts.steps, opts.warmup_steps, opts.batch_size
            )
    print(f"(benchmark took {time.perf_counter() - started:.0f} s)")
    parts = []
    if added_s is not None:
        parts.append(f"startup: {added_s:+.2f} s before first line (target < {STARTUP_TARGET_S} s)")
    if ratio is not None:
        parts.append(
            f"step detection: x{ratio:.3f} per step ({added_us:+.1f} us/step; target < 1%)"
        )
    print("; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
