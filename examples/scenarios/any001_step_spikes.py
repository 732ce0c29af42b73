"""ANY001: every 10th step is far slower: an evaluation pass runs inside the training loop."""

import time

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["ANY001"], "flags": ["--no-trace", "--no-pyspy"]}


def evaluate(model: nn.Module) -> None:
    time.sleep(0.3)  # stands in for a validation pass or a synchronous checkpoint save


def main(steps: int = 40) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for step in range(steps):
        x, y = torch.randn(64, 256), torch.randn(64, 1)
        optimizer.zero_grad(set_to_none=True)
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        time.sleep(0.01)
        if step > 0 and step % 10 == 0:
            evaluate(model)  # counted in this step's time
    print("done")


if __name__ == "__main__":
    main()
