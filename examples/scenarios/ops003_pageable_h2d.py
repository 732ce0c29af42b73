"""OPS003: batches copied to the GPU from pageable memory; the host waits for every copy."""

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["OPS003"], "args": ["--steps", "40"], "requires": "cuda"}


def main(steps: int) -> None:
    torch.manual_seed(0)
    n = 256 * steps  # 12 MiB batches
    images, labels = torch.randn(n, 3, 64, 64), torch.randint(0, 10, (n,))  # pageable memory
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 256), nn.ReLU(), nn.Linear(256, 10))
    model = model.cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    for x, y in zip(images.split(256), labels.split(256), strict=True):
        # The mistake: blocking copies from pageable memory. Fix: images = images.pin_memory()
        # once (or DataLoader(pin_memory=True)), then x.cuda(non_blocking=True).
        x, y = x.cuda(), y.cuda()
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    torch.cuda.synchronize()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    main(parser.parse_args().steps)
