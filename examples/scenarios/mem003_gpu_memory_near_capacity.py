"""MEM003 (CUDA GPU only): device memory near capacity: tensors kept alive fill ~95% of the GPU."""

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["MEM003"], "flags": ["--no-pyspy"], "requires": "cuda"}


def main(steps: int = 30) -> None:
    device = torch.device("cuda")
    free, total = torch.cuda.mem_get_info()
    ballast = torch.empty(int(free * 0.93), dtype=torch.uint8, device=device)  # the mistake
    model = nn.Linear(1024, 1024).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(steps):
        x = torch.randn(256, 1024, device=device)
        optimizer.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        optimizer.step()
    torch.cuda.synchronize()
    print(f"held {ballast.numel() / 2**30:.1f} GiB of {total / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
