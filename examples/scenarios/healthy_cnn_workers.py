"""Healthy: a small CNN fed by a DataLoader worker that keeps up. No warning expected."""

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

PERFSCOPE_SCENARIO = {"expect": [], "args": ["--steps", "40"]}


class Images(Dataset):
    """Cheap synthetic 3x32x32 images: the workers are never the bottleneck."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        g = torch.Generator().manual_seed(i)
        return torch.rand(3, 32, 32, generator=g), i % 10


def main(steps: int) -> None:
    torch.manual_seed(0)
    # One worker beside the main process: as many busy processes as this 2-core machine has.
    loader = DataLoader(Images(32 * steps), batch_size=32, num_workers=1, persistent_workers=True)
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(128, 10),
    )  # fmt: skip
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=True)
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    print("done")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    main(parser.parse_args().steps)
