"""The host collector on real process trees: `perfscope run` of a DataLoader with workers, a busy
main process, and busy multiprocessing children. Shares are checked against the CPU time the
processes report themselves, never against wall-clock times."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from perfscope.analysis.host import host_detail_metrics
from perfscope.collectors.base import CollectorContext
from perfscope.collectors.cgroup import read_limits
from perfscope.collectors.host import HostCollector, cores_for
from perfscope.collectors.procfs import usable_cores
from perfscope.record import Record
from tests.conftest import run_perfscope

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process tree")

# Busy work measured in CPU time, so it is the same amount of work however loaded the machine is.
BUSY = """
import time
def busy(cpu_s):
    end = time.process_time() + cpu_s
    while time.process_time() < end:
        pass
"""

DATALOADER_SCRIPT = (
    BUSY
    + """
import torch
from torch.utils.data import DataLoader, Dataset

class Slow(Dataset):
    def __len__(self):
        return 48
    def __getitem__(self, i):
        busy(0.01)
        return torch.zeros(4)

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x in DataLoader(Slow(), batch_size=4, num_workers=2):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
"""
)

BUSY_MAIN_SCRIPT = (
    BUSY
    + """
import json, sys
busy(1.0)
json.dump({"cpu_s": time.process_time()}, open(sys.argv[1], "w"))
"""
)

BUSY_CHILDREN_SCRIPT = (
    BUSY
    + """
import multiprocessing, sys
if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=busy, args=(0.6,)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
"""
)


def write_script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def cpu_seconds(samples: dict[str, list[Any]], column: str, cores: float) -> float:
    """The CPU seconds a share column adds up to (each point covers the time since the last)."""
    total, last = 0.0, 0.0
    for ts, share in zip(samples["ts"], samples[column], strict=True):
        total += (share or 0.0) * cores * (ts - last)
        last = ts
    return total


def test_dataloader_workers_under_perfscope_run(tmp_path: Path) -> None:
    # GIVEN a training loop whose DataLoader has 2 workers doing CPU work
    script = write_script(tmp_path, "train.py", DATALOADER_SCRIPT)
    # WHEN it runs under the real CLI
    result = run_perfscope(["run", "-q", str(script)], tmp_path, run_dir=tmp_path / "run")
    assert result.returncode == 0, result.stderr.decode()
    record = result.record
    host = record["collectors"]["host"]
    samples = record["samples"]["host"]
    # THEN the collector worked, saw both workers, and measured their CPU apart from the main's
    assert host["status"] == "ok", host
    assert max(samples["workers"]) == 2
    assert cpu_seconds(samples, "cpu_workers_frac", host["cores"]) > 0
    assert {len(column) for column in samples.values()} == {len(samples["ts"])}
    for name in ("cpu_frac", "rss_mb", "avail_mb", "cpu_main_frac", "rss_workers_mb"):
        assert name in samples
    # AND the total is the sum of its parts (no other descendants here)
    for total, main, workers in zip(
        samples["cpu_frac"], samples["cpu_main_frac"], samples["cpu_workers_frac"], strict=True
    ):
        assert total == pytest.approx(main + workers, abs=2e-4)
    # AND each worker has a column of its own (a new epoch's workers take free slots), and the
    # columns add up to the workers' total
    slots = [c for c in samples if re.fullmatch(r"cpu_worker\d_frac", c)]
    assert "cpu_worker0_frac" in slots and "cpu_worker1_frac" in slots and len(slots) <= 8
    for i, workers in enumerate(samples["cpu_workers_frac"]):
        each = sum(samples[c][i] or 0.0 for c in slots)
        assert each == pytest.approx(workers, abs=3e-4)
    assert all(cpu_seconds(samples, c, host["cores"]) > 0 for c in slots[:2])
    # AND the static facts are this machine's
    limits = read_limits(os.getpid())
    assert host["cores"] == pytest.approx(cores_for(usable_cores(), limits.cpu_quota_cores))
    assert host["cgroup_version"] == limits.version
    assert host["shm_total_mb"] > 0 and host["overhead_s"] > 0
    metrics = host_detail_metrics(Record.from_dict(record))
    assert metrics["cpu.workers_count"] == 2.0
    assert metrics["cpu.workers_util_frac"] > 0
    assert metrics["mem.rss_workers_peak_mb"] > 0


def test_a_busy_main_process_and_no_workers(tmp_path: Path) -> None:
    # GIVEN a script that spins 1 s of CPU in its main thread and reports its own CPU time
    script = write_script(tmp_path, "spin.py", BUSY_MAIN_SCRIPT)
    report = tmp_path / "cpu.json"
    # WHEN it runs under the real CLI
    result = run_perfscope(
        ["run", "-q", str(script), str(report)], tmp_path, run_dir=tmp_path / "run"
    )
    assert result.returncode == 0, result.stderr.decode()
    record = result.record
    samples, cores = record["samples"]["host"], record["collectors"]["host"]["cores"]
    own_cpu_s = json.loads(report.read_text())["cpu_s"]
    # THEN the main process's share adds up to the CPU time it reported, and the workers' is 0
    measured = cpu_seconds(samples, "cpu_main_frac", cores)
    assert 0.6 * own_cpu_s <= measured <= 1.2 * own_cpu_s + 0.1, (measured, own_cpu_s)
    assert max(samples["cpu_main_frac"]) * cores > 0.3  # a good part of a core at its busiest
    assert set(samples["workers"]) == {0}
    assert set(samples["cpu_workers_frac"]) == {0.0}


def test_busy_children_and_an_idle_main_process(tmp_path: Path) -> None:
    # GIVEN a program whose two forked children each spin 0.6 s of CPU while it waits
    script = write_script(tmp_path, "fork.py", BUSY_CHILDREN_SCRIPT)
    child = subprocess.Popen([sys.executable, str(script)])
    collector = HostCollector(interval_s=0.05)
    # WHEN the collector samples its tree until it ends
    collector.start(CollectorContext(child.pid, tmp_path, time.perf_counter()))
    child.wait(timeout=120)
    result = collector.stop()
    # THEN both children were counted as workers, with the CPU time, and the main barely any
    assert result.status == "ok" and result.samples is not None
    samples, cores = result.samples, result.extra["cores"]
    assert max(samples["workers"]) == 2
    workers_cpu_s = cpu_seconds(samples, "cpu_workers_frac", cores)
    main_cpu_s = cpu_seconds(samples, "cpu_main_frac", cores)
    assert workers_cpu_s > 0.5 * 1.2  # most of the 2 x 0.6 s (the last interval may be missed)
    assert workers_cpu_s > 3 * main_cpu_s
    assert result.overhead_s > 0
