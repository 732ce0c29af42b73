"""HOST001: more busy threads than cores: a thread count tuned on a bigger machine."""

import os

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["HOST001"], "flags": ["--no-trace", "--no-pyspy"]}


def main(steps: int = 60) -> None:
    # The mistake: 16 intra-op threads, as on the workstation; here they preempt each other.
    torch.set_num_threads(max(16, 2 * (os.cpu_count() or 1)))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(steps):
        x, y = torch.randn(256, 1024), torch.randn(256, 1)
        optimizer.zero_grad(set_to_none=True)
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    print("done")


if __name__ == "__main__":
    main()
