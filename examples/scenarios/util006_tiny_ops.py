"""UTIL006: steps of many tiny ops: small layers on a batch of 8, so dispatching dominates."""

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["UTIL006"], "flags": ["--no-pyspy"]}


def main(steps: int = 300) -> None:
    torch.manual_seed(0)
    # The mistake: 24 layers of 16x16 on batches of 8; each op's arithmetic is smaller than the
    # cost of calling it.
    model = nn.Sequential(*[m for _ in range(24) for m in (nn.Linear(16, 16), nn.Tanh())])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, foreach=True)
    for _ in range(steps):
        x = torch.randn(8, 16)
        optimizer.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        optimizer.step()
    print("done")


if __name__ == "__main__":
    main()
