"""Healthy: an MLP trained from tensors already in memory. perfscope must raise no warning."""

import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

PERFSCOPE_SCENARIO = {"expect": [], "args": ["--steps", "60"]}


def main(steps: int) -> None:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(256 * steps, 1024), torch.randn(256 * steps, 1))
    # In-memory tensors: index a whole batch at once instead of 256 samples one by one.
    batches = BatchSampler(RandomSampler(data), batch_size=256, drop_last=True)
    loader = DataLoader(data, sampler=batches, batch_size=None)
    model = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)
    running = torch.zeros(())
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        running += loss.detach()  # no host sync per step
    print(f"mean loss {running.item() / steps:.4f}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    main(parser.parse_args().steps)
