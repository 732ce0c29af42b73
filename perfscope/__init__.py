"""perfscope: why is my PyTorch run slow, and what should I change?"""

from perfscope._version import __version__
from perfscope.api import profile, step, trace

__all__ = ["__version__", "profile", "step", "trace"]
