"""Step detection and DataLoader timing through torch's own hooks; installed once torch is imported.

Every hook reports to the process's active session and never raises into the user's code.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from perfscope.runtime import session as sessions

_installed = False


def install(torch: Any) -> None:
    """Installs the step and DataLoader hooks once per process, and the in-process collectors
    once per session (a second `perfscope.profile()` block gets its own)."""
    global _installed
    if not _installed:
        _installed = True
        _hook_optimizer(torch)
        _hook_backward(torch)
        _hook_dataloader(torch)
    session = sessions.active()
    if session is None or session.torch_ready:
        return
    session.torch_ready = True
    session.writer.write(
        {
            "k": "torch",
            "ts": time.perf_counter(),
            "version": torch.__version__,
            "cuda": torch.version.cuda,
            "threads": torch.get_num_threads(),
            "cuda_available": bool(torch.cuda.is_available()),
        }
    )
    from perfscope.runtime.collectors import install_all

    install_all(torch, session)


def _hook_optimizer(torch: Any) -> None:
    import torch.optim.optimizer as optimizer_module

    def on_step(optimizer: Any, args: Any, kwargs: Any) -> None:
        session = sessions.active()
        if session is not None:
            session.mark("optimizer", aux=id(optimizer) & 0xFFFFFFFF)

    optimizer_module.register_optimizer_step_post_hook(on_step)


def _hook_backward(torch: Any) -> None:
    import torch.autograd

    original = torch.autograd.backward

    @functools.wraps(original)
    def backward(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        session = sessions.active()
        if session is not None and not session.optimizer_seen:
            session.mark("backward")
        return result

    # Tensor.backward looks torch.autograd.backward up at call time, so this catches both.
    torch.autograd.backward = backward


def _hook_dataloader(torch: Any) -> None:
    from torch.utils.data import dataloader

    base = dataloader._BaseDataLoaderIter
    original = base.__next__

    @functools.wraps(original)
    def timed_next(self: Any) -> Any:
        session = sessions.active()
        if session is None:
            return original(self)
        first = getattr(self, "_num_yielded", 1) == 0
        loader = id(self._index_sampler) & 0xFFFFFFFF if first else None
        if loader is not None:
            session.loader(loader, _loader_config(self))
        start = time.perf_counter()
        try:
            batch = original(self)
        except StopIteration:
            session.wait(start, time.perf_counter() - start, loader, end=True)
            raise
        session.wait(start, time.perf_counter() - start, loader, end=False)
        return batch

    base.__next__ = timed_next


def _loader_config(iterator: Any) -> dict[str, Any]:
    sampler = getattr(iterator, "_index_sampler", None)
    config = {
        "num_workers": getattr(iterator, "_num_workers", None),
        "pin_memory": getattr(iterator, "_pin_memory", None),
        "persistent_workers": getattr(iterator, "_persistent_workers", None),
        "prefetch_factor": getattr(iterator, "_prefetch_factor", None),
        "batch_size": getattr(sampler, "batch_size", None),
    }
    try:
        config["batches"] = len(iterator)
        config["dataset_len"] = len(iterator._dataset)
    except Exception:  # an IterableDataset has no length
        pass
    return config
