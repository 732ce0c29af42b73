"""Facts about the machine and the interpreter; environment values only from an allow-list."""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Any

from perfscope.collectors.procfs import usable_cores

# Values of these variables shape performance and carry no secrets; no other value is recorded.
ENV_ALLOW_LIST = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_LAUNCH_BLOCKING",
    "PYTORCH_CUDA_ALLOC_CONF",
    "PYTORCH_ALLOC_CONF",
    "TORCH_NCCL_ASYNC_ERROR_HANDLING",
    "NCCL_DEBUG",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
)


def collect_environment() -> dict[str, Any]:
    import psutil

    return {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable_cores(),
        "memory_total_mb": round(psutil.virtual_memory().total / 2**20),
        "env": {name: os.environ[name] for name in ENV_ALLOW_LIST if name in os.environ},
    }
