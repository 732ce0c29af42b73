"""Step detection and DataLoader timing through torch's own hooks; installed once torch is imported.

Every hook reports to the process's active session and never raises into the user's code. An
autograd probe looks, for a few early steps only, at whether the model's forward records a graph;
with whether backward ever ran, that tells an inference loop left with autograd on.
"""

from __future__ import annotations

import contextlib
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
        _hook_optimizer_init(torch)
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
    AutogradProbe(torch, session).install()


def _hook_optimizer(torch: Any) -> None:
    import torch.optim.optimizer as optimizer_module

    def on_step(optimizer: Any, args: Any, kwargs: Any) -> None:
        session = sessions.active()
        if session is not None:
            session.mark("optimizer", aux=id(optimizer) & 0xFFFFFFFF)

    optimizer_module.register_optimizer_step_post_hook(on_step)


def _hook_optimizer_init(torch: Any) -> None:
    """Describes each optimizer once, when it is built: its class and the implementation its
    settings select (record: environment.optimizers). Nothing runs per step."""
    from torch.optim import Optimizer

    original = Optimizer.__init__

    @functools.wraps(original)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        session = sessions.active()
        if session is None:
            return
        try:
            facts = _facts(self)
        except Exception as exc:  # noqa: BLE001 - never raise into the user's code
            facts = {"class": type(self).__name__, "error": f"{type(exc).__name__}: {exc}"}
        with contextlib.suppress(Exception):  # a session already closed, say
            session.writer.write({"k": "optimizer", "ts": time.perf_counter(), **facts})

    Optimizer.__init__ = init


def _facts(optimizer: Any) -> dict[str, Any]:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    defaults = optimizer.defaults
    return {
        "class": type(optimizer).__name__,
        "module": type(optimizer).__module__,
        "foreach": defaults.get("foreach"),
        "fused": defaults.get("fused"),
        "params": len(params),
        "devices": sorted({p.device.type for p in params}),
        "implementation": _implementation(params, defaults),
    }


def _implementation(params: list[Any], defaults: dict[str, Any]) -> str | None:
    """What torch.optim runs for these settings: fused, foreach or for-loop (None: unknown)."""
    if "foreach" not in defaults and "fused" not in defaults:
        return None  # not one of torch's multi-implementation optimizers
    if defaults.get("fused"):
        return "fused"
    if defaults.get("foreach") is not None:
        return "foreach" if defaults["foreach"] else "for-loop"
    try:  # foreach=None: torch picks foreach when every parameter is on a foreach device
        from torch.optim.optimizer import _default_to_fused_or_foreach

        _, foreach = _default_to_fused_or_foreach(params, bool(defaults.get("differentiable")))
    except (ImportError, TypeError):
        return None
    return "foreach" if foreach else "for-loop"


def _hook_backward(torch: Any) -> None:
    import torch.autograd

    original = torch.autograd.backward

    @functools.wraps(original)
    def backward(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        session = sessions.active()
        if session is not None:
            session.backward_seen = True
            if not session.optimizer_seen:
                session.mark("backward")
        return result

    # Tensor.backward looks torch.autograd.backward up at call time, so this catches both.
    torch.autograd.backward = backward

    original_grad = torch.autograd.grad

    @functools.wraps(original_grad)
    def grad(*args: Any, **kwargs: Any) -> Any:
        result = original_grad(*args, **kwargs)
        session = sessions.active()
        if session is not None:
            session.backward_seen = True  # gradients used without .backward(): not inference
        return result

    torch.autograd.grad = grad


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


class AutogradProbe:
    """Whether the steps' forward passes record an autograd graph, sampled at a few steps.

    At each sampled step a global module forward hook is set for that one step: it notes whether
    grad mode was on and whether a module's output required grad (a graph was recorded). After the
    last sample the probe leaves the step clock, so later steps cost nothing. At the end of the run
    one `autograd` event says what was seen, with whether backward ever ran.
    """

    SAMPLE_STEPS = frozenset({2, 4, 8, 16})
    LAST_SAMPLE = max(SAMPLE_STEPS)

    def __init__(self, torch: Any, session: sessions.ProcessSession) -> None:
        self.torch = torch
        self.session = session
        self.handle: Any = None
        self.sampled = 0  # sampled steps in which a module's forward ran
        self.grad_mode = 0  # ... with grad mode on
        self.graph = 0  # ... whose outputs required grad
        self._forward_seen = self._grad_seen = self._graph_seen = False

    def install(self) -> None:
        self.session.step_listeners.append(self.on_step)
        self.session.closers.append(self.close)

    def on_step(self, index: int) -> None:
        try:
            self._end_sample()
            if index in self.SAMPLE_STEPS:
                from torch.nn.modules.module import register_module_forward_hook

                self.handle = register_module_forward_hook(self._on_forward)
            elif index > self.LAST_SAMPLE:
                self._leave_clock()
        except Exception:  # noqa: BLE001 - never raise into the training loop
            self._leave_clock()

    def _on_forward(self, module: Any, args: Any, output: Any) -> None:
        try:
            self._forward_seen = True
            if self.torch.is_grad_enabled():
                self._grad_seen = True
                if not self._graph_seen and _requires_grad(self.torch, output):
                    self._graph_seen = True
        except Exception:  # noqa: BLE001, S110 - a forward hook must never break the model
            pass

    def _end_sample(self) -> None:
        if self.handle is None:
            return
        self.handle.remove()
        self.handle = None
        self.sampled += self._forward_seen
        self.grad_mode += self._grad_seen
        self.graph += self._graph_seen
        self._forward_seen = self._grad_seen = self._graph_seen = False

    def _leave_clock(self) -> None:
        self.session.remove_step_listener(self.on_step)

    def close(self) -> None:
        self._end_sample()
        self._leave_clock()
        self.session.writer.write(
            {
                "k": "autograd",
                "ts": time.perf_counter(),
                "backward": bool(self.session.backward_seen),
                "sampled_steps": self.sampled,
                "grad_mode_steps": self.grad_mode,
                "graph_steps": self.graph,
            }
        )


def _requires_grad(torch: Any, output: Any) -> bool:
    if isinstance(output, torch.Tensor):
        return bool(output.requires_grad)
    if isinstance(output, (tuple, list)):
        return any(isinstance(o, torch.Tensor) and o.requires_grad for o in output)
    if isinstance(output, dict):
        return any(isinstance(o, torch.Tensor) and o.requires_grad for o in output.values())
    return False
