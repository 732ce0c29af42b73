"""What `perfscope merge` costs per rank: time and memory to merge N synthetic rank summaries.

Writes N / 8 host run directories of 8 ranks each (records as `perfscope run` leaves them, with
one step; a real host record also holds its own steps and samples, read only for rank 0's host),
then times, in this process, the merge (reading every record, keeping only its ranks), the
merge plus the metrics and rules over the merged record (loading and compiling the rules is a
fixed cost of about a second), the `dist.*` metrics alone, and saving the record. Peak memory is
Python's allocations (tracemalloc) during the merge and diagnosis. us/rank is (read + metrics) /
ranks. It never asserts: read the per-rank numbers.

    .venv/bin/python benchmarks/merge.py [--ranks 64 256 1024 4096] [--per-host 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perfscope.analysis.ranks import rank_metrics  # noqa: E402
from perfscope.distributed.merge import merge_runs  # noqa: E402
from perfscope.pipeline import diagnose  # noqa: E402
from tests.unit.test_merge import cluster  # noqa: E402


def measure(ranks: int, per_host: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dirs = cluster(root / "hosts", hosts=ranks // per_host, per_host=per_host, slow=ranks // 3)
        record_bytes = sum((d / "record.json").stat().st_size for d in dirs)
        tracemalloc.start()
        started = time.perf_counter()
        merged, _ = merge_runs(dirs)
        read_s = time.perf_counter() - started
        record = diagnose(merged)
        diagnosed_s = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        started = time.perf_counter()
        record.save(root)
        save_s = time.perf_counter() - started
        started = time.perf_counter()
        rank_metrics(record.ranks)
        metrics_s = time.perf_counter() - started
        summary_bytes = len(json.dumps(record.ranks[0], separators=(",", ":")))
    return {
        "ranks": ranks,
        "summary_bytes": summary_bytes,
        "host_records_kb": record_bytes / 1024,
        "merge_read_s": read_s,
        "merge_read_and_diagnose_s": diagnosed_s,
        "rank_metrics_s": metrics_s,
        "save_s": save_s,
        "peak_mb": peak / (1 << 20),
        "us_per_rank": (read_s + metrics_s) / ranks * 1e6,
        "kb_per_rank": peak / ranks / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ranks", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--per-host", type=int, default=8)
    args = parser.parse_args()
    print(
        f"{'ranks':>6} {'summary B':>9} {'read s':>8} {'+rules s':>8} {'metrics s':>9} "
        f"{'save s':>7} {'peak MiB':>8} {'us/rank':>8} {'KiB/rank':>8}"
    )
    for n in args.ranks:
        m = measure(n, args.per_host)
        print(
            f"{m['ranks']:>6} {m['summary_bytes']:>9} {m['merge_read_s']:>8.3f} "
            f"{m['merge_read_and_diagnose_s']:>8.3f} {m['rank_metrics_s']:>9.4f} "
            f"{m['save_s']:>7.3f} "
            f"{m['peak_mb']:>8.2f} {m['us_per_rank']:>8.1f} {m['kb_per_rank']:>8.2f}"
        )


if __name__ == "__main__":
    main()
