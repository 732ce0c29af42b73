"""A real, small torch workload whose ending and step style the tests choose by flags."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--style", default="train", choices=["train", "backward", "infer", "explicit"])
    p.add_argument("--sleep-ms", type=float, default=0.0, help="per step, after the batch arrives")
    p.add_argument("--exit-code", type=int, default=None, help="sys.exit(N) after the loop")
    p.add_argument("--raise-at", type=int, default=None, help="raise ValueError at step N")
    p.add_argument("--kill-at", type=int, default=None, help="SIGKILL itself at step N")
    p.add_argument("--forever", action="store_true", help="loop until a signal ends the process")
    p.add_argument("--cpu-oom-at", type=int, default=None, help="allocate 1 PiB at step N")
    return p.parse_args()


def main() -> None:
    args = parse()
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64 * 8, 16), torch.randn(64 * 8, 1))
    loader = DataLoader(data, batch_size=8)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    print(f"workload pid {os.getpid()} style {args.style}", flush=True)
    step = 0
    while True:
        for x, y in loader:
            if step >= args.steps and not args.forever:
                break
            if step == args.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if step == args.raise_at:
                raise ValueError(f"failed at step {step}")
            if step == args.cpu_oom_at:
                torch.empty(2**50, dtype=torch.uint8)
            if args.sleep_ms:
                time.sleep(args.sleep_ms / 1e3)
            run_step(args.style, model, optimizer, x, y)
            step += 1
        if step >= args.steps and not args.forever:
            break
    print(f"done {step} steps", flush=True)
    if args.exit_code is not None:
        sys.exit(args.exit_code)


def run_step(style: str, model: nn.Module, optimizer: torch.optim.Optimizer, x, y) -> None:  # noqa: ANN001
    if style == "infer":
        with torch.no_grad():
            model(x)
        return
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    if style in ("train", "explicit"):
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if style == "explicit":
        import perfscope

        perfscope.step()


if __name__ == "__main__":
    main()
