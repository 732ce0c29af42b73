"""Healthy for the redundant-ops rules: fused optimizer, grads set to None, constants and casts
made once. No warning expected, and none of OPS003-OPS007 at all."""

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": [], "args": ["--steps", "40"]}
SEQ, DIM = 64, 64


def main(steps: int) -> None:
    torch.manual_seed(0)
    xs = torch.randn(64 * steps, SEQ, DIM)
    layers = nn.Sequential(*(nn.Linear(DIM, DIM) for _ in range(20)))
    params = list(layers.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-3, fused=True)
    mask = torch.triu(torch.ones(SEQ, SEQ), diagonal=1)  # constants: once, before the loop
    positions = torch.arange(SEQ, dtype=torch.float32)
    for x in xs.split(64):
        optimizer.zero_grad(set_to_none=True)
        h = layers(x + positions[:, None])
        loss = (h @ h.transpose(1, 2) * mask).pow(2).mean()
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    main(parser.parse_args().steps)
