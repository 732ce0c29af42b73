"""HOST002: steps bound by pure Python: a per-element feature computed in the interpreter."""

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["HOST002"], "flags": ["--no-trace"]}

EDGES = [i / 256 - 2.0 for i in range(1024)]  # bucket boundaries


def bucketize(values: list[float]) -> list[float]:
    """The hot spot: a Python loop over every element and edge (torch.bucketize is one op)."""
    out = []
    for v in values:
        count = 0
        for edge in EDGES:
            if v > edge:
                count += 1
        out.append(count / len(EDGES))
    return out


def main(steps: int = 60) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(65, 64), nn.ReLU(), nn.Linear(64, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(steps):
        x, y = torch.randn(512, 64), torch.randn(512, 1)
        feature = torch.tensor(bucketize(x[:, 0].tolist())).unsqueeze(1)
        optimizer.zero_grad(set_to_none=True)
        nn.functional.mse_loss(model(torch.cat([x, feature], dim=1)), y).backward()
        optimizer.step()
    print("done")


if __name__ == "__main__":
    main()
