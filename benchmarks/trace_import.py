"""`perfscope analyze` against Holistic Trace Analysis loading the same traces, in one run.

Two traces:
  real       a real torch.profiler CPU trace of a small MLP training loop (record_shapes=True),
             made here with torch: 200 recorded steps, about 480k events, 190 MB of JSON
  synthetic  a GPU-shaped Kineto trace written by this script: 1,050 ProfilerStep spans, each
             with nested torch ops, cudaLaunchKernel calls and their kernels; 1M events
Each side runs in its own process and is measured from outside: wall time, CPU time (user +
system: the fairer figure on a shared machine) and peak RSS (the
child's ru_maxrss). perfscope's figure is the whole command (`perfscope analyze -o DIR`: parse,
analysis, rules, record and HTML report); HTA's is its load alone (`Trace.parse_traces`). It
prints the ratios against the targets (docs/analyze.md) and never asserts: timings depend on the
machine and its load.

    .venv/bin/python benchmarks/trace_import.py                  # both traces (HTA: minutes)
    .venv/bin/python benchmarks/trace_import.py --only real
    .venv/bin/python benchmarks/trace_import.py --only linearity   # cost per event, 250k to 1M
    .venv/bin/python benchmarks/trace_import.py --real my.pt.trace.json.gz

HTA is not a perfscope dependency; without it only perfscope's side runs
(pip install HolisticTraceAnalysis to compare).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PERFSCOPE = Path(sys.executable).parent / "perfscope"
REAL_STEPS = 200
SYNTHETIC_STEPS = 1050
SYNTHETIC_EVENTS = 1_000_000
TARGETS = {"real": (3.0, 1 / 3), "synthetic": (20.0, None)}  # speed-up, memory ratio

MAKE_REAL = """\
import sys, torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, schedule
out, steps = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
layers = []
for _ in range(12):
    layers += [nn.Linear(64, 64), nn.LayerNorm(64), nn.GELU()]
model = nn.Sequential(*layers, nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
x, y = torch.randn(16, 64), torch.randint(0, 10, (16,))
with profile(activities=[ProfilerActivity.CPU], record_shapes=True,
             schedule=schedule(wait=0, warmup=1, active=steps, repeat=1),
             on_trace_ready=lambda p: p.export_chrome_trace(out)) as prof:
    for _ in range(steps + 1):
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        prof.step()
"""

LOAD_HTA = """\
import logging, sys
logging.disable(logging.WARNING)
from hta.common.trace import Trace
trace = Trace(trace_dir=sys.argv[1])
trace.parse_traces(max_ranks=1, use_multiprocessing=False)
"""


def make_real(path: Path, steps: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-c", MAKE_REAL, str(path), str(steps)],
        check=True,
        env=env,
        stderr=subprocess.DEVNULL,
    )


def make_synthetic(path: Path, steps: int, events: int) -> None:
    """ProfilerStep spans, each holding torch ops, each op one launch and one kernel."""
    per_step = max((events - 4) // steps, 4)
    ops = (per_step - 1) // 3
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "synthetic", ')
        out.write('"computeMajor": 8, "computeMinor": 0, "numSms": 108, ')
        out.write('"totalGlobalMem": 85899345920}],\n"traceEvents": [\n')
        ts, corr, first = 1_000_000.0, 0, True
        for step in range(steps):
            span = ops * 12.0 + 10.0
            rows = [_event("user_annotation", f"ProfilerStep#{step}", ts, span, 1, 1, {})]
            t = ts + 5.0
            for i in range(ops):
                corr += 1
                name = f"aten::op{i % 40}"
                args = {"Input Dims": [[64, 64], [64]], "Input type": ["float", "float"]}
                rows.append(_event("cpu_op", name, t, 10.0, 1, 1, args))
                rows.append(_event("cuda_runtime", "cudaLaunchKernel", t + 2, 4.0, 1, 1,
                                   {"correlation": corr}))  # fmt: skip
                kernel_args = {"correlation": corr, "stream": 7, "device": 0,
                               "blocks per SM": 0.5, "est. achieved occupancy %": 50}  # fmt: skip
                rows.append(_event("kernel", f"kernel_{i % 40}", t + 8, 6.0, 0, 7, kernel_args))
                t += 12.0
            for row in rows:
                out.write(("" if first else ",\n") + row)
                first = False
            ts += span + 20.0
        out.write('\n],\n"traceName": "synthetic"}\n')


def _event(cat: str, name: str, ts: float, dur: float, pid: int, tid: int, args: dict) -> str:
    return json.dumps(
        {
            "ph": "X",
            "cat": cat,
            "name": name,
            "pid": pid,
            "tid": tid,
            "ts": ts,
            "dur": dur,
            "args": args,
        }  # fmt: skip
    )


def measure(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"failed: {' '.join(command)}\n{err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def perfscope_side(trace: Path, work: Path) -> tuple[float, float, float]:
    out = work / f"run-{trace.stem}"
    return measure([str(PERFSCOPE), "analyze", "-q", "-o", str(out), str(trace)])


def hta_side(trace: Path, work: Path) -> tuple[float, float, float]:
    folder = work / f"hta-{trace.stem}"
    folder.mkdir(exist_ok=True)
    suffix = ".json.gz" if trace.name.endswith(".gz") else ".json"
    link = folder / f"rank-0{suffix}"
    if not link.exists():
        link.symlink_to(trace.resolve())
    return measure([sys.executable, "-c", LOAD_HTA, str(folder)])


def count_events(trace: Path) -> int:
    # In a child: a forked child's peak RSS counts its parent's pages, so the parent stays small.
    code = "import sys; from perfscope.traceimport.reader import read_trace as r; "
    code += "print(r(sys.argv[1]).events)"
    out = subprocess.run([sys.executable, "-c", code, str(trace)], capture_output=True, check=True)
    return int(out.stdout)


def report(label: str, trace: Path, work: Path, with_hta: bool) -> None:
    size = trace.stat().st_size / 2**20
    wall, cpu, rss = perfscope_side(trace, work)
    print(f"{label}: {trace.name}, {size:.0f} MB, {count_events(trace):,} events")
    print(f"  perfscope analyze (parse, analysis, rules, report): {_figures(wall, cpu, rss)}")
    if not with_hta:
        return
    hta_wall, hta_cpu, hta_rss = hta_side(trace, work)
    print(f"  HTA Trace.parse_traces (load only): {_figures(hta_wall, hta_cpu, hta_rss)}")
    speed_target, memory_target = TARGETS[label]
    # CPU time is the fairer figure on a shared machine; wall time is printed too.
    speed, speed_wall, memory = hta_cpu / cpu, hta_wall / wall, rss / hta_rss
    print(
        f"  speed-up {speed:.1f}x in CPU time, {speed_wall:.1f}x in wall time "
        f"(target >= {speed_target:.0f}x): {_ok(speed >= speed_target)}"
    )
    verdict = _ok(memory_target is None or memory <= memory_target)
    target = f"<= {memory_target:.2f}" if memory_target else "no target"
    print(f"  peak memory {memory:.2f} of HTA's ({target}): {verdict}")


def _figures(wall: float, cpu: float, rss: float) -> str:
    return f"{wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS {rss:.0f} MB"


def linearity(work: Path) -> None:
    """perfscope's CPU time per event on synthetic traces of 1/4, 1/2 and all the 1M events
    (steps in proportion): flat when the cost is linear in events."""
    print("linearity (perfscope analyze, synthetic traces):")
    for share in (4, 2, 1):
        path = work / f"synthetic_{share}.json"
        events = SYNTHETIC_EVENTS // share
        make_synthetic(path, SYNTHETIC_STEPS // share, events)
        _, cpu, rss = perfscope_side(path, work)
        per_event = cpu / events * 1e6
        print(f"  {events:>9,} events: {cpu:.2f} s CPU, {per_event:.2f} us/event, {rss:.0f} MB")
        path.unlink()


def _ok(good: bool) -> str:
    return "met" if good else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", choices=["real", "synthetic", "linearity"], help="Run one part only."
    )
    parser.add_argument("--real", type=Path, help="Use this trace instead of making one.")
    parser.add_argument("--hta-synthetic", choices=["run", "skip"], default="run",
                        help="HTA on the 1M-event trace takes minutes; skip it.")  # fmt: skip
    args = parser.parse_args()
    has_hta = importlib.util.find_spec("hta") is not None
    if not has_hta:
        print("HolisticTraceAnalysis is not installed: measuring perfscope only "
              "(pip install HolisticTraceAnalysis to compare)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="perfscope-trace-bench-") as tmp:
        work = Path(tmp)
        if args.only in (None, "real"):
            real = args.real
            if real is None:
                real = work / "real_cpu_200steps.json"
                make_real(real, REAL_STEPS)
            report("real", real, work, has_hta)
        if args.only in (None, "synthetic"):
            synthetic = work / "synthetic_1m.json"
            make_synthetic(synthetic, SYNTHETIC_STEPS, SYNTHETIC_EVENTS)
            report("synthetic", synthetic, work, has_hta and args.hta_synthetic == "run")
        if args.only in (None, "linearity"):
            linearity(work)


if __name__ == "__main__":
    main()
