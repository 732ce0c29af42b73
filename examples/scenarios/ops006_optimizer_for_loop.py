"""OPS006: Adam on the CPU with the default settings updates each parameter in a Python loop."""

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["OPS006"], "args": ["--steps", "40"]}


def main(steps: int) -> None:
    torch.manual_seed(0)
    xs, ys = torch.randn(128 * steps, 256), torch.randn(128 * steps, 1)
    # Many small layers: 40 parameter tensors, as a deep narrow network or a transformer has.
    model = nn.Sequential(*(nn.Linear(256, 256) for _ in range(19)), nn.Linear(256, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # the mistake: no fused/foreach
    for x, y in zip(xs.split(128), ys.split(128), strict=True):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    main(parser.parse_args().steps)
