"""The cgroup of a process (v1 or v2): its CPU quota, its memory limit and the memory it uses.

Read from `/proc/<pid>/cgroup` (which cgroup, per controller), `/proc/self/mountinfo` (where each
hierarchy is mounted, and which of its cgroups the mount shows) and the controllers' files. Limits
are the tightest over the cgroup and its ancestors up to the mount, as the kernel enforces them.
Nothing here raises: a file that cannot be read means "no limit known".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# cgroup v1 writes a huge number (9223372036854771712 on x86-64) for "no memory limit".
UNLIMITED_BYTES = 2**60
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    """A mounted cgroup hierarchy: where, which of its cgroups it shows there, its controllers."""

    path: Path
    root: str
    version: int  # 1 or 2
    controllers: frozenset[str]


@dataclass(frozen=True)
class Cgroup:
    """The directory of one process's cgroup for one controller, and the mount above it."""

    version: int
    directory: Path
    top: Path

    def lineage(self) -> list[Path]:
        """The cgroup's directory, then each parent up to the mount point (inclusive)."""
        dirs = [self.directory]
        while dirs[-1] != self.top and dirs[-1].parent != dirs[-1]:
            dirs.append(dirs[-1].parent)
        return dirs


@dataclass(frozen=True)
class CgroupLimits:
    """What limits a process: CPU quota in cores, memory limit, and where its usage is read."""

    version: int | None = None
    cpu_quota_cores: float | None = None
    memory_limit_bytes: int | None = None
    memory_dir: Path | None = None  # the cgroup whose limit binds (None: no limit)


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup mounts listed in a mountinfo file."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if len(fields) < sep + 4 or len(fields) < 5:
            continue
        fstype, options = fields[sep + 1], fields[sep + 3]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mounts.append(
            Mount(
                path=Path(_unescape(fields[4])),
                root=_unescape(fields[3]),
                version=2 if fstype == "cgroup2" else 1,
                controllers=frozenset(options.split(",")) if fstype == "cgroup" else frozenset(),
            )
        )
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """`/proc/<pid>/cgroup` as controller -> cgroup path; the v2 (unified) entry is under ""."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def find_cgroup(controller: str, paths: dict[str, str], mounts: list[Mount]) -> Cgroup | None:
    """The process's cgroup for `controller`: its v1 hierarchy if one has it, else the v2 one."""
    for mount in mounts:
        if mount.version == 1 and controller in mount.controllers and controller in paths:
            return _cgroup_at(mount, paths[controller])
    for mount in mounts:
        if mount.version == 2 and "" in paths:
            return _cgroup_at(mount, paths[""])
    return None


def cgroup_of(pid: int, controller: str, proc: Path = PROC) -> Cgroup | None:
    """The cgroup of process `pid` for `controller`, as this process sees the file system."""
    paths = _read(proc / str(pid) / "cgroup")
    mounts = _read(proc / "self" / "mountinfo")
    if paths is None or mounts is None:
        return None
    return find_cgroup(controller, parse_proc_cgroup(paths), parse_mountinfo(mounts))


def read_limits(pid: int, proc: Path = PROC) -> CgroupLimits:
    """The CPU quota and memory limit that apply to process `pid` (None where there is none)."""
    cpu = cgroup_of(pid, "cpu", proc)
    memory = cgroup_of(pid, "memory", proc)
    limit = memory_limit(memory) if memory else None
    version = memory.version if memory else cpu.version if cpu else None
    return CgroupLimits(
        version=version,
        cpu_quota_cores=cpu_quota_cores(cpu) if cpu else None,
        memory_limit_bytes=limit[0] if limit else None,
        memory_dir=limit[1] if limit else None,
    )


def cpu_quota_cores(cgroup: Cgroup) -> float | None:
    """The CPU bandwidth quota in cores (quota / period), tightest over the lineage."""
    quotas = [q for d in cgroup.lineage() if (q := _dir_quota(cgroup.version, d)) is not None]
    return min(quotas) if quotas else None


def memory_limit(cgroup: Cgroup) -> tuple[int, Path] | None:
    """The tightest memory limit over the lineage, in bytes, and the directory that sets it."""
    name = "memory.max" if cgroup.version == 2 else "memory.limit_in_bytes"
    best: tuple[int, Path] | None = None
    for directory in cgroup.lineage():
        value = _read_int(directory / name)
        if value is not None and value < UNLIMITED_BYTES and (best is None or value < best[0]):
            best = (value, directory)
    return best


def memory_used_bytes(version: int, directory: Path) -> int | None:
    """The cgroup's memory use minus its inactive file cache (the "working set" that the OOM
    killer weighs; the cache it can drop first is left out, as kubelet and `docker stats` do)."""
    usage_name = "memory.current" if version == 2 else "memory.usage_in_bytes"
    usage = _read_int(directory / usage_name)
    if usage is None:
        return None
    stat = _read(directory / "memory.stat") or ""
    key = "inactive_file" if version == 2 else "total_inactive_file"
    inactive = next(
        (int(v) for k, _, v in (line.partition(" ") for line in stat.splitlines()) if k == key),
        0,
    )
    return max(usage - inactive, 0)


def _dir_quota(version: int, directory: Path) -> float | None:
    if version == 2:
        text = _read(directory / "cpu.max")
        if text is None:
            return None
        quota, _, period = text.strip().partition(" ")
        if quota == "max" or not period:
            return None
        return _ratio(quota, period)
    quota_text = _read(directory / "cpu.cfs_quota_us")
    period_text = _read(directory / "cpu.cfs_period_us")
    if quota_text is None or period_text is None:
        return None
    return _ratio(quota_text.strip(), period_text.strip())


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _cgroup_at(mount: Mount, path: str) -> Cgroup:
    root = mount.root.rstrip("/")
    relative = path[len(root) :] if path == root or path.startswith(root + "/") else path
    directory = mount.path / relative.lstrip("/")
    if not directory.is_dir():  # a namespaced view we cannot map: the mount itself is our cgroup
        directory = mount.path
    return Cgroup(mount.version, directory, mount.path)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    if text is None:
        return None
    text = text.strip()
    if text == "max":
        return UNLIMITED_BYTES
    try:
        return int(text)
    except ValueError:
        return None


def _unescape(text: str) -> str:
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), text)
