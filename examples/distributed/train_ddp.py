"""A tiny DistributedDataParallel training on CPU (gloo): perfscope's distributed demo workload.

    perfscope run --nproc-per-node 2 examples/distributed/train_ddp.py --steps 30
    perfscope run -- torchrun --standalone --nproc-per-node 2 examples/distributed/train_ddp.py

The model applies one small hidden layer `--depth` times: compute grows with the depth while the
gradients all-reduced each step stay small. Options make one rank misbehave, as the tests need:
`--slow-rank R --slow-ms MS` (a rank that computes slower), `--die-rank R --die-at N --die-how
raise|exit|kill` (a rank that crashes at step N), `--hang-rank R --hang-at N` (a rank that stops
calling collectives at step N; `--timeout-s` bounds the others' wait).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


class SharedDepth(nn.Module):
    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.inp, self.hidden, self.out = (
            nn.Linear(64, width),
            nn.Linear(width, width),
            nn.Linear(width, 10),
        )
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.inp(x))
        for _ in range(self.depth):
            x = torch.relu(self.hidden(x))
        return self.out(x)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--worker-start", choices=("fork", "spawn"), default=None)
    parser.add_argument("--slow-rank", type=int, default=-1)
    parser.add_argument("--slow-ms", type=float, default=0.0)
    parser.add_argument("--die-rank", type=int, default=-1)
    parser.add_argument("--die-at", type=int, default=5)
    parser.add_argument("--die-how", choices=("raise", "exit", "kill"), default="raise")
    parser.add_argument("--hang-rank", type=int, default=-1)
    parser.add_argument("--hang-at", type=int, default=5)
    parser.add_argument("--timeout-s", type=float, default=60.0)
    return parser.parse_args()


def die(rank: int, step: int, how: str) -> None:
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
    if how == "exit":
        os._exit(3)  # no exception, no clean-up
    raise RuntimeError(f"rank {rank} fails at step {step}")


def main() -> None:
    args = parse_args()
    dist.init_process_group("gloo", timeout=timedelta(seconds=args.timeout_s))
    rank = dist.get_rank()
    torch.manual_seed(0)
    samples = args.steps * args.batch * dist.get_world_size()
    data = TensorDataset(torch.randn(samples, 64), torch.randint(0, 10, (samples,)))
    sampler = DistributedSampler(data, seed=0)
    loader = DataLoader(
        data,
        batch_size=args.batch,
        sampler=sampler,
        num_workers=args.workers,
        multiprocessing_context=args.worker_start if args.workers else None,
    )
    model = DistributedDataParallel(SharedDepth(args.width, args.depth))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for step, (x, y) in enumerate(loader):
        if rank == args.die_rank and step == args.die_at:
            die(rank, step, args.die_how)
        if rank == args.hang_rank and step == args.hang_at:
            time.sleep(3600)  # stops calling collectives: the other ranks block in all-reduce
        loss = nn.functional.cross_entropy(model(x), y)
        if rank == args.slow_rank:
            time.sleep(args.slow_ms / 1e3)  # stands in for a slower GPU or a slower input pipeline
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
