"""Which process is a rank (perfscope/distributed/identity.py) and the events file it writes."""

from __future__ import annotations

import socket
from pathlib import Path

from perfscope.distributed.identity import ENV_RANK_PID, rank_identity
from perfscope.events import events_path

TORCHRUN_ENV = {
    "RANK": "3",
    "LOCAL_RANK": "1",
    "WORLD_SIZE": "8",
    "TORCHELASTIC_RESTART_COUNT": "2",
    "TORCHELASTIC_RUN_ID": "job-7",
}


def test_a_torchrun_rank_knows_its_rank_host_and_restart() -> None:
    assert rank_identity(TORCHRUN_ENV, pid=100) == {
        "host": socket.gethostname(),
        "rank": 3,
        "local_rank": 1,
        "world_size": 8,
        "restart": 2,
        "run_id": "job-7",
    }


def test_torchruns_own_process_and_a_plain_script_are_not_ranks() -> None:
    assert rank_identity({"LOCAL_WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "x"}, pid=1) is None
    assert rank_identity({}, pid=1) is None
    assert rank_identity({"RANK": "0"}, pid=1) is None  # no WORLD_SIZE: not a process group
    assert rank_identity({"RANK": "zero", "WORLD_SIZE": "2"}, pid=1) is None


def test_a_child_of_a_rank_inherits_its_environment_but_is_not_a_rank() -> None:
    child_env = {**TORCHRUN_ENV, ENV_RANK_PID: "100"}  # a spawned DataLoader worker of pid 100

    assert rank_identity(child_env, pid=101) is None
    assert rank_identity(child_env, pid=100) is not None  # the rank itself, after an exec


def test_rank_files_are_named_by_host_rank_and_pid_so_they_never_collide(tmp_path: Path) -> None:
    host = socket.gethostname()

    assert events_path(tmp_path, pid=42, rank=3).name == f"{host}-rank3-42.events"
    assert events_path(tmp_path, pid=42).name == f"{host}-42.events"
    assert events_path(tmp_path, pid=43, rank=3) != events_path(tmp_path, pid=42, rank=3)
