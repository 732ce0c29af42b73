"""A small real CNN training on synthetic images, with a DataLoader: perfscope's demo workload.

    perfscope run examples/train_cnn.py --epochs 2
    perfscope run examples/train_cnn.py --workers 2 --augment-ms 0

By default each sample costs a few milliseconds of "augmentation" in the main process
(num_workers=0), the most common reason a small model trains slowly.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class SyntheticImages(Dataset):
    """Random 3x32x32 images in 10 classes, with an optional per-sample preprocessing cost."""

    def __init__(self, size: int, augment_ms: float) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randn(size, 3, 32, 32, generator=generator)
        self.labels = torch.randint(0, 10, (size,), generator=generator)
        self.augment_s = augment_ms / 1e3

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.augment_s:
            deadline = time.perf_counter() + self.augment_s
            while time.perf_counter() < deadline:  # stands in for decoding and augmentation
                pass
        return self.images[index], self.labels[index]


def make_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 8 * 8, 10),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--samples", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--augment-ms", type=float, default=0.5)
    args = parser.parse_args()

    torch.manual_seed(0)
    loader = DataLoader(
        SyntheticImages(args.samples, args.augment_ms),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
    )
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        total = 0.0
        for images, labels in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"epoch {epoch}: mean loss {total / len(loader):.4f}")


if __name__ == "__main__":
    main()
