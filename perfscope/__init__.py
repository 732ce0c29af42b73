"""perfscope: why is my PyTorch run slow, and what should I change?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perfscope._version import __version__

if TYPE_CHECKING:
    from perfscope.api import profile, step, trace

__all__ = ["__version__", "profile", "step", "trace"]


def __getattr__(name: str) -> Any:
    # The API loads on first use: the hooks booted in every `perfscope run` child never need it.
    if name in ("profile", "step", "trace"):
        from perfscope import api

        return getattr(api, name)
    raise AttributeError(f"module 'perfscope' has no attribute {name!r}")
