"""DATA002: the first batch takes seconds: each worker's start-up (worker_init_fn) is slow."""

import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

PERFSCOPE_SCENARIO = {"expect": ["DATA002"], "flags": ["--no-trace", "--no-pyspy"]}


def open_shards(worker_id: int) -> None:
    time.sleep(1.5)  # stands in for opening files, connecting to storage, loading an index


def main() -> None:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64 * 30, 256), torch.randn(64 * 30, 1))
    loader = DataLoader(data, batch_size=64, num_workers=2, worker_init_fn=open_shards)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        time.sleep(0.03)  # the rest of a real step
    print("done")


if __name__ == "__main__":
    main()
