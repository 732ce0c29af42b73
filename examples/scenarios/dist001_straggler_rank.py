"""DIST001: one DDP rank is slower than the other, and every step waits for it in the all-reduce."""

import time
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

PERFSCOPE_SCENARIO = {
    "expect": ["DIST001"],
    "flags": ["--nproc-per-node", "2", "--no-pyspy"],
}


def main(steps: int = 30) -> None:
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    rank = dist.get_rank()
    torch.manual_seed(0)
    hidden = nn.Linear(128, 128)
    model = DistributedDataParallel(nn.Sequential(nn.Linear(64, 128), *[hidden, nn.ReLU()] * 16))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(steps):
        x = torch.randn(128, 64)
        loss = model(x).square().mean()
        if rank == 1:
            time.sleep(0.04)  # the straggler: stands in for a slower GPU or a slower input pipeline
        optimizer.zero_grad()
        loss.backward()  # rank 0 waits here, in DDP's all-reduce, for rank 1
        optimizer.step()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
