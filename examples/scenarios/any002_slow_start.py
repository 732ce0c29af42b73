"""ANY002: seconds pass before the first step: the data set is indexed at every start."""

import time

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["ANY002"], "flags": ["--no-trace", "--no-pyspy"]}


def index_dataset() -> torch.Tensor:
    time.sleep(5.0)  # stands in for listing and hashing millions of files before training
    return torch.randn(64 * 30, 128)


def main() -> None:
    data = index_dataset()
    model = nn.Linear(128, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for x in data.split(64):
        optimizer.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        optimizer.step()
        time.sleep(0.01)
    print("done")


if __name__ == "__main__":
    main()
