"""Readers of /proc for the host collector: one file read where psutil would make several.

Each falls back to psutil where there is no /proc (macOS), and returns None (or -1) for a process
that is gone instead of raising.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

MB = 2**20
SHM = Path("/dev/shm")
PROCFS = os.path.exists("/proc/self/stat") and os.path.isdir("/proc/self/task")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if PROCFS else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if PROCFS else 4096
_CTX_SWITCHES = re.compile(rb"ctxt_switches:\t(\d+)")


def usable_cores(pid: int = 0) -> int:
    """The cores process `pid` (0: this one) may run on (its CPU affinity), not the machine's."""
    try:
        return len(os.sched_getaffinity(pid))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def shm_usage(path: Path = SHM) -> tuple[float, float] | None:
    """Size and free space of /dev/shm in MiB (DataLoader workers pass batches through it)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_blocks * st.f_frsize / MB, st.f_bavail * st.f_frsize / MB


class ProcessTree:
    """The pids of a root process and its descendants.

    Each pid's parent is read once, when the pid first appears; a call lists the machine's pids
    and, when the list has not changed since the last call, reads nothing else.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self._names: set[str] = set()
        self._parent: dict[int, int] = {}
        self._members: list[int] = []

    def pids(self, names: set[str] | None = None) -> list[int]:
        """The tree's pids; `names` is the listing of /proc when the caller already made it."""
        names = pid_names() if names is None else names
        if names == self._names:
            return self._members
        current = {int(name) for name in names if name.isdigit()}
        for pid in self._parent.keys() - current:
            del self._parent[pid]
        for pid in current - self._parent.keys():
            self._parent[pid] = parent_pid(pid)
        self._names = names
        self._members = self._descendants()
        return self._members

    def _descendants(self) -> list[int]:
        if self.root not in self._parent:
            return []
        children: dict[int, list[int]] = defaultdict(list)
        for pid, ppid in self._parent.items():
            children[ppid].append(pid)
        found, stack = [], [self.root]
        seen = set(stack)
        while stack:
            pid = stack.pop()
            found.append(pid)
            for child in children.get(pid, ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return found


def cpu_rss(handle: Any) -> tuple[float, int] | None:
    """CPU seconds (user + system) and RSS bytes of a process; None when it is gone."""
    import psutil

    if PROCFS:  # one read instead of psutil's two (stat and statm)
        try:
            with open(f"/proc/{handle.pid}/stat", "rb") as f:
                data = f.read()
            fields = data[data.rfind(b")") + 2 :].split()
            return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[21]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            return None
    try:
        with handle.oneshot():
            times, rss = handle.cpu_times(), handle.memory_info().rss
    except psutil.Error:
        return None
    return times.user + times.system, rss


def parent_pid(pid: int) -> int:
    """The parent of `pid`, -1 when it is gone (one read of /proc/<pid>/stat on Linux)."""
    import psutil

    if PROCFS:
        data = read_bytes(f"/proc/{pid}/stat")
        try:
            return int(data[data.rfind(b")") + 2 :].split()[1]) if data else -1
        except (IndexError, ValueError):
            return -1
    try:
        return psutil.Process(pid).ppid()
    except psutil.Error:
        return -1


def pid_names() -> set[str]:
    """The names in /proc (pids and a few others); psutil's pid list where there is no /proc."""
    if PROCFS:
        try:
            return set(os.listdir("/proc"))
        except OSError:
            pass
    import psutil

    return {str(pid) for pid in psutil.pids()}


def thread_switches(handle: Any) -> dict[int, tuple[int, int]]:
    """(voluntary, involuntary) switches of each thread: /proc/<pid>/status counts only the
    process's first thread, so every /proc/<pid>/task/<tid>/status is read."""
    import psutil

    if not PROCFS:
        try:
            counts = handle.num_ctx_switches()
        except (psutil.Error, NotImplementedError):
            return {}
        return {handle.pid: (counts.voluntary, counts.involuntary)}
    task_dir = f"/proc/{handle.pid}/task"
    found: dict[int, tuple[int, int]] = {}
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return found
    for tid in tids:
        data = read_bytes(f"{task_dir}/{tid}/status")
        counts = _CTX_SWITCHES.findall(data) if data else []
        if len(counts) == 2:
            found[int(tid)] = (int(counts[0]), int(counts[1]))
    return found


def swap_bytes() -> tuple[int, int] | None:
    """Bytes swapped in and out since boot (from /proc/vmstat: psutil also reads /proc/meminfo)."""
    data = read_bytes("/proc/vmstat") if PROCFS else None
    if data is not None:
        pages_in, pages_out = counter(data, b"pswpin"), counter(data, b"pswpout")
        if pages_in is not None and pages_out is not None:
            return pages_in * PAGE_SIZE, pages_out * PAGE_SIZE
    import psutil

    try:
        swap = psutil.swap_memory()
    except (OSError, RuntimeError, psutil.Error):
        return None
    return swap.sin, swap.sout


def available_bytes() -> int:
    """Memory available on the host (MemAvailable, which psutil's `available` reports)."""
    data = read_bytes("/proc/meminfo") if PROCFS else None
    kib = counter(data, b"MemAvailable:") if data is not None else None
    if kib is not None:
        return kib * 1024
    import psutil

    return psutil.virtual_memory().available


def shm_used_mb() -> float | None:
    usage = shm_usage()
    return usage[0] - usage[1] if usage else None


def read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def counter(data: bytes, key: bytes) -> int | None:
    """The number after `key` at the start of a line of a /proc file."""
    at = 0 if data.startswith(key) else data.find(b"\n" + key)
    if at < 0:
        return None
    end = data.find(b"\n", at + 1)
    fields = data[at : end if end >= 0 else len(data)].split()
    try:
        return int(fields[1])
    except (IndexError, ValueError):
        return None
