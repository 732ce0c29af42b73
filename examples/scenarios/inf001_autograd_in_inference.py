"""INF001: batched inference with model.eval() but autograd still on: a graph per batch."""

import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset

PERFSCOPE_SCENARIO = {"expect": ["INF001"], "args": ["--batches", "120"]}


def main(batches: int) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 2048), nn.GELU(), nn.Linear(2048, 10)).eval()
    data = TensorDataset(torch.randn(256 * batches, 256))
    # Whole batches by one indexing each (batch_size=None): loading costs nothing here.
    batches_of = BatchSampler(SequentialSampler(data), batch_size=256, drop_last=False)
    loader = DataLoader(data, sampler=batches_of, batch_size=None)
    predictions = []
    for (x,) in loader:  # the mistake: no torch.inference_mode() around the loop
        predictions.append(model(x).argmax(dim=1))
    print(f"{torch.cat(predictions).numel()} predictions")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=120)
    main(parser.parse_args().batches)
