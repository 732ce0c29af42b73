"""DIST002: one rank raises mid-training; torchrun stops the other, whose own error is a symptom."""

from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

PERFSCOPE_SCENARIO = {
    "expect": ["DIST002"],
    "flags": ["--nproc-per-node", "2", "--no-pyspy", "--no-trace"],
    "exit_code": 1,
}


def main(steps: int = 30) -> None:
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    rank = dist.get_rank()
    torch.manual_seed(0)
    hidden = nn.Linear(128, 128)  # applied 16 times: some compute per step, small gradients
    model = DistributedDataParallel(nn.Sequential(nn.Linear(64, 128), *[hidden, nn.ReLU()] * 16))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for step in range(steps):
        x = torch.randn(128, 64)
        if rank == 1 and step == 20:
            raise ValueError(f"corrupt sample in batch {step}")  # the real error, on rank 1 only
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
