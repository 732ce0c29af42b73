"""A small training loop whose performance problem the scenario tests choose by flags."""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--worker-init-s", type=float, default=0.0, help="sleep in each worker's init")
    p.add_argument("--augment-ms", type=float, default=0.0, help="busy CPU time per sample")
    p.add_argument("--startup-s", type=float, default=0.0, help="sleep before the loop")
    p.add_argument("--python-ms", type=float, default=0.0, help="pure-Python work per step")
    p.add_argument("--items", type=int, default=0, help=".item() calls per step")
    p.add_argument("--spike-every", type=int, default=0, help="a slow step every N steps")
    p.add_argument("--spike-ms", type=float, default=300.0)
    p.add_argument("--step-ms", type=float, default=0.0, help="sleep per step (steady time)")
    p.add_argument("--retain-graph", action="store_true", help="sum losses with their graphs")
    return p.parse_args()


class Augmented(TensorDataset):
    """Samples that cost CPU time to produce, as decoding and augmentation do."""

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        deadline = time.perf_counter() + ARGS.augment_ms / 1e3
        while time.perf_counter() < deadline:
            pass
        return super().__getitem__(index)


def sleepy_init(worker_id: int) -> None:
    time.sleep(ARGS.worker_init_s)


def python_feature_engineering(n_ms: float) -> float:
    """Stands in for per-step work done in plain Python."""
    deadline = time.perf_counter() + n_ms / 1e3
    acc = 0.0
    while time.perf_counter() < deadline:
        for i in range(200):
            acc += (i * 0.5) % 7
    return acc


def main() -> None:
    torch.manual_seed(0)
    if ARGS.startup_s:
        time.sleep(ARGS.startup_s)  # stands in for indexing a data set at start-up
    n = ARGS.batch * ARGS.steps
    dataset_cls = Augmented if ARGS.augment_ms else TensorDataset
    data = dataset_cls(torch.randn(n, ARGS.width), torch.randn(n, 1))
    loader = DataLoader(
        data,
        batch_size=ARGS.batch,
        num_workers=ARGS.workers,
        worker_init_fn=sleepy_init if ARGS.worker_init_s else None,
    )
    model = nn.Sequential(nn.Linear(ARGS.width, ARGS.width), nn.ReLU(), nn.Linear(ARGS.width, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    total: torch.Tensor | float = 0.0
    for step, (x, y) in enumerate(loader):
        if ARGS.python_ms:
            python_feature_engineering(ARGS.python_ms)
        if ARGS.step_ms:
            time.sleep(ARGS.step_ms / 1e3)
        if ARGS.spike_every and step > 0 and step % ARGS.spike_every == 0:
            time.sleep(ARGS.spike_ms / 1e3)  # stands in for evaluation or a checkpoint
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        loss = nn.functional.mse_loss(out, y)
        loss.backward(retain_graph=ARGS.retain_graph)
        optimizer.step()
        for _ in range(ARGS.items):
            float(out.mean().item())
        if ARGS.retain_graph:
            total = total + loss  # keeps every step's graph (and activations) alive
        else:
            total += loss.item()
    print(f"done, loss sum {float(total):.3f}")


ARGS = parse()

if __name__ == "__main__":
    main()
