"""DIST004: DDP with tiny gradient buckets on a model of many small layers: each step runs a series
of small all-reduces, each paying the network's latency, for very little compute."""

from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

PERFSCOPE_SCENARIO = {
    "expect": ["DIST004"],
    "flags": ["--nproc-per-node", "2", "--no-pyspy"],
}


def main(steps: int = 100) -> None:
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    torch.manual_seed(0)
    layers = [m for _ in range(8) for m in (nn.Linear(64, 64), nn.ReLU())]
    # 0.01 MB buckets: one all-reduce per layer instead of one for the whole model
    model = DistributedDataParallel(nn.Sequential(*layers), bucket_cap_mb=0.01)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, foreach=True)
    for _ in range(steps):
        x = torch.randn(16, 64)
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
