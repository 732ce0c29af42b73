"""OPS004: the same input cast to float64 again in every block of the model, each step."""

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["OPS004"], "args": ["--steps", "40"]}


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width, dtype=torch.float64)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(h)) + x.to(torch.float64)  # the mistake: a cast per block


def main(steps: int) -> None:
    torch.manual_seed(0)
    width = 256
    xs, ys = torch.randn(256 * steps, width), torch.randn(256 * steps, 1)
    blocks = nn.ModuleList(Block(width) for _ in range(6))
    head = nn.Linear(width, 1, dtype=torch.float64)
    params = [*blocks.parameters(), *head.parameters()]
    optimizer = torch.optim.SGD(params, lr=1e-3, foreach=True)
    for x, y in zip(xs.split(256), ys.split(256), strict=True):
        optimizer.zero_grad()
        h = x.to(torch.float64)
        for block in blocks:
            h = block(h, x)  # fix: pass the float64 x cast once above
        loss = nn.functional.mse_loss(head(h), y.to(torch.float64))
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    main(parser.parse_args().steps)
