"""OPS005: zero_grad(set_to_none=False) writes zeros into every gradient, every step."""

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["OPS005"], "args": ["--steps", "40"]}


def main(steps: int) -> None:
    torch.manual_seed(0)
    xs, ys = torch.randn(256 * steps, 512), torch.randn(256 * steps, 1)
    layers = [nn.Linear(512, 512) if i % 2 == 0 else nn.ReLU() for i in range(8)]
    model = nn.Sequential(*layers, nn.Linear(512, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, foreach=True)
    for x, y in zip(xs.split(256), ys.split(256), strict=True):
        optimizer.zero_grad(set_to_none=False)  # the mistake: a memset of every gradient
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    main(parser.parse_args().steps)
