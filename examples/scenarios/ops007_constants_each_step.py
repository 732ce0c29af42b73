"""OPS007: a causal mask, positions and loss weights rebuilt identically in every step."""

import torch
from torch import nn

PERFSCOPE_SCENARIO = {"expect": ["OPS007"], "args": ["--steps", "40"]}
SEQ, DIM = 64, 64


def main(steps: int) -> None:
    torch.manual_seed(0)
    xs = torch.randn(64 * steps, SEQ, DIM)
    attention = nn.MultiheadAttention(DIM, 4, batch_first=True)
    embed = nn.Embedding(SEQ, DIM)
    params = [*attention.parameters(), *embed.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-3, foreach=True)
    for x in xs.split(64):
        # The mistake: the same three constants built again each step (hoist them above the loop).
        mask = torch.triu(torch.ones(SEQ, SEQ, dtype=torch.bool), diagonal=1)
        positions = torch.arange(SEQ)
        weights = torch.linspace(0.5, 0.2, 3)
        optimizer.zero_grad()
        h = x + embed(positions)
        out, _ = attention(h, h, h, attn_mask=mask, need_weights=False)
        loss = (out.pow(2).mean(dim=(1, 2))[:3] * weights).sum()
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    main(parser.parse_args().steps)
