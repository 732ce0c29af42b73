"""DATA001: the loop waits for data: each sample is decoded in the main process (num_workers=0)."""

import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

PERFSCOPE_SCENARIO = {"expect": ["DATA001"], "flags": ["--no-trace"]}


class Decoded(Dataset):
    """Each sample costs ~1 ms of CPU, as decoding and augmenting an image does."""

    def __len__(self) -> int:
        return 32 * 40

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        deadline = time.perf_counter() + 0.001
        while time.perf_counter() < deadline:
            pass
        return torch.rand(256), i % 10


def main() -> None:
    torch.manual_seed(0)
    loader = DataLoader(Decoded(), batch_size=32)  # the mistake: no workers
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    print("done")


if __name__ == "__main__":
    main()
