"""MEM004: a DataLoader worker dies of a bus error, as it does when /dev/shm fills up.

Filling this machine's real /dev/shm would hurt everything else on it, so the worker raises the
same SIGBUS on itself at batch 5; the DataLoader, the error and the diagnosis are the real ones.
"""

import os
import signal

import torch
from torch.utils.data import DataLoader, Dataset

PERFSCOPE_SCENARIO = {"expect": ["MEM004"], "flags": ["--no-trace", "--no-pyspy"], "exit_code": 1}


class Frames(Dataset):
    def __len__(self) -> int:
        return 64 * 20

    def __getitem__(self, i: int) -> torch.Tensor:
        if i == 64 * 15:
            os.kill(os.getpid(), signal.SIGBUS)  # what writing into a full /dev/shm does
        return torch.rand(3, 32, 32)


def main() -> None:
    loader = DataLoader(Frames(), batch_size=64, num_workers=1)
    model = torch.nn.Conv2d(3, 128, 3)
    total = torch.zeros(())
    with torch.inference_mode():
        for batch in loader:
            total += model(batch).mean()
    print(f"{float(total):.3f}")


if __name__ == "__main__":
    main()
