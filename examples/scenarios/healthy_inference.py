"""Healthy: batched inference under torch.inference_mode(). No warning expected."""

import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset

PERFSCOPE_SCENARIO = {"expect": [], "args": ["--batches", "60"]}


def main(batches: int) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(512, 2048), nn.GELU(), nn.Linear(2048, 10)).eval()
    data = TensorDataset(torch.randn(256 * batches, 512))
    batches_of = BatchSampler(SequentialSampler(data), batch_size=256, drop_last=False)
    loader = DataLoader(data, sampler=batches_of, batch_size=None)  # one indexing op a batch
    predictions = []
    with torch.inference_mode():  # no autograd bookkeeping: faster and leaner
        for (x,) in loader:
            predictions.append(model(x).argmax(dim=1))
    print(f"{torch.cat(predictions).numel()} predictions")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=80)
    main(parser.parse_args().batches)
