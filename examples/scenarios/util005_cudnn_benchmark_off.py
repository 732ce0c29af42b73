"""UTIL005 (CUDA GPU only): cudnn.benchmark left off for a CNN whose input shapes never change."""

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["UTIL005"], "flags": ["--no-pyspy"], "requires": "cuda"}


def main(steps: int = 30) -> None:
    device = torch.device("cuda")
    # The mistake: torch.backends.cudnn.benchmark stays False with fixed 3x128x128 inputs.
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    ).to(device)  # fmt: skip
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(steps):
        x = torch.randn(64, 3, 128, 128, device=device)
        y = torch.randint(0, 10, (64,), device=device)
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    torch.cuda.synchronize()
    print("done")


if __name__ == "__main__":
    main()
