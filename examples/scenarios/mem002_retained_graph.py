"""MEM002: host memory grows every step: the loss is summed with its autograd graph attached."""

import time

import torch
from torch import nn

PERFSCOPE_SCENARIO = {
    "expect": ["MEM002"],
    "flags": ["--no-trace", "--no-pyspy", "--host-interval", "0.05"],
}


def main(steps: int = 40) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    total = 0.0
    for _ in range(steps):
        x, y = torch.randn(512, 1024), torch.randn(512, 1)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward(retain_graph=True)
        optimizer.step()
        total = total + loss  # the mistake: keeps every step's graph and activations alive
        time.sleep(0.02)  # stands in for the rest of a real step
    print(f"loss sum {float(total):.2f}")


if __name__ == "__main__":
    main()
