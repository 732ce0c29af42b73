"""MEM005 (CUDA GPU only): device memory grows every step: the loss is summed with its graph."""

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["MEM005"], "flags": ["--no-pyspy"], "requires": "cuda"}


def main(steps: int = 60) -> None:
    device = torch.device("cuda")
    model = nn.Sequential(nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 1)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    total = torch.zeros((), device=device)
    for _ in range(steps):
        x, y = torch.randn(1024, 2048, device=device), torch.randn(1024, 1, device=device)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward(retain_graph=True)
        optimizer.step()
        total = total + loss  # the mistake: every step's graph and activations stay on the GPU
    print(f"loss sum {total.item():.2f}")


if __name__ == "__main__":
    main()
