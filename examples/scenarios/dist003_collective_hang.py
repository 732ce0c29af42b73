"""DIST003: one rank stops joining collectives; the other waits in the all-reduce until the
process group's timeout (shortened here to 5 s) ends the run."""

import time
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

PERFSCOPE_SCENARIO = {
    "expect": ["DIST002", "DIST003"],
    "flags": ["--nproc-per-node", "2", "--no-pyspy", "--no-trace"],
    "exit_code": 1,
}


def main(steps: int = 30) -> None:
    dist.init_process_group("gloo", timeout=timedelta(seconds=5))
    rank = dist.get_rank()
    torch.manual_seed(0)
    hidden = nn.Linear(128, 128)  # applied 16 times: some compute per step, small gradients
    model = DistributedDataParallel(nn.Sequential(nn.Linear(64, 128), *[hidden, nn.ReLU()] * 16))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for step in range(steps):
        if rank == 1 and step == 20:
            time.sleep(60)  # stuck (a deadlock, a hung read): it never reaches the next all-reduce
        optimizer.zero_grad()
        model(torch.randn(128, 64)).square().mean().backward()  # rank 0 blocks here
        optimizer.step()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
