"""MEM001: the run dies out of memory. The batch of activations asked for is far larger than RAM."""

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["MEM001"], "flags": ["--no-trace"], "exit_code": 1}


def main() -> None:
    model = nn.Linear(1024, 1024)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for batch_size in (64, 64, 64, 2**30):  # the last "batch" needs 4 TiB: the allocator fails
        x = torch.randn(batch_size, 1024)
        loss = model(x).square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


if __name__ == "__main__":
    main()
