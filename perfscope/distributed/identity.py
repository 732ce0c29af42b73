"""Which distributed rank a process is, from the environment torchrun gives each rank.

torchrun sets RANK, LOCAL_RANK, WORLD_SIZE (and TORCHELASTIC_RUN_ID, TORCHELASTIC_RESTART_COUNT,
GROUP_RANK) in every rank's environment; its own process (the elastic agent) has none of RANK.
A rank's children inherit those variables too (a DataLoader worker started with the spawn method,
a helper subprocess), so a booting rank leaves its pid in ENV_RANK_PID: a process that inherits it
is a rank's child, never a rank.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

ENV_RANK_PID = "PERFSCOPE_RANK_PID"


def rank_identity(env: Mapping[str, str], pid: int | None = None) -> dict[str, Any] | None:
    """The rank this process is (host, rank, local_rank, world_size, restart, run_id), or None when
    it is not a rank, or is the child of one."""
    rank, world = _int(env.get("RANK")), _int(env.get("WORLD_SIZE"))
    if rank is None or world is None:
        return None
    owner = env.get(ENV_RANK_PID)
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return {
        "host": socket.gethostname(),
        "rank": rank,
        "local_rank": _int(env.get("LOCAL_RANK")),
        "world_size": world,
        "restart": _int(env.get("TORCHELASTIC_RESTART_COUNT")) or 0,
        "run_id": env.get("TORCHELASTIC_RUN_ID"),
    }


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
